"""Near-duplicate search on 100,000 random 64-bit hashes with 1,000 planted near pairs.

    .venv/bin/python benchmarks/bench_neardup.py                       # defaults below
    .venv/bin/python benchmarks/bench_neardup.py --n 1000000 --max-distance 6 --repeats 3

Hashes come from augcli.rng (seeded, so every run searches the same set). Planted pairs: hash
j = hash i with 1..max_distance random bits flipped. Prints the median time of the multi-index
search (``near_duplicate_pairs``), the candidate count it verified, the pairs found, whether every
planted pair was among them, and a brute-force time measured on a subset and scaled to N**2.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from augcli.clean.neardup import near_duplicate_pairs, unique_pairs
from augcli.clean.phash import popcount
from augcli.rng import Streams


def planted_hashes(n: int, pairs: int, max_distance: int, seed: int = 0):
    """``(hashes, i, j)``: n random hashes where hashes[j[k]] is hashes[i[k]] with 1..max_distance bits flipped."""
    streams = Streams.from_seed(seed, n)
    hashes = streams.bits()
    order = np.argsort(streams.child(1).bits(), kind="stable")  # distinct positions for the pairs
    i, j = np.sort(order[:pairs]), order[pairs:2 * pairs]
    flips = 1 + np.arange(pairs) % max_distance
    bit_order = np.argsort(Streams.from_seed(seed + 1, pairs).bits((64,)), axis=1)
    chosen = np.arange(64)[None, :] < flips[:, None]
    masks = np.bitwise_or.reduce(np.where(chosen, np.uint64(1) << bit_order.astype(np.uint64), np.uint64(0)), axis=1)
    hashes[j] = hashes[i] ^ masks
    return hashes, i, j


def brute_force_seconds(hashes: np.ndarray, sample: int = 10_000) -> float:
    """Seconds to compare all pairs of ``sample`` hashes, scaled by (N / sample)**2."""
    sub = hashes[:sample]
    start = time.perf_counter()
    for a in range(0, sub.shape[0], 1000):  # blocks of 1000 rows keep the XOR matrix small
        popcount(sub[a:a + 1000, None] ^ sub[None, :])
    return (time.perf_counter() - start) * (hashes.shape[0] / sub.shape[0]) ** 2 / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--max-distance", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    hashes, pi, pj = planted_hashes(args.n, args.pairs, args.max_distance)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        i, j, d = near_duplicate_pairs(hashes, args.max_distance)
        times.append(time.perf_counter() - start)
    stats: dict = {}
    unique_pairs(hashes, args.max_distance, stats)
    found = set(zip(i.tolist(), j.tolist()))
    planted = set(zip(np.minimum(pi, pj).tolist(), np.maximum(pi, pj).tolist()))
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"hashes {args.n:,}  planted pairs {args.pairs:,} (distance 1..{args.max_distance})  max_distance {args.max_distance}")
    print(f"search: {statistics.median(times):.3f} s median of {args.repeats} (min {min(times):.3f} s)")
    print(f"candidates verified: {stats['candidates']:,}  (all pairs: {args.n * (args.n - 1) // 2:,})")
    print(f"pairs found: {len(found):,}  planted pairs found: {len(planted & found):,} / {len(planted):,}")
    print(f"brute force (all pairs, estimated from 10,000): {brute_force_seconds(hashes):.1f} s")
    if not planted <= found:
        raise SystemExit("some planted pairs were not found")


if __name__ == "__main__":
    main()
