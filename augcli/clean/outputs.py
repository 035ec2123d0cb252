"""What cleaning shows people: ``quarantine.csv`` (one row per finding) and ``clean.png`` (the flagged
samples grouped by reason, each duplicate beside the sample it duplicates)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from augcli.datasets.base import Dataset
from augcli.rng import id_list

COLUMNS = ("id", "reason", "action", "score", "group", "suggested_label", "duplicate_of", "detail")
_CELL = 64      # tile side, pixels
_GAP = 4
_PER_ROW = 10   # tiles per reason
_TITLE_H = 14
_LINE_H = 12    # one caption line


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


def _font():
    """Pillow's own scalable font (FreeType builds), else its bitmap one."""
    try:
        return ImageFont.load_default(size=10)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """``text`` on one line (control characters, a newline in a crafted id, shown as ?) cut with an
    ellipsis to fit ``width`` pixels."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _captions(rec: dict) -> tuple[str, str]:
    """Two caption lines under a finding: its id, then what says why (label, score, twin)."""
    if rec["reason"] == "label_error":
        return str(rec["id"]), f"{rec['given_label']} -> {rec['suggested_label']} ({rec.get('suggested_probability', 0):.0%})"
    score = rec.get("score")
    return str(rec["id"]), ("" if score is None else f"score {score:.3g}")


def _cards(recs: list[dict], lookup: dict, room: int) -> tuple[list, int]:
    """The findings of one reason that fit in ``room`` cells: (tiles, captions) per card, a twin
    beside the finding it duplicates; and how many findings are left out."""
    cards, used = [], 0
    for n, rec in enumerate(recs):
        tiles = [_tile(lookup[str(rec["id"])])]
        captions = [_captions(rec)]
        partner = rec.get("duplicate_of")
        if partner is not None and str(partner) in lookup:
            tiles.append(_tile(lookup[str(partner)]))
            captions.append((str(partner), "kept twin"))
        if used + len(tiles) > room:
            return cards, len(recs) - n
        cards.append((tiles, captions))
        used += len(tiles)
    return cards, 0


def clean_picture(records: list[dict], datasets: list[Dataset]) -> Image.Image | None:
    """One band per reason: a title with the count (and how many are not shown), then the flagged
    samples in colour, each captioned with its id and score; a duplicate is followed by the twin it
    duplicates (framed together), a label error says given → suggested class.

    ``datasets`` are searched in order for the ids the records name (the loaded dataset, then splits).
    """
    lookup: dict[str, np.ndarray] = {}
    for ds in datasets:
        for i, sample_id in enumerate(id_list(ds.ids)):
            lookup.setdefault(str(sample_id), ds.images[i])
    by_reason: dict[str, list[dict]] = {}
    for rec in records:
        if str(rec["id"]) in lookup:
            by_reason.setdefault(rec["reason"], []).append(rec)
    if not by_reason:
        return None
    bands = [(reason, recs, *_cards(recs, lookup, _PER_ROW)) for reason, recs in by_reason.items()]
    band_h = _TITLE_H + _CELL + 2 * _LINE_H + _GAP * 3
    width = max(_GAP + sum(len(tiles) * (_CELL + _GAP) + 2 * _GAP for tiles, _ in cards) for _, _, cards, _ in bands)
    canvas = Image.new("RGB", (max(width, 360), len(bands) * band_h + _GAP), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.font = _font()
    for b, (reason, recs, cards, left_out) in enumerate(bands):
        y = _GAP + b * band_h
        more = f", {left_out} not shown (all in quarantine.csv)" if left_out else ""
        draw.text((_GAP, y), f"{reason}: {len(recs)} sample(s){more}", fill=(0, 0, 0))
        x = _GAP
        for tiles, captions in cards:
            if len(tiles) > 1:  # a finding and its twin, framed as one pair
                draw.rectangle((x - 2, y + _TITLE_H - 2, x + len(tiles) * (_CELL + _GAP) - _GAP + 1,
                                y + _TITLE_H + _CELL + 2 * _LINE_H + 1), outline=(200, 120, 0))
            for tile, (line1, line2) in zip(tiles, captions):
                canvas.paste(Image.fromarray(tile), (x, y + _TITLE_H))
                draw.text((x, y + _TITLE_H + _CELL + 1), _fit(draw, line1, _CELL), fill=(0, 0, 0))
                draw.text((x, y + _TITLE_H + _CELL + 1 + _LINE_H), _fit(draw, line2, _CELL), fill=(90, 90, 90))
                x += _CELL + _GAP
            x += _GAP * 2  # between cards
    return canvas
