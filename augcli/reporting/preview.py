"""Preview pictures: originals beside their augmented copies, scaled so small images stay visible."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from augcli.datasets.base import Dataset, hard_labels
from augcli.io.encoders import encode_image
from augcli.io.png import with_text
from augcli.pipeline import Pipeline
from augcli.transforms.mixing import MixPool, one_hot
from augcli.transforms.registry import build

_GAP = 4
# A PNG text chunk written before the pixels: how ``augcli preview`` recognises its own pictures.
PREVIEW_SIGNATURE = b"augcli preview"
_LABEL_W = 56
_HEADER_H = 16


def png_bytes(picture: Image.Image) -> bytes:
    """The picture as PNG bytes, tagged (Software: augcli preview) so a rerun may replace it.

    Encoded like the output's PNGs (``encode_image`` at the default png_compression): a grid of
    8 x 7 photo crops is ~12 MB of pixels, which Pillow's level-6 deflate took ~1 s to write, a
    sixth of a short run; the default preset takes a small fraction of that."""
    return with_text(encode_image(np.asarray(picture.convert("RGB"))), b"Software", PREVIEW_SIGNATURE)


def pick_rows(dataset: Dataset, rows: int) -> np.ndarray:
    """Row indices: the first sample of each class first (so every class shows), then the next ones."""
    hard = hard_labels(dataset.labels)
    _, first = np.unique(hard, return_index=True)
    rest = np.setdiff1d(np.arange(len(dataset)), first)
    return np.concatenate([np.sort(first), rest])[:rows]


def _to_rgb(images: np.ndarray, scale: int) -> np.ndarray:
    rgb = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
    return rgb.repeat(scale, axis=1).repeat(scale, axis=2)


def preview_grid(dataset: Dataset, pipeline: Pipeline, rows: int = 8, copies: int = 6) -> Image.Image:
    """A grid image: one row per picked sample; column 0 the original, then copies 1..``copies``.

    Copy k here is the same draw as output copy k of a run with the same seed.
    """
    idx = pick_rows(dataset, rows)
    originals = dataset.images[idx]
    ids = dataset.ids[idx]
    labels = dataset.labels[idx]
    pool = None
    if pipeline.mixes_labels:
        pool = MixPool(dataset.images, one_hot(dataset.labels, len(dataset.class_names)))
    columns = [originals] + [
        pipeline.run(originals, pipeline.keys(ids, k), labels, pool, len(dataset.class_names))[0]
        for k in range(1, copies + 1)
    ]
    h = max(c.shape[1] for c in columns)
    w = max(c.shape[2] for c in columns)
    scale = max(1, int(np.ceil(64 / max(h, w))))
    ch, cw = h * scale, w * scale
    width = _LABEL_W + len(columns) * (cw + _GAP)
    height = _HEADER_H + len(idx) * (ch + _GAP)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for c, col in enumerate(columns):
        tiles = _to_rgb(col, scale)
        x = _LABEL_W + c * (cw + _GAP)
        for r, tile in enumerate(tiles):
            y = _HEADER_H + r * (ch + _GAP)
            canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for c in range(len(columns)):
        draw.text((_LABEL_W + c * (cw + _GAP) + 2, 2), "original" if c == 0 else f"copy {c}", fill=(0, 0, 0))
    hard = hard_labels(dataset.labels[idx])
    for r, label in enumerate(hard):
        draw.text((4, _HEADER_H + r * (ch + _GAP) + ch // 2 - 6), str(dataset.class_names[label])[:8], fill=(0, 0, 0))
    return image


def most_textured(dataset: Dataset, candidates: int = 64) -> np.ndarray:
    """The row, among the first ``candidates`` of ``pick_rows``, with the most texture (mean absolute
    luma step to the next pixel, across and down): flips, crops and blurs show on it, where a patch
    of sky would look the same before and after."""
    idx = pick_rows(dataset, min(len(dataset), candidates))
    luma = dataset.images[idx].astype(np.float32).mean(axis=-1)
    texture = np.abs(np.diff(luma, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(luma, axis=2)).mean(axis=(1, 2))
    return idx[[int(np.argmax(texture))]]


def per_transform_grid(dataset: Dataset, pipeline: Pipeline, copies: int = 6) -> Image.Image:
    """One row per top-level transform (forced to fire, p=1) on the same original, the most textured
    one (``most_textured``), so each transform's effect can be judged alone; the last row is the
    whole pipeline. Rows are named in full in a margin as wide as the longest name."""
    sample = dataset.subset(most_textured(dataset))
    rows, names = [], []
    for t in pipeline.transforms:
        if t.uses_labels or t.changes_shape:
            continue  # shown in the whole-pipeline row: they need a pool or change the size
        config = t.to_config()
        config[t.name]["p"] = 1.0
        rows.append(Pipeline([build(config)], seed=pipeline.seed))
        names.append(t.name)
    rows.append(pipeline)
    names.append("pipeline")
    grids = [preview_grid(sample, pipe, 1, copies) for pipe in rows]
    return _stack_rows(grids, names)


def _stack_rows(grids: list[Image.Image], names: list[str]) -> Image.Image:
    draw = ImageDraw.Draw(grids[0])
    margin = 8 + max(int(draw.textlength(name)) for name in names)  # full names, however long
    width = margin + max(g.width for g in grids) - _LABEL_W
    height = sum(g.height for g in grids)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    draw = ImageDraw.Draw(canvas)
    for grid, name in zip(grids, names):
        canvas.paste(grid.crop((_LABEL_W, 0, grid.width, grid.height)), (margin, y))  # the class label gives way
        draw.text((2, y + _HEADER_H + 4), name, fill=(0, 0, 0))
        y += grid.height
    return canvas
