"""Colour transforms: configuration and parameter sampling; kernels live in functional.color."""

from __future__ import annotations

from augcli.schema import Range
from augcli.transforms.base import Transform
from augcli.transforms.functional import color as F
from augcli.transforms.registry import register


@register("brightness")
class Brightness(Transform):
    summary = "Shift brightness by a fraction of full scale drawn from `limit`."
    spec = {"limit": Range((-0.2, 0.2), -1.0, 1.0, doc="additive shift as a fraction of 255")}

    def sample_params(self, streams, shape):
        return {"delta": streams.uniform(self.limit[0], self.limit[1])}

    def apply(self, images, params):
        return F.brightness(images, params["delta"])
