"""Pure batched noise kernels on uint8 (N, H, W, C) arrays.

Per-sample strengths have shape (N,); per-element noise fields have shape (N, H, W, C) or
(N, H, W, 1) (the same noise on every channel) and are drawn by the caller from the sample streams.
"""

from __future__ import annotations

import numpy as np

from augcli.transforms.functional.color import to_uint8


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def gaussian_noise(images: np.ndarray, std: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Add ``std * 255 * field``: ``std`` (N,) is a fraction of full scale, ``field`` standard normal."""
    return to_uint8(images.astype(np.float32) + (_column(std) * np.float32(255.0)) * field)


def speckle_noise(images: np.ndarray, std: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Multiplicative noise ``x * (1 + std * field)``: dark pixels change less than bright ones."""
    return to_uint8(images.astype(np.float32) * (np.float32(1.0) + _column(std) * field))


def salt_and_pepper(images: np.ndarray, amount: np.ndarray, salt_ratio: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Set a fraction ``amount`` (N,) of pixels to 255 (salt) or 0 (pepper).

    ``field`` holds uniform draws in [0, 1): a pixel becomes salt where ``field < amount * ratio`` and
    pepper where ``amount * ratio <= field < amount``, so one field decides both, and ``salt_ratio``
    (N,) in [0, 1] is the expected share of salt among the changed pixels.
    """
    amount = _column(amount)
    salt_cut = amount * _column(salt_ratio)
    salt = field < salt_cut
    pepper = (field >= salt_cut) & (field < amount)
    out = np.where(salt, np.uint8(255), images)
    return np.where(pepper, np.uint8(0), out)
