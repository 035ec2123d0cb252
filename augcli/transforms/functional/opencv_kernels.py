"""The OpenCV ("opencv" backend) versions of the batched kernels: one compiled call per image.

Conventions are those of the NumPy kernels: pixel centres at integer coordinates, warp matrices map
OUTPUT to INPUT pixels, borders "constant" (one grey level on every channel), "edge"
(BORDER_REPLICATE) and "reflect" (mirror about the edge pixel: BORDER_REFLECT_101). Filters use
scipy's 'reflect' (the edge pixel repeated: BORDER_REFLECT). OpenCV >= 5 interpolates in float32
like the NumPy kernels, in another order, so results may differ from NumPy's by one grey level.
Only bilinear warps come here: nearest-neighbour sampling stays a NumPy gather, which is already
cheap and rounds exact halves the same way as the NumPy backend (OpenCV's remap rounds to even).
"""

from __future__ import annotations

import numpy as np

try:  # byte tables applied with SIMD shuffles: ~20x faster than cv2.LUT on photos, the same bytes
    from stringzilla import translate as _translate
except ImportError:  # pragma: no cover - a declared dependency; cv2.LUT then does the same work
    _translate = None

_MAX_SIDE = 32767  # cv2.remap requires every side of source and result to be below SHRT_MAX
# RGB warps, and gray ones with at least this many output pixels per image, call cv2.warpAffine &
# co. on each image; smaller gray ones are cheaper as one cv2.remap over a block of stacked images.
_DIRECT_PIXELS = 96 * 96
# Stacked tiles: coordinates are rounded to 1/16384 pixel (an error of at most 0.008 grey levels)
# by adding and subtracting 1.5 * 2**9, which is exact while |coordinate| < 256 (sides up to
# _TILE_SIDE); with at most _STACK_ROWS rows per cv2.remap call the tile offsets then add exactly.
_STACK_ROWS = 1020
_TILE_SIDE = 200
_ROUNDER = np.float32(768.0)


def direct(shape: tuple, out_hw: tuple, interpolation: str) -> bool:
    """Whether a warp runs image by image in OpenCV (else, if bilinear, as stacked tiles):
    bilinear, every side below SHRT_MAX, and RGB, large, or a side too long for the tiles."""
    sides = (shape[1], shape[2], out_hw[0], out_hw[1])
    if interpolation != "bilinear" or shape[0] == 0 or min(sides) == 0 or max(sides) >= _MAX_SIDE:
        return False
    return shape[3] > 1 or out_hw[0] * out_hw[1] >= _DIRECT_PIXELS or max(sides) > _TILE_SIDE


def remap_tiles(cv2, src: np.ndarray, lead: int, ys: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """Bilinear sampling of many small images with one cv2.remap over their stacked sources.

    src: uint8 (n, Hp, Wp, Cs) sources already framed for the border (pixel (0, 0) of image i at
    row ``i * Hp + lead``, column ``lead``); ys, xs: (n, H', W') coordinates already folded into
    that frame, so every tap with a non-zero weight lies inside the image's own tile. They are
    rounded to 1/16384 pixel first, so adding the tile offsets is exact and no image's result
    depends on where in the stack it sits (batch invariance). Writes ``out`` (n, H', W', C).
    """
    n, hp, wp, cs = src.shape
    c = out.shape[3]
    per = max(1, (_STACK_ROWS - 2) // hp)  # tiles per remap call
    for a in range(0, n, per):
        b = min(a + per, n)
        # (v + R) rounds v to the grid; subtracting (R - offset) then adds the offset exactly
        y = np.add(ys[a:b], _ROUNDER, dtype=np.float32)
        y -= (_ROUNDER - (np.arange(b - a, dtype=np.float32) * hp + lead)).reshape(-1, 1, 1)
        x = np.add(xs[a:b], _ROUNDER, dtype=np.float32)
        x -= _ROUNDER - np.float32(lead)
        stack = src[a:b].reshape((b - a) * hp, wp, cs)
        shape = ((b - a) * out.shape[1], out.shape[2])
        dst = out[a:b].reshape(shape + (c,)) if cs == c else np.empty(shape + (cs,), np.uint8)
        cv2.remap(stack if cs > 1 else stack[..., 0], x.reshape(shape), y.reshape(shape), cv2.INTER_LINEAR,
                  dst=dst if cs > 1 else dst[..., 0], borderMode=cv2.BORDER_REPLICATE)
        if cs != c:  # RGB went through 4-byte pixels (OpenCV's faster 4-channel path)
            out[a:b] = dst[..., :c].reshape(out[a:b].shape)


def _border(cv2, border: str) -> int:
    return {"constant": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}[border]


def _per_image(cv2, images: np.ndarray, out: np.ndarray, call) -> np.ndarray:
    """Run ``call(i, src, dst)`` for every image with cv2-ready planes; returns ``out``.

    RGB goes through a 4-channel scratch pair: OpenCV's warps have a vector path for 4 channels
    that runs about twice as fast as the 3-channel one, and every channel is interpolated alike.
    """
    n, c = images.shape[0], images.shape[3]
    images = np.ascontiguousarray(images)
    if c == 1:
        for i in range(n):
            call(i, images[i, ..., 0], out[i, ..., 0])
        return out
    src4 = np.empty(images.shape[1:3] + (4,), np.uint8)
    dst4 = np.empty(out.shape[1:3] + (4,), np.uint8)
    for i in range(n):
        cv2.cvtColor(images[i], cv2.COLOR_RGB2RGBA, dst=src4)
        call(i, src4, dst4)
        cv2.cvtColor(dst4, cv2.COLOR_RGBA2RGB, dst=out[i])
    return out


def warp(cv2, images, matrices, out_hw, projective: bool, border: str, fill: int) -> np.ndarray:
    """Bilinear ``warp_homography``: matrices (N, 3, 3) float64 map OUTPUT to INPUT pixels."""
    out = np.empty((images.shape[0], out_hw[0], out_hw[1], images.shape[3]), np.uint8)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    mode, value = _border(cv2, border), (float(fill),) * 4
    size = (int(out_hw[1]), int(out_hw[0]))
    fn = cv2.warpPerspective if projective else cv2.warpAffine
    mats = np.ascontiguousarray(matrices if projective else matrices[:, :2], dtype=np.float64)

    def call(i, src, dst):
        fn(src, mats[i], size, dst=dst, flags=flags, borderMode=mode, borderValue=value)

    return _per_image(cv2, images, out, call)


def remap(cv2, images, ys, xs, out_hw, border: str, fill: int) -> np.ndarray:
    """Bilinear ``remap``: ys, xs float32 broadcastable to (N, H', W') source coordinates."""
    n = images.shape[0]
    out = np.empty((n, out_hw[0], out_hw[1], images.shape[3]), np.uint8)
    mode, value = _border(cv2, border), (float(fill),) * 4
    # cv2 wants full, contiguous float32 maps: two buffers, refilled per image
    map_x = np.empty(out_hw, np.float32)
    map_y = np.empty(out_hw, np.float32)

    def call(i, src, dst):
        np.copyto(map_x, xs[i if xs.shape[0] == n else 0])
        np.copyto(map_y, ys[i if ys.shape[0] == n else 0])
        cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, dst=dst, borderMode=mode, borderValue=value)

    return _per_image(cv2, images, out, call)


def hflip(cv2, images: np.ndarray) -> np.ndarray:
    """Mirror left-right (exact) with ONE cv2.flip: the batch seen as a single image of N*H rows,
    each row reversed, is every image reversed."""
    n, h, w, c = images.shape
    out = np.empty_like(images)
    shape = (n * h, w, c) if c > 1 else (n * h, w)
    cv2.flip(np.ascontiguousarray(images).reshape(shape), 1, dst=out.reshape(shape))
    return out


def vflip(cv2, images: np.ndarray) -> np.ndarray:
    """Mirror top-bottom, one cv2.flip per image (exact)."""
    out = np.empty_like(images)
    for _, src, dst in _each(images, out):
        cv2.flip(src, 0, dst=dst)
    return out


def lut(cv2, images: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Map sample i through its table: ``tables`` uint8 (N, 256) or per channel (N, C, 256)."""
    n, c = images.shape[0], images.shape[3]
    tables = np.asarray(tables, dtype=np.uint8)
    out = np.empty_like(images)
    src = np.ascontiguousarray(images)
    if tables.ndim == 2:
        for i in range(n):
            lut_one(cv2, src[i], tables[i], out[i])
        return out
    tables = np.ascontiguousarray(tables.transpose(0, 2, 1)).reshape(n, 1, 256, c)  # cv2: channels last
    for i in range(n):
        if c == 1:
            cv2.LUT(src[i, ..., 0], tables[i].reshape(-1), dst=out[i, ..., 0])
        else:
            cv2.LUT(src[i], tables[i], dst=out[i])
    return out


def lut_one(cv2, src: np.ndarray, table: np.ndarray, dst: np.ndarray) -> None:
    """``dst = table[src]`` for one uint8 image and a 256-entry uint8 table (every channel alike);
    ``dst`` may be ``src``. The byte-string path needs both contiguous (flat views of them)."""
    if _translate is not None and src.flags.c_contiguous and dst.flags.c_contiguous:
        _translate(memoryview(src.reshape(-1)), memoryview(np.ascontiguousarray(table)), out=memoryview(dst.reshape(-1)))
    elif src.ndim == 3 and src.shape[2] == 1:
        cv2.LUT(src[..., 0], table, dst=dst[..., 0])
    else:
        cv2.LUT(src, table, dst=dst)


def luma_sums(cv2, images: np.ndarray, weights) -> np.ndarray:
    """Per-sample sums of Pillow's luma ``(w . rgb + 32768) >> 16`` over RGB images, exactly
    (``ColourScratch.luma_sum`` per image); ``weights`` are the 16.16 fixed-point weights."""
    scratch = ColourScratch(cv2, images.shape[1:3], weights)
    return np.array([scratch.luma_sum(img) for img in np.ascontiguousarray(images)], np.int64)


def add_scaled(cv2, images: np.ndarray, strength: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``images + strength[i] * field`` rounded (half to even) and saturated to uint8, one
    cv2.addWeighted per image; field float32 (N, H, W, C), or (N, H, W, 1) shared by the channels."""
    out = np.empty_like(images)
    src = np.ascontiguousarray(images)
    field = np.ascontiguousarray(field)
    shared = field.shape[3] != images.shape[3]
    wide = np.empty(images.shape[1:], np.float32) if shared else None
    for i in range(images.shape[0]):
        f = cv2.cvtColor(field[i], cv2.COLOR_GRAY2RGB, dst=wide) if shared else field[i]
        cv2.addWeighted(src[i], 1.0, f, float(strength[i]), 0.0, dst=out[i], dtype=cv2.CV_8U)
    return out


def separable_filter(cv2, images: np.ndarray, rows) -> np.ndarray:
    """Correlate image i with ``rows[i]`` (odd-length float32 taps) along y, then x; scipy's
    'reflect' border (BORDER_REFLECT); rounded and saturated to uint8 by OpenCV."""
    out = np.empty_like(images)
    src = np.ascontiguousarray(images)
    for i, taps in enumerate(rows):
        k = np.ascontiguousarray(taps, dtype=np.float32)
        if images.shape[3] == 1:
            cv2.sepFilter2D(src[i, ..., 0], cv2.CV_8U, k, k, dst=out[i, ..., 0], borderType=cv2.BORDER_REFLECT)
        else:
            cv2.sepFilter2D(src[i], cv2.CV_8U, k, k, dst=out[i], borderType=cv2.BORDER_REFLECT)
    return out


def add_constant(cv2, images: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``images[i] + values[i]`` with uint8 saturation, one cv2 call per image; values (N,) whole numbers.

    A negative value is a cv2.subtract of its magnitude: OpenCV 5 adds negative scalars to uint8
    images through a slow generic path (60x slower on 256x256 RGB); both saturate alike.
    """
    out = np.empty_like(images)
    src = np.ascontiguousarray(images)
    for i, v in enumerate(np.asarray(values, dtype=np.float64).tolist()):
        op, m = (cv2.add, v) if v >= 0 else (cv2.subtract, -v)
        if images.shape[3] == 1:
            op(src[i, ..., 0], m, dst=out[i, ..., 0])
        else:
            op(src[i], (m, m, m, 0.0), dst=out[i])
    return out


def jpeg(cv2, images: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Every image re-encoded as JPEG in memory at ``quality[i]`` and decoded, by OpenCV's codec
    (libjpeg-turbo with Pillow's defaults: 4:2:0 chroma for RGB, islow DCT, fancy upsampling; the
    bytes equal Pillow's, tests/test_noise_blur_erase.py checks it), about 1.4x faster than Pillow."""
    out = np.empty_like(images)
    gray = images.shape[3] == 1
    bgr = None if gray else np.empty(images.shape[1:], np.uint8)
    for i, src, dst in _each(images, out):
        if not gray:  # OpenCV's codec reads and writes BGR
            src = cv2.cvtColor(src, cv2.COLOR_RGB2BGR, dst=bgr)
        ok, data = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
        if not ok:  # pragma: no cover - in-memory encoding of a valid uint8 image does not fail
            raise RuntimeError("OpenCV could not encode a JPEG")
        if gray:
            dst[...] = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        else:
            cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB, dst=dst)
    return out


def _each(images: np.ndarray, out: np.ndarray):
    """(i, source, destination) per image, as 2-D planes for one channel (cv2's layout)."""
    src = np.ascontiguousarray(images)
    for i in range(images.shape[0]):
        if images.shape[3] == 1:
            yield i, src[i, ..., 0], out[i, ..., 0]
        else:
            yield i, src[i], out[i]


def median(cv2, images: np.ndarray, k: int) -> np.ndarray:
    """k x k median with scipy's 'reflect' border (exact). For k = 3 that border (one pixel, the
    edge pixel itself) is cv2.medianBlur's own BORDER_REPLICATE, so it runs on the image as is;
    larger k pad by mirroring first (the medians' own border handling then never reaches the kept
    pixels). Scratch buffers are reused: fresh ones per image made k = 3 four times slower.
    (Recomputing only the frame near the edges from small mirrored strips measured 4x slower
    for k = 5: OpenCV's 5x5 median of RGB has a costly start per strip.)"""
    r = k // 2
    out = np.empty_like(images)
    if r == 1:
        for _, src, dst in _each(images, out):
            cv2.medianBlur(src, 3, dst=dst)
        return out
    padded = result = None
    for _, src, dst in _each(images, out):
        padded = cv2.copyMakeBorder(src, r, r, r, r, cv2.BORDER_REFLECT, dst=padded)
        result = cv2.medianBlur(padded, k, dst=result)
        dst[...] = result[r:-r, r:-r].reshape(dst.shape)
    return out


def filter_2d(cv2, images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Correlate image i with the odd square float32 ``kernels[i]``; 'reflect' border, uint8 out."""
    out = np.empty_like(images)
    for i, src, dst in _each(images, out):
        k = np.ascontiguousarray(kernels[i], dtype=np.float32)
        cv2.filter2D(src, -1, k, dst=dst, borderType=cv2.BORDER_REFLECT)
    return out


def rot90(cv2, images: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Image i turned by ``k[i]`` quarter turns counter-clockwise (k in 0..3), one cv2 call each."""
    codes = (None, cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE)
    out = np.empty_like(images)
    for i, src, dst in _each(images, out):
        if codes[k[i]] is None:
            dst[...] = src
        else:
            cv2.rotate(src, codes[k[i]], dst=dst)
    return out


class ColourScratch:
    """Float32 scratch planes for the per-image colour-space kernels of one image size (RGB),
    allocated once per batch: the kernels below then run on one image at a time, and may write
    their result over their source (``dst`` is ``src``)."""

    def __init__(self, cv2, hw: tuple, weights):
        h, w = int(hw[0]), int(hw[1])
        self.cv2 = cv2
        # in float32 every term w_k * x / 65536 and every partial sum is a multiple of 2**-16 below
        # 256 (24 significant bits), so cv2.transform computes ``y + 0.5`` without rounding and its
        # floor is Pillow's integer luma
        self.luma_matrix = np.array([[weights[0] / 65536.0, weights[1] / 65536.0, weights[2] / 65536.0, 0.5]],
                                    np.float32)
        self.rgb = np.empty((h, w, 3), np.float32)
        self.plane = np.empty((h, w), np.float32)
        self.wide = np.empty((h, w, 3), np.float32)
        self.gray = np.empty((h, w), np.uint8)
        self.gray3 = np.empty((h, w, 3), np.uint8)

    def _luma(self, src: np.ndarray) -> np.ndarray:
        """Pillow's integer luma of ``src`` (float32 (H, W), in ``self.plane``); ``self.rgb`` holds src."""
        np.copyto(self.rgb, src, casting="unsafe")
        self.cv2.transform(self.rgb, self.luma_matrix, dst=self.plane)
        return np.floor(self.plane, out=self.plane)

    def luma_sum(self, src: np.ndarray) -> int:
        return int(self.cv2.sumElems(self._luma(src))[0])  # summed in double: exact

    def blend_luma(self, src: np.ndarray, factor: float, dst: np.ndarray) -> None:
        """``L + factor * (x - L)`` with L the exact luma, rounded (half to even) and saturated.

        L is a whole number in [0, 255], so it is held as uint8 and the blend runs as one uint8
        cv2.addWeighted ``factor * x + (1 - factor) * L``: half the cost of blending the float
        copies. The two forms differ by float rounding only (~1e-5 of a grey level), so at most
        a value within that of a half rounds the other way.
        """
        cv2 = self.cv2
        cv2.convertScaleAbs(self._luma(src), dst=self.gray)  # whole numbers: an exact conversion
        cv2.cvtColor(self.gray, cv2.COLOR_GRAY2RGB, dst=self.gray3)
        cv2.addWeighted(src, float(factor), self.gray3, 1.0 - float(factor), 0.0, dst=dst)

    def hsv(self, src: np.ndarray, shift, factor, dst: np.ndarray) -> None:
        """Through OpenCV's float HSV: hue turned by ``shift`` (fraction of the circle) and/or
        saturation scaled by ``factor`` (capped at 1), either None to skip; value kept."""
        cv2, rgb, hsv = self.cv2, self.rgb, self.wide
        np.copyto(rgb, src, casting="unsafe")
        cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV, dst=hsv)  # H in degrees, S in [0, 1], V = max(R, G, B)
        if shift is not None:  # a turn in [0, 360): the inverse conversion wraps hues up to 720
            cv2.add(hsv, (float(np.mod(360.0 * shift, 360.0)), 0.0, 0.0, 0.0), dst=hsv)
        if factor is not None:
            cv2.multiply(hsv, (1.0, float(factor), 1.0, 1.0), dst=hsv)
            cv2.min(hsv, (1e9, 1.0, 1e9, 1e9), dst=hsv)
        cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=rgb)
        cv2.convertScaleAbs(rgb, dst=dst)  # values are >= 0: this is round-and-saturate


def color_matrix(cv2, images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """RGB image i through the 3x4 affine colour map ``matrices[i]``, rounded and saturated.
    It runs in float32: cv2.transform's uint8 path rounds its coefficients to fixed point, which
    put ~5 % of values one grey level off the exact map."""
    out = np.empty_like(images)
    rgb = np.empty(images.shape[1:], np.float32)
    mapped = np.empty(images.shape[1:], np.float32)
    for i, src, dst in _each(images, out):
        np.copyto(rgb, src, casting="unsafe")
        cv2.transform(rgb, matrices[i].astype(np.float32), dst=mapped)
        cv2.max(mapped, 0.0, dst=mapped)  # convertScaleAbs takes |x|: negatives must be 0 first
        cv2.convertScaleAbs(mapped, dst=dst)
    return out


def channel_means(cv2, images: np.ndarray) -> np.ndarray:
    """(N, C) float64 channel means, one cv2.mean per image."""
    c = images.shape[3]
    return np.array([cv2.mean(src)[:c] for _, src, _ in _each(images, images)], dtype=np.float64).reshape(-1, c)


def blend_luma(cv2, images: np.ndarray, factor: np.ndarray, weights) -> np.ndarray:
    """RGB image i blended with its exact Pillow luma: ``L + factor[i] * (x - L)`` (see ColourScratch)."""
    scratch = ColourScratch(cv2, images.shape[1:3], weights)
    out = np.empty_like(images)
    for i, src, dst in _each(images, out):
        scratch.blend_luma(src, factor[i], dst)
    return out


def hsv_adjust(cv2, images: np.ndarray, shift=None, factor=None) -> np.ndarray:
    """RGB images through OpenCV's float HSV: hue turned by ``shift[i]`` (fraction of the circle)
    and/or saturation scaled by ``factor[i]`` (capped at 1); value kept. Rounded half to even."""
    scratch = ColourScratch(cv2, images.shape[1:3], (0, 0, 0))
    out = np.empty_like(images)
    for i, src, dst in _each(images, out):
        scratch.hsv(src, None if shift is None else shift[i], None if factor is None else factor[i], dst)
    return out


def gaussian_smooth(cv2, fields: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Gaussian smoothing of float32 (N, H, W, K) fields over H and W (``sigma`` pixels, taps to
    ``radius``), scipy's 'reflect' border; float32 out (the same kernel as scipy, summed by OpenCV)."""
    out = np.empty_like(fields)
    size = (2 * radius + 1, 2 * radius + 1)
    for i in range(fields.shape[0]):
        src, dst = (fields[i, ..., 0], out[i, ..., 0]) if fields.shape[3] == 1 else (fields[i], out[i])
        cv2.GaussianBlur(np.ascontiguousarray(src), size, sigma, dst=dst, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    return out
