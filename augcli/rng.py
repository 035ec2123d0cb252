"""Counter-based random streams: every value depends only on (root seed, sample key, step, draw).

A batch never shares one generator: each sample carries a 64-bit key derived from the root seed, its
stable id and its copy index, and every random number is a hash of (key, step, draw counter, element
index). Output bytes therefore cannot depend on batch size, batch order or worker count. The hash is
SplitMix64's finaliser, which is vectorised here over whole arrays of uint64.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_DRAW_SALT = 0x5EED_D12A_0000_0000
_STEP_SALT = 0x57E9_0000_0000_0000


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser applied element-wise to a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):  # wrapping is the point; 0-d arrays would warn
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def _u64(value: int) -> np.ndarray:
    return np.array(value & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)


def hash_id(sample_id: str) -> int:
    """A stable 64-bit hash of a sample id (independent of Python's hash randomisation)."""
    return int.from_bytes(hashlib.blake2b(str(sample_id).encode("utf-8"), digest_size=8).digest(), "little")


def hash_ids(ids) -> np.ndarray:
    """``hash_id`` for a sequence of ids, as a uint64 array."""
    return np.fromiter((hash_id(i) for i in ids), dtype=np.uint64, count=len(ids))


def sample_keys(seed: int, id_hashes: np.ndarray, copies) -> np.ndarray:
    """Per-sample stream keys from the root seed, the ids' hashes and the copy indices."""
    root = mix64(_u64(int(seed)))
    ids = np.asarray(id_hashes, dtype=np.uint64)
    copy = np.broadcast_to(np.asarray(copies, dtype=np.int64), ids.shape).astype(np.uint64)
    return mix64(mix64(root ^ ids) ^ mix64(copy))


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

    def bits(self, shape: tuple = ()) -> np.ndarray:
        """Raw uint64 draws of shape ``(N, *shape)``."""
        shape = tuple(int(s) for s in shape)
        base = mix64(self.keys ^ mix64(_u64(_DRAW_SALT + self._draws)))
        self._draws += 1
        count = int(np.prod(shape, dtype=np.int64))
        if count == 1 and not shape:
            return mix64(base)
        idx = np.arange(count, dtype=np.uint64) * _GOLDEN
        return mix64(base[:, None] + idx[None, :]).reshape((len(self),) + shape)

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
        """Gaussian draws by Box-Muller from two uniform draws."""
        u1 = self.uniform(0.0, 1.0, shape)
        u2 = self.uniform(0.0, 1.0, shape)
        z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
        return (self._per_sample(loc, len(shape)) + self._per_sample(scale, len(shape)) * z).astype(
            dtype, copy=False
        )

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
