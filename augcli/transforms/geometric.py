"""Geometric transforms: configuration and parameter sampling; kernels live in functional.geometric."""

from __future__ import annotations

from augcli.transforms.base import Transform
from augcli.transforms.functional import geometric as F
from augcli.transforms.registry import register


@register("hflip")
class HFlip(Transform):
    summary = "Mirror the image left-right."
    default_p = 0.5

    def apply(self, images, params):
        return F.hflip(images)


@register("vflip")
class VFlip(Transform):
    summary = "Mirror the image top-bottom."
    default_p = 0.5

    def apply(self, images, params):
        return F.vflip(images)
