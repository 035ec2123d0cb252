"""Occlusion transforms (random erasing, cutout, GridMask): configuration and parameter sampling;
mask building and filling live in functional.erase. Box geometry is drawn against the batch's
(H, W) only, and a fixed number of draws is made per sample, so nothing depends on pixel values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from augcli.errors import SchemaError
from augcli.config.schema import Float, Int, Param, Range
from augcli.transforms.base import Transform
from augcli.transforms.functional import erase as E
from augcli.transforms.registry import register


@dataclass(frozen=True)
class Fill(Param):
    """What masked pixels become: a grey level in [0, 255] or ``"random"`` (per-pixel uniform values)."""

    def validate(self, value, path):
        if value == "random":
            return "random"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 255:
            return float(value)
        raise SchemaError(path, f"expected a number in [0, 255] or 'random', got {value!r}")

    def type_name(self):
        return "number or 'random'"

    def range_text(self):
        return "[0, 255]"


def _fill_params(fill, streams, shape) -> dict:
    """The per-pixel fill field (N, H, W, C) uint8 when the fill is random, else nothing."""
    if fill != "random":
        return {}
    _, h, w, c = shape
    return {"fill": streams.integers(0, 256, shape=(h, w, c)).astype(np.uint8)}


def _fill_value(fill, params):
    return params["fill"] if fill == "random" else fill


@register("random_erasing")
class RandomErasing(Transform):
    summary = "Erase one random rectangle per sample (Zhong et al.), of random area and aspect ratio."
    default_p = 0.5
    spec = {
        "area": Range((0.02, 0.33), 0.0, 1.0, around=None, doc="erased area as a fraction of the image: [a, b]"),
        "aspect": Range((0.3, 3.3), 0.01, 100.0, around=None, doc="box height / width, drawn log-uniformly: [a, b]"),
        "value": Fill("random", doc="fill: a grey level 0..255 for every channel, or 'random' per-pixel values"),
        "attempts": Int(10, 1, 100, doc="candidate boxes per sample; the first that fits is used (none: unchanged)"),
    }

    def check(self):
        super().check()
        if self.area[1] <= 0:
            raise SchemaError(("area",), f"expected a positive upper bound, got {list(self.area)}")

    def sample_params(self, streams, shape):
        _, h, w, _ = shape
        t = (self.attempts,)
        area = streams.uniform(self.area[0], self.area[1], shape=t)
        log_aspect = streams.uniform(math.log(self.aspect[0]), math.log(self.aspect[1]), shape=t)
        u_top = streams.uniform(shape=t)
        u_left = streams.uniform(shape=t)
        top, left, box_h, box_w = E.first_fitting_box(h, w, area, log_aspect, u_top, u_left, self.area)
        params = {"top": top, "left": left, "box_h": box_h, "box_w": box_w}
        params.update(_fill_params(self.value, streams, shape))
        return params

    def apply(self, images, params):
        _, h, w, _ = images.shape
        mask = E.box_masks(h, w, params["top"], params["left"], params["box_h"], params["box_w"])
        return E.fill_masked(images, mask, _fill_value(self.value, params))


@register("cutout")
class Cutout(Transform):
    summary = "Mask square-ish holes at random centres (DeVries & Taylor); holes are clipped at the border."
    spec = {
        "n_holes": Int(1, 1, 64, doc="number of holes per sample (they may overlap)"),
        "size": Range((0.1, 0.3), 0.0, 1.0, around=None, doc="hole side as a fraction of the image side: [a, b]"),
        "value": Fill(0.0, doc="fill: a grey level 0..255 for every channel, or 'random' per-pixel values"),
    }

    def sample_params(self, streams, shape):
        _, h, w, _ = shape
        holes = (self.n_holes,)
        side = streams.uniform(self.size[0], self.size[1], shape=holes)
        params = {
            "center_y": streams.integers(0, h, shape=holes),
            "center_x": streams.integers(0, w, shape=holes),
            "hole_h": np.rint(side * h).astype(np.int64),
            "hole_w": np.rint(side * w).astype(np.int64),
        }
        params.update(_fill_params(self.value, streams, shape))
        return params

    def apply(self, images, params):
        _, h, w, _ = images.shape
        mask = E.hole_masks(h, w, params["center_y"], params["center_x"], params["hole_h"], params["hole_w"])
        return E.fill_masked(images, mask, _fill_value(self.value, params))


@register("grid_mask")
class GridMask(Transform):
    summary = "Mask a regular grid of squares (GridMask, Chen et al.) with random unit size and offset."
    spec = {
        "unit": Range((0.2, 0.5), 0.0, 1.0, around=None, doc="grid period d as a fraction of the shorter side: [a, b]"),
        "ratio": Float(0.5, 0.0, 1.0, doc="masked square side as a fraction of d (masked area ~ ratio^2)"),
        "value": Fill(0.0, doc="fill: a grey level 0..255 for every channel, or 'random' per-pixel values"),
    }

    def sample_params(self, streams, shape):
        _, h, w, _ = shape
        frac = streams.within(self.unit)
        unit = np.maximum(2, np.rint(frac * min(h, w))).astype(np.int64)  # a unit of 1 px masks all or nothing
        params = {
            "unit": unit,
            "masked": np.rint(self.ratio * unit).astype(np.int64),
            "offset_y": streams.integers(0, unit),
            "offset_x": streams.integers(0, unit),
        }
        params.update(_fill_params(self.value, streams, shape))
        return params

    def apply(self, images, params):
        _, h, w, _ = images.shape
        mask = E.grid_masks(h, w, params["unit"], params["masked"], params["offset_y"], params["offset_x"])
        return E.fill_masked(images, mask, _fill_value(self.value, params))
