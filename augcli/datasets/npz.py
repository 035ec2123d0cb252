"""A NumPy ``.npz`` archive (including the ones augcli writes) as a ``Dataset``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from augcli.datasets.base import Dataset, Skipped
from augcli.datasets.convert import (
    check_color_mode,
    check_image_size,
    convert_color_mode,
    float_to_uint8,
    resize_images,
)
from augcli.budget import MAX_CLASSES_UNNAMED, check_memory, human
from augcli.errors import DataError, exception_text, resolved_from

# Labels are class indices; beyond this no class table can exist (and int64 casts would wrap).
MAX_LABEL = 2**31 - 1


def load_npz(
    path,
    images_key: str = "images",
    labels_key: str = "labels",
    ids_key: str = "ids",
    class_names_key: str = "class_names",
    color_mode=None,
    image_size=None,
) -> Dataset:
    """Load images, labels and optional ids / class names from an ``.npz`` file (no pickles).

    Images: (N, H, W) or (N, H, W, C) with C in {1, 3}; uint8 as is, other integer types if they
    lie in 0..255, floats by one rule for the whole array: all values in [0, 1] -> times 255,
    otherwise values must lie in [0, 255]; then rounded. NaN/Inf raise DataError naming the key.
    Labels: integer (N,) >= 0 (int64), or soft (N, K) non-negative floats kept as float32.
    Ids default to "0".."N-1" (a repeated id keeps its first sample; later ones are skipped as
    "duplicate_id"); class names default to "0".."K-1". Other keys augcli writes
    (source_index, copy_index) are ignored. ``color_mode`` None keeps the stored channels, "gray" /
    "rgb" converts; ``image_size`` (h, w), if given, resizes with Pillow's bilinear filter.
    """
    color_mode = check_color_mode(color_mode, allow_none=True)
    size = check_image_size(image_size)
    path = Path(path)
    if not path.is_file():
        what = f"no such file{resolved_from(path)}" if not path.exists() else "not a file"
        raise DataError(f"{path}: {what}; expected an .npz archive with keys '{images_key}' and '{labels_key}'")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exception_text(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected an .npz archive of named arrays, found a single .npy array")
    with archive:
        present = list(archive.files)
        _check_size(path, archive, [k for k in (images_key, labels_key, ids_key, class_names_key, "copy_index")
                                    if k in present])
        raw_images = _read(archive, path, images_key, present)
        raw_labels = _read(archive, path, labels_key, present)
        n = raw_images.shape[0] if raw_images.ndim else 0
        ids = _unique_copy_ids(_ids(path, archive, ids_key, present, n), archive, present)
        raw_images, raw_labels, ids, skipped = _drop_non_finite(path, raw_images, raw_labels, ids)
        raw_images, raw_labels, ids, repeated = _drop_repeated_ids(raw_images, raw_labels, ids)
        skipped += repeated
        images = _images(path, raw_images, images_key)
        labels = _labels(path, raw_labels, labels_key, images.shape[0])
        class_names = _class_names(path, archive, class_names_key, present, labels, labels_key)
    if size is not None:
        images = resize_images(images, size)
    images = convert_color_mode(images, color_mode)
    return Dataset(images=images, labels=labels, ids=ids, class_names=class_names, source=str(path), skipped=skipped)


def _drop_non_finite(path: Path, images: np.ndarray, labels: np.ndarray, ids: np.ndarray):
    """Samples whose float pixels or labels hold NaN/Inf are skipped with reason "non_finite"."""
    bad = np.zeros(images.shape[0] if images.ndim else 0, dtype=bool)
    for arr in (images, labels):
        if arr.dtype.kind == "f" and arr.ndim and arr.shape[0] == bad.shape[0]:
            bad |= ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if not bad.any():
        return images, labels, ids, []
    if bad.all():
        raise DataError(f"{path}: every sample holds NaN or Inf in its pixels or label")
    skipped = [Skipped(str(i), "non_finite", "NaN or Inf in the pixels or the label") for i in ids[bad]]
    keep = ~bad
    return images[keep], labels[keep] if labels.shape[:1] == bad.shape else labels, ids[keep], skipped


def _drop_repeated_ids(images: np.ndarray, labels: np.ndarray, ids: np.ndarray):
    """A repeated id keeps its first sample; later ones are skipped as "duplicate_id" (an id is a
    sample's identity: its random stream, its output file name and its manifest record)."""
    if not ids.size or images.ndim == 0 or labels.shape[:1] != ids.shape:
        return images, labels, ids, []
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(len(ids), dtype=bool)
    keep[first] = True
    if keep.all():
        return images, labels, ids, []
    skipped = [Skipped(str(i), "duplicate_id", "an earlier sample has the same id") for i in ids[~keep]]
    return images[keep], labels[keep], ids[keep], skipped


def _member_bytes(archive, key: str) -> tuple[int, str]:
    """(bytes the array of ``key`` will take, 'shape dtype'), from the zip entry's declared size and
    the .npy header, read without inflating the array."""
    info = archive.zip.getinfo(key + ".npy")
    fmt = np.lib.format
    try:
        with archive.zip.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(fh)
            else:  # 3.0 has no public reader: the declared size has to do
                return info.file_size, "?"
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return info.file_size, "?"  # unreadable: the read itself reports it
    count = int(np.prod(shape, dtype=object)) if shape else 1
    return max(info.file_size, count * dtype.itemsize), f"{shape} {dtype}"


def _check_size(path: Path, archive, keys: list) -> None:
    """Refuse before reading an archive whose arrays would not fit in memory: a few megabytes of
    deflated zeros can declare gigabytes. The arrays are read whole (``limit`` applies after), and
    conversion to uint8 may hold a second copy, hence twice the declared size."""
    sizes = {}
    for key in keys:
        try:
            sizes[key] = _member_bytes(archive, key)
        except KeyError:  # not a .npy member: the read reports it
            continue
    need = 2 * sum(n for n, _ in sizes.values())
    listed = ", ".join(f"'{k}' {what} {human(n)}" for k, (n, what) in sizes.items())
    check_memory(need, f"{path}: reading its arrays ({listed})",
                 "dataset.limit does not help (each array is read whole); split the archive into smaller ones",
                 error=DataError)


def _read(archive, path: Path, key: str, present: list) -> np.ndarray:
    if key not in present:
        keys = ", ".join(present) if present else "none"
        raise DataError(f"{path}: missing key '{key}'; keys present: {keys}")
    try:
        return archive[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # Object arrays need pickle, which we refuse: data files must not run code.
        raise DataError(f"{path}: key '{key}' cannot be read without pickle or is damaged ({exception_text(exc)})") from None


def _images(path: Path, arr: np.ndarray, key: str) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise DataError(f"{path}: key '{key}' must have shape (N, H, W) or (N, H, W, C) with C in {{1, 3}}, got {arr.shape}")
    if 0 in arr.shape[1:3]:
        raise DataError(f"{path}: key '{key}' holds images of {arr.shape[1]}x{arr.shape[2]} pixels; expected at least 1x1")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind in "iub":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise DataError(f"{path}: key '{key}' holds integers outside 0..255 ({arr.dtype})")
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        try:
            return float_to_uint8(arr, f"{path}: key '{key}'")
        except ValueError as exc:
            raise DataError(str(exc)) from None
    raise DataError(f"{path}: key '{key}' must be uint8 or float pixels, got dtype {arr.dtype}")


def _labels(path: Path, arr: np.ndarray, key: str, n: int) -> np.ndarray:
    if arr.shape[:1] != (n,) or arr.ndim not in (1, 2):
        raise DataError(f"{path}: key '{key}' must have shape ({n},) or ({n}, K) to match the images, got {arr.shape}")
    if arr.dtype.kind not in "iubf":
        raise DataError(f"{path}: key '{key}' must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: key '{key}' holds NaN or Inf")
    if arr.size and arr.min() < 0:
        raise DataError(f"{path}: key '{key}' holds negative values; expected class indices or class weights >= 0")
    if arr.ndim == 2:
        return arr.astype(np.float32)
    if arr.size and arr.max() > MAX_LABEL:
        raise DataError(f"{path}: key '{key}' holds the label {arr.max()}, beyond any class count; expected class "
                        f"indices 0..K-1 (at most {MAX_LABEL})")
    if arr.dtype.kind == "f" and not np.all(arr == np.rint(arr)):
        raise DataError(f"{path}: key '{key}' must hold integer class indices, found fractional values")
    return arr.astype(np.int64)


def _ids(path: Path, archive, key: str, present: list, n: int) -> np.ndarray:
    if key not in present:
        return np.array([str(i) for i in range(n)])
    arr = _read(archive, path, key, present)
    if arr.shape != (n,):
        raise DataError(f"{path}: key '{key}' must have shape ({n},) to match the images, got {arr.shape}")
    if arr.dtype.kind == "S":
        return np.asarray(_utf8(path, key, arr, "ids"))
    return arr.astype(str)


def _utf8(path: Path, key: str, arr: np.ndarray, what: str) -> list[str]:
    """Bytes -> text; bytes that are not UTF-8 are a data error naming the first bad entry (an id
    or class name is an identity: escaping it could make it collide with a real one)."""
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.tolist()]
    except UnicodeDecodeError:
        i, bad = next((i, v) for i, v in enumerate(arr.tolist()) if not _decodes(v))
        raise DataError(f"{path}: key '{key}' holds {what} that are not UTF-8 text (entry {i}: {bad!r}); store "
                        f"them as text or UTF-8 bytes") from None


def _decodes(value) -> bool:
    try:
        value.decode("utf-8") if isinstance(value, bytes) else None
        return True
    except UnicodeDecodeError:
        return False


def _unique_copy_ids(ids: np.ndarray, archive, present: list) -> np.ndarray:
    """augcli's own output repeats a source id for each of its copies; ``id#k`` tells copy k apart,
    so re-augmenting that output gives every sample its own random stream."""
    if "copy_index" not in present:
        return ids
    copy = np.asarray(archive["copy_index"])
    if copy.shape != ids.shape or copy.dtype.kind not in "iu":
        return ids
    suffix = np.where(copy > 0, np.char.add("#", copy.astype(str)), "")
    return np.char.add(ids.astype(str), suffix)


def _class_names(path: Path, archive, key: str, present: list, labels: np.ndarray, labels_key: str) -> list:
    needed = labels.shape[1] if labels.ndim == 2 else (int(labels.max()) + 1 if labels.size else 0)
    if key not in present:
        if needed > MAX_CLASSES_UNNAMED:
            raise DataError(f"{path}: key '{labels_key}' numbers {needed:,} classes (labels up to {needed - 1}); "
                            f"without a '{key}' key at most {MAX_CLASSES_UNNAMED:,} are allowed "
                            f"(budget.MAX_CLASSES_UNNAMED): add a '{key}' array naming every class, or renumber "
                            f"the labels 0..K-1")
        return [str(k) for k in range(needed)]
    arr = _read(archive, path, key, present)
    if arr.ndim != 1:
        raise DataError(f"{path}: key '{key}' must be a 1-D array of names, got shape {arr.shape}")
    names = _utf8(path, key, arr, "class names")
    if labels.ndim == 2 and len(names) != needed:
        raise DataError(f"{path}: key '{key}' has {len(names)} names but the soft labels have {needed} columns")
    if len(names) < needed:
        raise DataError(f"{path}: key '{key}' has {len(names)} names but labels go up to {needed - 1}")
    return names
