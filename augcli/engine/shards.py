"""Shards: the unit of augmentation, writing, parallelism and resume.

A split's sources are cut, in order, into shards of at most ``shard_size`` output samples (without a
shard size a split is one shard: ``train.npz``). With ``output.shuffle`` the split's outputs, every
(source row, copy) pair, are first put in one seeded order (``augment.output_order``) and that order is
cut into shards, so each shard mixes classes and the copies of one image are spread over the split.
A shard job reads its sources, augments them (mixing partners come from the same shard), writes its
files (through its ``io.formats`` writer) and returns its manifest lines and counts. A job is a pure
function of its spec, so shards can run in any order, in worker processes or on a Dask cluster, and
produce the same bytes. ``ProgressLog`` records finished shards so an interrupted run can resume.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from augcli.datasets.base import Dataset
from augcli.engine.augment import augment_dataset, output_order, plan
from augcli.io.atomic import write_file
from augcli.io.encoders import manifest_line, pixel_sha256
from augcli.io.formats import Format, Samples, file_sha256, soft_label_rows
from augcli.rng import hash_ids


@dataclass
class ShardSpec:
    """What one job does: augment ``rows`` of the source for ``split`` and write shard ``name``.

    A shuffled shard carries its work items explicitly: ``rows`` and ``copy`` give the source row and
    copy index of each output, in output order (a row repeats); its ``copies`` are then zeros and
    ``keep_originals`` true, so ``copies.sum() + len(rows)`` counts its outputs in both forms.
    """

    split: str
    name: str            # "train", "train-00003"
    rows: np.ndarray     # source rows, in output order
    copies: np.ndarray   # augmented copies per row
    keep_originals: bool
    copy: np.ndarray | None = None  # shuffled: copy index of each output (None: ``plan`` of rows, copies)

    @property
    def outputs(self) -> int:
        return int(self.copies.sum()) + (len(self.rows) if self.keep_originals else 0)


@dataclass
class ShardResult:
    name: str
    files: dict = field(default_factory=dict)      # relative path -> sha256 of the file bytes
    manifest: list = field(default_factory=list)   # JSON lines (str)
    counts: dict = field(default_factory=dict)     # class -> output samples
    fired: dict = field(default_factory=dict)
    suppressed: dict = field(default_factory=dict)
    outputs: int = 0
    augmented: int = 0
    metadata: list = field(default_factory=list)  # PNG tree: the split's metadata.jsonl lines (str)
    identical: int = 0   # augmented copies whose pixels equal their original's


def plan_shards(split: str, rows: np.ndarray, copies, keep_originals: bool, shard_size: int | None) -> list[ShardSpec]:
    """Cut ``rows`` into consecutive shards of at most ``shard_size`` outputs (at least one row each)."""
    copies = np.broadcast_to(np.asarray(copies, dtype=np.int64), (len(rows),)).copy()
    if shard_size is None:
        return [ShardSpec(split, split, rows, copies, keep_originals)]
    per_row = copies + (1 if keep_originals else 0)
    shards, start, total = [], 0, 0
    for i, n in enumerate(per_row.tolist()):
        if total and total + n > shard_size:
            shards.append((start, i))
            start, total = i, 0
        total += n
    shards.append((start, len(rows)))
    return [ShardSpec(split, f"{split}-{k:05d}", rows[a:b], copies[a:b], keep_originals) for k, (a, b) in enumerate(shards)]


def plan_shuffled(split: str, rows: np.ndarray, ids, copies, keep_originals: bool, shard_size: int | None,
                  seed: int) -> list[ShardSpec]:
    """Every (row, copy) output of the split in its seeded order (``augment.output_order``), cut into
    consecutive shards of ``shard_size`` outputs (one shard without a size). Holds the whole split's
    plan (about 40 bytes per output): check the plan's size (``budget.check_plan``) first."""
    source, copy = plan(len(rows), copies, keep_originals)
    order = output_order(seed, split, hash_ids(ids), source, copy)
    out_rows, out_copy = rows[source[order]], copy[order]
    del source, copy, order
    size = shard_size or max(len(out_rows), 1)
    return [ShardSpec(split, split if shard_size is None else f"{split}-{k:05d}", out_rows[a:a + size],
                      np.zeros(len(out_rows[a:a + size]), dtype=np.int64), True, out_copy[a:a + size])
            for k, a in enumerate(range(0, max(len(out_rows), 1), size))]


def shard_items(spec: ShardSpec) -> tuple[np.ndarray, tuple | None]:
    """(rows the shard reads, its explicit work items or None). A shuffled shard reads each of its
    rows once, in row order; those rows are also its mixing partners' pool."""
    if spec.copy is None:
        return spec.rows, None
    reads, index = np.unique(spec.rows, return_inverse=True)
    return reads, (index.reshape(-1).astype(np.int64), np.asarray(spec.copy, dtype=np.int64))


def run_shard(spec: ShardSpec, source, pipeline, writer: Format, folder: Path, batch_size: int,
              mapper=None, progress=None) -> ShardResult:
    """Augment and write one shard into ``folder``; returns what the manifest and report need.
    ``mapper`` may run its batches elsewhere (``augment_dataset``); ``progress(n)`` is called as
    each batch of n outputs is augmented."""
    reads, items = shard_items(spec)
    part = Dataset(source.read(reads), source.labels[reads], source.ids[reads], source.class_names)
    out = augment_dataset(part, pipeline, spec.copies, spec.keep_originals, batch_size, mapper, progress, items=items)
    spec = replace(spec, rows=reads)  # from here on ``out.source_index`` indexes ``spec.rows``
    result = ShardResult(spec.name, outputs=len(out), augmented=int((out.copy_index > 0).sum()),
                         fired=out.fired, suppressed=out.suppressed)
    names = source.class_names
    hard, soft = output_labels(out, pipeline.mixes_labels)
    result.counts = {c: int(n) for c, n in zip(names, np.bincount(hard, minlength=len(names)))}
    samples = Samples(out.images, out.ids, spec.rows[out.source_index], out.copy_index, hard, soft,
                      soft_label_rows(soft))
    locations, result.files = writer.write(folder, spec.split, spec.name, samples)
    sha = pixel_sha256(out.images)
    result.identical = identical_copies(part.images, out, sha)
    for i in range(len(out)):
        record = {"file": locations[i], "split": spec.split, "source": str(out.ids[i]), "class": names[hard[i]],
                  "label": int(hard[i]), "copy": int(out.copy_index[i]), "ops": out.ops[i] if out.ops else [],
                  "sha256": sha[i]}
        if samples.soft_rows is not None:
            record["soft_label"] = samples.soft_rows[i]
        result.manifest.append(manifest_line(record))
    result.metadata = writer.metadata(locations, samples)
    return result


def output_items(spec: ShardSpec) -> tuple[np.ndarray, np.ndarray]:
    """(source row, copy index) of each of the shard's outputs, in output order."""
    if spec.copy is not None:
        return spec.rows, np.asarray(spec.copy, dtype=np.int64)
    source, copy = plan(len(spec.rows), spec.copies, spec.keep_originals)
    return spec.rows[source], copy


def relist(results: list[ShardResult], executed: list[ShardSpec], listed: list[ShardSpec]) -> None:
    """Put the manifest and metadata lines of the ``executed`` shards' ``results`` in the output
    order of ``listed``: the same outputs of the same splits, in the same split order, cut and ordered
    otherwise (a PNG tree runs in source order what it lists in a shuffled one). Each result keeps its
    number of lines; the lines of the whole output, read in result order, follow ``listed``."""
    def items(specs):
        parts = [output_items(s) for s in specs]
        return (np.concatenate([r for r, _ in parts]).astype(np.int64) if parts else np.zeros(0, np.int64),
                np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.int64))

    (done_rows, done_copies), (rows, copies) = items(executed), items(listed)
    span = int(done_copies.max(initial=0)) + 1  # a row is in one split only: (row, copy) names an output
    done, wanted = done_rows * span + done_copies, rows * span + copies
    order = np.argsort(done, kind="stable")
    take = order[np.searchsorted(done, wanted, sorter=order)]
    for field_name in ("manifest", "metadata"):
        lines = [line for r in results for line in getattr(r, field_name)]
        if not lines:
            continue
        lines = [lines[i] for i in take]
        start = 0
        for r in results:
            n = len(getattr(r, field_name))
            setattr(r, field_name, lines[start:start + n])
            start += n


def output_labels(out, mixes: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(hard int64 (N,), soft float32 (N, K) or None) of a shard's outputs.

    The hard label is always a class index: for a mixed sample the class with the largest weight,
    the lowest index on a tie (``argmax``). Soft labels exist only when the pipeline mixes; they are
    rounded to 6 places once, here, so every file that holds them (npz, tar ``.json``,
    ``metadata.jsonl``, the manifest) has the same numbers and the same argmax as ``hard``.
    """
    if out.labels.ndim == 1:
        return out.labels.astype(np.int64), None
    soft = np.round(out.labels, 6).astype(np.float32)
    return soft.argmax(axis=1).astype(np.int64), (soft if mixes else None)


def identical_copies(originals: np.ndarray, out, sha: list[str]) -> int:
    """Augmented copies whose pixels equal their original's (every step skipped, as p < 1 allows):
    cleaning this output again would drop them as exact duplicates."""
    if out.images.shape[1:] != originals.shape[1:]:
        return 0  # a size-changing pipeline: no copy can equal its original
    first = np.asarray(pixel_sha256(originals))
    copies = np.flatnonzero(out.copy_index > 0)
    return int((np.asarray(sha)[copies] == first[out.source_index[copies]]).sum())


def finish_output(folder: Path, writer: Format, results: list[ShardResult]) -> list[str]:
    """What no single shard can write (``Format.finish``), from the shards' metadata lines per split
    in output order. Returns the root entries written."""
    metadata: dict[str, list] = {}
    for r in results:
        metadata.setdefault(r.name.split("-", 1)[0], []).extend(r.metadata)
    return writer.finish(folder, metadata)


def outputs_per_split(specs: list[ShardSpec]) -> dict[str, int]:
    """Planned output samples per split (for --dry-run and progress)."""
    out: dict[str, int] = {}
    for s in specs:
        out[s.split] = out.get(s.split, 0) + s.outputs
    return out


class ProgressLog:
    """Finished shards of a partial output (``.parts/<shard>.json``), so a rerun can skip them.

    A shard counts as done only if every file it wrote still has the recorded sha256.
    """

    def __init__(self, folder: Path):
        self.dir = folder / ".parts"
        self.dir.mkdir(exist_ok=True)
        self.folder = folder

    def done(self, name: str) -> ShardResult | None:
        path = self.dir / f"{name}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = ShardResult(**data)
        except (OSError, ValueError, TypeError):
            return None
        for rel, sha in result.files.items():
            target = self.folder / rel
            if not target.is_file() or file_sha256(target) != sha:
                return None
        return result

    def record(self, result: ShardResult) -> None:
        # atomic: a crash never leaves a half-written record
        write_file(self.dir / f"{result.name}.json", json.dumps(result.__dict__).encode("utf-8"))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
