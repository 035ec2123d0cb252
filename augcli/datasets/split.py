"""Seeded, stratified train / val / test split that ranks samples by a hash of (seed, sample id).

Inside each class, samples are ordered by a counter-based hash of (seed, id) - not by a shuffle of
positions - so a sample's split depends on its own id and its class's size, not on input order,
and adding or removing other samples moves few samples between splits.
"""

from __future__ import annotations

import math

import numpy as np

from augcli.datasets.base import Dataset, hard_labels
from augcli.rng import Streams, hash_ids, sample_keys

# Step number of the split's sub-stream: far from pipeline positions (0, 1, 2, ...) so the split
# ranking is independent of the augmentation draws made with the same seed.
_SPLIT_STEP = 0x5B117


def _check_fraction(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}") from None
    if not math.isfinite(value) or value < 0.0 or value >= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return value


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def held_out_counts(n: int, val: float, test: float) -> tuple:
    """(n_val, n_test) for a class of ``n`` samples.

    Each is round(frac * n) with halves rounding up, at least 1 when frac > 0 and n >= 2. Train
    keeps at least one sample: if val + test would take every sample, the larger share (val on a
    tie) gives one back until one is left, so a single-sample class always stays in train.
    """
    counts = [0, 0]
    for j, frac in enumerate((val, test)):
        if frac > 0:
            counts[j] = max(_round_half_up(frac * n), 1 if n >= 2 else 0)
    while n >= 1 and counts[0] + counts[1] > n - 1:
        counts[0 if counts[0] >= counts[1] else 1] -= 1
    return counts[0], counts[1]


def split_indices(labels: np.ndarray, ids, seed: int, val: float = 0.0, test: float = 0.0, stratify: bool = True) -> dict:
    """Index arrays (ascending) for "train", plus "val" / "test" when their fraction is > 0.

    ``labels`` are int (N,) or soft (N, K) (stratified by argmax); ``ids`` are the stable sample ids
    whose hashes rank the samples; ``val`` and ``test`` are fractions with val + test < 1.
    """
    val = _check_fraction("val", val)
    test = _check_fraction("test", test)
    if val + test >= 1.0:
        raise ValueError(f"val + test must be below 1 so that train keeps samples, got {val} + {test} = {val + test}")
    labels = np.asarray(labels)
    n = labels.shape[0]
    if len(ids) != n:
        raise ValueError(f"labels and ids disagree in length: {n} vs {len(ids)}")
    strata = hard_labels(labels)
    if not stratify:
        strata = np.zeros(n, dtype=np.int64)
    rank = Streams(sample_keys(seed, hash_ids(ids), 0)).child(_SPLIT_STEP).bits()
    assignment = np.zeros(n, dtype=np.int8)  # 0 train, 1 val, 2 test
    for cls in np.unique(strata):
        members = np.flatnonzero(strata == cls)
        # Lowest hashes go to test, then val; the index breaks ties between repeated ids.
        members = members[np.lexsort((members, rank[members]))]
        n_val, n_test = held_out_counts(members.shape[0], val, test)
        assignment[members[:n_test]] = 2
        assignment[members[n_test : n_test + n_val]] = 1
    out = {"train": np.flatnonzero(assignment == 0)}
    if val > 0:
        out["val"] = np.flatnonzero(assignment == 1)
    if test > 0:
        out["test"] = np.flatnonzero(assignment == 2)
    return out


def split_dataset(dataset: Dataset, seed: int, val: float = 0.0, test: float = 0.0, stratify: bool = True) -> dict:
    """Split ``dataset`` into {"train", "val" (if val > 0), "test" (if test > 0)} Datasets.

    Deterministic for a given seed; stratified per class (each class gives round(frac * n_class)
    samples, at least 1 when it has >= 2); samples keep their original order inside each split.
    Raises ValueError unless 0 <= val, test and val + test < 1.
    """
    parts = split_indices(dataset.labels, dataset.ids, seed, val, test, stratify)
    return {name: dataset.subset(index) for name, index in parts.items()}


def holdout(train, fraction: float, seed: int):
    """(fit, val) ``Dataset``s: ``fraction`` of each class of ``train`` held out, hash-ranked by ``seed``."""
    parts = split_indices(train.labels, train.ids, seed, val=fraction)
    return train.subset(parts["train"]), train.subset(parts.get("val", np.zeros(0, dtype=np.int64)))
