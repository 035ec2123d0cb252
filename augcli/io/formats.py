"""The output formats: how one shard's samples become files (``.npz``, a PNG class tree, a
WebDataset ``.tar``), and what a split needs that no single shard can write.

A format object is made once per run, before any shard runs, and travels with the shard jobs
(to worker processes and Dask workers too). Whatever must agree across shards and is computed over
the whole source, the PNG tree's file names, is computed there, once.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from augcli.datasets.base import hard_labels
from augcli.io.encoders import (ImageEncoder, class_dirs, manifest_line, png_relpath, png_stem, safe_name,
                                unique_names, write_class_list, write_npz)

FORMATS = ("npz", "png", "tar")


class Samples(NamedTuple):
    """One shard's outputs as the formats see them, in output order."""

    images: np.ndarray         # uint8 (N, H, W, C)
    ids: np.ndarray            # source id of each output
    rows: np.ndarray           # source row of each output
    copies: np.ndarray         # 0 = original, 1..K = augmented copy
    hard: np.ndarray           # int64 (N,) class index
    soft: np.ndarray | None    # float32 (N, K), rounded to 6 places, when the pipeline mixes
    soft_rows: list | None     # ``soft`` as JSON numbers (``soft_label_rows``)

    def __len__(self) -> int:
        return len(self.images)


def soft_label_rows(soft: np.ndarray | None) -> list | None:
    """Soft labels as JSON numbers: float64 of the 6-place value, so JSON shows 0.3, not float32's
    0.30000001192092896."""
    return None if soft is None else np.round(soft.astype(np.float64), 6).tolist()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Format:
    """One output format. ``write`` puts a shard into ``folder`` and returns (the location of each
    sample, {file: sha256 of its bytes}); ``finish`` writes the files of the whole output."""

    name = ""

    def __init__(self, class_names):
        self.class_names = list(class_names)

    def write(self, folder: Path, split: str, shard: str, samples: Samples) -> tuple[list[str], dict]:
        raise NotImplementedError

    def metadata(self, locations: list[str], samples: Samples) -> list[str]:
        """Lines the format keeps per split besides the manifest (none but the PNG tree's)."""
        return []

    def finish(self, folder: Path, metadata: dict[str, list[str]]) -> list[str]:
        """The class list at the output root (it lies beside the shard files and the PNG split
        folders in every format); returns the root entries written."""
        return write_class_list(folder, self.class_names)


class Npz(Format):
    """``labels`` int64 (N,) in every split; ``soft_labels`` float32 (N, K) beside them in the training
    split when the pipeline mixes (val/test are never mixed)."""

    name = "npz"

    def write(self, folder, split, shard, samples):
        name = f"{shard}.npz"
        arrays = {"images": samples.images, "labels": samples.hard}
        if samples.soft is not None and split == "train":
            arrays["soft_labels"] = samples.soft
        write_npz(folder / name, {
            **arrays, "ids": samples.ids.astype(str), "source_index": samples.rows, "copy_index": samples.copies,
            "class_names": np.asarray(self.class_names, dtype=str),
        })
        return [f"{name}#{i}" for i in range(len(samples))], {name: file_sha256(folder / name)}


class PngTree(Format):
    """``<split>/<class>/<stem>__<copy>.png`` (or ``.jpg``, ``.webp``: ``encoder``) under the hard label's
    folder; every class folder of a split exists, empty or not, so folder-sorting readers number the
    classes alike in every split.

    The folder per class and the file stem per source row are one-to-one and made over the whole
    source, so every shard agrees: two ids whose safe forms clash (``x.png`` and ``x.jpg``, names in
    other scripts, very long names) would otherwise write to the same file. Folders sort in class
    order (``class_dirs``). When the pipeline ``mixes``, a mixed copy is filed under the class with
    the largest weight, which may not be its source's, so stems keep the source's class folder
    (``cat_001`` for ``cat/001.png``) and are made unique over all classes, not per class.
    """

    name = "png"

    def __init__(self, class_names, ids, labels, mixes: bool, encoder: ImageEncoder | None = None):
        super().__init__(class_names)
        self.encoder = encoder or ImageEncoder()
        self.dirs = class_dirs(self.class_names)
        if mixes:
            self.stems = unique_names([png_stem(i, "") for i in ids], list(ids))
        else:
            hard = hard_labels(labels)
            self.stems = unique_names([png_stem(i, self.class_names[c]) for i, c in zip(ids, hard)], list(ids),
                                      list(hard))

    def write(self, folder, split, shard, samples):
        for d in self.dirs:
            (folder / safe_name(split) / d).mkdir(parents=True, exist_ok=True)
        locations = [png_relpath(split, self.dirs[c], self.stems[r], k, self.encoder.extension)
                     for c, r, k in zip(samples.hard, samples.rows, samples.copies)]
        files = {}
        for rel, image in zip(locations, samples.images):
            data = self.encoder.encode(image)
            (folder / rel).write_bytes(data)
            files[rel] = hashlib.sha256(data).hexdigest()
        return locations, files

    def metadata(self, locations, samples):
        """``metadata.jsonl`` lines (Hugging Face ``imagefolder`` reads them as columns): ``file_name``
        relative to the split folder, the hard ``label``, ``soft_label`` when mixing."""
        lines = []
        for i, rel in enumerate(locations):
            record = {"file_name": rel.split("/", 1)[1], "label": int(samples.hard[i])}
            if samples.soft_rows is not None:
                record["soft_label"] = samples.soft_rows[i]
            lines.append(manifest_line(record))
        return lines

    def finish(self, folder, metadata):
        """The class list, and each split's ``metadata.jsonl`` from its shards' lines in output order."""
        written = super().finish(folder, metadata)
        for split, lines in metadata.items():
            text = "".join(f"{line}\n" for line in lines)
            (folder / safe_name(split) / "metadata.jsonl").write_text(text, encoding="utf-8")
        return written


class Tar(Format):
    """A WebDataset shard: ``<key>.png`` (or ``.jpg``, ``.webp``: ``encoder``) + ``<key>.cls`` (the hard
    label) + ``<key>.json`` (source, class name, label, copy, ``soft_label`` when mixing) per sample,
    reproducible bytes."""

    name = "tar"

    def __init__(self, class_names, encoder: ImageEncoder | None = None):
        super().__init__(class_names)
        self.encoder = encoder or ImageEncoder()

    def write(self, folder, split, shard, samples):
        name = f"{shard}.tar"
        keys = [f"{shard}_{i:06d}" for i in range(len(samples))]
        with tarfile.open(folder / name, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i, key in enumerate(keys):
                for suffix, data in self._members(samples, i):
                    info = tarfile.TarInfo(key + suffix)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
        return [f"{name}#{key}" for key in keys], {name: file_sha256(folder / name)}

    def _members(self, samples: Samples, i: int) -> tuple:
        label = int(samples.hard[i])
        meta = {"source": str(samples.ids[i]), "class": self.class_names[label], "label": label,
                "copy": int(samples.copies[i])}
        if samples.soft_rows is not None:
            meta["soft_label"] = samples.soft_rows[i]
        return ((self.encoder.extension, self.encoder.encode(samples.images[i])), (".cls", str(label).encode()),
                (".json", json.dumps(meta, sort_keys=True).encode()))


def image_encoder(output: dict | None) -> ImageEncoder:
    """How the strategy's ``output`` section (validated; None: the defaults) has images stored."""
    output = output or {}
    image_format = output.get("image_format", "png")
    setting = output.get("png_compression") if image_format == "png" else output.get("quality")
    return ImageEncoder(image_format, setting)


def output_format(name: str, source, mixes: bool, output: dict | None = None) -> Format:
    """The writer of format ``name`` for ``source`` (its ids, labels and class names); ``mixes``:
    whether the pipeline mixes labels (it decides how PNG files are named); ``output``: the strategy's
    output section (how images are encoded; None: the defaults)."""
    if name == "png":
        return PngTree(source.class_names, source.ids, source.labels, mixes, image_encoder(output))
    if name == "tar":
        return Tar(source.class_names, image_encoder(output))
    return Npz(source.class_names)
