"""Shared test utilities: invoke the CLI, fingerprint output folders, build image folders (broken
files included) and check the Transform contract for the registry-wide tests."""

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from augcli.transforms import REGISTRY, build, load_all
from augcli.transforms.containers import Container

# A run long enough to be signalled or killed mid-way (about 20 s on one core): 1797 x 401 elastic samples.
SLOW = """\
dataset: {source: digits}
augment:
  copies: 400
  pipeline:
    - elastic: {alpha: 2, sigma: 1.2}
    - gaussian_blur: {}
"""

# report.json/report.md hold timings; every other output file must be byte-identical across runs.
VOLATILE = {"report.json", "report.md"}


# a small digits strategy (one mild affine copy per image) for command tests
TINY_DIGITS = """\
version: 1
seed: 3
dataset: {source: digits}
augment:
  copies: 1
  pipeline:
    - affine: {degrees: 6, shear: 6, scale: 0.05, p: 0.8}
"""


def invoke(*args):
    # imported here: the transform tests use this module without the CLI and all it loads
    from augcli.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every non-volatile file below ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in VOLATILE
    }


def write_strategy(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- image folders ----------------------------------------------------------------------------
def square(photo: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """The side x side crop of ``photo`` at (y, x), contiguous (Pillow wants it so)."""
    return np.ascontiguousarray(photo[y:y + side, x:x + side])


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(image, **kw) -> bytes:
    """``image`` (an array or a Pillow image, e.g. CMYK) encoded as JPEG with Pillow's ``kw``."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height RGB pixels followed by a tiny IDAT: a few hundred
    bytes that would need width * height * 3 bytes of memory if decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 256)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def broken_file(reason: str, image: np.ndarray | None = None) -> bytes:
    """A file the folder loader skips with ``reason``; "truncated" is the first half of ``image`` as PNG."""
    if reason == "truncated":
        data = png_bytes(image)
        return data[: len(data) // 2]
    return {"empty": b"", "undecodable": b"plain text with an image extension", "too_large": bomb_png(30_000, 30_000)}[reason]


def write_tree(root: Path, files: dict) -> Path:
    """Write ``files`` ({relative path: uint8 array or bytes}) below ``root``: arrays as PNG, bytes as
    they are (broken files, other formats). Returns ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            Image.fromarray(np.ascontiguousarray(content)).save(path, "PNG")
    return root


# --- the Transform contract, shared by the registry-wide tests -------------------------------
# Containers need children to run; two cheap ones that always fire.
CHILDREN = [{"brightness": {"p": 1.0}}, {"hflip": {"p": 1.0}}]


def registered() -> list[str]:
    """Every registered transform, sorted: parametrising over it covers a new transform unasked."""
    return sorted(load_all())


def make_transform(name: str, p: float = 1.0):
    """Transform ``name`` with its defaults at probability ``p`` (containers get ``CHILDREN``)."""
    config = {"transforms": CHILDREN, "p": p} if issubclass(REGISTRY[name], Container) else {"p": p}
    return build({name: config})


def assert_contract(t, x: np.ndarray, apply, keys: np.ndarray, cuts=()) -> np.ndarray:
    """What every transform keeps however a test applies it (``apply(x, keys)`` -> images): the input
    is left as it was, the output is uint8 of the declared shape, the same keys give the same bytes
    and, for the (start, stop) ``cuts``, a sample's result does not depend on the rest of its batch.
    Returns the output."""
    before = x.copy()
    y = apply(x, keys)
    assert np.array_equal(x, before), "input was modified"
    assert y.dtype == np.uint8
    assert y.shape == t.output_shape(x.shape), (y.shape, t.output_shape(x.shape))
    assert np.array_equal(y, apply(x, keys)), "same keys, different bytes"
    if cuts:
        parts = [apply(x[a:b], keys[a:b]) for a, b in cuts]
        assert np.array_equal(y, np.concatenate(parts)), "a sample's result depends on the rest of its batch"
    return y
