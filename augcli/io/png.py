"""PNG files put together by NumPy and zlib-ng: the default ``output.png_compression`` preset.

A PNG is an 8-byte signature and chunks (length, type, data, CRC-32): IHDR (size, bit depth 8,
colour type grey or RGB), one IDAT with the zlib stream of the filtered rows, IEND. Every row uses
the Up filter (each byte minus the byte above it): one NumPy subtraction per image, which on photos
compresses as well as libpng's per-row choice at level 1. The deflate is level 1 with run-length
matching only (Z_RLE, as OpenCV's default), by zlib-ng (the ``zlib-ng`` package): its RLE search
is SIMD, ~1.5x zlib's, and the whole encode ~0.6x ``cv2.imwrite``'s time on 224x224 photo crops
(benchmarks/bench_encoders.py). Run-length matching keeps no hash table, so no state of an earlier
call can reach the output: same pixels, same bytes. (ISA-L's deflate was faster still, but wrote
one test PNG with other bytes for the same pixels once: its level 1 hashes.)
Any PNG decoder reads them: the stream is ordinary deflate.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from zlib_ng import zlib_ng

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2           # PNG filter type byte
_LEVEL = 1


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, 4-byte type, data, CRC-32 of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def up_filtered(image: np.ndarray) -> np.ndarray:
    """The scanlines of a uint8 (H, W, C) image, Up-filtered: (H, 1 + W*C), a filter byte per row.
    The first row has no row above (PNG counts it as zeros), so it is kept as it is."""
    rows = image.reshape(image.shape[0], -1)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = _UP
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps: PNG's modulo 256
    return out


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 1) grey or (H, W, 3) RGB image, 8 bits per sample, no metadata."""
    h, w, c = image.shape
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)  # depth, colour type, methods
    deflate = zlib_ng.compressobj(_LEVEL, zlib_ng.DEFLATED, 15, 8, zlib_ng.Z_RLE)
    idat = deflate.compress(up_filtered(np.ascontiguousarray(image))) + deflate.flush()
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def with_text(png: bytes, key: bytes, text: bytes) -> bytes:
    """``png`` with a tEXt chunk ``key``: ``text`` right after IHDR (signature, then IHDR's length,
    type, 13 data bytes and CRC), where a reader of the file's first bytes finds it."""
    end = len(SIGNATURE) + 4 + 4 + 13 + 4
    return png[:end] + chunk(b"tEXt", key + b"\0" + text) + png[end:]
