"""Blur and compression transforms: configuration and parameter sampling; kernels live in
functional.filters. Filters use scipy.ndimage's 'reflect' border (the edge pixel is repeated)."""

from __future__ import annotations

import numpy as np

from augcli.errors import SchemaError
from augcli.config.schema import Float, NumberList, Range
from augcli.transforms.base import Transform
from augcli.transforms.functional import filters as F
from augcli.transforms.registry import register


@register("gaussian_blur")
class GaussianBlur(Transform):
    summary = "Blur with a Gaussian kernel whose sigma (pixels) is drawn per sample."
    spec = {
        "sigma": Range((0.1, 2.0), 0.0, 50.0, around=None, doc="Gaussian standard deviation in pixels: [a, b]"),
        "truncate": Float(4.0, 0.5, 10.0, doc="kernel radius in sigmas (radius = int(truncate * sigma + 0.5))"),
    }

    def sample_params(self, streams, shape):
        return {"sigma": streams.within(self.sigma)}

    def apply(self, images, params):
        # The table width comes from the configured maximum, so a sample's output never depends on
        # which other samples share its batch.
        radius = F.gaussian_radius(self.sigma[1], self.truncate)
        return F.gaussian_blur(images, params["sigma"], self.truncate, radius)


@register("median_blur")
class MedianBlur(Transform):
    summary = "Replace each pixel by the median of its k x k neighbourhood, k picked per sample."
    spec = {
        "sizes": NumberList((3, 5), 1, 31, doc="odd kernel sizes to pick from uniformly, in pixels"),
    }

    def check(self):
        super().check()
        if any(not float(k).is_integer() or int(k) % 2 == 0 for k in self.sizes):
            raise SchemaError(("sizes",), f"expected odd integer sizes, got {list(self.sizes)}")
        # Store ints so the YAML form reads `[3, 5]`, not `[3.0, 5.0]`.
        self.sizes = tuple(int(k) for k in self.sizes)
        self.config["sizes"] = self.sizes

    def sample_params(self, streams, shape):
        pick = streams.choice(len(self.sizes))
        return {"ksize": np.asarray(self.sizes, dtype=np.int64)[pick]}

    def apply(self, images, params):
        return F.median_blur(images, params["ksize"])


@register("motion_blur")
class MotionBlur(Transform):
    summary = "Blur along a straight line of random length and direction, like camera shake."
    spec = {
        "length": Range((3, 9), 1, 63, around=None, integer=True, doc="line length in pixels: [a, b]"),
        "angle": Range((0.0, 180.0), -360.0, 360.0, doc="line direction in degrees, anticlockwise from horizontal: [a, b]"),
    }

    def sample_params(self, streams, shape):
        return {
            "length": streams.within(self.length),
            "angle": streams.within(self.angle),
        }

    def apply(self, images, params):
        radius = F.motion_radius(self.length[1])  # from the config: batch-independent kernel table
        return F.motion_blur(images, params["length"], params["angle"], radius)


@register("jpeg_quality")
class JpegQuality(Transform):
    summary = "Re-encode as JPEG at a quality drawn per sample (compression artefacts)."
    spec = {
        "quality": Range((50, 95), 1, 100, around=None, integer=True, doc="JPEG quality (1 worst, 100 best): [a, b]"),
    }

    def sample_params(self, streams, shape):
        return {"quality": streams.within(self.quality)}

    def apply(self, images, params):
        return F.jpeg(images, params["quality"])
