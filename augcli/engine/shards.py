"""Shards: the unit of augmentation, writing, parallelism and resume.

A split's sources are cut, in order, into shards of at most ``shard_size`` output samples (without a
shard size a split is one shard: ``train.npz``). With ``output.shuffle`` the split's outputs, every
(source row, copy) pair, are first put in one seeded order (``engine.output_order``) and that order is
cut into shards, so each shard mixes classes and the copies of one image are spread over the split.
A shard job reads its sources, augments them (mixing partners come from the same shard), writes its
files and returns its manifest lines and counts. A job is a pure function of its spec, so shards can
run in any order, in worker processes or on a Dask cluster, and produce the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from augcli.datasets.base import Dataset
from augcli.engine.augment import augment_dataset, output_order, plan
from augcli.rng import hash_ids
from augcli.io.encoders import (class_dirs, encode_png, manifest_line, pixel_sha256, png_relpath, png_stem, safe_name,
                               unique_names, write_class_list, write_npz)

FORMATS = ("npz", "png", "tar")


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
    """Every (row, copy) output of the split in its seeded order (``engine.output_order``), cut into
    consecutive shards of ``shard_size`` outputs (one shard without a size). Holds the whole split's
    plan (about 40 bytes per output): check the plan's size (``budget.check_plan``) first."""
    source, copy = plan(len(rows), copies, keep_originals)
    order = output_order(seed, split, hash_ids(list(ids)), source, copy)
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


def run_shard(spec: ShardSpec, source, pipeline, fmt: str, folder: Path, batch_size: int, workers: int = 1,
              backend: str | None = None) -> ShardResult:
    """Augment and write one shard into ``folder``; returns what the manifest and report need.

    ``backend`` pins the kernel backend in a process that did not inherit the caller's (Dask workers).
    """
    if backend is not None:
        from augcli.backend import set_backend

        set_backend(backend)
    reads, items = shard_items(spec)
    part = Dataset(source.read(reads), source.labels[reads], source.ids[reads], source.class_names)
    out = augment_dataset(part, pipeline, spec.copies, spec.keep_originals, batch_size, workers, items=items)
    spec = replace(spec, rows=reads)  # from here on ``out.source_index`` indexes ``spec.rows``
    result = ShardResult(spec.name, outputs=len(out), augmented=int((out.copy_index > 0).sum()),
                         fired=out.fired, suppressed=out.suppressed)
    names = source.class_names
    hard, soft = output_labels(out, pipeline.mixes_labels)
    result.counts = {c: int(n) for c, n in zip(names, np.bincount(hard, minlength=len(names)))}
    locations = WRITERS[fmt](folder, spec, out, source, result.files, hard, soft)
    sha = pixel_sha256(out.images)
    result.identical = identical_copies(part.images, out, sha)
    soft_lists = _json_rows(soft)
    for i in range(len(out)):
        record = {"file": locations[i], "split": spec.split, "source": str(out.ids[i]), "class": names[hard[i]],
                  "label": int(hard[i]), "copy": int(out.copy_index[i]), "ops": out.ops[i] if out.ops else [],
                  "sha256": sha[i]}
        if soft_lists is not None:
            record["soft_label"] = soft_lists[i]
        result.manifest.append(manifest_line(record))
    if fmt == "png":
        result.metadata = _metadata_lines(locations, hard, soft_lists)
    return result


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


def _json_rows(soft: np.ndarray | None) -> list | None:
    # float64 of the 6-place value: JSON shows 0.3, not float32's 0.30000001192092896
    return None if soft is None else np.round(soft.astype(np.float64), 6).tolist()


def _metadata_lines(locations: list[str], hard: np.ndarray, soft: list | None) -> list[str]:
    """``metadata.jsonl`` lines of a PNG shard (Hugging Face ``imagefolder`` reads them as columns):
    ``file_name`` relative to the split folder, the hard ``label``, ``soft_label`` when mixing."""
    lines = []
    for i, rel in enumerate(locations):
        record = {"file_name": rel.split("/", 1)[1], "label": int(hard[i])}
        if soft is not None:
            record["soft_label"] = soft[i]
        lines.append(manifest_line(record))
    return lines


def identical_copies(originals: np.ndarray, out, sha: list[str]) -> int:
    """Augmented copies whose pixels equal their original's (every step skipped, as p < 1 allows):
    cleaning this output again would drop them as exact duplicates."""
    if out.images.shape[1:] != originals.shape[1:]:
        return 0  # a size-changing pipeline: no copy can equal its original
    first = np.asarray(pixel_sha256(originals))
    copies = np.flatnonzero(out.copy_index > 0)
    return int((np.asarray(sha)[copies] == first[out.source_index[copies]]).sum())


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_npz(folder: Path, spec: ShardSpec, out, source, files: dict, hard, soft) -> list[str]:
    """``labels`` int64 (N,) in every split; ``soft_labels`` float32 (N, K) beside them in the training
    split when the pipeline mixes (val/test are never mixed)."""
    name, names = f"{spec.name}.npz", source.class_names
    arrays = {"images": out.images, "labels": hard}
    if soft is not None and spec.split == "train":
        arrays["soft_labels"] = soft
    write_npz(folder / name, {
        **arrays, "ids": out.ids.astype(str),
        "source_index": spec.rows[out.source_index], "copy_index": out.copy_index,
        "class_names": np.asarray(names, dtype=str),
    })
    files[name] = _file_sha(folder / name)
    return [f"{name}#{i}" for i in range(len(out))]


def png_names(source, mixes: bool = False) -> tuple[list, list]:
    """(folder per class, file stem per source row), one-to-one, computed once per source.

    Two ids whose safe forms clash (``x.png`` and ``x.jpg``, names in other scripts, very long names)
    would otherwise write to the same file; computed over the whole source so every shard agrees.
    Folders sort in class order (``class_dirs``). When the pipeline ``mixes``, a mixed copy is filed
    under the class with the largest weight, which may not be its source's, so stems keep the source's
    class folder (``cat_001`` for ``cat/001.png``) and are made unique over all classes, not per class.
    """
    cached = getattr(source, "_png_names", {}).get(mixes)
    if cached is None:
        names = source.class_names
        hard = source.labels if source.labels.ndim == 1 else source.labels.argmax(axis=1)
        if mixes:
            stems = unique_names([png_stem(i, "") for i in source.ids], list(source.ids))
        else:
            stems = unique_names([png_stem(i, names[c]) for i, c in zip(source.ids, hard)], list(source.ids), list(hard))
        cached = (class_dirs(names), stems)
        source._png_names = {**getattr(source, "_png_names", {}), mixes: cached}
    return cached


def _write_png(folder: Path, spec: ShardSpec, out, source, files: dict, hard, soft) -> list[str]:
    """``<split>/<class>/<stem>__<copy>.png`` under the hard label's folder; every class folder of the
    split exists, empty or not, so folder-sorting readers number the classes alike in every split."""
    dirs, stems = png_names(source, soft is not None)
    for d in dirs:
        (folder / safe_name(spec.split) / d).mkdir(parents=True, exist_ok=True)
    rows = spec.rows[out.source_index]
    locations = [png_relpath(spec.split, dirs[c], stems[r], k) for c, r, k in zip(hard, rows, out.copy_index)]
    for rel, image in zip(locations, out.images):
        data = encode_png(image)
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = hashlib.sha256(data).hexdigest()
    return locations


def _write_tar(folder: Path, spec: ShardSpec, out, source, files: dict, hard, soft) -> list[str]:
    """A WebDataset shard: ``<key>.png`` + ``<key>.cls`` (the hard label) + ``<key>.json`` (source,
    class name, label, copy, ``soft_label`` when mixing) per sample, reproducible bytes."""
    name, names = f"{spec.name}.tar", source.class_names
    keys = [f"{spec.name}_{i:06d}" for i in range(len(out))]
    soft_lists = _json_rows(soft)
    with tarfile.open(folder / name, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, key in enumerate(keys):
            meta = {"source": str(out.ids[i]), "class": names[hard[i]], "label": int(hard[i]),
                    "copy": int(out.copy_index[i])}
            if soft_lists is not None:
                meta["soft_label"] = soft_lists[i]
            for suffix, data in ((".png", encode_png(out.images[i])), (".cls", str(int(hard[i])).encode()),
                                 (".json", json.dumps(meta, sort_keys=True).encode())):
                info = tarfile.TarInfo(key + suffix)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    files[name] = _file_sha(folder / name)
    return [f"{name}#{key}" for key in keys]


WRITERS = {"npz": _write_npz, "png": _write_png, "tar": _write_tar}


def write_split_files(folder: Path, fmt: str, results: list[ShardResult], class_names) -> list[str]:
    """What no single shard can write: the class list at the output root (every format: it lies beside
    the tar shards and the PNG split folders) and, in a PNG tree, each split's ``metadata.jsonl`` from
    its shards' lines in output order. Returns the root entries written."""
    written = write_class_list(folder, class_names)
    if fmt == "png":
        lines: dict[str, list] = {}
        for r in results:
            lines.setdefault(r.name.split("-", 1)[0], []).extend(r.metadata)
        for split, part in lines.items():
            text = "".join(f"{line}\n" for line in part)
            (folder / safe_name(split) / "metadata.jsonl").write_text(text, encoding="utf-8")
    return written


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
            if not target.is_file() or _file_sha(target) != sha:
                return None
        return result

    def record(self, result: ShardResult) -> None:
        # written to a temporary name and renamed, so a crash never leaves a half-written record
        tmp = self.dir / f"{result.name}.json.tmp"
        tmp.write_text(json.dumps(result.__dict__), encoding="utf-8")
        tmp.replace(self.dir / f"{result.name}.json")

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
