"""The search space: catalogue transforms as ops with a probability and a magnitude level.

A *level* is an integer 0..10 on AutoAugment's scale (10 = the op's full value, values grow
linearly with the level); ops without a magnitude (flips, equalize, ...) have the single level 0.
Probabilities are on AutoAugment's grid 0.0, 0.1, ..., 1.0. Geometric values are relative to the
image side s = min(height, width), so an 8x8 digit and a 32x32 photo get comparable distortions:

    op            transform       value at level L (s = image side)
    shift         random_crop     padding max(1, round(L/10 * max(1, round(s/4)))) whole pixels
    translate     translate       +-0.01 * L of the side, sub-pixel (bilinear)
    rotate        rotate          +-3 * L degrees
    shear         shear           +-1.67 * L degrees (x and y; 16.7 deg = AutoAugment's 0.3)
    scale         scale           zoom factor 1 +- 0.03 * L
    affine        affine          all of: rotate +-2L and shear +-2L degrees, zoom 1 +- 0.015L, shift +-0.01L
    elastic       elastic         alpha = s/4 * L/10 pixels, sigma = max(1, s/8) pixels
    brightness    brightness      +-0.05 * L of full scale (additive)
    contrast      contrast        factor 1 +- 0.09 * L
    sharpness     sharpness       factor 1 +- 0.09 * L
    posterize     posterize       8 - max(1, round(0.4 * L)) bits kept
    solarize      solarize        threshold 256 - 25.6 * L
    noise         gaussian_noise  std up to 0.02 * L of full scale
    cutout        cutout          one hole of side 0.025 * L .. 0.05 * L of the image side
    autocontrast, equalize, invert, hflip, vflip, rot90: no magnitude

On 8x8 digits shift moves by 1 pixel at levels 1-7 and 2 at 8-10, translate by up to 0.08 pixel
per level (configs/digits.yaml's 0.03 is level 3), rotate 3 degrees per level,
elastic 0.2 pixels of field strength per level (configs/digits.yaml's 0.6 is level 3); affine at
level 3 is close to configs/digits.yaml's affine (6 degrees, 0.05 zoom, 0.03 shift, 6 degrees shear).
The strategy's label-safety rules restrict the space: an op whose transform a rule forbids is
removed, and a rule's ``max_abs`` cap on a sampled parameter (``angle``, ``shear_x``, ...) lowers
the op's largest level so that no draw can exceed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

MAX_LEVEL = 10
PROBABILITIES = tuple(round(0.1 * i, 1) for i in range(11))
FAMILIES = ("geometric", "photometric", "noise", "flip")


@dataclass(frozen=True)
class Op:
    """One op: the catalogue transform it runs and how a level becomes that transform's config."""

    name: str
    transform: str
    family: str
    unit: str
    config: Callable[[int, int], dict] | None = None   # (level, image side) -> transform parameters
    caps: Callable[[int, int], dict] | None = None     # (level, side) -> {sampled key: largest |value|}

    @property
    def has_magnitude(self) -> bool:
        return self.config is not None

    def params(self, level: int, side: int) -> dict:
        """The transform's parameters (without ``p``) at ``level`` for images of side ``side``."""
        return self.config(int(level), int(side)) if self.config else {}


def _shift_pixels(level: int, side: int) -> int:
    full = max(1, round(side / 4))
    return max(1, round(level / MAX_LEVEL * full))


def _r(x: float) -> float:
    return round(float(x), 4)


OPS: tuple[Op, ...] = (
    Op("shift", "random_crop", "geometric", "whole pixels (padding of a random crop)",
       lambda L, s: {"padding": _shift_pixels(L, s)}),
    Op("translate", "translate", "geometric", "sub-pixel shift, +-0.01 of the side per level (bilinear)",
       lambda L, s: {"fraction": _r(0.01 * L)}, lambda L, s: {"tx": 0.01 * L, "ty": 0.01 * L}),
    Op("rotate", "rotate", "geometric", "degrees, +-3 per level",
       lambda L, s: {"degrees": _r(3.0 * L)}, lambda L, s: {"angle": 3.0 * L}),
    Op("shear", "shear", "geometric", "degrees, +-1.67 per level",
       lambda L, s: {"degrees": _r(1.67 * L)}, lambda L, s: {"shear_x": 1.67 * L, "shear_y": 1.67 * L}),
    Op("scale", "scale", "geometric", "zoom factor 1 +- 0.03 per level",
       lambda L, s: {"factor": _r(0.03 * L)}, lambda L, s: {"scale": 1.0 + 0.03 * L}),
    Op("affine", "affine", "geometric", "rotate +-2, shear +-2 degrees, zoom 1 +- 0.015, shift +-0.01 of the side per level",
       lambda L, s: {"degrees": _r(2.0 * L), "shear": _r(2.0 * L), "scale": _r(0.015 * L), "translate": _r(0.01 * L)},
       lambda L, s: {"angle": 2.0 * L, "shear_x": 2.0 * L, "shear_y": 2.0 * L, "scale": 1.0 + 0.015 * L,
                     "tx": 0.01 * L, "ty": 0.01 * L}),
    Op("elastic", "elastic", "geometric", "field strength alpha = side/4 * level/10 pixels",
       lambda L, s: {"alpha": _r(s / 4.0 * L / MAX_LEVEL), "sigma": _r(max(1.0, s / 8.0))}),
    Op("brightness", "brightness", "photometric", "additive shift +-0.05 of full scale per level",
       lambda L, s: {"limit": _r(0.05 * L)}),
    Op("contrast", "contrast", "photometric", "factor 1 +- 0.09 per level",
       lambda L, s: {"factor": _r(0.09 * L)}),
    Op("sharpness", "sharpness", "photometric", "factor 1 +- 0.09 per level",
       lambda L, s: {"factor": _r(0.09 * L)}),
    Op("posterize", "posterize", "photometric", "bits kept: 8 - max(1, round(0.4 * level))",
       lambda L, s: {"bits": 8 - max(1, round(0.4 * L))}),
    Op("solarize", "solarize", "photometric", "threshold 256 - 25.6 * level",
       lambda L, s: {"threshold": int(round(256 - 25.6 * L))}),
    Op("autocontrast", "autocontrast", "photometric", "-"),
    Op("equalize", "equalize", "photometric", "-"),
    Op("invert", "invert", "photometric", "-"),
    Op("noise", "gaussian_noise", "noise", "std up to 0.02 of full scale per level",
       lambda L, s: {"std": [0.0, _r(0.02 * L)]}),
    Op("cutout", "cutout", "noise", "hole side 0.025..0.05 of the image side per level",
       lambda L, s: {"size": [_r(0.025 * L), _r(0.05 * L)]}),
    Op("hflip", "hflip", "flip", "-"),
    Op("vflip", "vflip", "flip", "-"),
    Op("rot90", "rot90", "flip", "-"),
)
OP_BY_NAME = {op.name: op for op in OPS}


@dataclass(frozen=True)
class Space:
    """The ops a search may use, each with its largest allowed level, for images of ``side``."""

    ops: tuple[Op, ...]
    max_level: dict
    side: int
    removed: dict = field(default_factory=dict)  # op name -> why the rules removed it

    @property
    def names(self) -> list[str]:
        return [op.name for op in self.ops]

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        return OP_BY_NAME[name]

    def levels(self, name: str) -> list[int]:
        """The levels a search may pick for op ``name``: 1..max, or [0] without a magnitude."""
        return list(range(1, self.max_level[name] + 1)) if self.op(name).has_magnitude else [0]

    def pairs(self) -> list[tuple[str, int]]:
        """Every (op, level) the space allows, in table order."""
        return [(name, level) for name in self.names for level in self.levels(name)]

    def family(self, *families: str) -> list[str]:
        """The names of the space's ops in the given families, in table order."""
        return [op.name for op in self.ops if op.family in families]

    def clamp(self, name: str, level: int) -> int:
        """``level`` brought into the op's allowed levels."""
        allowed = self.levels(name)
        return min(max(int(level), allowed[0]), allowed[-1])

    def entry(self, name: str, prob: float, level: int) -> dict:
        """The ``augment.pipeline`` entry of op ``name`` firing with ``prob`` at ``level``."""
        op = self.op(name)
        return {op.transform: {**op.params(level, self.side), "p": round(float(prob), 4)}}

    def to_json(self) -> dict:
        return {"levels": f"0..{MAX_LEVEL} (10 = full value)", "probabilities": list(PROBABILITIES), "side": self.side,
                "ops": [{"op": op.name, "transform": op.transform, "family": op.family, "unit": op.unit,
                         "max_level": self.max_level[op.name],
                         "at_max": op.params(self.max_level[op.name], self.side) if op.has_magnitude else None}
                        for op in self.ops],
                "removed": dict(self.removed)}

    def describe(self) -> str:
        """The ``--show-space`` text: one line per op, then what the rules removed."""
        lines = [f"search space for images of side {self.side}: {len(self.ops)} ops, {len(self.pairs())} (op, level) "
                 f"pairs; levels 0..{MAX_LEVEL} (10 = full value), probabilities 0.0..1.0 in steps of 0.1", ""]
        for op in self.ops:
            top = self.max_level[op.name]
            example = (f"level 1: {op.params(1, self.side)}  level {top}: {op.params(top, self.side)}"
                       if op.has_magnitude else "no magnitude")
            lines.append(f"  {op.name:<12} {op.transform:<15} {op.family:<11} {example}")
            lines.append(f"  {'':<12} {'':<15} {'':<11} magnitude: {op.unit}")
        for name, why in self.removed.items():
            lines.append(f"  removed {name}: {why}")
        return "\n".join(lines)


def build_space(image_shape: tuple, rules: list[dict] | None = None, families: tuple = FAMILIES) -> Space:
    """The space for images of ``image_shape`` (H, W, C) under the strategy's ``augment.rules``.

    An op is removed when a rule forbids its transform (for any class: the tuned policy is one
    pipeline for every class); a ``max_abs`` cap lowers the op's largest level until every draw
    stays within the cap; an op whose level 1 already exceeds a cap is removed.
    """
    side = int(min(image_shape[0], image_shape[1]))
    forbidden = {name for rule in rules or [] for name in rule["forbid"]}
    caps: dict[str, float] = {}
    for rule in rules or []:
        for key, cap in rule["max_abs"].items():
            caps[key] = min(caps.get(key, math.inf), float(cap))
    ops, max_level, removed = [], {}, {}
    for op in OPS:
        if op.family not in families:
            continue
        if op.transform in forbidden:
            removed[op.name] = f"a rule forbids {op.transform}"
            continue
        top = MAX_LEVEL if op.has_magnitude else 0
        if op.caps is not None:
            while top >= 1 and any(v > caps.get(k, math.inf) + 1e-9 for k, v in op.caps(top, side).items()):
                top -= 1
            if top == 0:
                removed[op.name] = "a rule's max_abs cap is below its level 1"
                continue
        ops.append(op)
        max_level[op.name] = top
    return Space(tuple(ops), max_level, side, removed)
