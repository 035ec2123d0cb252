"""Pure batched geometric kernels on uint8 (N, H, W, C) arrays; they never edit their input.

Coordinates: x is the column, y the row, and pixel centres sit at integer coordinates ((0, 0) is
the centre of the top-left pixel, the image spans [-0.5, W - 0.5]). Matrices are 3x3 homogeneous
and act on column vectors (x, y, 1). With the NumPy backend every warp ends in one batched gather.
With the OpenCV backend (see ``backend``) bilinear warps are cv2.warpAffine / warpPerspective /
remap calls with the same coordinates and border modes: one per image, or for small gray images
one cv2.remap over a stack of them; nearest-neighbour sampling stays a NumPy gather.
"""

from __future__ import annotations

import numpy as np

from augcli.transforms.functional import opencv_kernels as ocv
from augcli.backend import cv2_or_none
from augcli.transforms.functional.matrices import (  # noqa: F401  (part of this module's API)
    affine_matrix,
    homography_from_points,
    perspective_matrix,
    rotation_matrix,
    scale_matrix,
    shear_matrix,
    translate_matrix,
)

INTERPOLATIONS = ("bilinear", "nearest")
BORDERS = ("constant", "edge", "reflect")
# Warps run over blocks of samples of about this many output pixels: the temporaries then stay in
# cache and in malloc's reuse range (3x faster than one pass over a 16x256x256 batch).
_BLOCK_PIXELS = 1 << 16


def hflip(images: np.ndarray) -> np.ndarray:
    """Mirror left-right (contiguous copy: a reversed-stride view is slow to consume later)."""
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[0] and images.shape[2]:
        return ocv.hflip(cv2, images)
    if images.shape[3] == 3 and images.flags.c_contiguous:
        # reversing whole 3-byte pixels copies ~2.5x faster than reversing a strided uint8 axis
        pixels = images.view(np.dtype((np.void, 3)))
        return np.ascontiguousarray(pixels[:, :, ::-1]).view(np.uint8)
    return np.ascontiguousarray(images[:, :, ::-1])


def vflip(images: np.ndarray) -> np.ndarray:
    """Mirror top-bottom (one cv2.flip per image on the OpenCV backend: measured faster in a
    pipeline than NumPy's one reversed-row copy of the batch)."""
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[3] == 3 and images.shape[0]:
        return ocv.vflip(cv2, images)
    return np.ascontiguousarray(images[:, ::-1])


def rot90(images: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Rotate sample i by ``k[i]`` quarter turns counter-clockwise (as ``np.rot90``).

    The batch is split into the four groups of equal k, one ``np.rot90`` per group. Non-square
    images accept only even k (odd k would change the shape).
    """
    k = np.mod(np.asarray(k, dtype=np.int64), 4)
    if images.shape[1] != images.shape[2] and np.any(k % 2):
        raise ValueError("odd quarter turns of non-square images would change their shape")
    cv2 = cv2_or_none()
    if cv2 is not None and images.shape[3] == 3 and images.shape[0]:
        return ocv.rot90(cv2, images, k)  # exact: the same bytes as np.rot90
    out = np.empty_like(images)
    for quarter in range(4):
        idx = np.flatnonzero(k == quarter)
        if idx.size:
            out[idx] = np.rot90(images[idx], quarter, axes=(1, 2))
    return out


# --- the sampling kernel ----------------------------------------------------------------------
def _fold(v: np.ndarray, n: int, border: str) -> np.ndarray:
    """Bring float source coordinates (one axis of length ``n``) into the range the source covers.

    ``constant`` clamps to [-1, n] (the source carries a frame of fill there, and anything further
    out reads the same fill); ``edge`` clamps to [0, n - 1]; ``reflect`` first mirrors about the
    edge pixels (d c b | a b c d | c b a, as ``np.pad(mode="reflect")``). Folding the continuous
    coordinate equals mirroring the image, since the bilinear interpolant is mirror-symmetric too.
    Always returns a new array (callers then work in place on it).
    """
    if border == "constant":
        return np.clip(v, -1, n)
    if border == "reflect" and n > 1:
        m = n - 1
        if v.size and (v.min() < -m or v.max() > 2 * m):  # rare: more than one mirror image away
            v = np.mod(v, 2 * m)
        v = np.abs(v)  # then the triangle wave m - |m - |v|| folds [-m, 2m] onto [0, m]
        np.subtract(m, v, out=v)
        np.abs(v, out=v)
        np.subtract(m, v, out=v)
        return np.clip(v, 0, m, out=v)
    return np.clip(v, 0, n - 1)


def _source(images: np.ndarray, border: str, fill: int, pack: bool) -> tuple[np.ndarray, int]:
    """The padded source and the flat offset of pixel (0, 0) in each image.

    A pixel's right and lower neighbours always exist (an extra column/row, only ever read with
    weight 0), so the four bilinear taps are the flat index plus 0, 1, W and W + 1. With ``pack``,
    RGB gets a fourth byte so one uint32 gather fetches a whole pixel (4-byte items gather several
    times faster than 3-byte rows).
    """
    n, h, w, c = images.shape
    cs = 4 if c == 3 and pack else c
    lead = 1 if border == "constant" else 0
    src = np.empty((n, h + lead + 1 + lead, w + lead + 1 + lead, cs), np.uint8)
    if border == "constant":
        src[...] = int(fill)
        src[:, 1 : h + 1, 1 : w + 1, :c] = images
    else:
        src[:, :h, :w, :c] = images
        src[:, h, :w] = src[:, h - 1, :w]
        src[:, :, w] = src[:, :, w - 1]
        if cs > c:
            src[..., c:] = 0
    return src, lead * (src.shape[2] + 1)


def _gather(flat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pixels at flat indices ``idx`` of a packed source as uint8 (..., 1 or 4) (one gather)."""
    return np.take(flat, idx).view(np.uint8).reshape(idx.shape + (-1,))


def _blocks(n: int, pixels: int, stacked: bool = False) -> list[tuple[int, int]]:
    """Sample ranges of about ``_BLOCK_PIXELS`` output pixels each (at least one sample); four
    times that for OpenCV's stacked tiles, whose fewer passes favour fewer, larger blocks."""
    step = max(1, (_BLOCK_PIXELS << (2 if stacked else 0)) // max(pixels, 1))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def remap(
    images: np.ndarray, ys, xs, interpolation: str = "bilinear", border: str = "constant", fill: int = 0
) -> np.ndarray:
    """Sample every image at source coordinates: ``out[n, i, j] = images[n] at (ys[n, i, j], xs[n, i, j])``.

    ys, xs: float source row/column coordinates (pixel centres at integers), broadcastable to
    (N, H', W') - e.g. (N, H', 1) and (N, 1, W') for separable maps; a leading 1 shares them.
    interpolation: "bilinear" (4 neighbours, float32 weights) or "nearest" (round half up).
    border: "constant" (``fill``, a grey level 0..255 on every channel), "edge" or "reflect".
    Returns uint8 (N, H', W', C).
    """
    _check(interpolation, border)
    n, c = images.shape[0], images.shape[3]
    ys = np.asarray(ys, dtype=np.float32)
    xs = np.asarray(xs, dtype=np.float32)
    out_hw = np.broadcast_shapes(ys.shape, xs.shape)[1:]
    cv2 = cv2_or_none()
    if cv2 is not None and ocv.direct(images.shape, out_hw, interpolation):
        return ocv.remap(cv2, images, ys, xs, out_hw, border, fill)
    out = np.empty((n, *out_hw, c), np.uint8)
    part = lambda v, a, b: v[a:b] if v.shape[0] == n else v  # noqa: E731
    stacked = cv2 is not None and interpolation == "bilinear"
    for a, b in _blocks(n, out_hw[0] * out_hw[1], stacked):
        _remap_block(images[a:b], part(ys, a, b), part(xs, a, b), interpolation, border, fill, out[a:b])
    return out


def _check(interpolation: str, border: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; expected one of {INTERPOLATIONS}")
    if border not in BORDERS:
        raise ValueError(f"unknown border mode {border!r}; expected one of {BORDERS}")


def _remap_block(images, ys, xs, interpolation, border, fill, out) -> None:
    """``remap`` of one block of samples, written into ``out`` (uint8 (n, H', W', C))."""
    n, h, w, c = images.shape
    ys = _fold(ys, h, border)
    xs = _fold(xs, w, border)
    nearest = interpolation == "nearest"
    src, offset = _source(images, border, fill, pack=not nearest)
    cv2 = None if nearest else cv2_or_none()
    if cv2 is not None:  # small images: one cv2.remap over the stacked (padded) sources
        lead = 1 if border == "constant" else 0
        shape = out.shape[:3]
        ocv.remap_tiles(cv2, src, lead, np.broadcast_to(ys, shape), np.broadcast_to(xs, shape), out)
        return
    hp, wp, cs = src.shape[1:]
    base = (np.arange(n, dtype=np.intp) * (hp * wp) + offset).reshape(-1, 1, 1)
    shape = out.shape[:3]
    if nearest:  # a single tap: gathering whole rows of C bytes beats packing the source
        idx = np.floor(ys + 0.5).astype(np.intp) * wp + np.floor(xs + 0.5).astype(np.intp) + base
        np.take(src.reshape(-1, c), np.broadcast_to(idx, shape), axis=0, out=out)
        return

    flat = src.reshape(-1) if cs == 1 else src.view(np.uint32).reshape(-1)
    # Few full-size temporaries, updated in place: allocation is a large part of the cost.
    y0 = np.floor(ys)
    x0 = np.floor(xs)
    fy = np.broadcast_to(np.subtract(ys, y0, out=ys), shape)
    fx = np.broadcast_to(np.subtract(xs, x0, out=xs), shape)
    i00 = y0.astype(np.intp)
    i00 *= wp
    i00 = i00 + x0.astype(np.intp)
    i00 = np.add(i00, base, out=i00) if i00.shape == shape else np.broadcast_to(i00 + base, shape)
    # Taps via shifted views of the source: no index arithmetic over the whole output.
    taps = [_gather(flat[s:], i00) for s in (0, 1, wp, wp + 1)]
    top = np.empty(shape, np.float32)
    bottom = np.empty(shape, np.float32)
    f32 = np.float32
    for ch in range(c):  # one channel plane at a time keeps every operation free of broadcasting
        t00, t01, t10, t11 = (t[..., ch] for t in taps)
        np.subtract(t01, t00, out=top, dtype=f32)
        top *= fx
        np.add(top, t00, out=top, dtype=f32)
        np.subtract(t11, t10, out=bottom, dtype=f32)
        bottom *= fx
        np.add(bottom, t10, out=bottom, dtype=f32)
        bottom -= top
        bottom *= fy
        top += bottom
        # a convex combination of uint8 values: already inside [0, 255], only rounding is needed
        out[..., ch] = np.rint(top, out=top)


def warp_homography(
    images: np.ndarray,
    matrices,
    out_hw: tuple,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill: int = 0,
) -> np.ndarray:
    """Warp each image by its 3x3 matrix, which maps OUTPUT pixel coordinates to INPUT coordinates.

    matrices: (N, 3, 3) (or (3, 3) shared); affine when every last row is (0, 0, 1), which skips
    the perspective division. out_hw: (height, width) of the result. Other arguments as ``remap``.
    """
    _check(interpolation, border)
    n, c = images.shape[0], images.shape[3]
    m = np.broadcast_to(np.asarray(matrices, dtype=np.float64), (n, 3, 3))
    oh, ow = int(out_hw[0]), int(out_hw[1])
    projective = bool(np.any(m[:, 2, :2] != 0) or np.any(m[:, 2, 2] != 1))
    cv2 = cv2_or_none()
    if cv2 is not None and ocv.direct(images.shape, (oh, ow), interpolation):
        return ocv.warp(cv2, images, m, (oh, ow), projective, border, fill)
    x = np.arange(ow, dtype=np.float32)[None, None, :]
    y = np.arange(oh, dtype=np.float32)[None, :, None]
    m32 = m.astype(np.float32)[:, :, :, None, None]
    out = np.empty((n, oh, ow, c), np.uint8)
    for a, b in _blocks(n, oh * ow, cv2 is not None and interpolation == "bilinear"):
        mb = m32[a:b]
        # (n, 1, W') + (n, H', 1): one full-size addition per coordinate
        xs, ys = (mb[:, k, 0] * x + (mb[:, k, 1] * y + mb[:, k, 2]) for k in (0, 1))
        if projective:
            den = mb[:, 2, 0] * x + (mb[:, 2, 1] * y + mb[:, 2, 2])
            # Near the horizon line points run off to infinity; keep them finite (remap clamps them).
            den[np.abs(den) < 1e-6] = 1e-6
            xs /= den
            ys /= den
        _remap_block(images[a:b], ys, xs, interpolation, border, fill, out[a:b])
    return out


# --- crops, resizing, padding -----------------------------------------------------------------
def crop(images: np.ndarray, top, left, out_hw: tuple, border: str = "constant", fill: int = 0) -> np.ndarray:
    """Cut the (H', W') window at integer ``top``/``left`` (N,) per sample; may reach outside the image."""
    n = images.shape[0]
    top = np.broadcast_to(np.asarray(top, dtype=np.float32), (n,))
    left = np.broadcast_to(np.asarray(left, dtype=np.float32), (n,))
    ys = top[:, None, None] + np.arange(out_hw[0], dtype=np.float32)[None, :, None]
    xs = left[:, None, None] + np.arange(out_hw[1], dtype=np.float32)[None, None, :]
    return remap(images, ys, xs, "nearest", border, fill)


def resized_crop(
    images: np.ndarray, top, left, height, width, out_hw: tuple, interpolation: str = "bilinear"
) -> np.ndarray:
    """Resample the box [top, top + height) x [left, left + width) (pixels, (N,) each) to ``out_hw``.

    The box's outer edges map onto the output's outer edges (half-pixel convention, as Pillow's
    resize); reads past the image repeat the edge pixel. No anti-aliasing when shrinking.
    """
    n = images.shape[0]
    oh, ow = int(out_hw[0]), int(out_hw[1])
    per = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))[:, None, None]  # noqa: E731
    cv2 = cv2_or_none()
    if cv2 is not None and ocv.direct(images.shape, (oh, ow), interpolation):
        # the same map as an OUTPUT->INPUT scale-and-shift matrix: no coordinate arrays at all
        sy, sx = per(height)[:, 0, 0] / oh, per(width)[:, 0, 0] / ow
        m = np.zeros((n, 3, 3))
        m[:, 0, 0], m[:, 0, 2] = sx, per(left)[:, 0, 0] + 0.5 * sx - 0.5
        m[:, 1, 1], m[:, 1, 2] = sy, per(top)[:, 0, 0] + 0.5 * sy - 0.5
        m[:, 2, 2] = 1.0
        return ocv.warp(cv2, images, m, (oh, ow), False, "edge", 0)
    oy = np.arange(oh, dtype=np.float64)[None, :, None]
    ox = np.arange(ow, dtype=np.float64)[None, None, :]
    ys = per(top) + (oy + 0.5) * (per(height) / oh) - 0.5
    xs = per(left) + (ox + 0.5) * (per(width) / ow) - 0.5
    return remap(images, ys, xs, interpolation, "edge")


def resize(images: np.ndarray, out_hw: tuple, interpolation: str = "bilinear") -> np.ndarray:
    """Resize every image to ``out_hw`` (height, width) pixels."""
    _, h, w, _ = images.shape
    return resized_crop(images, 0, 0, h, w, out_hw, interpolation)


def pad(images: np.ndarray, padding: int, border: str = "constant", fill: int = 0) -> np.ndarray:
    """Add ``padding`` pixels on every side; border as in ``remap`` (reflect mirrors about the edge)."""
    widths = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    if border == "constant":
        return np.pad(images, widths, mode="constant", constant_values=int(fill))
    return np.pad(images, widths, mode=border)


# --- dense displacement fields ----------------------------------------------------------------
def displace(
    images: np.ndarray, dy, dx, interpolation: str = "bilinear", border: str = "reflect", fill: int = 0
) -> np.ndarray:
    """Read output pixel (i, j) of sample n from (i + dy[n, i, j], j + dx[n, i, j]); dy, dx (N, H, W) pixels."""
    _, h, w, _ = images.shape
    ys = np.arange(h, dtype=np.float32)[None, :, None] + dy
    xs = np.arange(w, dtype=np.float32)[None, None, :] + dx
    return remap(images, ys, xs, interpolation, border, fill)


def elastic_field(noise: np.ndarray, alpha: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Simard et al.'s field from (N, H, W, 2) uniform noise in [-1, 1]: Gaussian-smoothed (``sigma``
    pixels, each sample separately), times ``alpha`` pixels. Returns (dy, dx), each (N, H, W)."""
    from scipy.ndimage import gaussian_filter

    noise = np.asarray(noise, dtype=np.float32)
    cv2 = cv2_or_none()
    radius = int(4.0 * sigma + 0.5)  # scipy's default truncation at 4 sigma
    if cv2 is not None and sigma > 0 and noise.shape[0] and min(noise.shape[1:3]) > radius:
        field = ocv.gaussian_smooth(cv2, noise, sigma, radius)
    else:
        field = gaussian_filter(noise, sigma=(sigma, sigma), axes=(1, 2)) if sigma > 0 else noise
    field = field * np.float32(alpha)
    return field[..., 0], field[..., 1]


def _lerp_axis(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linearly upsample ``values`` along ``axis`` from its control points to ``size`` evenly spread samples."""
    steps = values.shape[axis] - 1
    g = np.linspace(0.0, steps, size)
    j0 = np.minimum(np.floor(g).astype(np.intp), max(steps - 1, 0))
    f = (g - j0).astype(values.dtype).reshape((-1,) + (1,) * (values.ndim - axis - 1))
    lo = np.take(values, j0, axis=axis)
    hi = np.take(values, np.minimum(j0 + 1, steps), axis=axis)
    return lo + f * (hi - lo)


def grid_field(grid: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense (dy, dx) (N, H, W) pixels from control-point displacements ``grid`` (N, S+1, S+1, 2).

    grid[n, r, c] = (dy, dx) of the control point in grid row r, column c as a fraction of a grid
    cell; control points span the image evenly (corners on the corner pixels) and the field between
    them is bilinear.
    """
    grid = np.asarray(grid, dtype=np.float32)
    steps = grid.shape[1] - 1
    cell = np.array([(h - 1) / steps, (w - 1) / steps], dtype=np.float32).reshape(2, 1, 1, 1)
    planes = np.moveaxis(grid, -1, 0) * cell  # (2, N, S+1, S+1): dy and dx as contiguous planes
    dense = _lerp_axis(_lerp_axis(planes, h, 2), w, 3)
    return dense[0], dense[1]
