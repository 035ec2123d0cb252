"""Pure batched colour kernels on uint8 (N, H, W, C) arrays; per-sample factors have shape (N,).

The ``enhance_*``, ``equalize``, ``autocontrast``, ``posterize``, ``solarize``, ``invert`` and
``grayscale`` kernels follow Pillow's definitions (ImageEnhance / ImageOps / ``convert("L")``) so
that policies written with PIL-style magnitudes (AutoAugment, RandAugment) mean the same here.
Blends round to nearest where Pillow truncates, so they may differ from Pillow by one grey level.
``equalize`` also equalises images too small for Pillow's integer step (Pillow leaves them as is).
Colour-only kernels return a copy of gray (C=1) images unchanged.
With the OpenCV backend, large images take compiled paths: per-sample point operations
(brightness, contrast, gamma, ...) become 256-entry tables, built by the very float32 arithmetic of
the direct path (so the bytes are the same) and applied by stringzilla's byte translation (or
cv2.LUT), and hue, HSV saturation and luma blends go through OpenCV's float colour conversions (at
most one grey level from the NumPy results). ``color_jitter`` then runs image by image in place.
"""

from __future__ import annotations

import numpy as np

from augcli.transforms.functional import opencv_kernels as ocv
from augcli.backend import cv2_or_none

# ITU-R 601-2 luma weights in 16.16 fixed point, exactly as Pillow's convert("L") (they sum to 2**16).
_LUMA_WEIGHTS = (19595, 38470, 7471)


def _per_sample(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip float pixels back to uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def brightness(images: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add ``delta * 255`` to every pixel (delta in [-1, 1] per sample)."""
    shift = _per_sample(delta) * 255.0
    direct = lambda x: _owned_to_uint8(np.add(x, shift, dtype=np.float32))  # noqa: E731
    n, h, w, c = images.shape
    cv2 = cv2_or_none()
    whole = np.rint(shift.reshape(-1))
    # For integer x and shift = k + d with |d| < 0.5 - 2**-14, the float32 sum x + shift (below
    # 512, so within 2**-15 of exact) rounds to x + k: a saturating integer add gives the same bytes.
    exact = np.abs(shift.reshape(-1) - whole) < 0.5 - 2.0**-14
    if cv2 is None or n == 0 or h * w * c < _LUT_MIN_VALUES or not exact.all():
        return _point_op(images, direct)
    return ocv.add_constant(cv2, images, whole)


# --- helpers ----------------------------------------------------------------------------------
# Images of at least this many values per sample take the table path on the OpenCV backend (one
# cv2.LUT per image); smaller ones are cheaper as one batched float32 pass.
_LUT_MIN_VALUES = 4096


def _point_op(images: np.ndarray, direct) -> np.ndarray:
    """Apply a per-sample point operation given as ``direct(x)``: uint8 (N, ...) -> uint8, pure
    elementwise float32 arithmetic with per-sample (N, 1, 1, 1) parameters.

    On the OpenCV backend large images instead get ``direct`` evaluated on the 256 grey levels (a
    (N, 1, 256, 1) ramp: the same arithmetic, so the same bytes) and mapped through cv2.LUT.
    (Running small images in cache-sized groups of samples measured slower: more calls.)
    """
    n, h, w, c = images.shape
    cv2 = cv2_or_none()
    if cv2 is not None and n and h * w * c >= _LUT_MIN_VALUES:
        return ocv.lut(cv2, images, _tables(direct, n))
    return direct(images)


def _owned_to_uint8(x: np.ndarray) -> np.ndarray:
    """``to_uint8`` for a float32 temporary the caller owns: rounds and clips in place (fewer copies)."""
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


def _blend(degenerate, images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``degenerate + factor * (images - degenerate)`` per sample (Pillow's Image.blend), rounded;
    ``degenerate`` is an image batch or per-sample values broadcastable to (N, 1, 1, 1)."""
    d = np.asarray(degenerate).astype(np.float32, copy=False)
    out = images.astype(np.float32)
    out -= d
    out *= _per_sample(factor)
    out += d
    return _owned_to_uint8(out)


def _luma(images: np.ndarray) -> np.ndarray:
    """Pillow's convert("L") as (N, H, W, 1) uint8: rounded fixed-point 601-2 luma (bit-exact)."""
    if images.shape[-1] == 1:
        return images
    # in-place uint32 accumulation: the products fit easily (255 * 65536 < 2**32)
    acc = images[..., 0].astype(np.uint32)
    acc *= _LUMA_WEIGHTS[0]
    for ch in (1, 2):
        term = images[..., ch].astype(np.uint32)
        term *= _LUMA_WEIGHTS[ch]
        acc += term
    acc += 1 << 15
    acc >>= 16
    return acc.astype(np.uint8)[..., None]


def _lut_index(images: np.ndarray, per_channel: bool) -> np.ndarray:
    """Each pixel's index into a flattened (N, 256) table, or (N, C, 256) if ``per_channel``,
    shaped (N, H, W*C). The channel offsets are tiled along whole rows: broadcasting them over a
    length-3 last axis instead made the add several times slower."""
    n, h, w, c = images.shape
    base = np.arange(n).reshape(n, 1, 1) * (256 * (c if per_channel else 1))
    if per_channel:
        base = base + np.tile(np.arange(c) * 256, w).reshape(1, 1, w * c)
    return images.reshape(n, h, w * c) + base


def apply_lut(images: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map every pixel through a per-sample table: ``lut`` is (N, 256) or per channel (N, C, 256).

    One flat gather (``np.take`` on offset indices) serves the whole batch; it measured ~3x faster
    than ``np.take_along_axis``, which builds a broadcast fancy index.
    """
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and images[0].size >= _LUT_MIN_VALUES:
        return ocv.lut(cv2, images, lut)
    index = _lut_index(images, per_channel=lut.ndim == 3)
    return np.take(lut.reshape(-1), index).reshape(images.shape)


def channel_histograms(images: np.ndarray) -> np.ndarray:
    """Per-sample, per-channel histograms of a uint8 batch: int64 (N, C, 256)."""
    n, _, _, c = images.shape
    counts = np.bincount(_lut_index(images, per_channel=True).ravel(), minlength=n * c * 256)
    return counts.reshape(n, c, 256)


# --- Pillow ImageEnhance ----------------------------------------------------------------------


def enhance_brightness(images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Blend with black (PIL ImageEnhance.Brightness): factor 0 is black, 1 the original, > 1 brighter."""
    return _point_op(images, _scaled(factor))


def _scaled(factor: np.ndarray):
    """Brightness as a ``direct`` point operation (see ``_point_op``)."""
    f = _per_sample(factor)
    return lambda x: _owned_to_uint8(np.multiply(x, f, dtype=np.float32))


def gray_mean(images: np.ndarray) -> np.ndarray:
    """The per-sample mean grey level Pillow's Contrast uses: the mean of convert("L"), rounded (N,)."""
    n, h, w, c = images.shape
    cv2 = cv2_or_none()
    if cv2 is not None and c == 3 and h * w * c >= _LUT_MIN_VALUES:
        total = ocv.luma_sums(cv2, images, _LUMA_WEIGHTS)
    else:
        total = _luma(images).reshape(n, h * w).sum(axis=1, dtype=np.int64)
    return _rounded_mean(total, h * w)


def _rounded_mean(total, pixels: int):
    return np.floor(total / float(pixels) + 0.5)


def enhance_contrast(images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Blend with the image's rounded mean grey level (PIL ImageEnhance.Contrast); factor >= 0."""
    return _point_op(images, _contrasted(gray_mean(images), factor))


def _contrasted(mean: np.ndarray, factor: np.ndarray):
    """Contrast about per-sample ``mean`` grey levels as a ``direct`` point operation: exactly
    ``_blend``'s float32 steps."""
    mean, f = _per_sample(mean), _per_sample(factor)

    def direct(x):
        out = np.subtract(x, mean, dtype=np.float32)
        out *= f
        out += mean
        return _owned_to_uint8(out)

    return direct


_RAMP = np.arange(256, dtype=np.float32)


def _contrast_table(mean: float, factor: float) -> np.ndarray:
    """One image's contrast table by ``_contrasted``'s very float32 steps (so the same bytes), on
    scalars: the per-image jitter loop paid more for ``_tables``' batch plumbing than for the LUT."""
    m = np.float32(mean)
    out = _RAMP - m
    out *= np.float32(factor)
    out += m
    return _owned_to_uint8(out)


def _tables(direct, n: int) -> np.ndarray:
    """A ``direct`` point operation on the 256 grey levels: uint8 (N, 256) tables, same bytes."""
    ramp = np.broadcast_to(np.arange(256, dtype=np.uint8).reshape(1, 1, 256, 1), (n, 1, 256, 1))
    return direct(ramp).reshape(n, 256)


def enhance_color(images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Saturation as PIL ImageEnhance.Color: blend with the luma image (0 gray, 1 original)."""
    if images.shape[-1] == 1:
        return images.copy()
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and images[0].size >= _LUT_MIN_VALUES:
        return ocv.blend_luma(cv2, images, np.asarray(factor, dtype=np.float64).reshape(-1), _LUMA_WEIGHTS)
    return _blend(_luma(images), images, factor)


def smooth(images: np.ndarray) -> np.ndarray:
    """Pillow's ImageFilter.SMOOTH (3x3 taps 1 with centre 5, /13, rounded); the 1-pixel border is
    copied unchanged, as Pillow does. Images smaller than 3x3 are returned as a copy (as Pillow)."""
    n, h, w, c = images.shape
    out = images.copy()
    if h < 3 or w < 3:
        return out
    x = images.astype(np.uint16)  # 13 * 255 fits in uint16
    acc = 4 * x[:, 1:-1, 1:-1]
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            acc += x[:, dy : h - 2 + dy, dx : w - 2 + dx]
    # rounded integer division; sums are never exactly halfway between multiples of 13
    out[:, 1:-1, 1:-1] = (acc + 6) // 13
    return out


def enhance_sharpness(images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Blend with the SMOOTH-filtered image (PIL ImageEnhance.Sharpness): 0 blurred, 1 original,
    > 1 sharpened; borders stay as they are because the filter keeps them."""
    return _blend(smooth(images), images, factor)


# --- Pillow ImageOps --------------------------------------------------------------------------


def invert(images: np.ndarray) -> np.ndarray:
    """``255 - x`` (ImageOps.invert)."""
    return 255 - images


def solarize(images: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Invert pixels ``>= threshold`` per sample (ImageOps.solarize); threshold in [0, 256] grey levels,
    0 inverts everything and 256 nothing."""
    # pixels are integers, so x < t  <=>  x < ceil(t); int16 keeps the comparison in small ints
    t = np.clip(np.ceil(np.asarray(threshold, dtype=np.float64)), 0, 256).astype(np.int16)
    return np.where(images < t.reshape(-1, 1, 1, 1), images, 255 - images)


def posterize(images: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Keep the ``bits`` most significant bits per sample (ImageOps.posterize); bits in [0, 8]."""
    b = np.clip(np.asarray(bits, dtype=np.int64), 0, 8)
    mask = ((0xFF << (8 - b)) & 0xFF).astype(np.uint8)
    return images & mask.reshape(-1, 1, 1, 1)


def equalize(images: np.ndarray) -> np.ndarray:
    """Histogram equalisation per sample and channel with ImageOps.equalize's table.

    Pillow's step is (pixel count - count of the brightest present value) // 255 and a zero step
    leaves the channel unchanged, so Pillow never equalises images of fewer than 256 pixels. Where
    that integer step is 0 but the channel is not constant, the exact fractional step is used
    instead, so small images (8x8 digits, 14x12 crops) are equalised too; elsewhere the table is
    Pillow's, bit for bit.
    """
    hist = channel_histograms(images)
    last = 255 - np.argmax(hist[..., ::-1] > 0, axis=-1)
    top = np.take_along_axis(hist, last[..., None], axis=-1)[..., 0]
    spread = (hist.sum(axis=-1) - top)[..., None]  # pixels darker than the brightest value
    step = spread // 255
    below = np.cumsum(hist, axis=-1) - hist  # pixels strictly darker than each value
    pillow = (step // 2 + below) // np.maximum(step, 1)
    # round(below * 255 / spread) in integers: the fractional-step table of small images
    fractional = (510 * below + spread) // np.maximum(2 * spread, 1)
    lut = np.where(step > 0, pillow, np.where(spread > 0, fractional, np.arange(256)))
    return apply_lut(images, np.minimum(lut, 255))


def autocontrast(images: np.ndarray) -> np.ndarray:
    """Stretch each sample's channel so its darkest value becomes 0 and brightest 255
    (ImageOps.autocontrast with cutoff 0; Pillow's truncating table, reproduced exactly)."""
    hist = channel_histograms(images)
    present = hist > 0
    lo = np.argmax(present, axis=-1)
    hi = 255 - np.argmax(present[..., ::-1], axis=-1)
    flat = hi <= lo
    # the table is tiny, so it is built in float64 with Pillow's exact expression ix*scale + offset
    scale = 255.0 / np.where(flat, 1, hi - lo)
    offset = -lo * scale
    lut = np.trunc(np.arange(256) * scale[..., None] + offset[..., None])
    lut = np.where(flat[..., None], np.arange(256), np.clip(lut, 0, 255))
    return apply_lut(images, lut.astype(np.uint8))


def grayscale(images: np.ndarray) -> np.ndarray:
    """Pillow's convert("L") luma, repeated over the C channels (C=1 images are returned as a copy)."""
    if images.shape[-1] == 1:
        return images.copy()
    return np.repeat(_luma(images), images.shape[-1], axis=-1)


# --- other point ops --------------------------------------------------------------------------


def adjust_gamma(images: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """``255 * (x / 255) ** gamma`` per sample (gamma > 0; < 1 brightens), via a per-sample LUT."""
    g = np.asarray(gamma, dtype=np.float64).reshape(-1, 1)
    # 256 entries per sample: float64 costs nothing here and makes the table exact
    lut = np.rint(255.0 * (np.arange(256) / 255.0) ** g)
    return apply_lut(images, np.clip(lut, 0, 255).astype(np.uint8))


# --- HSV --------------------------------------------------------------------------------------
# Hue is handled in sixths of the circle (h6 in [0, 6)) and chroma (max - min) is kept instead of
# saturation, so a hue shift never divides by the value. Work is done on contiguous channel planes:
# reductions and broadcasts over a length-3 last axis are several times slower in NumPy.


def rgb_to_hcv(images: np.ndarray):
    """Hue in sixths of the circle [0, 6), chroma (max - min) and value (max) in grey levels,
    each float32 (N, H, W), from uint8 RGB (N, H, W, 3). Gray pixels get hue 0, like colorsys."""
    r, g, b = np.ascontiguousarray(np.moveaxis(images, -1, 0), dtype=np.float32)
    value = np.maximum(np.maximum(r, g), b)
    chroma = value - np.minimum(np.minimum(r, g), b)
    # sector of the maximum channel; the nested wheres give colorsys's tie order (red, green, blue)
    is_r = value == r
    is_g = value == g
    h6 = np.where(is_r, g - b, np.where(is_g, b - r, r - g))
    h6 /= np.where(chroma > 0, chroma, np.float32(1.0))
    h6 += np.where(is_r, np.float32(0.0), np.where(is_g, np.float32(2.0), np.float32(4.0)))
    h6 += np.where(h6 < 0, np.float32(6.0), np.float32(0.0))
    return h6, chroma, value


def hcv_to_rgb(h6: np.ndarray, chroma: np.ndarray, value: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) from hue in sixths [0, 6), chroma and value in grey levels (float32)."""
    out = np.empty(value.shape + (3,), dtype=np.uint8)
    for channel, phase in enumerate((5.0, 3.0, 1.0)):
        k = h6 + np.float32(phase)
        k -= np.where(k >= 6.0, np.float32(6.0), np.float32(0.0))
        # the channel's drop from the value: 0 near its own hue, the full chroma opposite it
        ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
        ramp *= chroma
        out[..., channel] = _owned_to_uint8(np.subtract(value, ramp, out=ramp))
    return out


def adjust_hue(images: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Rotate hue by ``shift`` per sample, as a fraction of the colour circle (0.5 = 180 degrees);
    HSV saturation and value are kept. Gray images are returned as a copy."""
    if images.shape[-1] == 1:
        return images.copy()
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and images[0].size >= _LUT_MIN_VALUES:
        return ocv.hsv_adjust(cv2, images, shift=np.asarray(shift, dtype=np.float64).reshape(-1))
    h6, chroma, value = rgb_to_hcv(images)
    h6 += (np.asarray(shift, dtype=np.float32) * 6.0).reshape(-1, 1, 1)
    return hcv_to_rgb(np.mod(h6, np.float32(6.0), out=h6), chroma, value)


def adjust_saturation(images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Scale HSV saturation by ``factor`` per sample (clipped to full saturation), keeping hue and
    value; 0 gives gray at each pixel's max channel. Gray images are returned as a copy."""
    if images.shape[-1] == 1:
        return images.copy()
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and images[0].size >= _LUT_MIN_VALUES:
        return ocv.hsv_adjust(cv2, images, factor=np.asarray(factor, dtype=np.float64).reshape(-1))
    h6, chroma, value = rgb_to_hcv(images)
    # S' = min(S * f, 1) with S = chroma / value, so chroma' = min(chroma * f, value)
    chroma *= np.asarray(factor, dtype=np.float32).reshape(-1, 1, 1)
    return hcv_to_rgb(h6, np.minimum(chroma, value, out=chroma), value)


# --- colour jitter ----------------------------------------------------------------------------
# torchvision's four ops, in the index order ColorJitter's ``order`` permutations refer to
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


# Y of YIQ is the 601-2 luma; turning the (I, Q) plane about it changes hue and keeps luma.
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = np.linalg.inv(_YIQ)


def hue_rotations(shift: np.ndarray) -> np.ndarray:
    """(N, 3, 3) RGB matrices turning hue by ``shift`` (fraction of the circle) about the grey axis
    in YIQ: luma is kept exactly and grey stays grey. The sign follows HSV's (red towards green)."""
    angle = -2.0 * np.pi * np.asarray(shift, dtype=np.float64).reshape(-1)
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.zeros((angle.size, 3, 3))
    turn[:, 0, 0] = 1.0
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    return _YIQ_INV @ turn @ _YIQ


def jitter_matrices(means: np.ndarray, factors: dict, order: np.ndarray):
    """The affine colour map ``y = A x + t`` of ``color_jitter``'s four ops composed in each
    sample's order, with no rounding or clipping between them: (A (N, C, C), t (N, C)), float64.

    ``means`` (N, C) are the input's channel means: the mean grey that contrast blends towards is
    the luma of the mean colour as the earlier ops left it, which an affine map carries exactly.
    Saturation blends with the luma image (Pillow's Color) and hue turns about the grey axis; on gray
    images (C = 1) both are the identity.
    """
    n, c = means.shape
    luma = _YIQ[0] if c == 3 else np.ones(1)
    eye = np.broadcast_to(np.eye(c), (n, c, c))
    f = {k: np.asarray(factors[k], dtype=np.float64).reshape(-1, 1, 1) for k in JITTER_OPS}
    steps = (f["brightness"] * eye,  # brightness, contrast: scale about 0 and about the mean grey
             f["contrast"] * eye,
             f["saturation"] * eye + (1.0 - f["saturation"]) * luma,  # rows: s x + (1 - s) L
             hue_rotations(factors["hue"]) if c == 3 else eye)
    steps = np.stack(steps, axis=1)  # (N, 4, C, C): each sample's four maps, picked by ``order`` below
    a, t = np.array(eye), np.zeros((n, c))
    rows = np.arange(n)
    for position in range(order.shape[1]):
        op = order[:, position]
        m = steps[rows, op]
        grey = np.einsum("c,nc->n", luma, np.einsum("nij,nj->ni", a, means) + t)
        shift = np.where(op == 1, (1.0 - f["contrast"].reshape(-1)) * grey, 0.0)
        a = m @ a
        t = np.einsum("nij,nj->ni", m, t) + shift[:, None]
    return a, t


def color_matrix(images: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``rint(A x + t)`` clipped to uint8, per pixel and sample (A (N, C, C), t (N, C)); one pass.
    Gray images map through a 256-entry table; RGB through float32 (cv2.transform per image)."""
    n, h, w, c = images.shape
    if c == 1:
        ramp = np.arange(256, dtype=np.float64)
        return apply_lut(images, np.clip(np.rint(a[:, 0, 0, None] * ramp + t), 0, 255).astype(np.uint8))
    cv2 = cv2_or_none()
    if cv2 is not None and n and h * w * c >= _LUT_MIN_VALUES:
        return ocv.color_matrix(cv2, images, np.concatenate([a, t[:, :, None]], axis=2))
    out = np.einsum("nhwc,ndc->nhwd", images.astype(np.float32), a.astype(np.float32))
    out += t.astype(np.float32)[:, None, None, :]
    return _owned_to_uint8(out)


def channel_means(images: np.ndarray) -> np.ndarray:
    """(N, C) float64 mean of each channel per sample."""
    cv2 = cv2_or_none()
    n, h, w, c = images.shape
    if cv2 is not None and n and h * w * c >= _LUT_MIN_VALUES:
        return ocv.channel_means(cv2, images)
    return images.reshape(n, h * w, c).mean(axis=1, dtype=np.float64)


def color_jitter_matrix(images: np.ndarray, factors: dict, order: np.ndarray) -> np.ndarray:
    """``color_jitter`` as one colour matrix per sample (``jitter_matrices``), rounded once."""
    a, t = jitter_matrices(channel_means(images), factors, order)
    return color_matrix(images, a, t)


def color_jitter(images: np.ndarray, factors: dict, order: np.ndarray) -> np.ndarray:
    """Brightness, contrast and saturation factors and hue shifts (``factors[name]``, (N,) each)
    applied in each sample's own order (``order`` (N, 4): indices into ``JITTER_OPS``), one op
    after the other as torchvision does: rounded and clipped after each, hue through HSV.

    On the OpenCV backend, large RGB images run image by image, the four ops in place on one copy
    (``_jitter_each``); else position by position, each op batched over the samples that have it
    there. Both give the bytes of the separate kernels called in that order.
    """
    n, h, w, c = images.shape
    cv2 = cv2_or_none()
    if cv2 is not None and n and c == 3 and h * w * c >= _LUT_MIN_VALUES:
        return _jitter_each(cv2, images, factors, order)
    kernels = (enhance_brightness, enhance_contrast, enhance_color, adjust_hue)
    out = images.copy()
    for position in range(order.shape[1]):
        for op, (name, kernel) in enumerate(zip(JITTER_OPS, kernels)):
            idx = np.flatnonzero(order[:, position] == op)
            if idx.size:
                out[idx] = kernel(out[idx], factors[name][idx])
    return out


def _jitter_each(cv2, images: np.ndarray, factors: dict, order: np.ndarray) -> np.ndarray:
    """``color_jitter`` one image at a time: no gathers or scatters of sample subsets, every op
    overwrites the image it reads (tables through ``ocv.lut_one``, colour spaces through one
    ``ocv.ColourScratch``). Contrast reads the mean grey of the image as the earlier ops left it."""
    n, h, w, _ = images.shape
    out = np.array(images, order="C")
    scratch = ocv.ColourScratch(cv2, (h, w), _LUMA_WEIGHTS)
    brighten = _tables(_scaled(factors["brightness"]), n)
    contrast, saturation, hue = (np.asarray(factors[k], dtype=np.float64).reshape(-1) for k in JITTER_OPS[1:])
    for i in range(n):
        img = out[i]
        for op in order[i].tolist():
            if op == 0:
                ocv.lut_one(cv2, img, brighten[i], img)
            elif op == 1:
                mean = _rounded_mean(scratch.luma_sum(img), h * w)
                ocv.lut_one(cv2, img, _contrast_table(mean, contrast[i]), img)
            elif op == 2:
                scratch.blend_luma(img, saturation[i], img)
            else:
                scratch.hsv(img, hue[i], None, img)
    return out


def channel_shuffle(images: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Reorder channels per sample: output channel i is input channel ``permutation[n, i]``
    (permutation (N, C) of 0..C-1). Gray images are returned as a copy."""
    if images.shape[-1] == 1:
        return images.copy()
    perm = np.asarray(permutation, dtype=np.intp).reshape(images.shape[0], 1, 1, -1)
    return np.take_along_axis(images, perm, axis=-1)
