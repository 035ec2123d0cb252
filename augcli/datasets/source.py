"""Where a run's pixels come from, read by rows so big folders never sit in memory whole.

``open_source`` returns a ``Source`` (``read(rows)`` gives full-resolution images) and a *clean
view*: a ``Dataset`` the cleaning stage and the split work on. For digits and ``.npz`` sources the
view is the data itself. For image folders it is built in one streaming pass: every file is decoded
once, its exact-duplicate key (a hash of the full-resolution pixels) is kept, and the image is kept
only as a 32×32 thumbnail (in colour for colour sources: the label-error check uses colour; the
perceptual hash and the outlier check look at its luma), which is all the cleaning checks need.
The scan also keeps every decoded image in a *source cache* (``cache_dir``: a raw pixel file that
the augmentation pass maps and reads by row) when it fits in a quarter of that disk's free space and
half of the free memory, so every source is decoded once per run, however its copies are spread over
shards; the run then checks at its end that no file's size or modification time changed since the
scan. Without the cache the augmentation pass decodes each file again, shard by shard, and checks
each image against its key from the scan. Either way a file that changed during the run is a data
error and its new pixels are never used (its cleaning verdicts were made on the old pixels).

``Source.fingerprint`` identifies the input a run's output is made from (a resumed run discards a
partial output made from another input). It reuses what loading computes anyway: for folders the
listed files' sizes and modification times and the exact keys; for arrays a hash of the arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass

import numpy as np

from augcli.datasets import Dataset, load_source, source_kind
from augcli.datasets.convert import resize_images
from augcli.datasets.folder import DEFAULT_MAX_PIXELS, decode_files, list_folder, listing_skips
from augcli.budget import available_memory
from augcli.errors import DataError
from augcli.rng import id_list

THUMB = 32           # thumbnail side for cleaning folder sources
SCAN_CHUNK = 64      # files decoded at once in the scan pass (bounds memory)


class Source:
    """Rows of a dataset: ``ids``, ``labels``, ``class_names`` and ``read(rows)``."""

    ids: np.ndarray
    labels: np.ndarray
    class_names: list
    image_shape: tuple

    def read(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, ids) -> np.ndarray:
        """Row numbers of the given ids (all must exist)."""
        index = {str(i): r for r, i in enumerate(id_list(self.ids))}
        return np.array([index[str(i)] for i in id_list(ids)], dtype=np.int64)

    def dataset(self, rows: np.ndarray) -> Dataset:
        """Full-resolution samples at ``rows`` as a Dataset."""
        return Dataset(self.read(rows), self.labels[rows], self.ids[rows], self.class_names)

    def fingerprint(self) -> dict:  # pragma: no cover - interface
        """What identifies this input: ``{"kind", "samples", "sha256"}`` (small, JSON)."""
        raise NotImplementedError

    def verify(self) -> None:
        """Raise DataError if the input changed since it was loaded in a way ``read`` cannot see."""


class ArraySource(Source):
    """An in-memory dataset (digits, .npz); ``stamp`` is the archive's (size, mtime_ns) if any."""

    def __init__(self, data: Dataset, kind: str = "arrays", stamp: tuple | None = None):
        self.data = data
        self.ids, self.labels, self.class_names = data.ids, data.labels, data.class_names
        self.image_shape = data.image_shape
        self.kind, self.stamp = kind, stamp

    def read(self, rows):
        return self.data.images[rows]

    def fingerprint(self) -> dict:
        digest = hashlib.sha256(_canonical([self.kind, self.stamp, self.class_names]))
        for array in (self.data.images, self.labels, self.ids.astype(str)):
            array = np.ascontiguousarray(array)
            digest.update(_canonical([array.dtype.str, array.shape]))
            digest.update(array.data)  # the pixels as loaded: another archive with the same stamp still differs
        return {"kind": self.kind, "samples": len(self), "sha256": digest.hexdigest()}


@dataclass
class FolderSource(Source):
    """An image folder, decoded on demand; ``files`` are the (id, path, label) triples that decoded.

    ``keys`` are the scan's exact keys (uint8 (N, 16), compact enough to pickle to every worker);
    ``digest`` is the scan's hash of the listing and the keys (see ``scan_folder``).
    """

    files: list
    size: tuple
    color_mode: str
    max_pixels: int
    class_names: list
    keys: np.ndarray | None = None
    digest: str | None = None
    stamps: np.ndarray | None = None     # (N, 2) size and mtime_ns of each file when it was scanned
    cache: dict | None = None            # the source cache ({"path", "shape"}: ``_new_cache``), if any
    positions: np.ndarray | None = None  # each row's place in the cache
    resize: str = "stretch"              # how other sizes are brought to ``size`` (folder.fit_size)

    def __post_init__(self):
        self.ids = np.asarray([f[0] for f in self.files])
        self.labels = np.asarray([f[2] for f in self.files], dtype=np.int64)
        self.image_shape = (*self.size, 1 if self.color_mode == "gray" else 3)

    def read(self, rows):
        if self.cache is not None:
            pixels = np.memmap(self.cache["path"], np.uint8, "r", shape=self.cache["shape"])
            return np.asarray(pixels)[self.positions[np.asarray(rows)]]  # one copy, out of the page cache
        images, kept, skipped, _, _ = decode_files([self.files[r] for r in rows], self.size, self.color_mode, self.max_pixels,
                                                   resize=self.resize)
        if skipped:  # the file changed since the scan
            first = skipped[0]
            raise DataError(f"{first.id}: {first.reason} on the second read ({first.detail}); was the folder modified during the run?")
        if self.keys is not None:
            changed = np.flatnonzero((exact_keys(images) != self.keys[rows]).any(axis=1))
            if len(changed):  # replaced by another valid image: cleaning judged the old pixels
                path = self.files[rows[changed[0]]][1]
                raise DataError(f"{path}: changed during the run: its pixels differ from the first pass; "
                                "expected the input folder to stay unchanged until the run ends")
        return images

    def verify(self) -> None:
        """With the source cache: a data error if any file's size or modification time is not what
        the scan saw (without it, ``read`` checks each image's pixels as it decodes them again)."""
        if self.cache is None:
            return
        for (_, path, _), stamp in zip(self.files, self.stamps.tolist()):
            if _stamp(path) != tuple(stamp):
                raise DataError(f"{path}: changed during the run: its size or modification time differs from "
                                "the first pass; expected the input folder to stay unchanged until the run ends")

    def fingerprint(self) -> dict:
        digest = hashlib.sha256(_canonical([self.digest, list(self.size), self.color_mode, self.class_names]))
        return {"kind": "folder", "samples": len(self), "sha256": digest.hexdigest()}


def _canonical(value) -> bytes:
    """JSON bytes of ``value`` for hashing (ids with undecodable bytes become escapes, not errors)."""
    return json.dumps(value, sort_keys=True, default=list).encode()


def _stamp(path) -> tuple[int, int] | None:
    """(size, mtime_ns) of the file ``path`` leads to; None if it cannot be read (loading says why)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns


def exact_keys(images: np.ndarray) -> np.ndarray:
    """A 16-byte hash of each image's pixels, as uint8 (N, 16): exact duplicates share a key.
    SHA-256 cut to 16 bytes: with the SHA extensions of today's CPUs it hashes ~2x faster than
    BLAKE2b, and every source is hashed on both passes over a folder."""
    flat = np.ascontiguousarray(images).reshape(images.shape[0], -1)
    digests = b"".join(hashlib.sha256(row).digest()[:16] for row in flat)
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16)


def _thumbnails(images: np.ndarray) -> np.ndarray:
    """32×32 thumbnails (3 KiB each in colour): what the hash and feature-based checks need. Colour
    is kept because the label-error check uses it (photo classes often differ by colour first); the
    hash and the other checks work on the luma, identical to a gray thumbnail's."""
    if images.shape[1] <= THUMB and images.shape[2] <= THUMB:
        return images
    return resize_images(images, (THUMB, THUMB))


def serial_map(function, tasks, job):
    """``function(task, job)`` for every task, here, in order: the default ``mapper`` of ``scan_folder``."""
    return (function(task, job) for task in tasks)


def scan_folder(root, image_size, color_mode, strict: bool, max_pixels: int, extensions=None, limit=None,
                follow_symlinks: bool = False, mapper=serial_map, cache_dir=None, progress=None, resize="stretch"):
    """One decoding pass over a folder: (FolderSource, clean view of thumbnails, exact keys).

    The files are scanned in chunks of SCAN_CHUNK by ``mapper(scan_chunk, chunks, job)``, which may
    run them anywhere (worker processes, a Dask cluster) but yields the results in chunk order: the
    result is the same, byte for byte, whoever scanned the chunks. With ``cache_dir`` (a folder every
    chunk's process can write) the decoded images go to the source cache there, if it fits.
    ``progress(label, total)`` gives a ``tick(files)`` called as each chunk comes back.
    """
    listing = list_folder(root, extensions, follow_symlinks)
    files = listing.files[:limit] if limit else listing.files
    color_mode = color_mode or "rgb"
    size = image_size if image_size is not None else _first_size(files, color_mode, max_pixels, strict)
    chunks = [(lo, files[lo:lo + SCAN_CHUNK]) for lo in range(0, len(files), SCAN_CHUNK)]
    job = {"size": size, "color_mode": color_mode, "max_pixels": max_pixels, "strict": strict, "resize": resize,
           "note_resized": image_size is None,
           "cache": _new_cache(cache_dir, len(files), size, color_mode)}
    thumbs, keys, kept_files, stamps, positions, warned = [], [], [], [], [], []
    skipped = listing_skips(listing, strict)
    digest = hashlib.sha256()  # fed as the scan goes: the fingerprint costs no pass of its own
    tick = progress("scan", len(files), "checking") if progress else (lambda n: None)
    for (lo, chunk), part in zip(chunks, mapper(scan_chunk, chunks, job)):
        tick(len(chunk))
        skipped += part.skipped
        warned += part.warned
        if len(part.kept):
            thumbs.append(part.thumbs)
            keys.append(part.keys)
            kept_files += [chunk[i] for i in part.kept]
            stamps.append(part.stamps)
            positions.append(lo + np.asarray(part.kept, dtype=np.int64))
            digest.update(part.listing)
            digest.update(part.keys.data)
    if not kept_files:
        what = f"no readable images ({len(skipped)} skipped)" if files else "no image files"
        raise DataError(f"{listing.root}: {what} in its class sub-folders; expected images with extensions {', '.join(listing.exts)}")
    keys = np.concatenate(keys)
    source = FolderSource(kept_files, tuple(size), color_mode, max_pixels, listing.class_names, keys, digest.hexdigest(),
                          np.concatenate(stamps), job["cache"], np.concatenate(positions), resize)
    view = Dataset(np.concatenate(thumbs), source.labels, source.ids, listing.class_names, str(listing.root), skipped, warned)
    return source, view, keys


def _first_size(files: list, color_mode: str, max_pixels: int, strict: bool):
    """The output size when none is configured: the first readable file's (None if none is). Decided
    before the chunks are sent out, so that every chunk resizes to it, wherever it runs. Only that
    file's size is kept: its chunk decodes it again and reports the skips before it."""
    for f in files:
        _, kept, _, _, size = decode_files([f], None, color_mode, max_pixels, strict)
        if len(kept):
            return size
    return None


def _new_cache(folder, files: int, size, color_mode: str) -> dict | None:
    """An empty source cache for ``files`` images of ``size`` in ``folder`` ({"path", "shape"}), or
    None: no folder, no size, or more than a quarter of the disk's free space or half the free memory
    (a cache that does not stay in the page cache is read back from disk; decoding may be cheaper)."""
    if folder is None or size is None or not files:
        return None
    shape = (files, int(size[0]), int(size[1]), 1 if color_mode == "gray" else 3)
    need = int(np.prod(shape, dtype=np.int64))
    if need > shutil.disk_usage(folder).free // 4 or need > available_memory() // 2:
        return None
    path = os.path.join(folder, "sources.u8")
    with open(path, "wb") as fh:
        fh.truncate(need)  # sparse until the scan writes it
    return {"path": path, "shape": shape}


@dataclass
class ScannedChunk:
    """What the scan keeps of one chunk of files (positions in the chunk; small, to send back)."""

    kept: np.ndarray
    skipped: list
    warned: list
    thumbs: np.ndarray
    keys: np.ndarray
    listing: bytes      # the kept files' ids, labels and stamps, as fed to the fingerprint
    stamps: np.ndarray  # (kept, 2) the kept files' sizes and mtime_ns


def scan_chunk(task: tuple, job: dict) -> ScannedChunk:
    """Decode one chunk ``(lo, files)`` of (id, path, label) files, the first at position ``lo`` of
    the listing, at ``job["size"]``: thumbnails and exact keys; the images go to the source cache."""
    lo, chunk = task
    stamps = [_stamp(f[1]) for f in chunk]  # before decoding: a write after it changes the next run's stamp
    images, kept, skipped, warned, _ = decode_files(chunk, job["size"], job["color_mode"], job["max_pixels"],
                                                    job["strict"], job["resize"], job["note_resized"])
    if not len(kept):
        return ScannedChunk(kept, skipped, warned, images, np.empty((0, 16), np.uint8), b"", np.empty((0, 2), np.int64))
    cache = job.get("cache")
    if cache:
        pixels = np.memmap(cache["path"], np.uint8, "r+", shape=cache["shape"])
        pixels[lo + np.asarray(kept)] = images
        del pixels  # unmapped: the pages stay in the page cache for the augmentation pass
    listing = _canonical([[chunk[i][0], chunk[i][2], stamps[i]] for i in kept])
    return ScannedChunk(kept, skipped, warned, _thumbnails(images), exact_keys(images), listing,
                        np.array([stamps[i] for i in kept], dtype=np.int64).reshape(-1, 2))


def load_dataset(strategy, strict: bool = False, limit: int | None = None) -> Dataset:
    """The strategy's whole source as an in-memory ``Dataset`` (first ``limit`` samples if given).

    For commands that need every pixel at once (preview, evaluate); ``run`` streams with ``open_source``.
    """
    ds = strategy.section("dataset")
    keys = ds["npz_keys"]
    data = load_source(ds["source"], kind=ds["kind"], image_size=ds["image_size"], color_mode=_color_mode(ds),
                       strict=strict, max_pixels=ds["max_pixels"], follow_symlinks=ds["follow_symlinks"], resize=ds["resize"],
                       images_key=keys["images"], labels_key=keys["labels"], ids_key=keys["ids"],
                       class_names_key=keys["class_names"])
    limit = limit or ds["limit"]
    if limit is not None and limit < len(data):
        skipped, warned = data.skipped, data.warnings
        data = data.subset(np.arange(limit))
        data.skipped, data.warnings = skipped, warned
    if len(data) == 0:
        raise DataError(f"{ds['source']}: no usable samples")
    return data


def _color_mode(ds: dict):
    return None if ds["color_mode"] == "auto" else ds["color_mode"]


def open_source(strategy, strict: bool = False, limit: int | None = None, mapper=serial_map, cache_dir=None,
                progress=None):
    """The strategy's source: (Source, clean view Dataset, exact keys or None).

    Folders are streamed (see the module docstring), their chunks scanned by ``mapper`` (see
    ``scan_folder``), their images cached in ``cache_dir`` if given; digits and .npz are loaded whole.
    """
    ds = strategy.section("dataset")
    kind = ds["kind"]
    if kind == "auto":
        kind = source_kind(ds["source"])
    if kind == "folder":
        return scan_folder(ds["source"], ds["image_size"], _color_mode(ds), strict,
                           ds["max_pixels"] or DEFAULT_MAX_PIXELS, limit=limit or ds["limit"],
                           follow_symlinks=ds["follow_symlinks"], mapper=mapper, cache_dir=cache_dir,
                           progress=progress, resize=ds["resize"])
    stamp = _stamp(ds["source"]) if kind == "npz" else None  # before loading: a later write shows in the arrays
    data = load_dataset(strategy, strict, limit)
    return ArraySource(data, kind, stamp), data, None
