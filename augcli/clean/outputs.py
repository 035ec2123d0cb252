"""What cleaning shows people: ``quarantine.csv`` (one row per finding) and ``clean.png`` (the flagged
samples grouped by reason, each duplicate beside the sample it duplicates)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from augcli.datasets.base import Dataset

COLUMNS = ("id", "reason", "action", "score", "group", "suggested_label", "duplicate_of", "detail")
_CELL = 48
_GAP = 4
_LABEL_W = 110
_PER_ROW = 12


def _safe_cell(value) -> str:
    """CSV cell text; a leading =, +, - or @ is neutralised so spreadsheets never run it as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def quarantine_csv(records: list[dict]) -> str:
    """CSV text with a header; quoting is done by the csv module, so names cannot forge rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rec in records:
        writer.writerow([_safe_cell(rec.get(col)) for col in COLUMNS])
    return buf.getvalue()


def write_quarantine(path: Path, records: list[dict]) -> None:
    path.write_text(quarantine_csv(records), encoding="utf-8")


def _tile(image: np.ndarray) -> np.ndarray:
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    pil = Image.fromarray(rgb).resize((_CELL, _CELL), Image.NEAREST if image.shape[0] < _CELL else Image.BILINEAR)
    return np.asarray(pil)


def clean_picture(records: list[dict], datasets: list[Dataset]) -> Image.Image | None:
    """Rows of flagged samples grouped by reason; duplicates are followed by what they duplicate.

    ``datasets`` are searched in order for the ids the records name (the loaded dataset, then splits).
    """
    lookup: dict[str, np.ndarray] = {}
    for ds in datasets:
        for i, sample_id in enumerate(ds.ids):
            lookup.setdefault(str(sample_id), ds.images[i])
    by_reason: dict[str, list[dict]] = {}
    for rec in records:
        if str(rec["id"]) in lookup:
            by_reason.setdefault(rec["reason"], []).append(rec)
    if not by_reason:
        return None
    rows = []
    for reason, recs in by_reason.items():
        tiles = []
        for rec in recs:
            tiles.append(_tile(lookup[str(rec["id"])]))
            partner = rec.get("duplicate_of")
            if partner is not None and str(partner) in lookup:
                tiles.append(_tile(lookup[str(partner)]))
            if len(tiles) >= _PER_ROW:
                break
        rows.append((reason, len(recs), tiles[:_PER_ROW]))
    width = _LABEL_W + _PER_ROW * (_CELL + _GAP)
    height = len(rows) * (_CELL + _GAP) + _GAP
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (reason, count, tiles) in enumerate(rows):
        y = _GAP + r * (_CELL + _GAP)
        draw.text((4, y + _CELL // 2 - 12), reason, fill=(0, 0, 0))
        draw.text((4, y + _CELL // 2 + 2), f"{count} sample(s)", fill=(90, 90, 90))
        for c, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile), (_LABEL_W + c * (_CELL + _GAP), y))
    return canvas
