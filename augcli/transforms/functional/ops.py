"""The AutoAugment op set as batched kernel calls: op index + magnitude level + sign -> image.

Ops (index: name) - ``OP_NAMES``; signed ops get a random sign per sample (drawn by the caller)::

    0 Identity      5 Rotate        10 Posterize
    1 ShearX        6 Brightness    11 Solarize
    2 ShearY        7 Color         12 AutoContrast
    3 TranslateX    8 Contrast      13 Equalize
    4 TranslateY    9 Sharpness     14 Invert

A *magnitude space* maps a level to a physical value, linearly from the value at level 0 to the
value at the space's ``full`` level (signed ops: ``zero + sign * (full - zero) * level / full_level``):

=============  ===========================  ==========================  ========================
op             standard (full at level 10)  wide (full at level 30)     augmix (full at level 10)
=============  ===========================  ==========================  ========================
ShearX/Y       +-0.3 (x += s * y)           +-0.99                      +-0.3
TranslateX/Y   +-150/331 of width/height    +-32 pixels                 +-1/3 of width/height
Rotate         +-30 degrees                 +-135 degrees               +-30 degrees
Brightness,    factor 1 +- 0.9              factor 1 +- 0.99            factor 0.1 .. 1.9
Color,         (0.1 .. 1.9)                 (0.01 .. 1.99)              (unsigned; only with
Contrast,                                                               ``all_ops``)
Sharpness
Posterize      8 .. 4 bits kept             8 .. 2 bits                 4 .. 0 (clipped to 1) bits
Solarize       threshold 256 .. 0           threshold 256 .. 0          threshold 256 .. 0
=============  ===========================  ==========================  ========================

AutoContrast, Equalize, Invert and Identity ignore the level.

- standard: AutoAugment's ranges (Cubuk et al. 2019, "AutoAugment: Learning Augmentation Policies
  from Data", Table 1 / appendix; policy levels 0..9 on a scale where 10 is the maximum, as in the
  authors' code). RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data
  augmentation with a reduced search space") uses the same scale with M on 0..30, so levels above
  10 extrapolate (M=28 was used for EfficientNet-B7). Enhance factors use the signed 1 +- x form
  of torchvision/timm, so level 0 is the identity for every op.
- wide: TrivialAugment's wide space (Müller & Hutter 2021, "TrivialAugment: Tuning-free Yet
  State-of-the-Art Data Augmentation", Table 2), levels = the 31 strength bins 0..30.
- augmix: AugMix's ranges (Hendrycks et al. 2020, "AugMix: A Simple Data Processing Method to
  Improve Robustness and Uncertainty", reference code), severity levels 0..10.

Values are then kept valid: translations are rounded to whole pixels (no blur), posterize bits are
rounded to the nearest integer and clipped to [1, 8] (so level 30 never gives a black image),
solarize thresholds clipped to [0, 256], enhance factors to >= 0.

Geometry follows Pillow's ``Image.transform(AFFINE)`` / ``Image.rotate`` conventions, as the
reference implementations: shears act about the top-left corner of the image (output pixel
(x, y) reads input x + s * y), rotation is counter-clockwise about the centre; pixels from outside
the image read ``fill``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from augcli.transforms.functional import color as C
from augcli.transforms.functional import geometric as G

OP_NAMES = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
    "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
    "AutoContrast", "Equalize", "Invert",
)  # fmt: skip
(IDENTITY, SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y, ROTATE, BRIGHTNESS, COLOR, CONTRAST, SHARPNESS,
 POSTERIZE, SOLARIZE, AUTOCONTRAST, EQUALIZE, INVERT) = range(len(OP_NAMES))  # fmt: skip
OP_INDEX = {name: i for i, name in enumerate(OP_NAMES)}

GEOMETRIC = (SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y, ROTATE)
ENHANCE = (BRIGHTNESS, COLOR, CONTRAST, SHARPNESS)

# RandAugment's 14 ops (Cubuk et al. 2020, Sec. 3) - AutoAugment's set without Invert, Cutout and
# SamplePairing, plus Identity; TrivialAugment (wide) uses the same 14.
RANDAUGMENT_OPS = tuple(i for i in range(len(OP_NAMES)) if i != INVERT)
TRIVIALAUGMENT_OPS = RANDAUGMENT_OPS
# AugMix leaves out ops that overlap ImageNet-C's corruptions (Hendrycks et al. 2020, Sec. 3):
# no colour/contrast/brightness/sharpness enhancement; ``AUGMIX_ALL_OPS`` adds them back.
AUGMIX_OPS = (AUTOCONTRAST, EQUALIZE, POSTERIZE, ROTATE, SOLARIZE, SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y)
AUGMIX_ALL_OPS = AUGMIX_OPS + (COLOR, CONTRAST, BRIGHTNESS, SHARPNESS)


@dataclass(frozen=True)
class Space:
    """A magnitude space: ``ranges[op] = (value at level 0, value at full_level, signed)``."""

    name: str
    full_level: float
    ranges: dict
    translate_in_pixels: bool  # False: translate values are fractions of the width/height

    def tables(self):
        """(zero, full, signed) as arrays indexed by op (ops without a magnitude get 0, 0, False)."""
        zero, full, signed = np.zeros(len(OP_NAMES)), np.zeros(len(OP_NAMES)), np.zeros(len(OP_NAMES), bool)
        for op, (z, f, s) in self.ranges.items():
            zero[op], full[op], signed[op] = z, f, s
        return zero, full, signed


def _ranges(shear, translate, rotate, enhance, bits, signed_enhance=True):
    out = {SHEAR_X: (0.0, shear, True), SHEAR_Y: (0.0, shear, True)}
    out.update({TRANSLATE_X: (0.0, translate, True), TRANSLATE_Y: (0.0, translate, True)})
    out[ROTATE] = (0.0, rotate, True)
    out.update({op: (*enhance, signed_enhance) for op in ENHANCE})
    out[POSTERIZE] = (*bits, False)
    out[SOLARIZE] = (256.0, 0.0, False)
    return out


SPACES = {
    "standard": Space("standard", 10.0, _ranges(0.3, 150.0 / 331.0, 30.0, (1.0, 1.9), (8.0, 4.0)), False),
    "wide": Space("wide", 30.0, _ranges(0.99, 32.0, 135.0, (1.0, 1.99), (8.0, 2.0)), True),
    "augmix": Space("augmix", 10.0, _ranges(0.3, 1.0 / 3.0, 30.0, (0.1, 1.9), (4.0, 0.0), signed_enhance=False), False),
}
_TABLES = {name: space.tables() for name, space in SPACES.items()}
_IS_GEOMETRIC = np.isin(np.arange(len(OP_NAMES)), GEOMETRIC)


def op_values(op_index, level, sign, h: int, w: int, space: str = "standard") -> np.ndarray:
    """Physical magnitudes (N,) float64 for ops ``op_index`` (N,) at ``level`` (N,) with ``sign`` (N,) +-1.

    Units: shear factor s (x += s * y), translation in whole pixels, rotation in degrees
    (counter-clockwise), enhance factor (1 = identity), posterize bits kept, solarize threshold in
    grey levels; 0 for ops without a magnitude. ``h``/``w``: image size, for fractional translations.
    """
    if space not in SPACES:
        raise ValueError(f"unknown magnitude space {space!r}; expected one of {tuple(SPACES)}")
    op = np.asarray(op_index, dtype=np.int64)
    zero, full, signed = (t[op] for t in _TABLES[space])
    t = np.asarray(level, dtype=np.float64) / SPACES[space].full_level
    s = np.where(signed, np.asarray(sign, dtype=np.float64), 1.0)
    v = zero + s * (full - zero) * t
    if not SPACES[space].translate_in_pixels:
        v = np.where(op == TRANSLATE_X, v * w, np.where(op == TRANSLATE_Y, v * h, v))
    v = np.where((op == TRANSLATE_X) | (op == TRANSLATE_Y), np.rint(v), v)
    v = np.where(op == POSTERIZE, np.clip(np.floor(v + 0.5), 1, 8), v)
    v = np.where(op == SOLARIZE, np.clip(v, 0, 256), v)
    return np.where(np.isin(op, ENHANCE), np.maximum(v, 0.0), v)


def inverse_matrices(op_index, values, h: int, w: int) -> np.ndarray:
    """OUTPUT->INPUT (N, 3, 3) maps, in pixel-centre coordinates, for geometric ops with ``values``.

    ShearX/ShearY/TranslateX/TranslateY are built as Pillow's AFFINE data in its pixel-corner
    coordinates, then conjugated to pixel centres; Rotate uses ``rotation_matrix`` (same centre and
    direction as ``Image.rotate``). Non-geometric ops give the identity.
    """
    op = np.asarray(op_index, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    m = np.tile(np.eye(3), (op.shape[0], 1, 1))
    m[:, 0, 1] = np.where(op == SHEAR_X, v, 0.0)
    m[:, 1, 0] = np.where(op == SHEAR_Y, v, 0.0)
    # a translation by +t pixels moves the content right/down, i.e. reads input x - t
    m[:, 0, 2] = np.where(op == TRANSLATE_X, -v, 0.0)
    m[:, 1, 2] = np.where(op == TRANSLATE_Y, -v, 0.0)
    to_corner = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    to_centre = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    m = to_centre @ m @ to_corner
    rot = op == ROTATE
    if rot.any():
        m[rot] = G.rotation_matrix(-v[rot], h, w)  # the inverse of a rotation is the opposite turn
    return m


# Point/colour ops: kernel(images subset, values subset) -> uint8.
_POINT_KERNELS = {
    BRIGHTNESS: C.enhance_brightness,
    COLOR: C.enhance_color,
    CONTRAST: C.enhance_contrast,
    SHARPNESS: C.enhance_sharpness,
    POSTERIZE: lambda x, v: C.posterize(x, v.astype(np.int64)),
    SOLARIZE: C.solarize,
    AUTOCONTRAST: lambda x, v: C.autocontrast(x),
    EQUALIZE: lambda x, v: C.equalize(x),
    INVERT: lambda x, v: C.invert(x),
}


def apply_op_batch(images: np.ndarray, op_index, magnitude, sign, fill: int = 128, space: str = "standard",
                   interpolation: str = "bilinear") -> np.ndarray:  # fmt: skip
    """Apply op ``op_index[i]`` at level ``magnitude[i]`` with ``sign[i]`` (+-1) to sample i.

    images: uint8 (N, H, W, C); op_index, magnitude, sign: (N,). The batch is grouped by op: all
    geometric ops share one ``warp_homography`` call (per-sample matrices) and every other op kind
    is one batched kernel call on its subset. ``fill``: grey level 0..255 for pixels moved in from
    outside; ``space``: "standard", "wide" or "augmix" (see the module table); ``interpolation``:
    "bilinear" or "nearest". Returns a new uint8 array; the input is not modified.
    """
    n, h, w, _ = images.shape
    op = np.asarray(op_index, dtype=np.int64).reshape(n)
    values = op_values(op, np.reshape(magnitude, n), np.reshape(sign, n), h, w, space)
    out = images.copy()
    geo = np.flatnonzero(_IS_GEOMETRIC[op])
    if geo.size:
        matrices = inverse_matrices(op[geo], values[geo], h, w)
        out[geo] = G.warp_homography(images[geo], matrices, (h, w), interpolation, "constant", fill)
    for kind, kernel in _POINT_KERNELS.items():
        idx = np.flatnonzero(op == kind)
        if idx.size:
            out[idx] = kernel(images[idx], values[idx])
    return out


def augmix_mix(original: np.ndarray, chains: Iterable[np.ndarray], weights, skip) -> np.ndarray:
    """AugMix's blend: ``(1 - m) * original + m * sum_k w_k * chain_k``, rounded back to uint8.

    original: uint8 (N, H, W, C); chains: iterable of ``len(weights[0])`` uint8 arrays shaped like
    ``original`` (consumed one at a time, so only one chain need exist at once); weights: (N, K)
    chain weights (each row sums to 1, from a Dirichlet); skip: (N,) the weight m of the mix
    against the original (a Beta draw). Computed in float32.
    """
    weights = np.asarray(weights, dtype=np.float32)
    mix = np.zeros(original.shape, dtype=np.float32)
    for k, chain in enumerate(chains):
        mix += weights[:, k].reshape(-1, 1, 1, 1) * chain.astype(np.float32)
    m = np.asarray(skip, dtype=np.float32).reshape(-1, 1, 1, 1)
    return C.to_uint8((1.0 - m) * original.astype(np.float32) + m * mix)
