"""The pieces the output formats (``io.formats``) are made of: a deterministic ``.npz`` writer, PNG
bytes, safe one-to-one file names, the class list, pixel hashes and manifest lines.

Byte-identical output for identical input is part of the contract, so the zip entries carry a fixed
timestamp (``np.savez`` stamps the current time) and PNGs carry no metadata.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from augcli.backend import _import_cv2
from augcli.io.png import encode_png

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an uncompressed .npz readable by ``np.load``, with reproducible bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            # streamed into the archive: no second in-memory copy of a large array
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)


# Letters and digits of any script, '.', ' ', '-'; never a separator, a control character or '~'
# (which only the disambiguating suffix of ``unique_names`` uses).
_UNSAFE = re.compile(r"[^\w. -]+")
_MAX_NAME_BYTES = 120  # well inside the 255-byte limit of common file systems, suffixes included


def safe_name(name: str) -> str:
    """A single path component: separators and odd characters become '_', no leading dots, at most
    120 UTF-8 bytes (cut at a character boundary)."""
    cleaned = _UNSAFE.sub("_", str(name)).strip(" .")
    cleaned = cleaned.encode("utf-8")[:_MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return cleaned or "_"


def unique_names(names, keys=None, groups=None) -> list[str]:
    """``safe_name`` of each name, one-to-one within each group: names whose safe forms clash
    (ignoring case, for case-insensitive file systems) all get ``~`` and 16 hex digits of the sha256
    of their key (default: the name). ``keys`` must be distinct within a group."""
    keys = names if keys is None else keys
    groups = [0] * len(names) if groups is None else groups
    safe = [safe_name(n) for n in names]
    taken = Counter((g, s.casefold()) for g, s in zip(groups, safe))
    return [s if taken[(g, s.casefold())] == 1 else f"{s}~{hashlib.sha256(str(k).encode()).hexdigest()[:16]}"
            for s, k, g in zip(safe, keys, groups)]


def class_dirs(class_names) -> list[str]:
    """One folder per class whose sorted order is the class order, because torchvision's
    ``ImageFolder`` and Hugging Face ``imagefolder`` number classes by sorted folder name: the
    ``unique_names`` of the classes, or, when sorting those would reorder the classes,
    ``<index>_<name>`` with the index zero-padded to one width (``00_zebra``, ``01_ant``)."""
    dirs = unique_names(list(class_names))
    if dirs == sorted(dirs):
        return dirs
    width = max(2, len(str(len(dirs) - 1)))
    return [f"{k:0{width}d}_{d}" for k, d in enumerate(dirs)]


def write_class_list(folder: Path, class_names) -> list[str]:
    """``classes.txt`` (one name per line, line k = class index k) and ``class_to_idx.json``.

    A name holding a line break is written JSON-escaped in classes.txt (one line per class must hold);
    class_to_idx.json has every name exactly."""
    names = [str(n) for n in class_names]
    lines = [n if len(f"{n}.".splitlines()) == 1 else manifest_line(n)[1:-1] for n in names]
    (folder / "classes.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    mapping = {n: k for k, n in enumerate(names)}
    (folder / "class_to_idx.json").write_text(json.dumps(mapping, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return ["classes.txt", "class_to_idx.json"]


def png_stem(sample_id: str, class_name: str) -> str:
    """The file stem of a sample id: without its class folder and extension, sub-folders as '_'."""
    stem = str(sample_id)
    prefix = f"{class_name}/"
    if stem.startswith(prefix):
        stem = stem[len(prefix):]
    stem = stem.rsplit(".", 1)[0] if "." in stem.rsplit("/", 1)[-1] else stem
    return stem.replace("/", "_")


def png_relpath(split: str, class_dir: str, stem: str, copy: int, extension: str = ".png") -> str:
    """``<split>/<class>/<source-stem>__<copy>.png`` (or ``extension``) from names already made safe by
    ``unique_names``."""
    return f"{safe_name(split)}/{class_dir}/{stem}__{copy}{extension}"


IMAGE_FORMATS = ("png", "jpg", "webp")
DEFAULT_PNG_COMPRESSION = 1  # the preset io.png writes
# output.quality when the strategy leaves it null. On 224x224 photo crops JPEG 95 is off by 1.7 grey
# levels on average at ~1/4 of the PNG's bytes; WebP 90 by 2.0 at ~1/8 (but ~3x the encoding time).
DEFAULT_QUALITY = {"jpg": 95, "webp": 90}

# output.png_compression -> (zlib level, zlib strategy, PNG row filters), measured on 224x224 photo
# crops (benchmarks/bench_encoders.py). Run-length deflate (Z_RLE) only finds runs of repeated
# filtered bytes, which on photos is as small as full deflate gets in a fraction of the time; full
# deflate (4-9, Z_FILTERED) pays off on flat or synthetic images (digits, drawings, screenshots).
# Preset 1, the default, is not in the table: ``io.png`` writes it (Up filter, zlib-ng run-length deflate).
_RLE, _FILTERED = "RLE", "FILTERED"
_PNG_PRESETS = {0: (0, "DEFAULT", "FILTER_NONE"),   # stored: ~0.1x cv2.imwrite's time, twice its size
                2: (1, _RLE, "FAST_FILTERS"),       # ~5 % smaller, ~1.2x the time
                3: (1, _RLE, "ALL_FILTERS"),        # ~12 % smaller, ~1.6x
                **{lv: (lv, _FILTERED, "ALL_FILTERS") for lv in range(4, 10)}}  # ~3.5x to ~35x
_ZLIB_STRATEGY = {"DEFAULT": 0, "FILTERED": 1, "RLE": 3}  # zlib's constants, for Pillow


@dataclass(frozen=True)
class ImageEncoder:
    """How the PNG tree and tar formats store an image: ``image_format`` png, jpg or webp, and its
    ``setting``, the png_compression preset 0-9 for png, the quality 1-100 for jpg and webp (None:
    the default). Small and picklable: it travels with the format object to the workers."""

    image_format: str = "png"
    setting: int | None = None

    @property
    def extension(self) -> str:
        return f".{self.image_format}"

    def encode(self, image: np.ndarray) -> bytes:
        return encode_image(image, self.image_format, self.setting)


def encode_image(image: np.ndarray, image_format: str = "png", setting: int | None = None) -> bytes:
    """``image_format`` bytes of one uint8 (H, W, C) image (C = 1 or 3), without metadata.

    ``setting``: the png_compression preset 0-9 for png, the quality 1-100 for jpg and webp (None:
    ``DEFAULT_PNG_COMPRESSION`` / ``DEFAULT_QUALITY``). The fast PNG preset is written by ``io.png``;
    the rest by OpenCV whatever the kernel backend (encoding is no kernel, and its libpng,
    libjpeg-turbo and libwebp are the fastest codecs at hand), or by Pillow, with the same
    settings, when OpenCV >= 5 does not import."""
    if setting is None:
        setting = DEFAULT_PNG_COMPRESSION if image_format == "png" else DEFAULT_QUALITY[image_format]
    if image_format == "png" and setting == DEFAULT_PNG_COMPRESSION:
        return encode_png(image)
    cv2 = _import_cv2()
    if cv2 is None:
        return _encode_pillow(image, image_format, setting)
    return _encode_cv2(cv2, image, image_format, setting)


def _cv2_params(cv2, image_format: str, setting: int) -> list[int]:
    if image_format == "jpg":
        return [cv2.IMWRITE_JPEG_QUALITY, setting]
    if image_format == "webp":
        return [cv2.IMWRITE_WEBP_QUALITY, setting]
    level, strategy, filters = _PNG_PRESETS[setting]
    return [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{strategy}"),
            cv2.IMWRITE_PNG_FILTER, getattr(cv2, f"IMWRITE_PNG_{filters}")]


def _encode_cv2(cv2, image: np.ndarray, image_format: str, setting: int) -> bytes:
    gray = image.shape[-1] == 1
    pixels = np.ascontiguousarray(image[..., 0]) if gray else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # cv2 is BGR
    ok, data = cv2.imencode(f".{image_format}", pixels, _cv2_params(cv2, image_format, setting))
    if not ok:  # not expected for uint8 images of 1 or 3 channels; never write an empty file
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {image_format}")
    return data.tobytes()


def _encode_pillow(image: np.ndarray, image_format: str, setting: int) -> bytes:
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if image_format == "png":
        level, strategy, _ = _PNG_PRESETS[setting]  # Pillow picks its own row filters
        options = {"format": "PNG", "compress_level": level, "compress_type": _ZLIB_STRATEGY[strategy]}
    else:
        options = {"format": "JPEG" if image_format == "jpg" else "WEBP", "quality": setting}
    buf = io.BytesIO()
    picture.save(buf, **options)
    return buf.getvalue()


def pixel_sha256(images: np.ndarray) -> list[str]:
    """sha256 of each image's raw pixel bytes (shape-independent replay check)."""
    flat = np.ascontiguousarray(images).reshape(images.shape[0], -1)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in flat]


# one encoder for every line: json.dumps builds a new encoder per call when given options
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=False, separators=(",", ":"))


# Line breaks for ``str.splitlines`` that json leaves raw (it escapes only U+0000-U+001F): NEL and the
# Unicode line and paragraph separators. In JSON they can only stand in strings, where \uXXXX means the same.
_RAW_BREAKS = re.compile("[\u0085\u2028\u2029]")


def manifest_line(record: dict) -> str:
    """One JSON line that every line reader sees as one: json escapes the control characters and
    the line breaks it leaves raw are escaped here, so a crafted name cannot split or forge a line."""
    return _RAW_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", _LINE_ENCODER.encode(record))
