"""An image folder (one sub-folder per class) as a ``Dataset``, skipping corrupt files with a reason.

Layout: ``root/<class name>/**/<image>``. Class names are the sub-folder names in sorted order and
a label is the class's position in that order. Files are taken in sorted order of their POSIX path
relative to ``root`` (which is also their id), so the result never depends on the OS listing order.
Hidden files and folders (name starting with ".") and files without an image extension are ignored;
symlinked files are read, symlinked folders below a class folder are not followed (no loops).
A symbolic link (file or class folder) that resolves outside ``root`` is skipped with reason
"outside_root" unless ``follow_symlinks`` is set, so a crafted tree cannot make augcli read elsewhere.
Only regular files are opened: a FIFO, device or socket (directly or through a link) is skipped as
"not_a_file" without being opened, so it cannot hang a run. A file larger than ``max_file_bytes``
is skipped as "too_large" before it is read. A name that is not valid UTF-8 (a file, a folder on its
path, or a class folder) is skipped as "bad_name": ids and class names end up in JSON, CSV and file
names, which must hold text; the report shows such a name with its bytes escaped (``bad\\xff.png``).
Warnings Pillow raises while decoding a file (e.g. corrupt EXIF) become that file's "decoder_warning".

Pixel conventions (every image ends as 8-bit "L" or "RGB", then ``color_mode``):
- EXIF orientation is applied first, so pixels come out the way viewers show them.
- Alpha (RGBA, LA, palette with transparency) is composited on BLACK: ``c * a / 255`` rounded,
  so fully transparent pixels become 0, as in digit-style data (white strokes on black).
- 16-bit modes ("I;16*") and 32-bit "I" are read as 0..65535 and scaled by 255 / 65535 (rounded;
  "I" values outside that range are clipped). Float "F" follows ``convert.float_to_uint8``.
- CMYK, YCbCr and other modes go through Pillow's ``convert("RGB")``; "gray" uses Pillow's
  ``convert("L")`` (ITU-R 601-2 luma). Animated GIF/WebP/TIFF: first frame.
- Resizing to ``image_size`` uses Pillow's bilinear filter (the aspect ratio is not kept).
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from augcli.datasets.base import Dataset, Skipped
from augcli.datasets.convert import check_color_mode, check_image_size, float_to_uint8
from augcli.errors import DataError, exception_text, resolved_from

# Pillow format names that each extension may legitimately hold.
_FORMATS = {".png": {"PNG"}, ".jpg": {"JPEG", "MPO"}, ".jpeg": {"JPEG", "MPO"}, ".bmp": {"BMP", "DIB"},
            ".gif": {"GIF"}, ".tif": {"TIFF"}, ".tiff": {"TIFF"}, ".webp": {"WEBP"}}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Same value as Pillow's default Image.MAX_IMAGE_PIXELS (about 89.5 megapixels).
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
# A file may hold at most this many bytes per allowed pixel (4 channels of 32-bit floats, the widest
# uncompressed layout Pillow reads) plus room for metadata (ICC profiles, EXIF, thumbnails).
BYTES_PER_PIXEL = 16
METADATA_BYTES = 64 << 20
_BAD_NAME = "the name is not valid UTF-8 (shown with its bytes escaped); rename it to read it"


class _Skip(Exception):
    """Internal: a file that cannot be used, with a reason code and a one-line detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load_folder(
    root,
    image_size=None,
    color_mode: str = "rgb",
    strict: bool = False,
    extensions=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    follow_symlinks: bool = False,
    resize: str = "stretch",
) -> Dataset:
    """Load ``root/<class>/...`` images as uint8 (N, h, w, C), C = 1 ("gray") or 3 ("rgb").

    ``image_size`` is (h, w) in pixels (an int means square); if None, the size of the first readable
    image in sorted order is used for all. ``extensions`` (e.g. [".png", "jpg"]) replaces the default
    image extensions (case-insensitive). Files that fail to load are listed in ``skipped`` with a
    reason: "empty", "truncated", "undecodable", "too_large" (more than ``max_pixels`` pixels or
    ``max_file_bytes(max_pixels)`` bytes, or over Pillow's own Image.MAX_IMAGE_PIXELS bomb guard),
    "unreadable" (OS error), "not_a_file" (a FIFO, device or socket), "bad_name" (not valid UTF-8)
    or "outside_root" (a symbolic link leading out of ``root``, read only with ``follow_symlinks=True``); with
    ``strict=True`` the first such file raises DataError instead. Input files are only read.
    """
    color_mode = check_color_mode(color_mode)
    listing = list_folder(root, extensions, follow_symlinks)
    listed = listing_skips(listing, strict)
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    images, kept, skipped, warned, _ = decode_files(
        listing.files, check_image_size(image_size), color_mode, max_pixels, strict, resize, image_size is None
    )
    skipped = listed + skipped
    if not len(kept):
        what = f"no readable images ({len(skipped)} skipped)" if listing.files else "no image files"
        raise DataError(f"{listing.root}: {what} in its class sub-folders; expected images with extensions {', '.join(listing.exts)}")
    return Dataset(
        images=images,
        labels=np.asarray([listing.files[i][2] for i in kept], dtype=np.int64),
        ids=np.asarray([listing.files[i][0] for i in kept]),
        class_names=listing.class_names,
        source=str(listing.root),
        skipped=skipped,
        warnings=warned,
    )


@dataclass
class FolderListing:
    """The candidate image files of a class folder tree, in id order: (id, path, label) triples."""

    root: Path
    class_names: list
    files: list
    exts: tuple
    skipped: list = field(default_factory=list)  # links leading outside the root, names that are not text


def list_folder(root, extensions=None, follow_symlinks: bool = False) -> FolderListing:
    """List ``root/<class>/**`` image files without decoding them (sorted by relative POSIX path).

    Symbolic links that resolve outside ``root`` go to ``skipped`` ("outside_root") unless
    ``follow_symlinks``; a class folder skipped that way keeps its label but lists no files.
    Names that are not valid UTF-8 go to ``skipped`` ("bad_name"); such a class folder is no class.
    """
    exts = _normalise_extensions(extensions)
    root = Path(root)
    folders = _class_folders(root)
    class_names = [name for name in folders if _is_text(name)]
    real_root = root.resolve()
    files = []
    skipped = [Skipped(f"{_escaped(name)}/", "bad_name", _BAD_NAME) for name in folders if not _is_text(name)]
    hint = "; set dataset.follow_symlinks: true to read it"
    for label, name in enumerate(class_names):
        if not follow_symlinks and not _inside(root / name, real_root):
            skipped.append(Skipped(f"{name}/", "outside_root", f"class folder links outside the input root{hint}"))
            continue
        for rel, path in _image_files(root, root / name, exts):
            if not _is_text(rel):
                skipped.append(Skipped(_escaped(rel), "bad_name", _BAD_NAME))
            elif not follow_symlinks and path.is_symlink() and not _inside(path, real_root):
                skipped.append(Skipped(rel, "outside_root", f"symbolic link to a file outside the input root{hint}"))
            else:
                files.append((rel, path, label))
    files.sort(key=lambda item: item[0])
    skipped.sort(key=lambda item: item.id)
    return FolderListing(root, class_names, files, exts, skipped)


def _is_text(name: str) -> bool:
    """False for a name holding surrogate escapes (bytes that are not UTF-8): it cannot be written as text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(name: str) -> str:
    """A name's bytes as text, undecodable bytes shown as ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def max_file_bytes(max_pixels: int) -> int:
    """The largest file read for an image of at most ``max_pixels`` pixels (checked before reading)."""
    return int(max_pixels) * BYTES_PER_PIXEL + METADATA_BYTES


def listing_skips(listing: FolderListing, strict: bool) -> list:
    """The listing's skipped entries; with ``strict`` the first one is fatal (DataError, exit 1)."""
    if strict and listing.skipped:
        first = listing.skipped[0]
        raise DataError(f"{listing.root / first.id}: {first.reason}: {first.detail}")
    return list(listing.skipped)


def _inside(path: Path, real_root: Path) -> bool:
    """Whether ``path`` (all links followed, even dangling ones) lies within ``real_root``."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a link loop: reading it fails too and reports it as "unreadable"
        return True


RESIZE_MODES = ("stretch", "crop", "pad")


def decode_files(files: list, size, color_mode: str, max_pixels: int = DEFAULT_MAX_PIXELS, strict: bool = False,
                 resize: str = "stretch", note_resized: bool = False):
    """Decode ``files`` ((id, path, label) triples) into uint8 (k, h, w, C).

    Returns (images, kept positions in ``files``, skipped, warnings, size); ``size`` None means the
    first readable image's size, which is returned so later chunks can use the same one. An image of
    another size is brought to ``size`` by ``resize`` (``fit_size``); with ``note_resized`` (no size
    was configured) each such file gets a "resized" warning.
    """
    images = None
    kept, skipped, warned = [], [], []
    for pos, (rel, path, _label) in enumerate(files):
        try:
            pil, fmt, notes = _decode(path, color_mode, int(max_pixels))
        except _Skip as skip:
            if strict:
                raise DataError(f"{path}: {skip.reason}: {skip.detail}") from None
            skipped.append(Skipped(rel, skip.reason, skip.detail))
            continue
        expected = _FORMATS.get(path.suffix.lower())
        if fmt and expected and fmt not in expected:
            warned.append(Skipped(rel, "wrong_extension", f"content is {fmt}, the name says {path.suffix}"))
        if notes:
            warned.append(Skipped(rel, "decoder_warning", "; ".join(notes)))
        if size is None:
            size = (pil.height, pil.width)
        if images is None:
            images = np.empty((len(files), size[0], size[1], 1 if color_mode == "gray" else 3), np.uint8)
        if (pil.height, pil.width) != size:
            if note_resized:
                warned.append(Skipped(rel, "resized", f"{pil.height}x{pil.width} -> {size[0]}x{size[1]} ({resize})"))
            pil = fit_size(pil, size, resize)
        images[len(kept)] = np.asarray(pil).reshape(images.shape[1:])
        kept.append(pos)
    if images is None:
        channels = 1 if color_mode == "gray" else 3
        images = np.empty((0, *(size or (1, 1)), channels), np.uint8)
    elif len(kept) < len(files):
        images = images[: len(kept)].copy()
    return images, np.asarray(kept, dtype=np.int64), skipped, warned, size


def fit_size(pil: Image.Image, size: tuple, resize: str) -> Image.Image:
    """``pil`` at (h, w) = ``size``: ``stretch`` (to the size, aspect ratio lost), ``crop`` (scaled to
    cover it, the centre kept) or ``pad`` (scaled to fit inside it, centred on black)."""
    box = (size[1], size[0])
    if resize == "crop":
        return ImageOps.fit(pil, box, Image.Resampling.BILINEAR)
    if resize == "pad":
        return ImageOps.pad(pil, box, Image.Resampling.BILINEAR, color=0)
    return pil.resize(box, Image.Resampling.BILINEAR)


def _normalise_extensions(extensions) -> tuple:
    if extensions is None:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    out = tuple(sorted({("" if e.startswith(".") else ".") + e.lower() for e in extensions}))
    if not out:
        raise ValueError("extensions must name at least one file extension, e.g. ['.png']")
    return out


def _class_folders(root: Path) -> list:
    """Sorted names of the non-hidden sub-folders of ``root``; DataError if there are none."""
    if not root.exists():
        raise DataError(f"{root}: no such folder{resolved_from(root)}; expected a folder with one sub-folder per class")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected a folder with one sub-folder per class")
    try:
        with os.scandir(root) as entries:
            names = [e.name for e in entries if not e.name.startswith(".") and _is_dir(e)]
    except OSError as exc:
        raise DataError(f"{root}: cannot list folder: {exc.strerror or exc}") from None
    if not names:
        raise DataError(f"{root}: no class sub-folders; expected one sub-folder per class holding its images")
    return sorted(names)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links, so a linked class folder counts
    except OSError:  # a symbolic-link loop is not a folder
        return False


def _image_files(root: Path, class_dir: Path, exts: tuple) -> list:
    """(relative POSIX id, path) of candidate image files below ``class_dir``, sorted by id."""
    found = []
    pending = [class_dir]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                entries = list(entries)
        except OSError as exc:
            raise DataError(f"{folder}: cannot list folder: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif os.path.splitext(entry.name)[1].lower() in exts:
                # Broken links, FIFOs and devices are kept so they are reported ("unreadable",
                # "not_a_file") rather than vanish; ``_read_regular`` never opens the latter.
                path = Path(entry.path)
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found, key=lambda item: item[0])


def _decode(path: Path, color_mode: str, max_pixels: int) -> tuple[Image.Image, str | None, list]:
    """Read one file (read-only, handle closed at once): an 8-bit "L" or "RGB" image, the format
    Pillow recognised in the bytes (which may disagree with the file name) and the messages of the
    warnings decoding raised (they belong to this file's report entry, not to stderr)."""
    data = _read_regular(path, max_file_bytes(max_pixels))
    if not data:
        raise _Skip("empty", "file has zero bytes")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)  # about Pillow's API, not about this file
        # Pillow's bomb guard warns (or raises) on open; make the warning an error we can catch.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        pil, fmt = _decode_bytes(data, color_mode, max_pixels)
    return pil, fmt, list(dict.fromkeys(exception_text(w.message) for w in caught))


def _read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` (links followed) if it is a regular file of at most ``max_bytes``.

    FIFOs, devices and sockets are never opened (opening a FIFO blocks, reading a device may never
    end); the size is known before a byte is read. The check is repeated on the open handle, and
    the read is capped at that size, in case the file is replaced or grows in between.
    """
    try:
        _check_regular(os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            _check_regular(info, max_bytes)
            data = fh.read(info.st_size + 1)
    except OSError as exc:
        raise _Skip("unreadable", exc.strerror or str(exc)) from None
    if len(data) > info.st_size:
        raise _Skip("unreadable", "the file grew while it was read; was it still being written?")
    return data


def _check_regular(info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                else "a folder" if stat.S_ISDIR(info.st_mode) else "a special file")
        raise _Skip("not_a_file", f"{kind}, not a regular file; it was not opened")
    if info.st_size > max_bytes:
        raise _Skip("too_large", f"{info.st_size} bytes exceeds the limit of {max_bytes} for dataset.max_pixels "
                                 f"({BYTES_PER_PIXEL} bytes per pixel + {METADATA_BYTES >> 20} MiB); it was not read")


def _decode_bytes(data: bytes, color_mode: str, max_pixels: int) -> tuple[Image.Image, str | None]:
    """An encoded image's bytes -> (8-bit "L" or "RGB" image, Pillow's format name), or _Skip."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            pixels = im.width * im.height
            if pixels > max_pixels:
                raise _Skip("too_large", f"{im.width}x{im.height} = {pixels} pixels exceeds the limit of {max_pixels}")
            im.load()
            return _to_color_mode(_apply_orientation(im), color_mode), im.format
    except _Skip:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _Skip("too_large", exception_text(exc)) from None
    except UnidentifiedImageError:
        raise _Skip("undecodable", "not a recognised image file") from None
    except (EOFError, OSError) as exc:
        reason = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc).lower() else "undecodable"
        raise _Skip(reason, exception_text(exc)) from None
    except Exception as exc:  # decoders raise SyntaxError, ValueError, struct.error, zlib.error, ...
        raise _Skip("undecodable", f"{type(exc).__name__}: {exception_text(exc)}") from None


def _apply_orientation(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not cost the pixels: keep them as stored
        return im.copy()  # a copy, because the caller closes ``im``


def _to_color_mode(im: Image.Image, color_mode: str) -> Image.Image:
    im = _to_8bit(im)
    target = "L" if color_mode == "gray" else "RGB"
    return im if im.mode == target else im.convert(target)


def _to_8bit(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit "L" or "RGB" by the rules in the module docstring."""
    mode = im.mode
    if mode in ("L", "RGB"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return _to_8bit(im.convert("RGBA" if has_alpha else "RGB"))
    if mode in ("LA", "La", "RGBA", "RGBa"):
        arr = np.asarray(im.convert("LA" if mode[0] == "L" else "RGBA"), dtype=np.float32)
        color = np.rint(arr[..., :-1] * arr[..., -1:] / 255.0).astype(np.uint8)
        return Image.fromarray(color[..., 0] if color.shape[-1] == 1 else color, "L" if mode[0] == "L" else "RGB")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im).astype(np.float64)
        scaled = np.rint(np.clip(arr, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
        return Image.fromarray(scaled, "L")
    if mode == "F":
        return Image.fromarray(float_to_uint8(np.asarray(im), "float image"), "L")
    return im.convert("RGB")
