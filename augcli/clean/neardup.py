"""Near duplicates: every pair of samples whose perceptual hashes are within a Hamming distance.

Search is multi-index hashing. Split the 64 bits into ``d + 1`` bands: two hashes at most ``d``
bits apart agree exactly on at least one band (pigeonhole). For each band, sort one side by its
band value, look up every query's run of equal values, and check each candidate's full distance
with a popcount. A candidate is kept only in the first band its two hashes agree on, so no pair is
reported twice. For random hashes the work grows with N * (N / 2**(64 / (d + 1))) instead of N**2.

Identical hash rows (thousands of blank images, say) are collapsed with ``np.unique`` first: the
search runs over distinct rows, so a big group of equal hashes costs one row, not a quadratic run.

``hashes`` is either uint64 (N,) (plain ``phash64``) or uint64 (N, S) from ``shifted_phash64``
(column 0 the plain hash, the other columns shifted variants). With variants, the distance between
samples i and j is the smallest distance between a hash of one (any column) and the plain hash of
the other, so a copy moved by a pixel is as near as an untouched one.
"""

from __future__ import annotations

import numpy as np

from augcli.clean.phash import hamming, popcount, shifted_phash64
from augcli.datasets.base import Dataset, hard_labels

MAX_DISTANCE = 32  # beyond this, unrelated 64-bit hashes (32 bits apart on average) would match
_CANDIDATES_PER_PASS = 1 << 20  # bounds one verification pass: ~10 int64 temporaries of this length (~80 MB)


def as_hash_rows(hashes) -> np.ndarray:
    """Hashes as uint64 (N, S): a 1-D array (plain hashes) becomes one column."""
    h = np.asarray(hashes)
    if h.ndim not in (1, 2) or (h.size and h.dtype != np.uint64):
        raise ValueError(f"hashes must be uint64 (N,) or (N, S), got {h.dtype} {h.shape}")
    return h.astype(np.uint64).reshape(h.shape[0], h.shape[1] if h.ndim == 2 else 1)


def _check_distance(max_distance) -> int:
    d = int(max_distance)
    if d != max_distance or not 0 <= d <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be an integer in [0, {MAX_DISTANCE}] (bits), got {max_distance!r}")
    return d


def band_masks(max_distance: int) -> list[np.uint64]:
    """``max_distance + 1`` masks of contiguous bit ranges covering all 64 bits (widths differ by <= 1)."""
    edges = np.linspace(0, 64, _check_distance(max_distance) + 2).round().astype(int)
    return [np.uint64(((1 << (b - a)) - 1) << a) for a, b in zip(edges[:-1], edges[1:])]


def _passes(counts: np.ndarray) -> list[tuple[int, int]]:
    """Split queries [0, n) into ranges of about ``_CANDIDATES_PER_PASS`` candidates each."""
    total = np.cumsum(counts)
    ranges, start = [], 0
    while start < counts.shape[0]:
        before = total[start - 1] if start else 0
        stop = int(np.searchsorted(total, before + _CANDIDATES_PER_PASS, side="right"))
        stop = max(stop, start + 1)
        ranges.append((start, stop))
        start = stop
    return ranges


def _compact(q: np.ndarray, b: np.ndarray, d: np.ndarray):
    """One entry per unordered pair (lo, hi), keeping its smallest distance."""
    lo, hi = np.minimum(q, b), np.maximum(q, b)
    code = lo * (int(hi.max()) + 1 if hi.shape[0] else 1) + hi
    order = np.lexsort((d, code))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = code[order][1:] != code[order][:-1]
    pick = order[first]
    return lo[pick], hi[pick], d[pick]


def band_pairs(queries: np.ndarray, base: np.ndarray | None, max_distance: int, stats: dict | None = None,
               query_rows: np.ndarray | None = None):
    """Yield, pass by pass, arrays ``(q, b, distance)`` of pairs with ``hamming <= max_distance``.

    ``queries`` and ``base`` are uint64 (Q,) and (B,). With ``base=None`` the queries are joined
    with themselves: each pair q < b once, no self-pairs. A pair is yielded once per query (the
    first band it agrees on). With ``query_rows`` (the row each query belongs to, for shifted
    variants of one hash) ``q`` is that row. ``stats``, if given, receives ``"candidates"``: the
    number of band matches verified. Each pass holds about ``_CANDIDATES_PER_PASS`` candidates.
    """
    d = _check_distance(max_distance)
    masks = band_masks(d)
    self_join = base is None
    base = queries if self_join else base
    candidates = 0
    for k, mask in enumerate(masks):
        keys = base & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        if self_join:  # query = sorted position p; its candidates are positions p+1 .. end of its run
            source = order
            lo = np.arange(1, order.shape[0] + 1)
            counts = np.searchsorted(sorted_keys, sorted_keys, side="right") - lo
        else:
            source = np.arange(queries.shape[0])
            qkeys = queries & mask
            lo = np.searchsorted(sorted_keys, qkeys, side="left")
            counts = np.searchsorted(sorted_keys, qkeys, side="right") - lo
        candidates += int(counts.sum())
        for a, z in _passes(counts):
            c = counts[a:z]
            n = int(c.sum())
            if n == 0:
                continue
            q = np.repeat(source[a:z], c)
            within = np.arange(n) - np.repeat(np.cumsum(c) - c, c)  # position inside the query's run
            b = order[np.repeat(lo[a:z], c) + within]
            xor = queries[q] ^ base[b]
            dist = popcount(xor)
            keep = dist <= d
            for earlier in masks[:k]:  # found in an earlier band already: drop the repeat
                keep &= (xor & earlier) != 0
            q = q[keep]
            yield (q if query_rows is None else query_rows[q]), b[keep], dist[keep].astype(np.int64)
    if stats is not None:
        stats["candidates"] = stats.get("candidates", 0) + candidates


def band_join(queries: np.ndarray, base: np.ndarray | None, max_distance: int, stats: dict | None = None,
              query_rows: np.ndarray | None = None):
    """All pairs of ``band_pairs`` as three int64 arrays ``(q, b, distance)``.

    With ``query_rows`` the pairs are compacted as they accumulate (one entry per unordered pair,
    smallest distance), so memory follows the number of distinct near pairs, not the variants.
    """
    out_q, out_b, out_d = [], [], []
    for q, b, dist in band_pairs(queries, base, max_distance, stats, query_rows):
        out_q.append(q)
        out_b.append(b)
        out_d.append(dist)
        if query_rows is not None and sum(x.shape[0] for x in out_q) > _CANDIDATES_PER_PASS:
            merged = _compact(np.concatenate(out_q), np.concatenate(out_b), np.concatenate(out_d))
            out_q, out_b, out_d = [merged[0]], [merged[1]], [merged[2]]
    if not out_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    return np.concatenate(out_q), np.concatenate(out_b), np.concatenate(out_d)


class _UnionFind:
    """Vectorised union-find over ``n`` items: merge batches of edges, never store them."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def _flatten(self) -> None:
        while True:  # pointer jumping until every item points at its root
            grand = self.parent[self.parent]
            if np.array_equal(grand, self.parent):
                return
            self.parent = grand

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        while a.shape[0]:
            ra, rb = self.parent[a], self.parent[b]
            differ = ra != rb
            if not differ.any():
                return
            a, b = a[differ], b[differ]
            lo, hi = np.minimum(ra[differ], rb[differ]), np.maximum(ra[differ], rb[differ])
            np.minimum.at(self.parent, hi, lo)  # hook the larger root under the smaller
            self._flatten()

    def roots(self) -> np.ndarray:
        self._flatten()
        return self.parent


def _unique_rows(rows: np.ndarray):
    if rows.shape[1] == 1:
        uniq, inverse = np.unique(rows[:, 0], return_inverse=True)
        return uniq[:, None], inverse.reshape(-1)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


def unique_pairs(hashes, max_distance: int, stats: dict | None = None):
    """Near pairs between *distinct* hash rows: ``(inverse, a, b, distance)``.

    ``inverse[i]`` is sample i's distinct row; ``a < b`` index distinct rows, ``distance`` is as in
    the module docstring (int64). Samples sharing a row are at distance 0 and are not listed.
    """
    rows = as_hash_rows(hashes)
    d = _check_distance(max_distance)
    if rows.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy(), empty.copy()
    uniq, inverse = _unique_rows(rows)
    m, s = uniq.shape
    plain = np.ascontiguousarray(uniq[:, 0])
    a, b, dist = band_join(plain, None, d, stats)
    if s > 1:  # shifted variants of one row against the plain hash of every other row
        owner = np.repeat(np.arange(m), s - 1)  # the row each variant belongs to
        va, vb, vdist = band_join(np.ascontiguousarray(uniq[:, 1:]).reshape(-1), plain, d, stats, query_rows=owner)
        other = va != vb
        a, b, dist = np.concatenate([a, va[other]]), np.concatenate([b, vb[other]]), np.concatenate([dist, vdist[other]])
    # one entry per row pair, with its smallest distance over the variants that matched
    lo, hi, dist = _compact(a, b, dist)
    return inverse, lo, hi, dist


def _members(inverse: np.ndarray):
    """Samples sorted by distinct row, with each row's start and count in that order."""
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    return order, np.cumsum(counts) - counts, counts


def near_duplicate_pairs(hashes, max_distance: int):
    """Every sample pair at distance <= ``max_distance`` bits: int64 arrays ``(i, j, distance)``.

    ``i < j``, sorted by (i, j). Exact: the same set as comparing all N * (N - 1) / 2 pairs.
    Note the output itself is quadratic in the size of a group of equal hashes (g samples give
    g * (g - 1) / 2 pairs); ``near_duplicate_groups`` never builds it.
    """
    inverse, a, b, dist = unique_pairs(hashes, max_distance)
    if inverse.shape[0] == 0:
        return inverse, inverse.copy(), inverse.copy()
    order, start, counts = _members(inverse)
    # pairs across two distinct rows: every member of one with every member of the other
    sizes = counts[a] * counts[b]
    pair = np.repeat(np.arange(a.shape[0]), sizes)
    k = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    si = order[start[a][pair] + k // counts[b][pair]]
    sj = order[start[b][pair] + k % counts[b][pair]]
    # pairs inside one row (equal hashes, distance 0): member r with members r+1 .. count-1
    within = np.repeat(counts, counts) - 1 - (np.arange(inverse.shape[0]) - np.repeat(start, counts))
    left = np.repeat(np.arange(inverse.shape[0]), within)
    offset = np.arange(int(within.sum())) - np.repeat(np.cumsum(within) - within, within) + 1
    ti, tj = order[left], order[left + offset]
    i = np.concatenate([np.minimum(si, sj), np.minimum(ti, tj)])
    j = np.concatenate([np.maximum(si, sj), np.maximum(ti, tj)])
    dd = np.concatenate([dist[pair], np.zeros(ti.shape[0], dtype=np.int64)])
    sort = np.lexsort((j, i))
    return i[sort], j[sort], dd[sort]


def near_duplicate_groups(hashes, max_distance: int) -> np.ndarray:
    """Group id per sample (int64 (N,)): connected components of the "within max_distance" graph.

    Groups are numbered 0, 1, ... in the order of their first sample; samples near no other get -1.
    Components are transitive: two members of one group may be further apart than max_distance.
    Edges are merged into a union-find pass by pass and never stored, so memory stays O(N) even
    when most samples are near one another (video frames, overlapping crops).
    """
    rows = as_hash_rows(hashes)
    d = _check_distance(max_distance)
    n = rows.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inverse = _unique_rows(rows)
    m, s = uniq.shape
    plain = np.ascontiguousarray(uniq[:, 0])
    sets = _UnionFind(m)
    for a, b, _ in band_pairs(plain, None, d):
        sets.union(a, b)
    if s > 1:
        owner = np.repeat(np.arange(m), s - 1)
        for a, b, _ in band_pairs(np.ascontiguousarray(uniq[:, 1:]).reshape(-1), plain, d, query_rows=owner):
            sets.union(a, b)
    group = sets.roots()[inverse].astype(np.int64)
    group[np.bincount(group, minlength=m)[group] < 2] = -1
    member = group >= 0
    ids, first = np.unique(group[member], return_index=True)  # first: position among members, ascending index
    rank = np.empty(ids.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(ids.shape[0])
    relabel = np.full(int(group.max()) + 1 if member.any() else 0, -1, dtype=np.int64)
    relabel[ids] = rank
    group[member] = relabel[group[member]]
    return group


def pair_distance(hashes, i, j) -> np.ndarray:
    """Distance between samples ``i[k]`` and ``j[k]`` (int64), by the rule in the module docstring."""
    rows = as_hash_rows(hashes)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    one = hamming(rows[i], rows[j, :1]).min(axis=1)
    other = hamming(rows[j], rows[i, :1]).min(axis=1)
    return np.minimum(one, other)


def find_near_duplicates(dataset: Dataset, max_distance: int = 4, hashes=None) -> list[dict]:
    """One record per sample that near-duplicates an earlier one; the dataset is not modified.

    Samples are grouped by ``near_duplicate_groups`` over ``hashes`` (default
    ``shifted_phash64(dataset.images)``: one-pixel shifts tolerated; pass ``phash64`` output for
    plain hashes). In each group the first sample in dataset order (lowest index) is kept and the
    others are flagged, in index order, as ``{"id", "index", "reason": "near_duplicate",
    "score": distance in bits (float), "group", "suggested_label": None, "duplicate_of": kept id,
    "distance": bits to the kept sample (may exceed max_distance through a chain), "identical":
    pixels equal to the kept sample's, "label_conflict": the group's labels (argmax if soft) differ}``.

    Measured on the 8x8 digits with injected copies (tests/test_clean_faults.py): max_distance 4
    finds every exact, one-pixel-shifted and noisy (std 4 grey levels) copy, and also flags 3.6 %
    of the clean digits as look-alikes of an earlier digit (always of the same class); max_distance
    2 flags 0.2 % of the clean digits but finds only 83 % of the noisy copies.
    """
    n = len(dataset)
    rows = shifted_phash64(dataset.images) if hashes is None else as_hash_rows(hashes)
    if rows.shape[0] != n:
        raise ValueError(f"hashes has {rows.shape[0]} rows for {n} samples")
    group = near_duplicate_groups(rows, max_distance)
    member = np.flatnonzero(group >= 0)
    if member.shape[0] == 0:
        return []
    _, first = np.unique(group[member], return_index=True)
    kept = member[first]  # kept[g]: lowest index of group g (groups are numbered in that order)
    flagged = member[member != kept[group[member]]]
    target = kept[group[flagged]]
    dist = pair_distance(rows, flagged, target)
    same = (dataset.images[flagged] == dataset.images[target]).reshape(flagged.shape[0], -1).all(axis=1)
    cls = hard_labels(dataset.labels).astype(np.int64)[member]
    n_groups = kept.shape[0]
    lo = np.full(n_groups, np.iinfo(np.int64).max)
    hi = np.full(n_groups, np.iinfo(np.int64).min)
    np.minimum.at(lo, group[member], cls)
    np.maximum.at(hi, group[member], cls)
    conflict = (lo != hi)[group[flagged]]
    return [
        {"id": str(dataset.ids[f]), "index": int(f), "reason": "near_duplicate", "score": float(dd), "group": int(g),
         "suggested_label": None, "duplicate_of": str(dataset.ids[t]), "distance": int(dd), "identical": bool(s),
         "label_conflict": bool(c)}
        for f, t, g, dd, s, c in zip(flagged.tolist(), target.tolist(), group[flagged].tolist(), dist.tolist(),
                                     same.tolist(), conflict.tolist())
    ]
