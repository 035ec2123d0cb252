"""Pure batched colour kernels on uint8 (N, H, W, C) arrays; per-sample factors have shape (N,)."""

from __future__ import annotations

import numpy as np


def _per_sample(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip float pixels back to uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def brightness(images: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add ``delta * 255`` to every pixel (delta in [-1, 1] per sample)."""
    return to_uint8(images.astype(np.float32) + _per_sample(delta) * 255.0)
