"""Batching and execution: turn (source index, copy index) work items into augmented images.

Work items are cut into index-ordered chunks of ``batch_size``; each chunk is augmented with the
per-sample stream keys of its items and written back at its own offset, so neither the batch size
nor the number of workers can change a single output byte.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from augcli.datasets.base import Dataset, hard_labels
from augcli.pipeline import Pipeline
from augcli.rng import hash_id, hash_ids, sample_keys
from augcli.transforms.mixing import MixPool, one_hot


@dataclass
class Augmented:
    """The output of one split: images and where each came from (source row, copy index)."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray          # source ids, one per output sample
    source_index: np.ndarray  # row in the split's source dataset
    copy_index: np.ndarray    # 0 = original, 1..K = augmented copies
    ops: list = field(default_factory=list)  # per output sample: transforms fired with params
    fired: dict = field(default_factory=dict)
    suppressed: dict = field(default_factory=dict)  # draws turned off by per-class rules
    source_labels: np.ndarray | None = None  # hard class of each output's source

    @property
    def classes(self) -> np.ndarray:
        """The class of each output sample's source (mixing makes ``labels`` soft; this stays hard)."""
        return self.source_labels if self.source_labels is not None else self.labels

    def __len__(self) -> int:
        return self.images.shape[0]


def plan(n_sources: int, copies, keep_originals: bool) -> tuple[np.ndarray, np.ndarray]:
    """Work items ordered by source then copy: (source_index, copy_index) arrays.

    ``copies`` is one count for every source or an array of per-source counts (class balancing).
    """
    first = 0 if keep_originals else 1
    counts = np.broadcast_to(np.asarray(copies, dtype=np.int64), (n_sources,))
    per_source = counts + 1 - first
    source = np.repeat(np.arange(n_sources, dtype=np.int64), per_source)
    # copy index = position within the source's run of items, offset by `first`
    starts = np.repeat(np.cumsum(per_source) - per_source, per_source)
    copy = np.arange(len(source), dtype=np.int64) - starts + first
    return source, copy


def output_order(seed: int, split: str, id_hashes: np.ndarray, source: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """The seeded output order of a split's work items (``plan``): a permutation of their positions.

    Each item is ranked by a hash of (seed, split name, source id, copy), so the order depends on
    nothing else (not workers, batches, shards or engine), copies of one source land far apart and
    every stretch of the order holds a mix of classes. The split name keeps the hash apart from the
    sample keys the augmentation draws from; a tie (a repeated id) keeps plan order.
    """
    salt = hash_id(f"augcli/output-order/{split}")
    keys = sample_keys(int(seed) ^ salt, np.asarray(id_hashes, dtype=np.uint64)[source], copy)
    return np.argsort(keys, kind="stable")


def balance_copies(labels: np.ndarray, num_classes: int, copies: int, keep_originals: bool, target) -> np.ndarray:
    """Per-source copy counts so that every class reaches ``target`` output samples ('max' or a count).

    The extra copies of a class are spread round-robin over its sources in dataset order, so the
    first sources of a class get one more copy than the last when the split is uneven.
    """
    hard = hard_labels(labels)
    n_class = np.bincount(hard, minlength=num_classes)
    base = n_class * (copies + (1 if keep_originals else 0))
    goal = base.max() if target == "max" else int(target)
    extra = np.maximum(goal - base, 0)
    rank = np.zeros(len(hard), dtype=np.int64)  # position of each source within its class
    order = np.argsort(hard, kind="stable")
    starts = np.concatenate([[0], np.cumsum(n_class)[:-1]])
    rank[order] = np.arange(len(hard)) - np.repeat(starts, n_class)
    per_source = np.where(n_class[hard] > 0, extra[hard] // np.maximum(n_class[hard], 1), 0)
    per_source += rank < (extra[hard] % np.maximum(n_class[hard], 1))
    return copies + per_source


def _run_chunk(bounds: tuple[int, int], job: dict):
    """Augment work items [lo, hi) of the job."""
    lo, hi = bounds
    src, copy = job["source"][lo:hi], job["copy"][lo:hi]
    images = job["images"][src]
    labels = job["labels"][src]
    augment = copy > 0  # copy 0 is the original, passed through untouched
    out = images.copy()
    ops: list = [[] for _ in range(hi - lo)]
    fired: dict = {}
    suppressed: dict = {}
    if augment.any():
        idx = np.flatnonzero(augment)
        pipe: Pipeline = job["pipeline"]
        keys = sample_keys(pipe.seed, job["id_hashes"][src[idx]], copy[idx])
        result, new_labels, params = pipe.run(images[idx], keys, labels[idx], job["pool"])
        out = _place(out, idx, result)
        if new_labels is not None:
            labels = labels.copy()
            labels[idx] = new_labels
        for j, rec in zip(idx, pipe.records(params)):
            ops[j] = rec
        fired = pipe.fire_counts(params)
        suppressed = params.get("suppressed", {})
    return out, labels, ops, fired, suppressed


def _place(out: np.ndarray, idx: np.ndarray, result: np.ndarray) -> np.ndarray:
    if result.shape[1:] != out.shape[1:]:
        # size-changing pipelines: originals cannot share the array, so every item must be augmented
        if len(idx) != out.shape[0]:
            raise ValueError("a size-changing pipeline needs keep_originals: false")
        return result
    out[idx] = result
    return out


def augment_dataset(
    dataset: Dataset,
    pipeline: Pipeline,
    copies,
    keep_originals: bool = True,
    batch_size: int = 256,
    mapper=None,
    progress: Callable[[int], None] | None = None,
    items: tuple[np.ndarray, np.ndarray] | None = None,
) -> Augmented:
    """Augment every sample ``copies`` times (plus the original as copy 0 if ``keep_originals``).

    ``copies`` may be per-source counts (see ``balance_copies``). ``items``, when given, are the
    work items themselves, (source_index, copy_index) in output order (a shuffled shard), and replace
    ``copies`` and ``keep_originals``. With mixing transforms the labels come back soft (float32 N×K,
    originals one-hot) and partners are drawn from this dataset. ``mapper(function, batches, job)``
    may run the batches elsewhere (the run's worker pool), yielding results in batch order.
    """
    source, copy = items if items is not None else plan(len(dataset), copies, keep_originals)
    out_shape = dataset.image_shape
    if (copy > 0).any() and len(dataset):
        out_shape = pipeline.output_shape((1,) + dataset.image_shape)[1:]
        if (copy == 0).any() and out_shape != dataset.image_shape:
            raise ValueError(
                f"the pipeline changes the image size {dataset.image_shape[:2]} -> {out_shape[:2]}; "
                "set augment.keep_originals: false or keep the size"
            )
    labels = dataset.labels
    pool = None
    if pipeline.mixes_labels:
        labels = one_hot(dataset.labels, len(dataset.class_names))
        pool = MixPool(dataset.images, labels)
    images = np.empty((len(source),) + tuple(out_shape), dtype=np.uint8)
    out_labels = np.empty((len(source),) + labels.shape[1:], dtype=labels.dtype)
    ops: list = []
    fired: dict = {}
    suppressed: dict = {}
    job = dict(images=dataset.images, labels=labels, pool=pool, source=source, copy=copy, pipeline=pipeline,
               id_hashes=hash_ids(dataset.ids))
    chunks = [(lo, min(lo + batch_size, len(source))) for lo in range(0, len(source), batch_size)]
    results = mapper(_run_chunk, chunks, job) if mapper else (_run_chunk(c, job) for c in chunks)
    with closing(results):  # on an interrupt or error: stop the workers now, before the caller cleans up
        for (lo, hi), (chunk, chunk_labels, chunk_ops, chunk_fired, chunk_supp) in zip(chunks, results):
            images[lo:hi] = chunk
            out_labels[lo:hi] = chunk_labels
            ops.extend(chunk_ops)
            add_counts(fired, chunk_fired)
            add_counts(suppressed, chunk_supp)
            if progress:
                progress(hi - lo)
    hard = hard_labels(dataset.labels)
    return Augmented(images, out_labels, dataset.ids[source], source, copy, ops, fired, suppressed, hard[source])


def add_counts(total: dict, part: dict) -> None:
    """Add ``part``'s counts into ``total`` (name -> count), keeping first-seen order."""
    for name, n in part.items():
        total[name] = total.get(name, 0) + n
