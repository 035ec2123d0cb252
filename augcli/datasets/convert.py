"""Small array helpers the loaders share: option checks, colour-mode conversion, resizing, float rules."""

from __future__ import annotations

import numpy as np
from PIL import Image

COLOR_MODES = ("gray", "rgb")


def check_color_mode(color_mode, allow_none: bool = False):
    """Return ``color_mode`` if it is "gray" or "rgb" (or None when allowed), else raise ValueError."""
    if color_mode is None and allow_none:
        return None
    if color_mode not in COLOR_MODES:
        allowed = ", ".join(repr(m) for m in COLOR_MODES) + (" or None" if allow_none else "")
        raise ValueError(f"color_mode must be {allowed}, got {color_mode!r}")
    return color_mode


def check_image_size(image_size):
    """Normalise ``image_size`` to ``(h, w)`` ints >= 1; an int n means (n, n); None stays None."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width) in pixels, got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> uint8 (..., 1) with ITU-R 601-2 luma, bit-exact with Pillow's ``convert("L")``."""
    rgb = images.astype(np.uint32)
    # Pillow's fixed-point weights (0.299, 0.587, 0.114 scaled by 2**16) so folder and array paths agree.
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def convert_color_mode(images: np.ndarray, color_mode) -> np.ndarray:
    """uint8 (N, H, W, C) to 1 channel ("gray") or 3 ("rgb"); None returns the input unchanged."""
    if color_mode is None:
        return images
    channels = images.shape[-1]
    if color_mode == "gray" and channels == 3:
        return rgb_to_gray(images)
    if color_mode == "rgb" and channels == 1:
        return np.repeat(images, 3, axis=-1)
    return images


def resize_images(images: np.ndarray, image_size) -> np.ndarray:
    """Resize uint8 (N, H, W, C) to ``image_size`` (h, w) with Pillow's bilinear filter; no-op if equal."""
    h, w = image_size
    n, src_h, src_w, channels = images.shape
    if (src_h, src_w) == (h, w):
        return images
    out = np.empty((n, h, w, channels), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"
    for i in range(n):  # one Pillow call per image; the resampling itself is vectorised in C
        pil = Image.fromarray(images[i, ..., 0] if channels == 1 else images[i], mode)
        out[i] = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR)).reshape(h, w, channels)
    return out


def float_to_uint8(values: np.ndarray, where: str) -> np.ndarray:
    """Float pixels to uint8 by one rule for the whole array.

    If every value lies in [0, 1] the array is taken as unit-range and multiplied by 255; otherwise
    values must lie in [0, 255] and are used as they are. Both are then rounded (np.rint). NaN/Inf
    or values outside [0, 255] raise ValueError mentioning ``where``.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: expected finite pixel values, found NaN or Inf")
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = float(values.min()), float(values.max())
    if lo < 0.0 or hi > 255.0:
        raise ValueError(f"{where}: expected float pixels in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]")
    scale = 255.0 if hi <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
