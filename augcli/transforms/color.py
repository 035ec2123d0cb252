"""Colour transforms: configuration and parameter sampling; kernels live in functional.color.

Factor ranges follow torchvision/Pillow conventions: a factor of 1 is the identity and a single
number ``v`` means ``[1 - v, 1 + v]``. Gray (C=1) images pass through colour-only transforms
(hue, saturation, channel_shuffle, grayscale) unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from augcli.config.schema import Choice, Range
from augcli.transforms.base import Transform
from augcli.transforms.functional import color as F
from augcli.transforms.registry import register


def _factor(default, doc):
    """A multiplicative factor range around 1 (a single number v means [1 - v, 1 + v])."""
    return Range(default, 0.0, math.inf, around=1.0, doc=doc)


def _hue_limit(default=(-0.05, 0.05)):
    return Range(
        default, -0.5, 0.5, doc="hue shift as a fraction of the colour circle (0.5 = 180 degrees); v means [-v, v]"
    )


@register("brightness")
class Brightness(Transform):
    summary = "Shift brightness by a fraction of full scale drawn from `limit`."
    spec = {"limit": Range((-0.2, 0.2), -1.0, 1.0, doc="additive shift as a fraction of 255")}

    def sample_params(self, streams, shape):
        return {"delta": streams.within(self.limit)}

    def apply(self, images, params):
        return F.brightness(images, params["delta"])


@register("contrast")
class Contrast(Transform):
    summary = "Scale contrast around the mean grey level (Pillow ImageEnhance.Contrast) by a random factor."
    spec = {"factor": _factor((0.8, 1.2), "contrast factor: 0 flat mean grey, 1 unchanged, > 1 more contrast")}

    def sample_params(self, streams, shape):
        return {"factor": streams.within(self.factor)}

    def apply(self, images, params):
        return F.enhance_contrast(images, params["factor"])


@register("gamma")
class Gamma(Transform):
    summary = "Apply a random gamma curve 255*(x/255)**gamma (gamma drawn log-uniformly)."
    spec = {
        "gamma": Range(
            (0.8, 1.25),
            0.01,
            100.0,
            around=1.0,
            doc="gamma exponent range (< 1 brightens, > 1 darkens), sampled log-uniformly; v means [1 - v, 1 + v]",
        )
    }

    def sample_params(self, streams, shape):
        # log-uniform so that [0.8, 1.25] brightens and darkens equally often
        lo, hi = math.log(self.gamma[0]), math.log(self.gamma[1])
        return {"gamma": np.exp(streams.uniform(lo, hi))}

    def apply(self, images, params):
        return F.adjust_gamma(images, params["gamma"])


@register("hue")
class Hue(Transform):
    summary = "Rotate hue by a random fraction of the colour circle (HSV; gray images unchanged)."
    spec = {"limit": _hue_limit()}

    def sample_params(self, streams, shape):
        return {"shift": streams.within(self.limit)}

    def apply(self, images, params):
        return F.adjust_hue(images, params["shift"])


@register("saturation")
class Saturation(Transform):
    summary = "Scale colour saturation by a random factor (gray images unchanged)."
    spec = {
        "factor": _factor((0.8, 1.2), "saturation factor: 0 gray, 1 unchanged, > 1 more saturated"),
        "mode": Choice(
            "blend",
            choices=("blend", "hsv"),
            doc="blend: mix with the luma image (torchvision/Pillow Color); hsv: scale HSV saturation, keeping value",
        ),
    }

    def sample_params(self, streams, shape):
        return {"factor": streams.within(self.factor)}

    def apply(self, images, params):
        if self.mode == "hsv":
            return F.adjust_saturation(images, params["factor"])
        return F.enhance_color(images, params["factor"])


@register("color_jitter")
class ColorJitter(Transform):
    summary = "Random brightness, contrast, saturation and hue (torchvision ColorJitter's ops), in a random order per sample."
    spec = {
        "brightness": _factor((0.8, 1.2), "brightness factor (blend with black); v means [1 - v, 1 + v]"),
        "contrast": _factor((0.8, 1.2), "contrast factor (blend with the mean grey); v means [1 - v, 1 + v]"),
        "saturation": _factor((0.8, 1.2), "saturation factor (blend with the luma image); v means [1 - v, 1 + v]"),
        "hue": _hue_limit(),
        "mode": Choice(
            "matrix",
            choices=("matrix", "sequential"),
            doc="matrix: the four ops composed into one colour matrix per sample, rounded once, hue turned "
                "about the grey axis (YIQ), ~4x faster; sequential: torchvision's steps, rounded and clipped "
                "after each, hue through HSV",
        ),
    }

    def sample_params(self, streams, shape):
        params = {key: streams.uniform(*self.config[key]) for key in F.JITTER_OPS}
        # a uniformly random permutation per sample: the ranks of 4 uniform draws
        params["order"] = np.argsort(streams.uniform(shape=(len(F.JITTER_OPS),)), axis=1)
        return params

    def apply(self, images, params):
        jitter = F.color_jitter_matrix if self.mode == "matrix" else F.color_jitter
        return jitter(images, {key: params[key] for key in F.JITTER_OPS}, params["order"])


@register("grayscale")
class Grayscale(Transform):
    summary = "Convert to ITU-R 601-2 luma (Pillow convert('L')), keeping the channel count."
    default_p = 0.1  # torchvision RandomGrayscale's default

    def apply(self, images, params):
        return F.grayscale(images)


@register("invert")
class Invert(Transform):
    summary = "Invert every pixel: 255 - x."
    default_p = 0.5

    def apply(self, images, params):
        return F.invert(images)


@register("solarize")
class Solarize(Transform):
    summary = "Invert the pixels at or above a random threshold (Pillow ImageOps.solarize)."
    default_p = 0.5
    spec = {
        "threshold": Range(
            (128, 128),
            0,
            256,
            around=None,
            integer=True,
            doc="grey-level threshold (a number, or [a, b] drawn as an integer); 0 inverts all, 256 nothing",
        )
    }

    def sample_params(self, streams, shape):
        return {"threshold": streams.within(self.threshold)}

    def apply(self, images, params):
        return F.solarize(images, params["threshold"])


@register("posterize")
class Posterize(Transform):
    summary = "Keep a random number of most significant bits per pixel (Pillow ImageOps.posterize)."
    default_p = 0.5
    spec = {
        "bits": Range(
            (4, 6),
            1,
            8,
            around=None,
            integer=True,
            doc="bits kept (a number, or [a, b] drawn as an integer); 8 = unchanged",
        )
    }

    def sample_params(self, streams, shape):
        return {"bits": streams.within(self.bits)}

    def apply(self, images, params):
        return F.posterize(images, params["bits"])


@register("equalize")
class Equalize(Transform):
    summary = "Equalise each channel's histogram (Pillow ImageOps.equalize)."
    default_p = 0.5

    def apply(self, images, params):
        return F.equalize(images)


@register("autocontrast")
class AutoContrast(Transform):
    summary = "Stretch each channel to the full 0..255 range (Pillow ImageOps.autocontrast, cutoff 0)."
    default_p = 0.5

    def apply(self, images, params):
        return F.autocontrast(images)


@register("sharpness")
class Sharpness(Transform):
    summary = "Blur or sharpen by a random factor (Pillow ImageEnhance.Sharpness)."
    spec = {"factor": _factor((0.5, 1.5), "sharpness factor: 0 smoothed, 1 unchanged, > 1 sharpened")}

    def sample_params(self, streams, shape):
        return {"factor": streams.within(self.factor)}

    def apply(self, images, params):
        return F.enhance_sharpness(images, params["factor"])


@register("channel_shuffle")
class ChannelShuffle(Transform):
    summary = "Permute the RGB channels randomly per sample (gray images unchanged)."
    default_p = 0.5

    def sample_params(self, streams, shape):
        # always 3 draws per sample, whatever C is, so streams never depend on the data
        return {"permutation": np.argsort(streams.uniform(shape=(3,)), axis=1)}

    def apply(self, images, params):
        return F.channel_shuffle(images, params["permutation"])
