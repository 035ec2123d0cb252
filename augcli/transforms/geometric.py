"""Geometric transforms: configuration and parameter sampling; kernels live in functional.geometric.

Every warp (affine family, perspective, crops with resampling, resize, elastic, grid distortion)
ends in ``F.remap``, one batched gather with per-sample coordinates.
"""

from __future__ import annotations

import math

import numpy as np

from augcli.rng import Streams
from augcli.config.schema import Choice, Float, Int, Range, Size
from augcli.transforms.base import Transform
from augcli.transforms.functional import geometric as F
from augcli.transforms.registry import register


def _warp_spec(border: str = "constant") -> dict:
    """The resampling options shared by every warp (``border`` is the default border mode)."""
    return {
        "interpolation": Choice("bilinear", choices=F.INTERPOLATIONS, doc="resampling: bilinear or nearest"),
        "border": Choice(
            border,
            choices=F.BORDERS,
            doc="pixels read outside the image: constant (fill), edge (repeat), "
            "reflect (mirror about the edge pixel)",
        ),
        "fill": Int(0, 0, 255, doc="grey level used by border=constant, on every channel"),
    }


_FILL = _warp_spec()["fill"]
_BORDER = _warp_spec()["border"]
_INTERPOLATION = _warp_spec()["interpolation"]


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


@register("rot90")
class Rot90(Transform):
    summary = "Rotate by a random number of quarter turns (half turns only for non-square images)."
    default_p = 0.5

    def sample_params(self, streams, shape):
        k = streams.integers(0, 4)
        if shape[1] != shape[2]:
            k = (k % 2) * 2  # keep the shape: 0 or 2 quarter turns, still equally likely
        return {"k": k}

    def apply(self, images, params):
        return F.rot90(images, params["k"])


# --- the affine family ------------------------------------------------------------------------
_IDENTITY = {"angle": 0.0, "scale": 1.0, "tx": 0.0, "ty": 0.0, "shear_x": 0.0, "shear_y": 0.0}


def _degrees(default, limit, what):
    return Range(default, -limit, limit, doc=f"{what}, degrees (v means [-v, v])")


def _fraction(doc):
    return Range((-0.1, 0.1), -1.0, 1.0, doc=doc)


def _zoom():
    return Range((0.9, 1.1), 0.05, 20.0, around=1.0, doc="zoom factor (v means [1 - v, 1 + v])")


@register("affine")
class Affine(Transform):
    """Rotation, zoom, shear and shift about the centre; the shortcuts below reuse all of it."""

    summary = "Random rotation, scale, translation and shear about the image centre, in one resampling."
    spec = {
        "degrees": _degrees((-15.0, 15.0), 180.0, "rotation (positive = counter-clockwise)"),
        "scale": _zoom(),
        "translate": _fraction("shift as a fraction of width (x) and height (y), drawn independently"),
        "shear": _degrees((-5.0, 5.0), 80.0, "shear angle, x and y drawn independently"),
        **_warp_spec(),
    }
    # (param key, config attribute holding its range), in draw order; shortcuts override this.
    draws = (
        ("angle", "degrees"),
        ("scale", "scale"),
        ("tx", "translate"),
        ("ty", "translate"),
        ("shear_x", "shear"),
        ("shear_y", "shear"),
    )

    def sample_params(self, streams, shape):
        return {key: streams.uniform(*getattr(self, attr)) for key, attr in self.draws}

    def apply(self, images, params):
        n, h, w, _ = images.shape
        v = {key: params.get(key, default) for key, default in _IDENTITY.items()}
        forward = F.affine_matrix(h, w, v["angle"], v["scale"], v["tx"], v["ty"], v["shear_x"], v["shear_y"])
        inverse = np.linalg.inv(np.broadcast_to(forward, (n, 3, 3)))
        return F.warp_homography(images, inverse, (h, w), self.interpolation, self.border, self.fill)


@register("rotate")
class Rotate(Affine):
    summary = "Rotate about the centre by a random angle (degrees, positive = counter-clockwise)."
    spec = {"degrees": _degrees((-15.0, 15.0), 180.0, "rotation (positive = counter-clockwise)"), **_warp_spec()}
    draws = (("angle", "degrees"),)


@register("shear")
class Shear(Affine):
    summary = "Shear about the centre by random x and y angles."
    spec = {"degrees": _degrees((-10.0, 10.0), 80.0, "shear angle, x and y drawn independently"), **_warp_spec()}
    draws = (("shear_x", "degrees"), ("shear_y", "degrees"))


@register("translate")
class Translate(Affine):
    summary = "Shift by random fractions of the width and height."
    spec = {
        "fraction": _fraction("shift as a fraction of width (x) and height (y), drawn independently"),
        **_warp_spec(),
    }
    draws = (("tx", "fraction"), ("ty", "fraction"))


@register("scale")
class Scale(Affine):
    summary = "Zoom in or out about the centre by a random factor, keeping the image size."
    spec = {"factor": _zoom(), **_warp_spec()}
    draws = (("scale", "factor"),)


@register("perspective")
class Perspective(Transform):
    summary = "Random perspective: pull the four corners inwards and warp the image onto them."
    spec = {
        "distortion": Float(
            0.3, 0.0, 1.0, doc="largest inward corner move, as a fraction of half the width/height"
        ),
        **_warp_spec(),
    }

    def sample_params(self, streams, shape):
        # per corner (TL, TR, BR, BL) the inward move along x and y, fraction of half the size
        return {"corners": streams.uniform(0.0, self.distortion, shape=(4, 2))}

    def apply(self, images, params):
        _, h, w, _ = images.shape
        matrices = F.perspective_matrix(params["corners"], h, w)
        return F.warp_homography(images, matrices, (h, w), self.interpolation, self.border, self.fill)


# --- crops, padding, resizing -----------------------------------------------------------------
def _sized(shape: tuple, size) -> tuple:
    return (int(shape[1]), int(shape[2])) if size is None else (int(size[0]), int(size[1]))


@register("random_crop")
class RandomCrop(Transform):
    summary = "Pad, then cut a window at a random position (the classic CIFAR crop)."
    spec = {
        "size": Size(None, nullable=True, doc="output [height, width] (or one number); null keeps the input size"),
        "padding": Int(4, 0, 4096, doc="pixels added on every side before cropping"),
        "border": _BORDER,
        "fill": _FILL,
    }

    def check(self):
        self.changes_shape = self.size is not None
        super().check()

    def output_shape(self, shape):
        return (shape[0], *_sized(shape, self.size), shape[3])

    def sample_params(self, streams, shape):
        out = _sized(shape, self.size)
        starts = []
        for extent, crop in zip(shape[1:3], out):
            lo, hi = -self.padding, extent + self.padding - crop
            if hi < lo:  # window larger than the padded image: centre it, the rest reads the border
                lo = hi = (extent - crop) // 2
            starts.append(lo + streams.integers(0, hi - lo + 1))
        return {"top": starts[0], "left": starts[1]}

    def apply(self, images, params):
        out = _sized(images.shape, self.size)
        return F.crop(images, params["top"], params["left"], out, self.border, self.fill)


@register("center_crop")
class CenterCrop(Transform):
    summary = "Cut the central window of a fixed size (border filled where it is larger than the image)."
    spec = {"size": Size((32, 32), doc="output [height, width] (or one number)"), "fill": _FILL}
    changes_shape = True

    def output_shape(self, shape):
        return (shape[0], *self.size, shape[3])

    def apply(self, images, params):
        _, h, w, _ = images.shape
        top, left = (h - self.size[0]) // 2, (w - self.size[1]) // 2
        return F.crop(images, top, left, self.size, "constant", self.fill)


@register("random_resized_crop")
class RandomResizedCrop(Transform):
    summary = "Inception-style crop: a box of random area and aspect ratio, resampled to a fixed size."
    spec = {
        "size": Size(None, nullable=True, doc="output [height, width] (or one number); null keeps the input size"),
        "scale": Range((0.08, 1.0), 0.0, 1.0, around=None, doc="box area as a fraction of the image area"),
        "ratio": Range(
            (3 / 4, 4 / 3), 0.01, 100.0, around=None, doc="box aspect ratio width/height (drawn log-uniformly)"
        ),
        "interpolation": _INTERPOLATION,
    }
    attempts = 10  # candidate boxes per sample; the first that fits is used

    def check(self):
        self.changes_shape = self.size is not None
        super().check()

    def output_shape(self, shape):
        return (shape[0], *_sized(shape, self.size), shape[3])

    def sample_params(self, streams: Streams, shape):
        _, h, w, _ = shape
        k = (self.attempts,)
        area = streams.uniform(self.scale[0], self.scale[1], shape=k) * (h * w)
        ratio = np.exp(streams.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), shape=k))
        u_top, u_left = streams.uniform(shape=k), streams.uniform(shape=k)
        bw = np.rint(np.sqrt(area * ratio)).astype(np.int64)
        bh = np.rint(np.sqrt(area / ratio)).astype(np.int64)
        ok = (bw >= 1) & (bw <= w) & (bh >= 1) & (bh <= h)
        first = np.argmax(ok, axis=1)[:, None]
        pick = lambda a: np.take_along_axis(a, first, axis=1)[:, 0]  # noqa: E731
        bh, bw = pick(bh), pick(bw)
        top = np.floor(pick(u_top) * (h - bh + 1)).astype(np.int64)
        left = np.floor(pick(u_left) * (w - bw + 1)).astype(np.int64)
        # No candidate fits: the whole image, trimmed to the nearest allowed aspect ratio, centred.
        fh, fw = h, w
        if w / h < self.ratio[0]:
            fh = min(h, max(1, round(w / self.ratio[0])))
        elif w / h > self.ratio[1]:
            fw = min(w, max(1, round(h * self.ratio[1])))
        found = ok.any(axis=1)
        return {
            "top": np.where(found, top, (h - fh) // 2),
            "left": np.where(found, left, (w - fw) // 2),
            "height": np.where(found, bh, fh),
            "width": np.where(found, bw, fw),
        }

    def apply(self, images, params):
        out = _sized(images.shape, self.size)
        return F.resized_crop(
            images, params["top"], params["left"], params["height"], params["width"], out, self.interpolation
        )


@register("pad")
class Pad(Transform):
    summary = "Add a border of fixed width on every side (the image grows)."
    spec = {"padding": Int(4, 0, 4096, doc="pixels added on every side"), "border": _BORDER, "fill": _FILL}

    def check(self):
        self.changes_shape = self.padding > 0
        super().check()

    def output_shape(self, shape):
        return (shape[0], shape[1] + 2 * self.padding, shape[2] + 2 * self.padding, shape[3])

    def apply(self, images, params):
        return F.pad(images, self.padding, self.border, self.fill)


@register("resize")
class Resize(Transform):
    summary = "Resize to a fixed size (no anti-aliasing when shrinking)."
    spec = {"size": Size((32, 32), doc="output [height, width] (or one number)"), "interpolation": _INTERPOLATION}
    changes_shape = True

    def output_shape(self, shape):
        return (shape[0], *self.size, shape[3])

    def apply(self, images, params):
        return F.resize(images, self.size, self.interpolation)


# --- dense displacement fields ----------------------------------------------------------------
@register("elastic")
class Elastic(Transform):
    summary = "Elastic distortion (Simard et al. 2003): a smoothed random displacement field."
    spec = {
        "alpha": Float(34.0, 0.0, 1.0e4, doc="field strength in pixels (scales the smoothed noise)"),
        "sigma": Float(4.0, 0.0, 1.0e3, doc="Gaussian smoothing of the field, in pixels"),
        **_warp_spec("reflect"),
    }

    def sample_params(self, streams, shape):
        # A per-sample key, not the field: the field is as large as the image and would bloat the
        # records; apply regenerates it from the key (same bytes on replay).
        return {"field_key": streams.bits()}

    def apply(self, images, params):
        _, h, w, _ = images.shape
        noise = Streams(params["field_key"]).uniform(-1.0, 1.0, shape=(h, w, 2), dtype=np.float32)
        dy, dx = F.elastic_field(noise, self.alpha, self.sigma)
        return F.displace(images, dy, dx, self.interpolation, self.border, self.fill)


@register("grid_distortion")
class GridDistortion(Transform):
    summary = "Move the points of a coarse grid at random and warp the image smoothly with them."
    spec = {
        "num_steps": Int(5, 1, 64, doc="grid cells per side"),
        "distort_limit": Range((-0.3, 0.3), -1.0, 1.0, doc="control-point shift as a fraction of a grid cell"),
        **_warp_spec("reflect"),
    }

    def sample_params(self, streams, shape):
        s = self.num_steps + 1
        grid = streams.uniform(self.distort_limit[0], self.distort_limit[1], shape=(s, s, 2))
        # The frame stays put: border points move only along the border.
        grid[:, [0, -1], :, 0] = 0.0
        grid[:, :, [0, -1], 1] = 0.0
        return {"grid": grid}

    def apply(self, images, params):
        _, h, w, _ = images.shape
        dy, dx = F.grid_field(params["grid"], h, w)
        return F.displace(images, dy, dx, self.interpolation, self.border, self.fill)
