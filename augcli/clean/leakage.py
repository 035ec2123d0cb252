"""Leakage: training samples that (near-)duplicate a held-out (val / test) sample.

A model evaluated on a test image it has, in effect, trained on scores too well. The training copy
is the one to remove: held-out splits stay as they were drawn. Distances are those of ``neardup``
(shifted perceptual hashes by default), so exact copies (distance 0) are included.
"""

from __future__ import annotations

import numpy as np

from augcli.clean.neardup import as_hash_rows, unique_pairs
from augcli.datasets.base import hard_labels
from augcli.clean.phash import shifted_phash64
from augcli.datasets.base import Dataset

TRAIN = "train"


def _nearest_held_out(rows: np.ndarray, is_held: np.ndarray, max_distance: int):
    """For every sample: ``(nearest held-out sample or -1, distance)``.

    Nearest by distance, then by position in ``rows`` (split order, then index). Works on distinct
    hash rows, so a large group of equal hashes costs one row.
    """
    inverse, a, b, dist = unique_pairs(rows, max_distance)
    m = int(inverse.max()) + 1
    n = inverse.shape[0]
    # the first held-out sample of every distinct row (n = none)
    rep = np.full(m, n, dtype=np.int64)
    held = np.flatnonzero(is_held)
    np.minimum.at(rep, inverse[held], held)
    # edges row -> row in both directions, plus every row to itself at distance 0
    src = np.concatenate([a, b, np.arange(m)])
    dst = np.concatenate([b, a, np.arange(m)])
    dd = np.concatenate([dist, dist, np.zeros(m, dtype=np.int64)])
    ok = rep[dst] < n
    src, target, dd = src[ok], rep[dst[ok]], dd[ok]
    order = np.lexsort((target, dd, src))  # per source row: smallest distance, then earliest sample
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = src[order][1:] != src[order][:-1]
    best = np.full(m, -1, dtype=np.int64)
    best_d = np.full(m, -1, dtype=np.int64)
    best[src[order][first]] = target[order][first]
    best_d[src[order][first]] = dd[order][first]
    return best[inverse], best_d[inverse]


def find_leakage(splits: dict[str, Dataset], max_distance: int = 4, hashes: dict | None = None) -> list[dict]:
    """Records for the training samples to remove, in training index order.

    ``splits`` maps split names to Datasets (sharing class names); "train" is the training side and
    every other split is held out. ``hashes`` optionally maps split names to precomputed hashes
    (``shifted_phash64`` or ``phash64`` output, the same kind for every split). A training sample
    is reported when some held-out sample is within ``max_distance`` bits:
    ``{"id", "index", "reason": "leakage", "score": distance (float), "group": None,
    "suggested_label": None, "duplicate_of": nearest held-out id, "split": its split,
    "distance": bits, "label_conflict": the two labels (argmax if soft) differ}``.
    Nothing is modified; with no held-out split the result is [].
    """
    if TRAIN not in splits:
        raise ValueError(f"splits must contain '{TRAIN}', got {sorted(splits)}")
    names = [TRAIN] + [name for name in splits if name != TRAIN]
    if len(names) == 1:
        return []
    hashes = hashes or {}
    parts = [as_hash_rows(hashes[name]) if name in hashes else shifted_phash64(splits[name].images) for name in names]
    if len({p.shape[1] for p in parts}) != 1:
        raise ValueError("hashes of all splits must be of the same kind (same number of columns)")
    for name, p in zip(names, parts):
        if p.shape[0] != len(splits[name]):
            raise ValueError(f"hashes['{name}'] has {p.shape[0]} rows for {len(splits[name])} samples")
    sizes = np.array([p.shape[0] for p in parts])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_train = int(sizes[0])
    if n_train == 0 or offsets[-1] == n_train:
        return []
    rows = np.concatenate(parts)
    is_held = np.arange(rows.shape[0]) >= n_train
    nearest, dist = _nearest_held_out(rows, is_held, max_distance)
    leaked = np.flatnonzero(nearest[:n_train] >= 0)
    target = nearest[leaked]
    which = np.searchsorted(offsets, target, side="right") - 1  # index into names
    local = target - offsets[which]
    classes = [hard_labels(splits[name].labels).astype(np.int64) for name in names]
    train = splits[TRAIN]
    return [
        {"id": str(train.ids[t]), "index": int(t), "reason": "leakage", "score": float(dist[t]), "group": None,
         "suggested_label": None, "duplicate_of": str(splits[names[w]].ids[j]), "split": names[w],
         "distance": int(dist[t]), "label_conflict": bool(classes[0][t] != classes[w][j])}
        for t, w, j in zip(leaked.tolist(), which.tolist(), local.tolist())
    ]


def drop_ids(dataset: Dataset, ids) -> Dataset:
    """A new Dataset without the samples whose id is in ``ids`` (every sample with that id, if ids
    repeat); order, class names, source and the load-time ``skipped`` list are kept."""
    drop = np.isin(dataset.ids, np.asarray(list(ids), dtype=str))
    kept = dataset.subset(np.flatnonzero(~drop))
    kept.skipped = list(dataset.skipped)
    return kept
