"""Counter-based random streams: every value depends only on (root seed, sample key, step, draw).

A batch never shares one generator: each sample carries a 64-bit key derived from the root seed, its
stable id and its copy index, and every random number is a hash of (key, step, draw counter, element
index). Output bytes therefore cannot depend on batch size, batch order or worker count. The hash is
SplitMix64's finaliser, which is vectorised here over whole arrays of uint64.
"""

from __future__ import annotations

import hashlib
import math
import sys

import numpy as np

from augcli.backend import cv2_or_none

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_DRAW_SALT = 0x5EED_D12A_0000_0000
_STEP_SALT = 0x57E9_0000_0000_0000


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser applied element-wise to a uint64 array (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64)
    if z.ndim == 0:
        return np.asarray(_mix_int(int(z)), dtype=np.uint64)
    z = z + _GOLDEN  # array arithmetic wraps silently (0-d arrays would warn: done in Python above)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _mix_int(x: int) -> int:
    """``mix64`` of one Python integer (cheaper than NumPy for a single value)."""
    z = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _u64(value: int) -> np.ndarray:
    return np.array(value & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)


def hash_id(sample_id: str) -> int:
    """A stable 64-bit hash of a sample id (independent of Python's hash randomisation)."""
    return int.from_bytes(hashlib.blake2b(str(sample_id).encode("utf-8"), digest_size=8).digest(), "little")


def hash_ids(ids) -> np.ndarray:
    """``hash_id`` for a sequence of ids, as a uint64 array."""
    return np.array([hash_id(i) for i in id_list(ids)], dtype=np.uint64)


def id_list(ids) -> list:
    """``ids`` as a Python list. An array goes through ``tolist()``: iterating a NumPy string array
    makes one NumPy scalar per element, a C path that swallows a Ctrl-C arriving meanwhile."""
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def sample_keys(seed: int, id_hashes: np.ndarray, copies) -> np.ndarray:
    """Per-sample stream keys from the root seed, the ids' hashes and the copy indices."""
    root = mix64(_u64(int(seed)))
    ids = np.asarray(id_hashes, dtype=np.uint64)
    copy = np.broadcast_to(np.asarray(copies, dtype=np.int64), ids.shape).astype(np.uint64)
    return mix64(mix64(root ^ ids) ^ mix64(copy))


# Element hashing runs over pieces of this many uint64 values (256 KiB): the in-place passes then
# stay in L2 and their one scratch buffer is reused, instead of fresh pages per temporary.
_CHUNK = 1 << 15
_LITTLE = sys.byteorder == "little"


def _mix_inplace(z: np.ndarray, tmp: np.ndarray) -> None:
    """``z = mix64(z)`` in place (``tmp`` is scratch of the same shape): same values as ``mix64``."""
    z += _GOLDEN
    for shift, mult in ((_S30, _M1), (_S27, _M2)):
        np.right_shift(z, shift, out=tmp)
        z ^= tmp
        z *= mult
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp


def _hashed(base: np.ndarray, count: int) -> np.ndarray:
    """uint64 (N, count): ``mix64(base[n] + j * phi)`` for j < count, computed in L2-sized pieces."""
    out = np.empty((base.shape[0], count), np.uint64)
    if out.size == 0:
        return out
    with np.errstate(over="ignore"):
        np.add(base[:, None], np.arange(count, dtype=np.uint64) * _GOLDEN, out=out)
    flat = out.reshape(-1)
    tmp = np.empty(min(_CHUNK, flat.size), np.uint64)
    for a in range(0, flat.size, _CHUNK):
        piece = flat[a : a + _CHUNK]
        _mix_inplace(piece, tmp[: piece.size])
    return out


_TILE = 1 << 12  # Box-Muller hashes per tile (see ``normal``); fixed, so values never depend on N


def _tiles(n: int, pairs: int):
    """Work pieces (rows, first hash, tile length, tiles) of an (n, pairs) hash grid: whole rows of
    one short tile each, or runs of full tiles along one row, then the row's shorter last tile;
    each piece holds at most about ``_CHUNK`` hashes."""
    if pairs <= _TILE:
        step = max(1, _CHUNK // pairs)
        for r in range(0, n, step):
            yield slice(r, min(r + step, n)), 0, pairs, 1
        return
    full, rest = divmod(pairs, _TILE)
    per_piece = max(1, _CHUNK // _TILE)
    for r in range(n):
        for t in range(0, full, per_piece):
            yield slice(r, r + 1), t * _TILE, _TILE, min(per_piece, full - t)
        if rest:
            yield slice(r, r + 1), full * _TILE, rest, 1


def _box_muller(base: np.ndarray, count: int, ftype) -> np.ndarray:
    """Standard normal (N, count) of ``ftype`` from ceil(count / 2) hashes per sample (see ``normal``)."""
    n, pairs = base.shape[0], (count + 1) // 2
    out = np.empty((n, 2, pairs), ftype)
    if out.size > 0:
        steps = np.arange(pairs, dtype=np.uint64) * _GOLDEN
        size = min(_CHUNK, n * pairs) + _TILE
        scratch = (np.empty(size, np.uint64), np.empty(size, np.uint64), np.empty(2 * size, ftype))
        with np.errstate(over="ignore"):
            for rows, first, m, k in _tiles(n, pairs):
                span = slice(first, first + k * m)
                _box_muller_piece(base[rows], steps[span], m, out[rows, :, span], scratch)
    out = out.reshape(n, 2 * pairs)
    # odd counts drop the last sine: the layout is [cos block | sin block one shorter]
    return out if 2 * pairs == count else np.ascontiguousarray(out[:, :count])


def _box_muller_piece(base, steps, m, out, scratch) -> None:
    """Fill ``out`` (r, 2, k * m) with cos/sin normals from the r x (k * m) hashes of one piece.

    In each tile of m hashes, viewed as 2m 32-bit words (low word first), words [0, m) give the
    radius uniforms and words [m, 2m) the angle uniforms of the tile's m pairs: both are then
    contiguous, which keeps every float pass vectorised.
    """
    ftype = out.dtype.type
    r, length = base.shape[0], steps.shape[0]
    tiles = r * (length // m)
    z = scratch[0][: r * length].reshape(r, length)
    np.add(base[:, None], steps[None, :], out=z)
    _mix_inplace(z, scratch[1][: r * length].reshape(r, length))
    # 32-bit words in a fixed (little-endian) order, then their top 24 bits as exact floats
    words = (z if _LITTLE else z.astype("<u8")).reshape(tiles, m).view(np.uint32 if _LITTLE else "<u4")
    top = np.right_shift(words, 8, out=scratch[1][: r * length].view(np.uint32).reshape(tiles, 2 * m))
    u = scratch[2][: 2 * r * length].reshape(tiles, 2 * m)
    radius, angle = u[:, :m], u[:, m:]
    cos = out[:, 0].reshape(tiles, m)
    sin = out[:, 1].reshape(tiles, m)
    scale = 2.0**-24  # u1 = (a + 0.5) / 2**24 lies in (0, 1]: the log is finite and <= 0
    cv2 = _cv2_for(ftype)
    if cv2 is not None:  # the same formula in OpenCV's vector math (differs in the last bits)
        a, b = top.view(np.int32)[:, :m], top.view(np.int32)[:, m:]
        cv2.addWeighted(a, scale, a, 0.0, 0.5 * scale, dst=radius, dtype=cv2.CV_32F)
        cv2.log(radius, dst=radius)
        radius *= ftype(-2.0)
        cv2.sqrt(radius, dst=radius)
        cv2.addWeighted(b, 2.0 * np.pi * scale, b, 0.0, 0.0, dst=angle, dtype=cv2.CV_32F)
        cv2.polarToCart(radius, angle, x=cos, y=sin)
        return
    np.copyto(u, top.view(np.int32), casting="unsafe")
    radius += ftype(0.5)
    radius *= ftype(scale)
    angle *= ftype(2.0 * np.pi * scale)
    np.log(radius, out=radius)
    radius *= ftype(-2.0)
    np.sqrt(radius, out=radius)
    np.multiply(np.cos(angle, out=cos), radius, out=cos)
    np.multiply(np.sin(angle, out=sin), radius, out=sin)


def _cv2_for(ftype):
    """cv2 when the OpenCV kernel backend is active and the draw is float32, else None.

    Float32 normals then use OpenCV's log/sqrt/polarToCart, about 1.5x faster than NumPy's; the
    values are the same formula but differ in the last bits, so noise fields (like the warps) are
    deterministic per backend. float64 draws (per-sample parameters) never depend on the backend.
    """
    if ftype is not np.float32:
        return None
    return cv2_or_none()


class Streams:
    """Independent random streams for N samples.

    Each call draws the next value(s) of every sample's stream; the sequence of calls must not depend
    on the data (always draw for all N samples, then mask), which keeps streams batch-invariant.
    """

    def __init__(self, keys: np.ndarray):
        self.keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        self._draws = 0

    def __len__(self) -> int:
        return self.keys.shape[0]

    @classmethod
    def from_seed(cls, seed: int, n: int, copy: int = 0) -> "Streams":
        """Streams for samples 0..n-1 (ids are their indices) - handy in tests and the Python API."""
        return cls(sample_keys(seed, hash_ids([str(i) for i in range(n)]), copy))

    def child(self, step: int) -> "Streams":
        """The sub-stream of step ``step`` (a pipeline position); independent of this one's draws."""
        return Streams(mix64(self.keys ^ mix64(_u64(_STEP_SALT + int(step)))))

    def take(self, index) -> "Streams":
        """The streams of a subset of samples, at the same draw position."""
        sub = Streams(self.keys[index])
        sub._draws = self._draws
        return sub

    def _base(self) -> np.ndarray:
        """This draw's per-sample base hash (N,), advancing the draw counter."""
        base = mix64(self.keys ^ np.uint64(_mix_int((_DRAW_SALT + self._draws) & 0xFFFFFFFFFFFFFFFF)))
        self._draws += 1
        return base

    def bits(self, shape: tuple = ()) -> np.ndarray:
        """Raw uint64 draws of shape ``(N, *shape)``: element j of sample n is ``mix64(base_n + j * phi)``."""
        shape = tuple(int(s) for s in shape)
        base = self._base()
        if not shape:  # element 0 alone: mix64(base + 0)
            return mix64(base)
        return _hashed(base, math.prod(shape)).reshape((len(self),) + shape)

    def _per_sample(self, value, ndim: int):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 1 and arr.shape[0] == len(self) and ndim:
            return arr.reshape((len(self),) + (1,) * ndim)
        return arr

    def uniform(self, low=0.0, high=1.0, shape: tuple = (), dtype=np.float64) -> np.ndarray:
        """Uniform floats in ``[low, high)``; ``low``/``high`` may be scalars or per-sample arrays."""
        u = (self.bits(shape) >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)
        lo = self._per_sample(low, len(shape))
        hi = self._per_sample(high, len(shape))
        return (lo + (hi - lo) * u).astype(dtype, copy=False)

    def integers(self, low: int, high, shape: tuple = ()) -> np.ndarray:
        """Integers in ``[low, high)`` (``high`` may be a per-sample array)."""
        u = self.uniform(0.0, 1.0, shape)
        lo = self._per_sample(low, len(shape))
        hi = self._per_sample(high, len(shape))
        return np.minimum(lo + np.floor(u * (hi - lo)), hi - 1).astype(np.int64)

    def normal(self, loc=0.0, scale=1.0, shape: tuple = (), dtype=np.float64) -> np.ndarray:
        """Gaussian draws by Box-Muller with both outputs used: one 64-bit hash per pair of values.

        A sample's P = ceil(count / 2) element hashes (as in ``bits``) are read in fixed tiles of up
        to 4096; in a tile of m hashes seen as 2m 32-bit words, word i gives the radius and word
        m + i the angle of pair i. Pair j's cosine is element j and its sine element P + j, so a
        value depends only on (key, draw, element), never on N. Uniforms have 24 bits (|z| < 5.9).
        float32 requests are computed in float32 (with OpenCV's vector math when the OpenCV kernel
        backend is active, so fields are deterministic per backend), all others in float64.
        """
        shape = tuple(int(s) for s in shape)
        count = math.prod(shape)
        ftype = np.float32 if np.dtype(dtype) == np.float32 else np.float64
        z = _box_muller(self._base(), count, ftype).reshape((len(self),) + shape)
        loc, scale = self._per_sample(loc, len(shape)), self._per_sample(scale, len(shape))
        if loc.ndim or scale.ndim or loc != 0.0 or scale != 1.0:  # the standard case needs no pass
            z = loc + scale * z
        return z.astype(dtype, copy=False)

    def within(self, bounds: tuple, shape: tuple = ()) -> np.ndarray:
        """A draw from a validated ``[a, b]`` range: integers in ``a..b`` inclusive when both ends are
        ints (a ``Range(integer=True)``), else uniform floats in ``[a, b)``."""
        a, b = bounds
        if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
            return self.integers(a, b + 1, shape)
        return self.uniform(a, b, shape)

    def bernoulli(self, p, shape: tuple = ()) -> np.ndarray:
        """Booleans that are True with probability ``p``."""
        return self.uniform(0.0, 1.0, shape) < self._per_sample(p, len(shape))

    def choice(self, n: int, weights=None, shape: tuple = ()) -> np.ndarray:
        """Indices in ``[0, n)``, uniformly or with the given (unnormalised) weights."""
        if weights is None:
            return self.integers(0, n, shape)
        cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
        u = self.uniform(0.0, cdf[-1], shape)
        return np.minimum(np.searchsorted(cdf, u, side="right"), n - 1).astype(np.int64)

    def beta(self, a: float, b: float, shape: tuple = ()) -> np.ndarray:
        """Beta(a, b) draws via the inverse CDF (scipy), one uniform per value."""
        from scipy.special import betaincinv

        return betaincinv(a, b, self.uniform(0.0, 1.0, shape))
