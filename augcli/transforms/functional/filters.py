"""Pure batched filter kernels on uint8 (N, H, W, C) arrays with per-sample parameters of shape (N,).

Borders follow scipy.ndimage mode ``'reflect'`` (half-sample symmetric, ``d c b a | a b c d | d c b a``:
the edge pixel is repeated), which is NumPy's pad mode ``'symmetric'``. Filtering is done by looping
over kernel taps and adding weighted shifted slices of the padded batch, never over pixels.
"""

from __future__ import annotations

import io

import numpy as np

from augcli.transforms.functional import opencv_kernels as ocv
from augcli.backend import cv2_or_none
from augcli.transforms.functional.color import to_uint8

# With the OpenCV backend, images larger than the kernel radius are blurred by OpenCV, one call
# per image (cheaper than the batched tap loop from about 16x16 on); BORDER_REFLECT is 'reflect'.
_CV_MIN_VALUES = 256
# cv2.medianBlur has a slow path for small images (32x32: 3x slower than the NumPy partition).
_CV_MEDIAN_PIXELS = 64 * 64
# Upper bound on the elements of one stacked median neighbourhood block, to bound memory.
_MEDIAN_BLOCK = 1 << 24


def reflect_index(n: int, before: int, after: int) -> np.ndarray:
    """Source indices that pad an axis of length ``n`` by ``before``/``after`` with 'reflect' borders.

    Works for pads longer than the axis (the reflection repeats with period ``2 n``, as in scipy).
    """
    idx = np.arange(-before, n + after)
    m = np.mod(idx, 2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)


def reflect_pad(images: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Pad the H axis by ``ry`` and the W axis by ``rx`` pixels on both sides ('reflect' borders)."""
    # np.take returns a C-contiguous copy (fancy indexing may not), which keeps tap slices fast.
    out = images
    if ry:
        out = np.take(out, reflect_index(images.shape[1], ry, ry), axis=1)
    if rx:
        out = np.take(out, reflect_index(images.shape[2], rx, rx), axis=2)
    return out


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


# --- Gaussian blur ----------------------------------------------------------------------------


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel radius in pixels for ``sigma``: ``int(truncate * sigma + 0.5)`` (scipy's rule)."""
    return int(truncate * float(sigma) + 0.5)


def gaussian_kernels(sigma: np.ndarray, truncate: float, radius: int) -> np.ndarray:
    """(N, 2 radius + 1) float32 table of normalised 1-D Gaussian kernels, one row per sample.

    Each row is cut at its own radius ``gaussian_radius(sigma_i, truncate)`` (taps beyond are 0), so
    a sample's kernel does not depend on the width of the table; ``sigma`` is in pixels, >= 0
    (sigma 0 gives the identity kernel).
    """
    sigma = np.asarray(sigma, dtype=np.float64).reshape(-1, 1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)[None, :]
    own = np.floor(truncate * sigma + 0.5)
    safe = np.maximum(sigma, 1e-6)  # sigma -> 0 leaves only the centre tap
    w = np.exp(-0.5 * (x / safe) ** 2) * (np.abs(x) <= own)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def _correlate_axis(padded: np.ndarray, kernels: np.ndarray, axis: int) -> np.ndarray:
    """Per-sample 1-D correlation along ``axis`` of a batch padded by K // 2 on that axis."""
    k = kernels.shape[1]
    size = padded.shape[axis] - k + 1
    out_shape = list(padded.shape)
    out_shape[axis] = size
    acc = np.zeros(out_shape, dtype=np.float32)
    tmp = np.empty_like(acc)
    # Taps that are zero for every sample add exactly 0.0, so skipping them keeps results bit-equal.
    for t in np.flatnonzero(np.any(kernels != 0, axis=0)):
        view = padded[:, t : t + size] if axis == 1 else padded[:, :, t : t + size]
        np.multiply(view, _column(kernels[:, t]), out=tmp)
        acc += tmp
    return acc


def gaussian_blur(
    images: np.ndarray, sigma: np.ndarray, truncate: float = 4.0, radius: int | None = None
) -> np.ndarray:
    """Separable Gaussian blur with a per-sample ``sigma`` (pixels, (N,)) and 'reflect' borders.

    ``radius`` is the half-width of the shared kernel table (default: from the largest sigma); pass
    the one implied by the configured maximum to make the result independent of the batch.
    Matches ``scipy.ndimage.gaussian_filter(x, (s, s, 0), mode='reflect', truncate=truncate)``
    (the OpenCV backend, for images larger than the kernel, may differ from it by one grey level).
    """
    sigma = np.asarray(sigma, dtype=np.float64).reshape(-1)
    if radius is None:
        radius = gaussian_radius(sigma.max(initial=0.0), truncate)
    kernels = gaussian_kernels(sigma, truncate, radius)
    n, h, w, c = images.shape
    cv2 = cv2_or_none()
    if cv2 is not None and n and min(h, w) > radius and h * w * c >= _CV_MIN_VALUES:
        # each sample's kernel cut to its own radius: the taps beyond are zero in the table
        own = np.floor(truncate * sigma + 0.5).astype(np.int64).clip(0, radius)
        rows = [kernels[i, radius - own[i] : radius + own[i] + 1] for i in range(n)]
        return ocv.separable_filter(cv2, images, rows)
    x = images.astype(np.float32)
    x = _correlate_axis(reflect_pad(x, radius, 0), kernels, axis=1)
    x = _correlate_axis(reflect_pad(x, 0, radius), kernels, axis=2)
    return to_uint8(x)


# --- median blur ------------------------------------------------------------------------------


def _median_one_size(images: np.ndarray, k: int) -> np.ndarray:
    """k x k median of every sample (k odd), by stacking the k*k shifted views on a last axis."""
    n, h, w, c = images.shape
    if k == 1 or images.size == 0:
        return images.copy()
    r = k // 2
    padded = reflect_pad(images, r, r)
    out = np.empty_like(images)
    mid = (k * k) // 2
    # Process bands of rows so the (n, band, W, C, k*k) stack stays bounded in memory.
    band = max(1, _MEDIAN_BLOCK // max(1, n * w * c * k * k))
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        views = [padded[:, y0 + i : y1 + i, j : j + w] for i in range(k) for j in range(k)]
        stack = np.stack(views, axis=-1)
        # The median of an odd count is the middle order statistic; partition finds it in uint8.
        out[:, y0:y1] = np.partition(stack, mid, axis=-1)[..., mid]
    return out


def median_blur(images: np.ndarray, ksize: np.ndarray) -> np.ndarray:
    """Median filter with a per-sample odd kernel size ``ksize`` ((N,) ints >= 1), 'reflect' borders.

    Samples are grouped by size, so the work is one batched pass per distinct size.
    Matches ``scipy.ndimage.median_filter(x, size=(k, k, 1), mode='reflect')`` exactly.
    """
    ksize = np.asarray(ksize, dtype=np.int64).reshape(-1)
    out = np.empty_like(images)
    cv2 = cv2_or_none()
    large = images.shape[1] * images.shape[2] >= _CV_MEDIAN_PIXELS
    for k in np.unique(ksize):
        idx = np.flatnonzero(ksize == k)
        if cv2 is not None and large and k > 1 and min(images.shape[1:3]) > k // 2:
            out[idx] = ocv.median(cv2, images[idx], int(k))  # exact too: the same bytes
        else:
            out[idx] = _median_one_size(images[idx], int(k))
    return out


# --- motion blur ------------------------------------------------------------------------------


def motion_radius(length: int) -> int:
    """Half-width of the square kernel that holds an anti-aliased line of ``length`` pixels."""
    # Taps within distance < 1 of the segment (half-length (L-1)/2) are non-zero.
    return int(np.ceil((length - 1) / 2.0 + 1.0)) - 1


def line_kernels(length: np.ndarray, angle: np.ndarray, radius: int) -> np.ndarray:
    """(N, 2r+1, 2r+1) float32 normalised line kernels centred on the middle tap.

    ``length`` (N,) is the line length in pixels (>= 1, 1 gives the identity kernel), ``angle`` (N,)
    its direction in degrees, counter-clockwise from the horizontal as displayed (rows point down).
    A tap's weight is ``max(0, 1 - distance to the segment)``, an anti-aliased line.
    """
    length = np.asarray(length, dtype=np.float64).reshape(-1, 1, 1)
    theta = np.deg2rad(np.asarray(angle, dtype=np.float64)).reshape(-1, 1, 1)
    off = np.arange(-radius, radius + 1, dtype=np.float64)
    dy, dx = off[None, :, None], off[None, None, :]
    ux, uy = np.cos(theta), -np.sin(theta)
    half = (length - 1.0) / 2.0
    t = np.clip(dx * ux + dy * uy, -half, half)
    dist = np.hypot(dx - t * ux, dy - t * uy)
    w = np.maximum(0.0, 1.0 - dist)
    w /= w.sum(axis=(1, 2), keepdims=True)
    return w.astype(np.float32)


def convolve2d(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Per-sample 2-D correlation with odd square ``kernels`` (N, K, K), 'reflect' borders; float32 out.

    The kernels used here are point-symmetric, so correlation equals convolution.
    """
    n, h, w, _ = images.shape
    k = kernels.shape[1]
    r = k // 2
    padded = reflect_pad(images.astype(np.float32), r, r)
    acc = np.zeros(images.shape, dtype=np.float32)
    tmp = np.empty_like(acc)
    used = np.any(kernels != 0, axis=0)
    for i, j in zip(*np.nonzero(used)):
        np.multiply(padded[:, i : i + h, j : j + w], _column(kernels[:, i, j]), out=tmp)
        acc += tmp
    return acc


def motion_blur(images: np.ndarray, length: np.ndarray, angle: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Blur along a line of per-sample ``length`` (pixels) and ``angle`` (degrees); 'reflect' borders.

    ``radius`` is the shared kernel half-width (default: from the longest line in the batch).
    """
    length = np.asarray(length).reshape(-1)
    if radius is None:
        radius = motion_radius(int(length.max(initial=1)))
    kernels = line_kernels(length, angle, radius)
    cv2 = cv2_or_none()
    if cv2 is not None and len(images) and min(images.shape[1:3]) > radius and images[0].size >= _CV_MIN_VALUES:
        return ocv.filter_2d(cv2, images, kernels)
    return to_uint8(convolve2d(images, kernels))


# --- JPEG -------------------------------------------------------------------------------------


def jpeg(images: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Re-encode every image through Pillow's JPEG codec in memory at per-sample ``quality`` (1..100).

    Gray (C=1) images are coded as 8-bit grayscale, RGB as RGB with Pillow's default chroma
    subsampling. One codec call per image is unavoidable: the codec works on single images. The
    OpenCV backend uses OpenCV's codec, which gives the same bytes faster.
    """
    from PIL import Image

    quality = np.asarray(quality, dtype=np.int64).reshape(-1)
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and min(images.shape[1:3]) > 0:
        return ocv.jpeg(cv2, images, quality)
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        img = np.ascontiguousarray(images[i, :, :, 0] if images.shape[3] == 1 else images[i])
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality[i]))
        buf.seek(0)
        with Image.open(buf) as decoded:
            out[i] = np.asarray(decoded).reshape(out.shape[1:])
    return out
