"""Shards: the unit of augmentation, writing, parallelism and resume.

A split's sources are cut, in order, into shards of at most ``shard_size`` output samples (without a
shard size a split is one shard: ``train.npz``). A shard job reads its sources, augments them (mixing
partners come from the same shard), writes its files and returns its manifest lines and counts. A job
is a pure function of its spec, so shards can run in any order, in worker processes or on a Dask
cluster, and produce the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augcli.datasets.base import Dataset
from augcli.engine import augment_dataset, plan
from augcli.io.writers import encode_png, manifest_line, pixel_sha256, png_relpath, png_stem, unique_names, write_npz

FORMATS = ("npz", "png", "tar")


@dataclass
class ShardSpec:
    """What one job does: augment ``rows`` of the source for ``split`` and write shard ``name``."""

    split: str
    name: str            # "train", "train-00003"
    rows: np.ndarray     # source rows, in output order
    copies: np.ndarray   # augmented copies per row
    keep_originals: bool


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


def run_shard(spec: ShardSpec, source, pipeline, fmt: str, folder: Path, batch_size: int, workers: int = 1,
              backend: str | None = None) -> ShardResult:
    """Augment and write one shard into ``folder``; returns what the manifest and report need.

    ``backend`` pins the kernel backend in a process that did not inherit the caller's (Dask workers).
    """
    if backend is not None:
        from augcli.transforms.functional.backend import set_backend

        set_backend(backend)
    part = Dataset(source.read(spec.rows), source.labels[spec.rows], source.ids[spec.rows], source.class_names)
    out = augment_dataset(part, pipeline, spec.copies, spec.keep_originals, batch_size, workers)
    result = ShardResult(spec.name, outputs=len(out), augmented=int((out.copy_index > 0).sum()),
                         fired=out.fired, suppressed=out.suppressed)
    names = source.class_names
    hard = out.classes
    result.counts = {c: int(n) for c, n in zip(names, np.bincount(hard, minlength=len(names)))}
    locations = WRITERS[fmt](folder, spec, out, source, result.files)
    sha = pixel_sha256(out.images)
    for i in range(len(out)):
        record = {"file": locations[i], "split": spec.split, "source": str(out.ids[i]), "class": names[hard[i]],
                  "label": int(hard[i]), "copy": int(out.copy_index[i]), "ops": out.ops[i] if out.ops else [],
                  "sha256": sha[i]}
        if out.labels.ndim == 2:
            record["soft_label"] = [round(float(v), 6) for v in out.labels[i]]
        result.manifest.append(manifest_line(record))
    return result


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_npz(folder: Path, spec: ShardSpec, out, source, files: dict) -> list[str]:
    name, names = f"{spec.name}.npz", source.class_names
    write_npz(folder / name, {
        "images": out.images, "labels": out.labels, "ids": out.ids.astype(str),
        "source_index": spec.rows[out.source_index], "copy_index": out.copy_index,
        "class_names": np.asarray(names, dtype=str),
    })
    files[name] = _file_sha(folder / name)
    return [f"{name}#{i}" for i in range(len(out))]


def png_names(source) -> tuple[list, list]:
    """(folder per class, file stem per source row), one-to-one, computed once per source.

    Two ids whose safe forms clash (``x.png`` and ``x.jpg``, names in other scripts, very long names)
    would otherwise write to the same file; computed over the whole source so every shard agrees.
    """
    cached = getattr(source, "_png_names", None)
    if cached is None:
        names = source.class_names
        hard = source.labels if source.labels.ndim == 1 else source.labels.argmax(axis=1)
        stems = unique_names([png_stem(i, names[c]) for i, c in zip(source.ids, hard)], list(source.ids), list(hard))
        cached = (unique_names(names), stems)
        source._png_names = cached
    return cached


def _write_png(folder: Path, spec: ShardSpec, out, source, files: dict) -> list[str]:
    dirs, stems = png_names(source)
    rows = spec.rows[out.source_index]
    locations = [png_relpath(spec.split, dirs[c], stems[r], k) for c, r, k in zip(out.classes, rows, out.copy_index)]
    for rel, image in zip(locations, out.images):
        data = encode_png(image)
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = hashlib.sha256(data).hexdigest()
    return locations


def _write_tar(folder: Path, spec: ShardSpec, out, source, files: dict) -> list[str]:
    """A WebDataset shard: ``<key>.png`` + ``<key>.cls`` + ``<key>.json`` per sample, reproducible bytes."""
    name, names = f"{spec.name}.tar", source.class_names
    keys = [f"{spec.name}_{i:06d}" for i in range(len(out))]
    with tarfile.open(folder / name, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, key in enumerate(keys):
            meta = {"source": str(out.ids[i]), "class": names[out.classes[i]], "copy": int(out.copy_index[i])}
            if out.labels.ndim == 2:
                meta["soft_label"] = [round(float(v), 6) for v in out.labels[i]]
            for suffix, data in ((".png", encode_png(out.images[i])), (".cls", str(int(out.classes[i])).encode()),
                                 (".json", json.dumps(meta, sort_keys=True).encode())):
                info = tarfile.TarInfo(key + suffix)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    files[name] = _file_sha(folder / name)
    return [f"{name}#{key}" for key in keys]


WRITERS = {"npz": _write_npz, "png": _write_png, "tar": _write_tar}


def outputs_per_split(specs: list[ShardSpec]) -> dict[str, int]:
    """Planned output samples per split (for --dry-run and progress)."""
    out: dict[str, int] = {}
    for s in specs:
        out[s.split] = out.get(s.split, 0) + len(plan(len(s.rows), s.copies, s.keep_originals)[0])
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
