"""Writers for one split's samples: a deterministic .npz, a PNG class tree, and manifest lines.

Byte-identical output for identical input is part of the contract, so the zip entries carry a fixed
timestamp (``np.savez`` stamps the current time) and PNGs carry no metadata.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

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


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str) -> str:
    """A single path component: separators and odd characters become '_', no leading dots."""
    cleaned = _UNSAFE.sub("_", str(name)).strip(" .")
    return cleaned or "_"


def png_relpath(split: str, class_name: str, sample_id: str, copy: int) -> str:
    """``<split>/<class>/<source-stem>__<copy>.png``; the stem keeps sub-folders as '_' so it is unique."""
    stem = str(sample_id)
    prefix = f"{class_name}/"
    if stem.startswith(prefix):
        stem = stem[len(prefix):]
    stem = stem.rsplit(".", 1)[0] if "." in stem.rsplit("/", 1)[-1] else stem
    return f"{safe_name(split)}/{safe_name(class_name)}/{safe_name(stem.replace('/', '_'))}__{copy}.png"


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of one uint8 (H, W, C) image, without metadata."""
    mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    mode_image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def pixel_sha256(images: np.ndarray) -> list[str]:
    """sha256 of each image's raw pixel bytes (shape-independent replay check)."""
    flat = np.ascontiguousarray(images).reshape(images.shape[0], -1)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in flat]


def manifest_line(record: dict) -> str:
    """One JSON line; json escapes every control character, so a crafted name cannot forge a line."""
    return json.dumps(record, ensure_ascii=False, sort_keys=False, separators=(",", ":"))
