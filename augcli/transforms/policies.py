"""Automatic augmentation policies: RandAugment, TrivialAugment (wide), AutoAugment and AugMix.

Every op, its magnitude scale and the op sets live in ``functional.ops`` (see its table). Each
policy records, per sample, the op indices it drew (``OP_NAMES[i]`` names them), their levels and
signs, so a manifest can tell which ops each sample got. All draws come from the per-sample
streams in a fixed number and order; ops are applied layer by layer, grouped by op kind.
"""

from __future__ import annotations

import numpy as np

from augcli.config.schema import Bool, Choice, Float, Int
from augcli.errors import SchemaError
from augcli.rng import Streams
from augcli.transforms.base import Transform
from augcli.transforms.functional import geometric as G
from augcli.transforms.functional import ops as O
from augcli.transforms.registry import register

# --- AutoAugment's published policies (Cubuk et al. 2019, appendix tables) --------------------
# One line per sub-policy: (op, probability, level, op, probability, level); levels are 0..9 on
# the "standard" scale. Levels of AutoContrast/Equalize/Invert are listed as published but unused.
_CIFAR10 = """
Invert .1 7 Contrast .2 6 | Rotate .7 2 TranslateX .3 9 | Sharpness .8 1 Sharpness .9 3
ShearY .5 8 TranslateY .7 9 | AutoContrast .5 8 Equalize .9 2 | ShearY .2 7 Posterize .3 7
Color .4 3 Brightness .6 7 | Sharpness .3 9 Brightness .7 9 | Equalize .6 5 Equalize .5 1
Contrast .6 7 Sharpness .6 5 | Color .7 7 TranslateX .5 8 | Equalize .3 7 AutoContrast .4 8
TranslateY .4 3 Sharpness .2 6 | Brightness .9 6 Color .2 8 | Solarize .5 2 Invert 0 3
Equalize .2 0 AutoContrast .6 0 | Equalize .2 8 Equalize .6 4 | Color .9 9 Equalize .6 6
AutoContrast .8 4 Solarize .2 8 | Brightness .1 3 Color .7 0 | Solarize .4 5 AutoContrast .9 3
TranslateY .9 9 TranslateY .7 9 | AutoContrast .9 2 Solarize .8 3 | Equalize .8 8 Invert .1 3
TranslateY .7 9 AutoContrast .9 1
"""
_SVHN = """
ShearX .9 4 Invert .2 3 | ShearY .9 8 Invert .7 5 | Equalize .6 5 Solarize .6 6
Invert .9 3 Equalize .6 3 | Equalize .6 1 Rotate .9 3 | ShearX .9 4 AutoContrast .8 3
ShearY .9 8 Invert .4 5 | ShearY .9 5 Solarize .2 6 | Invert .9 6 AutoContrast .8 1
Equalize .6 3 Rotate .9 3 | ShearX .9 4 Solarize .3 3 | ShearY .8 8 Invert .7 4
Equalize .9 5 TranslateY .6 6 | Invert .9 4 Equalize .6 7 | Contrast .3 3 Rotate .8 4
Invert .8 5 TranslateY 0 2 | ShearY .7 6 Solarize .4 8 | Invert .6 4 Rotate .8 4
ShearY .3 7 TranslateX .9 3 | ShearX .1 6 Invert .6 5 | Solarize .7 2 TranslateY .6 7
ShearY .8 4 Invert .8 8 | ShearX .7 9 TranslateY .8 3 | ShearY .8 5 AutoContrast .7 3
ShearX .7 2 Invert .1 5
"""
_IMAGENET = """
Posterize .4 8 Rotate .6 9 | Solarize .6 5 AutoContrast .6 5 | Equalize .8 8 Equalize .6 3
Posterize .6 7 Posterize .6 6 | Equalize .4 7 Solarize .2 4 | Equalize .4 4 Rotate .8 8
Solarize .6 3 Equalize .6 7 | Posterize .8 5 Equalize 1 2 | Rotate .2 3 Solarize .6 8
Equalize .6 8 Posterize .4 6 | Rotate .8 8 Color .4 0 | Rotate .4 9 Equalize .6 2
Equalize 0 7 Equalize .8 8 | Invert .6 4 Equalize 1 8 | Color .6 4 Contrast 1 8
Rotate .8 8 Color 1 2 | Color .8 8 Solarize .8 7 | Sharpness .4 7 Invert .6 8
ShearX .6 5 Equalize 1 9 | Color .4 0 Equalize .6 3 | Equalize .4 7 Solarize .2 4
Solarize .6 5 AutoContrast .6 5 | Invert .6 4 Equalize 1 8 | Color .6 4 Contrast 1 8
Equalize .8 8 Equalize .6 3
"""


def _parse_policy(text: str):
    """(ops, probabilities, levels), each (25, 2), from the compact table text above."""
    rows = [entry.split() for entry in text.replace("\n", " | ").split("|") if entry.strip()]
    ops = np.array([[O.OP_INDEX[r[0]], O.OP_INDEX[r[3]]] for r in rows], dtype=np.int64)
    probs = np.array([[float(r[1]), float(r[4])] for r in rows])
    levels = np.array([[float(r[2]), float(r[5])] for r in rows])
    return ops, probs, levels


POLICIES = {name: _parse_policy(text) for name, text in (("cifar10", _CIFAR10), ("svhn", _SVHN), ("imagenet", _IMAGENET))}

# --- shared options and helpers ---------------------------------------------------------------
_RESAMPLING = {
    "interpolation": Choice("bilinear", choices=G.INTERPOLATIONS, doc="resampling of the geometric ops: bilinear or nearest"),
    "fill": Int(128, 0, 255, doc="grey level of pixels moved in from outside the image (the reference code uses 128)"),
}


def _signs(streams: Streams, shape: tuple) -> np.ndarray:
    """Random +-1 per op slot (int8), drawn whether or not the op is signed."""
    return np.where(streams.bernoulli(0.5, shape), 1, -1).astype(np.int8)


class _Policy(Transform):
    """Shared ``apply``: ``ops``/``levels``/``signs`` of shape (N, L) applied as L layers."""

    space = "standard"

    def apply(self, images, params):
        ops = params["ops"]
        for layer in range(ops.shape[1]):
            images = O.apply_op_batch(
                images, ops[:, layer], params["levels"][:, layer], params["signs"][:, layer],
                self.fill, self.space, self.interpolation,
            )  # fmt: skip
        return images


@register("randaugment")
class RandAugment(_Policy):
    """RandAugment (Cubuk et al. 2020): n layers, each applying one of 14 ops picked uniformly per
    sample, all at the shared magnitude M (on 0..30, where 10 is AutoAugment's maximum).

    Note: torchvision spreads its 31 magnitude bins over 0..max, so its ``magnitude=9`` is a third
    as strong as ``m: 9`` here, which follows the paper (and its reference code).
    """

    summary = "RandAugment: n random ops per sample from the 14-op set, at a shared magnitude m."
    spec = {
        "n": Int(2, 1, 16, doc="number of ops applied in sequence (layers) per sample"),
        "m": Float(9.0, 0.0, 30.0, doc="magnitude level on 0..30 (10 = AutoAugment's max: shear 0.3, rotate 30 deg, ...)"),
        "m_std": Float(0.0, 0.0, 30.0, doc="std of Gaussian noise added to m per op and sample (clipped to 0..30); 0 = fixed m"),
        **_RESAMPLING,
    }

    def sample_params(self, streams, shape):
        layers = (self.n,)
        ops = np.asarray(O.RANDAUGMENT_OPS)[streams.integers(0, len(O.RANDAUGMENT_OPS), layers)]
        noise = streams.normal(0.0, 1.0, layers)  # drawn even when m_std = 0: a fixed draw count
        levels = np.clip(self.m + self.m_std * noise, 0.0, 30.0)
        return {"ops": ops, "levels": levels, "signs": _signs(streams, layers)}


@register("trivialaugment")
class TrivialAugment(_Policy):
    """TrivialAugment wide (Müller & Hutter 2021): one op per sample from the 14-op set, strength
    uniform over the 31 bins 0..30 of the wide space (shear 0.99, translate 32 px, rotate 135 deg,
    enhance 1 +- 0.99, posterize 8..2 bits, solarize 256..0)."""

    summary = "TrivialAugment (wide): one random op per sample at a uniformly random strength."
    spec = dict(_RESAMPLING)
    space = "wide"

    def sample_params(self, streams, shape):
        ops = np.asarray(O.TRIVIALAUGMENT_OPS)[streams.integers(0, len(O.TRIVIALAUGMENT_OPS), (1,))]
        levels = streams.integers(0, 31, (1,)).astype(np.float64)
        return {"ops": ops, "levels": levels, "signs": _signs(streams, (1,))}


@register("autoaugment")
class AutoAugment(_Policy):
    """AutoAugment (Cubuk et al. 2019) with a published policy: per sample one of its 25
    sub-policies is picked uniformly, and each of the sub-policy's two ops fires with its own
    probability at its level (0..9 on the standard scale, 10 = max)."""

    summary = "AutoAugment: a random sub-policy (2 ops with probabilities and levels) of a published policy."
    spec = {
        "policy": Choice("imagenet", choices=tuple(POLICIES), doc="published policy: cifar10, svhn or imagenet"),
        **_RESAMPLING,
    }

    def sample_params(self, streams, shape):
        table_ops, table_probs, table_levels = POLICIES[self.policy]
        sub = streams.integers(0, len(table_ops))
        fires = streams.uniform(0.0, 1.0, (2,)) < table_probs[sub]
        # ops that do not fire are recorded as Identity, so the record shows what was applied
        ops = np.where(fires, table_ops[sub], O.IDENTITY)
        return {"sub_policy": sub, "ops": ops, "levels": table_levels[sub], "signs": _signs(streams, (2,))}


def dirichlet(streams: Streams, alpha: float, k: int) -> np.ndarray:
    """Symmetric Dirichlet(alpha, ..., alpha) weights (N, k) by stick-breaking with Beta draws:
    the j-th weight takes a Beta(alpha, (k - 1 - j) * alpha) share of what is left."""
    weights = np.zeros((len(streams), k))
    left = np.ones(len(streams))
    for j in range(k - 1):
        share = streams.beta(alpha, (k - 1 - j) * alpha)
        weights[:, j] = left * share
        left = left - weights[:, j]
    weights[:, k - 1] = left
    return weights


@register("augmix")
class AugMix(Transform):
    """AugMix (Hendrycks et al. 2020): ``width`` chains of ``depth`` random ops each, mixed with
    Dirichlet(alpha) weights and blended with the original by a Beta(alpha, alpha) weight."""

    summary = "AugMix: mix several random op chains with Dirichlet weights, then blend with the original."
    spec = {
        "severity": Int(3, 1, 10, doc="op strength: each op's level is uniform in [0.1, severity] (10 = max)"),
        "width": Int(3, 1, 16, doc="number of augmentation chains mixed together"),
        "depth": Int(-1, -1, 8, doc="ops per chain; -1 draws 1..3 per chain and sample"),
        "alpha": Float(1.0, 0.01, 100.0, doc="Dirichlet (chain weights) and Beta (skip weight) concentration"),
        "all_ops": Bool(False, doc="also use Color/Contrast/Brightness/Sharpness (the paper leaves them out: they overlap ImageNet-C)"),
        **_RESAMPLING,
    }
    space = "augmix"

    def check(self):
        super().check()
        if self.depth == 0:
            raise SchemaError(("depth",), "expected -1 (random 1..3) or a depth >= 1, got 0")

    def sample_params(self, streams, shape):
        op_set = np.asarray(O.AUGMIX_ALL_OPS if self.all_ops else O.AUGMIX_OPS)
        steps = self.depth if self.depth > 0 else 3
        chain = (self.width, steps)
        ops = op_set[streams.integers(0, len(op_set), chain)]
        if self.depth > 0:
            depths = np.full((len(streams), self.width), self.depth, dtype=np.int64)
        else:
            depths = streams.integers(1, 4, (self.width,))
        # steps past a chain's depth are recorded as Identity: the record shows what ran
        ops = np.where(np.arange(steps) < depths[..., None], ops, O.IDENTITY)
        return {
            "ops": ops,
            "levels": streams.uniform(0.1, float(self.severity), chain),
            "signs": _signs(streams, chain),
            "depths": depths,
            "weights": dirichlet(streams, self.alpha, self.width),
            "skip": streams.beta(self.alpha, self.alpha),
        }

    def apply(self, images, params):
        ops, levels, signs = params["ops"], params["levels"], params["signs"]

        def chains():
            for k in range(ops.shape[1]):
                out = images
                for step in range(ops.shape[2]):
                    out = O.apply_op_batch(
                        out, ops[:, k, step], levels[:, k, step], signs[:, k, step],
                        self.fill, self.space, self.interpolation,
                    )  # fmt: skip
                yield out

        return O.augmix_mix(images, chains(), params["weights"], params["skip"])
