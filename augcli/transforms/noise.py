"""Noise transforms: configuration and parameter sampling; kernels live in functional.noise.

Noise fields are drawn from a per-sample key with a shape that depends only on the image shape and
the config ((H, W, C) or (H, W, 1)), so the draws never depend on pixel values or on the batch.
"""

from __future__ import annotations

import numpy as np

from augcli.rng import Streams
from augcli.config.schema import Bool, Float, Range
from augcli.transforms.base import Transform
from augcli.transforms.functional import noise as F
from augcli.transforms.registry import register


def _field_shape(shape: tuple, per_channel: bool) -> tuple:
    _, h, w, c = shape
    return (h, w, c if per_channel else 1)


_PER_CHANNEL = Bool(True, doc="independent noise per channel (false: the same noise on every channel)")


class _FieldNoise(Transform):
    """Noise from a per-pixel Gaussian field scaled by a per-sample std; ``kernel`` combines them."""

    kernel = None  # staticmethod(kernel(images, std, field))

    def sample_params(self, streams, shape):
        # only a per-sample key is drawn here; the field is built in apply for the samples that
        # fire, so p < 1 saves the (dominant) cost of the noise itself and params stay small
        return {"std": streams.within(self.std), "field_key": streams.bits()}

    def apply(self, images, params):
        field = Streams(params["field_key"]).normal(shape=_field_shape(images.shape, self.per_channel), dtype=np.float32)
        return self.kernel(images, params["std"], field)


@register("gaussian_noise")
class GaussianNoise(_FieldNoise):
    summary = "Add zero-mean Gaussian noise whose std (a fraction of 255) is drawn per sample."
    spec = {
        "std": Range((0.01, 0.05), 0.0, 1.0, around=None, doc="noise standard deviation as a fraction of 255: [a, b]"),
        "per_channel": _PER_CHANNEL,
    }
    kernel = staticmethod(F.gaussian_noise)


@register("speckle_noise")
class SpeckleNoise(_FieldNoise):
    summary = "Multiply by (1 + std * Gaussian noise): noise proportional to brightness."
    spec = {
        "std": Range((0.05, 0.2), 0.0, 2.0, around=None, doc="relative noise standard deviation: [a, b]"),
        "per_channel": _PER_CHANNEL,
    }
    kernel = staticmethod(F.speckle_noise)


@register("salt_and_pepper")
class SaltAndPepper(Transform):
    summary = "Set a random fraction of pixels (all channels) to white (salt) or black (pepper)."
    spec = {
        "amount": Range((0.01, 0.05), 0.0, 1.0, around=None, doc="fraction of pixels changed: [a, b]"),
        "salt_vs_pepper": Float(0.5, 0.0, 1.0, doc="share of the changed pixels set to 255 (the rest to 0)"),
    }

    def sample_params(self, streams, shape):
        _, h, w, _ = shape
        amount = streams.within(self.amount)
        return {
            "amount": amount,
            "salt_ratio": np.full(amount.shape, self.salt_vs_pepper),
            # float64 on purpose: a float32 cast can round a draw up to 1.0 and miss amount = 1
            "field": streams.uniform(0.0, 1.0, shape=(h, w, 1)),
        }

    def apply(self, images, params):
        return F.salt_and_pepper(images, params["amount"], params["salt_ratio"], params["field"])
