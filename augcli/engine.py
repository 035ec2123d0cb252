"""Batching and execution: turn (source index, copy index) work items into augmented images.

Work items are cut into index-ordered chunks of ``batch_size``; each chunk is augmented with the
per-sample stream keys of its items and written back at its own offset, so neither the batch size
nor the number of workers can change a single output byte.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from augcli.datasets.base import Dataset
from augcli.pipeline import Pipeline
from augcli.rng import hash_ids, sample_keys


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

    def __len__(self) -> int:
        return self.images.shape[0]


def plan(n_sources: int, copies: int, keep_originals: bool) -> tuple[np.ndarray, np.ndarray]:
    """Work items ordered by source then copy: (source_index, copy_index) arrays."""
    first = 0 if keep_originals else 1
    per_source = copies + 1 - first
    source = np.repeat(np.arange(n_sources, dtype=np.int64), per_source)
    copy = np.tile(np.arange(first, copies + 1, dtype=np.int64), n_sources)
    return source, copy


# Worker processes read the job from this module global (inherited by fork), so the dataset is not
# pickled once per chunk.
_JOB: dict = {}


def _run_chunk(bounds: tuple[int, int]):
    job = _JOB
    lo, hi = bounds
    src, copy = job["source"][lo:hi], job["copy"][lo:hi]
    images = job["images"][src]
    augment = copy > 0  # copy 0 is the original, passed through untouched
    out = images.copy()
    ops: list = [[] for _ in range(hi - lo)]
    fired: dict = {}
    if augment.any():
        idx = np.flatnonzero(augment)
        pipe: Pipeline = job["pipeline"]
        keys = sample_keys(pipe.seed, job["id_hashes"][src[idx]], copy[idx])
        result, params = pipe.run(images[idx], keys)
        out = _place(out, idx, result)
        for j, rec in zip(idx, pipe.records(params)):
            ops[j] = rec
        fired = pipe.fire_counts(params)
    return out, ops, fired


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
    copies: int,
    keep_originals: bool = True,
    batch_size: int = 256,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Augmented:
    """Augment every sample ``copies`` times (plus the original as copy 0 if ``keep_originals``)."""
    source, copy = plan(len(dataset), copies, keep_originals)
    out_shape = dataset.image_shape
    if copies > 0 and len(dataset):
        out_shape = pipeline.output_shape((1,) + dataset.image_shape)[1:]
        if keep_originals and out_shape != dataset.image_shape:
            raise ValueError(
                f"the pipeline changes the image size {dataset.image_shape[:2]} -> {out_shape[:2]}; "
                "set augment.keep_originals: false or keep the size"
            )
    images = np.empty((len(source),) + tuple(out_shape), dtype=np.uint8)
    ops: list = []
    fired: dict = {}
    _JOB.update(
        images=dataset.images, source=source, copy=copy, pipeline=pipeline, id_hashes=hash_ids(list(dataset.ids))
    )
    chunks = [(lo, min(lo + batch_size, len(source))) for lo in range(0, len(source), batch_size)]
    try:
        for (lo, hi), (chunk, chunk_ops, chunk_fired) in zip(chunks, _map(chunks, workers)):
            images[lo:hi] = chunk
            ops.extend(chunk_ops)
            for name, n in chunk_fired.items():
                fired[name] = fired.get(name, 0) + n
            if progress:
                progress(hi - lo)
    finally:
        _JOB.clear()
    labels = dataset.labels[source]
    return Augmented(images, labels, dataset.ids[source], source, copy, ops, fired)


def _map(chunks, workers: int):
    if workers <= 1 or len(chunks) <= 1:
        return map(_run_chunk, chunks)
    # fork shares the read-only job with the workers; results come back in chunk order.
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return _ordered(pool, chunks)


def _ordered(pool: ProcessPoolExecutor, chunks):
    with pool:
        yield from pool.map(_run_chunk, chunks)
