"""Where a run's pixels come from, read by rows so big folders never sit in memory whole.

``open_source`` returns a ``Source`` (``read(rows)`` gives full-resolution images) and a *clean
view*: a ``Dataset`` the cleaning stage and the split work on. For digits and ``.npz`` sources the
view is the data itself. For image folders it is built in one streaming pass: every file is decoded
once, its exact-duplicate key (a hash of the full-resolution pixels) is kept, and the image is kept
only as a 32×32 gray thumbnail, which is what the perceptual hash and the outlier and label-error
features look at anyway. The augmentation pass then decodes each file again, shard by shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from augcli.datasets import Dataset, load_source
from augcli.datasets.convert import resize_images, rgb_to_gray
from augcli.datasets.folder import DEFAULT_MAX_PIXELS, decode_files, list_folder, listing_skips
from augcli.errors import DataError

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
        index = {str(i): r for r, i in enumerate(self.ids)}
        return np.fromiter((index[str(i)] for i in ids), dtype=np.int64, count=len(ids))

    def dataset(self, rows: np.ndarray) -> Dataset:
        """Full-resolution samples at ``rows`` as a Dataset."""
        return Dataset(self.read(rows), self.labels[rows], self.ids[rows], self.class_names)


class ArraySource(Source):
    """An in-memory dataset (digits, .npz)."""

    def __init__(self, data: Dataset):
        self.data = data
        self.ids, self.labels, self.class_names = data.ids, data.labels, data.class_names
        self.image_shape = data.image_shape

    def read(self, rows):
        return self.data.images[rows]


@dataclass
class FolderSource(Source):
    """An image folder, decoded on demand; ``files`` are the (id, path, label) triples that decoded."""

    files: list
    size: tuple
    color_mode: str
    max_pixels: int
    class_names: list

    def __post_init__(self):
        self.ids = np.asarray([f[0] for f in self.files])
        self.labels = np.asarray([f[2] for f in self.files], dtype=np.int64)
        self.image_shape = (*self.size, 1 if self.color_mode == "gray" else 3)

    def read(self, rows):
        images, kept, skipped, _, _ = decode_files([self.files[r] for r in rows], self.size, self.color_mode, self.max_pixels)
        if skipped:  # the file changed since the scan
            first = skipped[0]
            raise DataError(f"{first.id}: {first.reason} on the second read ({first.detail}); was the folder modified during the run?")
        return images


def exact_keys(images: np.ndarray) -> np.ndarray:
    """A 16-byte hash of each image's pixels, as uint8 (N, 16): exact duplicates share a key."""
    flat = np.ascontiguousarray(images).reshape(images.shape[0], -1)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat)
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16)


def _thumbnails(images: np.ndarray) -> np.ndarray:
    """Gray 32×32 thumbnails (1 KiB each): what the hash and feature-based checks need."""
    if images.shape[1] <= THUMB and images.shape[2] <= THUMB:
        return images
    small = resize_images(images, (THUMB, THUMB))
    return small if small.shape[-1] == 1 else rgb_to_gray(small)


def scan_folder(root, image_size, color_mode, strict: bool, max_pixels: int, extensions=None, limit=None,
                follow_symlinks: bool = False):
    """One decoding pass over a folder: (FolderSource, clean view of thumbnails, exact keys)."""
    listing = list_folder(root, extensions, follow_symlinks)
    files = listing.files[:limit] if limit else listing.files
    color_mode = color_mode or "rgb"
    size = image_size
    thumbs, keys, kept_files, warned = [], [], [], []
    skipped = listing_skips(listing, strict)
    for lo in range(0, len(files), SCAN_CHUNK):
        chunk = files[lo:lo + SCAN_CHUNK]
        images, kept, chunk_skipped, chunk_warned, size = decode_files(chunk, size, color_mode, max_pixels, strict)
        skipped += chunk_skipped
        warned += chunk_warned
        if len(kept):
            thumbs.append(_thumbnails(images))
            keys.append(exact_keys(images))
            kept_files += [chunk[i] for i in kept]
    if not kept_files:
        what = f"no readable images ({len(skipped)} skipped)" if files else "no image files"
        raise DataError(f"{listing.root}: {what} in its class sub-folders; expected images with extensions {', '.join(listing.exts)}")
    source = FolderSource(kept_files, tuple(size), color_mode, max_pixels, listing.class_names)
    view = Dataset(np.concatenate(thumbs), source.labels, source.ids, listing.class_names, str(listing.root), skipped, warned)
    return source, view, np.concatenate(keys)


def load_dataset(strategy, strict: bool = False, limit: int | None = None) -> Dataset:
    """The strategy's whole source as an in-memory ``Dataset`` (first ``limit`` samples if given).

    For commands that need every pixel at once (preview, evaluate); ``run`` streams with ``open_source``.
    """
    ds = strategy.section("dataset")
    keys = ds["npz_keys"]
    data = load_source(ds["source"], kind=ds["kind"], image_size=ds["image_size"], color_mode=_color_mode(ds),
                       strict=strict, max_pixels=ds["max_pixels"], follow_symlinks=ds["follow_symlinks"],
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


def open_source(strategy, strict: bool = False, limit: int | None = None):
    """The strategy's source: (Source, clean view Dataset, exact keys or None).

    Folders are streamed (see the module docstring); digits and .npz are loaded whole.
    """
    ds = strategy.section("dataset")
    kind = ds["kind"]
    if kind == "auto":
        from augcli.datasets import source_kind

        kind = source_kind(ds["source"])
    if kind == "folder":
        return scan_folder(ds["source"], ds["image_size"], _color_mode(ds), strict,
                           ds["max_pixels"] or DEFAULT_MAX_PIXELS, limit=limit or ds["limit"],
                           follow_symlinks=ds["follow_symlinks"])
    data = load_dataset(strategy, strict, limit)
    return ArraySource(data), data, None
