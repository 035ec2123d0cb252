"""Exact duplicates: samples whose decoded pixels are byte-for-byte identical."""

from __future__ import annotations

import numpy as np

from augcli.datasets.base import Dataset


def _row_groups(images: np.ndarray):
    """(first index, inverse) of np.unique over each image viewed as one opaque byte row."""
    n = images.shape[0]
    flat = np.ascontiguousarray(images).reshape(n, -1)
    if flat.shape[1] == 0:  # zero-size images are all equal; np.void needs at least one byte
        return np.zeros(min(n, 1), dtype=np.int64), np.zeros(n, dtype=np.int64)
    # One np.void scalar per image lets np.unique sort and compare whole images with memcmp.
    rows = flat.view(np.dtype((np.void, flat.shape[1] * flat.dtype.itemsize))).reshape(n)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(n).astype(np.int64)


def duplicates_of(candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean mask over ``candidates``: True where an image's bytes equal some ``reference`` image.

    Both are arrays of images of one shape and dtype (e.g. uint8 (N, H, W, C)); one sort of the
    stacked rows, no pair loop.
    """
    if candidates.shape[0] == 0 or reference.shape[0] == 0 or candidates.shape[1:] != reference.shape[1:]:
        return np.zeros(candidates.shape[0], dtype=bool)
    _, inverse = _row_groups(np.concatenate([reference, candidates]))
    return np.isin(inverse[reference.shape[0]:], inverse[: reference.shape[0]])


def exact_duplicate_groups(images: np.ndarray) -> list:
    """Index arrays (ascending) of every set of >= 2 identical images, ordered by their first index.

    ``images`` is any array whose first axis is the sample axis (e.g. uint8 (N, H, W, C)).
    """
    images = np.asarray(images)
    if images.shape[0] == 0:
        return []
    first, inverse = _row_groups(images)
    counts = np.bincount(inverse, minlength=first.shape[0])
    order = np.argsort(inverse, kind="stable")  # members of one group end up adjacent, ascending
    members = np.split(order, np.cumsum(counts)[:-1])
    repeated = np.flatnonzero(counts > 1)
    repeated = repeated[np.argsort(first[repeated], kind="stable")]
    return [members[g] for g in repeated]


def drop_exact_duplicates(dataset: Dataset, keys: np.ndarray | None = None):
    """Keep the first occurrence (lowest index) of each distinct image; order is otherwise kept.

    ``keys`` (one row per sample, e.g. a hash of full-resolution pixels) replace the pixels as the
    thing compared, for datasets whose ``images`` are only thumbnails.

    Returns ``(cleaned dataset, records)``: one record per removed sample, in index order,
    ``{"id", "reason": "exact_duplicate", "duplicate_of": kept id, "label_conflict": bool}`` where
    ``label_conflict`` is True when the removed sample's label (hard or soft) differs from the kept one's.
    """
    n = len(dataset)
    if n == 0:
        return dataset.subset(np.arange(0)), []
    first, inverse = _row_groups(dataset.images if keys is None else keys)
    kept_of = first[inverse]  # for every sample, the index of the copy that is kept
    removed = np.flatnonzero(kept_of != np.arange(n))
    kept = kept_of[removed]
    differs = dataset.labels[removed] != dataset.labels[kept]
    if differs.ndim == 2:
        differs = differs.any(axis=1)
    records = [
        {"id": str(dataset.ids[r]), "reason": "exact_duplicate", "duplicate_of": str(dataset.ids[k]), "label_conflict": bool(c)}
        for r, k, c in zip(removed.tolist(), kept.tolist(), differs.tolist())
    ]
    cleaned = dataset.subset(np.flatnonzero(kept_of == np.arange(n)))
    cleaned.skipped = list(dataset.skipped)  # subset() drops them; the load-time list still applies
    return cleaned, records
