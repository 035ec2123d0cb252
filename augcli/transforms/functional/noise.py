"""Pure batched noise kernels on uint8 (N, H, W, C) arrays.

Per-sample strengths have shape (N,); per-element noise fields have shape (N, H, W, C) or
(N, H, W, 1) (the same noise on every channel) and are drawn by the caller from the sample streams.
"""

from __future__ import annotations

import numpy as np

from augcli.transforms.functional import opencv_kernels as ocv
from augcli.backend import cv2_or_none

# Images with at least this many values take one cv2.addWeighted per image on the OpenCV backend.
_CV_MIN_VALUES = 4096
# Float work runs over pieces of about this many values (128 KiB of float32): one reused scratch
# buffer that stays in cache, instead of several image-sized temporaries per call.
_PIECE = 1 << 15


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def _pieces(shape: tuple):
    """Index pieces (samples, rows) of a (N, H, W, C) batch holding about ``_PIECE`` values each."""
    n, h, w, c = shape
    row = max(w * c, 1)
    if h * row >= _PIECE:
        rows = max(1, _PIECE // row)
        for i in range(n):
            for r in range(0, h, rows):
                yield slice(i, i + 1), slice(r, min(r + rows, h))
    else:
        step = max(1, _PIECE // max(h * row, 1))
        for i in range(0, n, step):
            yield slice(i, min(i + step, n)), slice(0, h)


def _field_op(images: np.ndarray, strength: np.ndarray, field: np.ndarray, multiplicative: bool) -> np.ndarray:
    """``x + s * f`` or ``x * (1 + s * f)`` per piece in float32, rounded and clipped to uint8.

    The float32 steps are exactly those of the one-shot expression, so results are unchanged.
    """
    out = np.empty_like(images)
    field = np.asarray(field, dtype=np.float32)
    strength = _column(strength)
    scratch = np.empty(min(_PIECE + images.shape[2] * images.shape[3], images.size), np.float32)
    for samples, rows in _pieces(images.shape):
        x = images[samples, rows]
        buf = scratch[: x.size].reshape(x.shape)
        np.multiply(strength[samples], field[samples, rows], out=buf)
        if multiplicative:
            buf += np.float32(1.0)
            buf *= x
        else:
            buf += x
        np.rint(buf, out=buf)
        np.clip(buf, 0, 255, out=buf)
        out[samples, rows] = buf
    return out


def gaussian_noise(images: np.ndarray, std: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Add ``std * 255 * field``: ``std`` (N,) is a fraction of full scale, ``field`` standard normal.

    On the OpenCV backend large images are done by cv2.addWeighted, which rounds the same sum in its
    own order (at most one grey level from the NumPy result, on rare pixels).
    """
    strength = _column(std) * np.float32(255.0)
    cv2 = cv2_or_none()
    n, h, w, c = images.shape
    if cv2 is not None and n and h * w * c >= _CV_MIN_VALUES and np.shape(field)[1:3] == images.shape[1:3]:
        return ocv.add_scaled(cv2, images, strength.reshape(-1), np.asarray(field, dtype=np.float32))
    return _field_op(images, strength, field, multiplicative=False)


def speckle_noise(images: np.ndarray, std: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Multiplicative noise ``x * (1 + std * field)``: dark pixels change less than bright ones."""
    return _field_op(images, std, field, multiplicative=True)


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
