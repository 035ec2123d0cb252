"""Pure batched geometric kernels on uint8 (N, H, W, C) arrays; they never edit their input."""

from __future__ import annotations

import numpy as np


def hflip(images: np.ndarray) -> np.ndarray:
    """Mirror left-right (contiguous copy: a reversed-stride view is slow to consume later)."""
    return np.ascontiguousarray(images[:, :, ::-1])


def vflip(images: np.ndarray) -> np.ndarray:
    """Mirror top-bottom."""
    return np.ascontiguousarray(images[:, ::-1])
