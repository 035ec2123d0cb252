"""64-bit DCT perceptual hashes for a whole batch, and Hamming distances between them.

``phash64``: grayscale -> area-shrink (only when a side is >= 64 px) -> bilinear resize to 32x32 ->
orthonormal 2-D DCT-II -> the 8x8 block of lowest frequencies -> one bit per coefficient: above the
median of the block's 63 AC coefficients.

Resize and DCT are both linear and separable, and only 8 of the 32 frequencies per axis are kept,
so the block is computed as ``M_h @ image @ M_w.T`` with ``M = DCT[:8] @ BILINEAR`` (8 x side):
the same numbers as ``scipy.fft.dctn`` of the resized image (without rounding the 32x32 image to
uint8), for a fraction of the work. ``tests/test_neardup.py`` checks the two agree.

The DC term (mean brightness) is left out: its bit is always 0 and the median is taken over the 63
AC coefficients only. AC coefficients do not change when a constant is added to every pixel, so a
brighter or darker copy hashes the same (up to uint8 clipping), and a constant image hashes to 0
whatever its grey level. Kept in, DC would be a bit that is 1 for every non-black image: no
information, and it would nudge the median. Bit ``8 * u + v`` of a hash is coefficient (row u,
column v) of the block.

Low-contrast images (pixel std of a few grey levels, e.g. a crop of sky) hash unstably: the median
split then follows faint structure, and clipping a brightened copy at 255 can move 10+ bits.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from augcli.transforms.functional.color import grayscale

HASH_SIZE = 32  # side of the image the DCT is taken on (pixels)
BLOCK = 8  # side of the low-frequency block: 8 x 8 = 64 bits
_CHUNK = 1024  # images per pass: bounds the float temporaries for large images
# Coefficients closer than this to the median count as "not above" (units: grey levels). Without
# it the rounding noise (~1e-13) of a constant image's AC coefficients would decide its bits.
_TIE = 1e-6
# One-pixel moves (dy, dx) hashed by ``shifted_phash64``, in its column order.
SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))

# Bits set in each byte value: the popcount fallback for numpy < 2 (no np.bitwise_count).
_BYTE_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint8)


def bilinear_matrix(size: int, out: int = HASH_SIZE) -> np.ndarray:
    """(out, size) float64 matrix of a bilinear resize along one axis.

    Same convention as ``functional.geometric.resize``: pixel centres at integers, outer edges
    mapped onto outer edges, reads past the image repeat the edge pixel. Rows sum to 1.
    """
    src = (np.arange(out) + 0.5) * (size / out) - 0.5
    src = np.clip(src, 0.0, size - 1.0)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    frac = src - lo
    mat = np.zeros((out, size))
    np.add.at(mat, (np.arange(out), lo), 1.0 - frac)
    np.add.at(mat, (np.arange(out), hi), frac)
    return mat


@lru_cache(maxsize=64)
def _lowpass_matrix(size: int) -> np.ndarray:
    """(8, size): resize an axis of ``size`` pixels to 32, then keep DCT-II (ortho) rows 0..7."""
    # function-level: SciPy costs ~0.3 s to import; a run with the hash checks off never gets here,
    # but imports this module through outliers/label_errors/neardup
    from scipy.fft import dct

    basis = dct(np.eye(HASH_SIZE), type=2, norm="ortho", axis=0)[:BLOCK]
    return basis @ bilinear_matrix(size)


def area_shrink(gray: np.ndarray, size: int) -> np.ndarray:
    """Average integer blocks of pixels so that each side is below ``2 * size`` (uint8 out).

    Bilinear resizing reads only 4 pixels per output pixel: a large image shrunk straight to 32x32
    would alias (its hash would depend on which pixels happen to be read, so noise flips bits).
    The last ``factor - 1`` rows / columns at most are left out.
    """
    n, h, w = gray.shape[:3]
    fy, fx = max(1, h // size), max(1, w // size)
    if fy == 1 and fx == 1:
        return gray
    hh, ww = (h // fy) * fy, (w // fx) * fx
    blocks = gray[:, :hh, :ww, 0].reshape(n, hh // fy, fy, ww // fx, fx)
    return np.rint(blocks.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)[..., None]


def _gray_small(images: np.ndarray) -> np.ndarray:
    """Grayscale, area-shrunk copy of a batch: uint8 (N, h, w, 1) with h, w < 64 (or the original size)."""
    return area_shrink(grayscale(images)[..., :1], HASH_SIZE)


def dct_block(gray: np.ndarray) -> np.ndarray:
    """The 8x8 low-frequency DCT block of gray uint8 (N, h, w, 1) images resized to 32x32: float64 (N, 8, 8)."""
    mh = _lowpass_matrix(gray.shape[1])
    mw = _lowpass_matrix(gray.shape[2])
    return (mh @ gray[..., 0].astype(np.float64)) @ mw.T


def _bits(block: np.ndarray) -> np.ndarray:
    """Median-split bits of (N, 8, 8) blocks packed into uint64 (N,): bit k = coefficient k (row-major)."""
    flat = block.reshape(-1, BLOCK * BLOCK)
    median = np.median(flat[:, 1:], axis=1, keepdims=True)
    bits = flat > median + _TIE
    bits[:, 0] = False  # the DC slot: see the module docstring
    packed = np.packbits(bits, axis=1, bitorder="little")  # little-endian bytes and bits: bit k = column k
    return packed.view(np.dtype("<u8")).reshape(-1).astype(np.uint64)


def _check(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, H, W, C) with C in {{1, 3}}, got {images.dtype} {images.shape}")
    return images


def _empty(images: np.ndarray) -> bool:
    return images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0


def phash64(images: np.ndarray) -> np.ndarray:
    """64-bit perceptual hash of every image: uint64 (N,).

    ``images``: uint8 (N, H, W, C) with C in {1, 3}, any H, W >= 1 (small images are upscaled to
    32x32, so 8x8 digits hash fine). Deterministic and batch-invariant: a sample's hash depends only
    on its own pixels. Near-identical images have hashes a few bits apart (see ``hamming``);
    unrelated images differ in about half of the 63 informative bits. With the median split a hash
    has 31 bits set (fewer when coefficients tie), so distances between hashes are mostly even.
    Constant images hash to 0.
    """
    images = _check(images)
    if _empty(images):
        return np.zeros(images.shape[0], dtype=np.uint64)
    parts = [_bits(dct_block(_gray_small(images[a:a + _CHUNK]))) for a in range(0, images.shape[0], _CHUNK)]
    return np.concatenate(parts)


def _shift(gray: np.ndarray, dy: int, dx: int, fill: np.ndarray | None) -> np.ndarray:
    """Move every image by (dy, dx) pixels; the uncovered row/column gets ``fill`` (N,) or the edge."""
    n, h, w, _ = gray.shape
    if fill is None:  # repeat the edge: index the source with clamped coordinates
        rows = np.clip(np.arange(h) - dy, 0, h - 1)
        cols = np.clip(np.arange(w) - dx, 0, w - 1)
        return gray[:, rows][:, :, cols]
    out = np.broadcast_to(fill[:, None, None, None], gray.shape).copy()
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = gray[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _border_median(gray: np.ndarray) -> np.ndarray:
    """Median grey of each image's outer ring of pixels (its background, for most datasets): uint8 (N,)."""
    g = gray[..., 0]
    ring = np.concatenate([g[:, 0, :], g[:, -1, :], g[:, 1:-1, 0], g[:, 1:-1, -1]], axis=1)
    return np.rint(np.median(ring, axis=1)).astype(np.uint8)


def shifted_phash64(images: np.ndarray) -> np.ndarray:
    """``phash64`` of every image and of 16 one-pixel shifts of it: uint64 (N, 17).

    Column 0 is ``phash64(images)``. Columns 1..8 hash the image moved by one pixel in each of the
    8 directions (``SHIFTS`` order) with the uncovered row/column set to the median grey of the
    image's border ring (background brought in, as when a scan is re-centred); columns 9..16 the
    same shifts repeating the edge pixels instead (as a crop clamped at the image edge). Shifts are
    made at the resolution that is hashed (the image, or its area-shrunk copy when a side is
    >= 64 px), so the tolerance is one pixel on 8x8 digits and about 2-3 % of the side on photos.

    A one-pixel shift of an 8x8 digit moves it by 1/8 of its width: its plain ``phash64`` is then
    about 30 bits away (as far as an unrelated image), so near-duplicate search compares the
    shifted hashes of one image with the plain hash of the other (see ``neardup``).
    """
    images = _check(images)
    width = 1 + 2 * len(SHIFTS)
    if _empty(images):
        return np.zeros((images.shape[0], width), dtype=np.uint64)
    out = []
    step = max(1, _CHUNK // 16)  # the variants of a chunk go through one matrix product together
    for a in range(0, images.shape[0], step):
        gray = _gray_small(images[a:a + step])
        fill = _border_median(gray)
        variants = [gray] + [_shift(gray, dy, dx, fill) for dy, dx in SHIFTS] + [_shift(gray, dy, dx, None) for dy, dx in SHIFTS]
        bits = _bits(dct_block(np.concatenate(variants)))
        out.append(bits.reshape(width, -1).T)
    return np.ascontiguousarray(np.concatenate(out))


def popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of every element of a uint64 array, as uint8 (0..64)."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    return popcount_table(x)


def popcount_table(x: np.ndarray) -> np.ndarray:
    """``popcount`` by byte lookup table (the fallback for numpy < 2; same result)."""
    x = np.asarray(x, dtype=np.uint64)
    flat = np.ascontiguousarray(x.reshape(-1))
    counts = _BYTE_POPCOUNT[flat.view(np.uint8)].reshape(-1, 8)
    return counts.sum(axis=1, dtype=np.uint8).reshape(x.shape)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance (bits, 0..64) between uint64 hashes, element-wise with broadcasting; int64."""
    return popcount(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))).astype(np.int64)
