"""Images without content: blank (constant) images and pure pixel noise.

Both tests look at one image at a time, so they do not depend on the rest of the dataset.

* Blank: the largest per-channel pixel standard deviation is below ``min_std`` grey levels (a solid
  colour is blank too). The default 2.0 leaves room for rounding and faint sensor noise.
* Noise: neighbouring pixels are uncorrelated. In a scan, a digit or a photograph of reasonable
  size, a pixel predicts its right and lower neighbours well (correlation 0.287 at the lowest over
  the 1797 8x8 digits); in independent pixel noise the correlation is 0 give or take about
  ``1 / sqrt(number of neighbour pairs)`` (about 0.1 on 8x8, 0.02 on 32x32). See
  ``noise_threshold`` for the cut and what it was measured on.

Noise that is smoothed or compressed (correlated) is not found by this test, by design: only images
with no spatial structure at all are.
"""

from __future__ import annotations

import numpy as np

from augcli.datasets.base import Dataset
from augcli.transforms.functional.color import grayscale

_CHUNK = 512  # images per pass: bounds the float temporaries for large images
MAX_NOISE_CORRELATION = 0.25  # highest neighbour correlation that still counts as pure noise
_NOISE_SIGMAS = 5.0  # on larger images the cut also stays within 5 standard errors of zero


def pixel_std(images: np.ndarray) -> np.ndarray:
    """Largest per-channel pixel standard deviation of every image, in grey levels: float64 (N,)."""
    n = images.shape[0]
    if n == 0 or images[0].size == 0:
        return np.zeros(n)
    out = np.empty(n)
    for a in range(0, n, _CHUNK):
        block = images[a:a + _CHUNK].astype(np.float32)
        out[a:a + _CHUNK] = block.std(axis=(1, 2), dtype=np.float64).max(axis=1)
    return out


def neighbour_correlation(images: np.ndarray) -> np.ndarray:
    """Mean of the horizontal and vertical lag-1 pixel correlations of every image's luma: (N,).

    In [-1, 1]; NaN for constant images (no variance) and images smaller than 2x2.
    """
    n = images.shape[0]
    out = np.full(n, np.nan)
    if n == 0 or images.shape[1] < 2 or images.shape[2] < 2:
        return out
    for a in range(0, n, _CHUNK):
        g = grayscale(images[a:a + _CHUNK])[..., 0].astype(np.float64)
        g -= g.mean(axis=(1, 2), keepdims=True)
        var = (g * g).mean(axis=(1, 2))
        across = (g[:, :, 1:] * g[:, :, :-1]).mean(axis=(1, 2))
        down = (g[:, 1:, :] * g[:, :-1, :]).mean(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:a + _CHUNK] = np.where(var > 0, (across + down) / (2.0 * var), np.nan)
    return out


def noise_threshold(height: int, width: int) -> float:
    """The correlation below which an image of this size is called noise.

    ``MAX_NOISE_CORRELATION`` (0.25), lowered on large images to 5 standard errors of the noise's
    own correlation (5 / sqrt(number of neighbour pairs)) so that textured photographs are spared.
    Measured (5000 uniform + 5000 Gaussian noise images per size; crops every 7 px of scikit-learn's
    two sample photos): noise found 99.8 % at 8x8, 100 % at 16x16 and 32x32. Real crops called
    noise: 7.7 % at 8x8 and 1.4 % at 16x16 (pixel-scale texture and JPEG blocks look like noise at
    that size), 0.01 % at 32x32, none at 64x64; none of the 8x8 digits. So on tiny natural patches
    this check should only flag, not drop.
    """
    pairs = height * (width - 1) + (height - 1) * width
    return float(min(MAX_NOISE_CORRELATION, _NOISE_SIGMAS / np.sqrt(max(pairs, 1))))


def _record(dataset: Dataset, i: int, reason: str, score: float, **extra) -> dict:
    return {"id": str(dataset.ids[i]), "index": int(i), "reason": reason, "score": float(score), "group": None,
            "suggested_label": None, **extra}


def find_blank(dataset: Dataset, min_std: float = 2.0) -> list[dict]:
    """Records (reason "blank", score = the image's pixel std in grey levels) for images whose
    largest per-channel standard deviation is below ``min_std`` (grey levels, >= 0), in index order."""
    if min_std < 0:
        raise ValueError(f"min_std must be >= 0 grey levels, got {min_std!r}")
    std = pixel_std(dataset.images)
    return [_record(dataset, i, "blank", std[i]) for i in np.flatnonzero(std < min_std).tolist()]


def find_noise_images(dataset: Dataset, max_correlation: float | None = None, min_std: float = 2.0) -> list[dict]:
    """Records (reason "noise", score = neighbour correlation) for pure-noise images, in index order.

    An image is noise when its neighbour correlation is below ``max_correlation`` (default
    ``noise_threshold`` of its size) and it is not blank (pixel std >= ``min_std``).
    """
    h, w = dataset.images.shape[1:3]
    cut = noise_threshold(h, w) if max_correlation is None else float(max_correlation)
    corr = neighbour_correlation(dataset.images)
    std = pixel_std(dataset.images)
    with np.errstate(invalid="ignore"):
        hit = (corr < cut) & (std >= min_std)
    return [_record(dataset, i, "noise", corr[i]) for i in np.flatnonzero(hit).tolist()]
