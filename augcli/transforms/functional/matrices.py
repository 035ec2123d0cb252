"""Per-sample 3x3 warp matrices for the geometric kernels (re-exported by ``geometric``).

Forward maps send an input point to where it lands in the output; ``warp_homography`` wants the
inverse (OUTPUT->INPUT), except ``perspective_matrix``, which builds that direction directly.
Coordinates as in ``geometric``: x is the column, y the row, pixel centres at integers.
"""

from __future__ import annotations

import numpy as np


def _about_centre(linear: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, 3, 3) matrices applying the (N, 2, 2) linear maps about the image centre."""
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    out = np.zeros((linear.shape[0], 3, 3))
    out[:, :2, :2] = linear
    out[:, :2, 2] = centre - linear @ centre
    out[:, 2, 2] = 1.0
    return out


def _vec(values) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def rotation_matrix(degrees, h: int, w: int) -> np.ndarray:
    """Rotation about the centre by ``degrees`` (N,), positive = counter-clockwise on screen (as PIL)."""
    t = np.deg2rad(_vec(degrees))
    cos, sin = np.cos(t), np.sin(t)
    # y points down, so a visually counter-clockwise turn sends +x towards -y.
    return _about_centre(np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2), h, w)


def scale_matrix(factor, h: int, w: int) -> np.ndarray:
    """Isotropic zoom about the centre by ``factor`` (N,) (> 1 enlarges the content)."""
    f = _vec(factor)
    return _about_centre(f[:, None, None] * np.eye(2), h, w)


def shear_matrix(x_degrees, y_degrees, h: int, w: int) -> np.ndarray:
    """Shear about the centre: x += tan(x_degrees) * y and y += tan(y_degrees) * x (each (N,))."""
    sx, sy = np.tan(np.deg2rad(_vec(x_degrees))), np.tan(np.deg2rad(_vec(y_degrees)))
    one = np.ones_like(sx)
    return _about_centre(np.stack([np.stack([one, sx], -1), np.stack([sy, one], -1)], -2), h, w)


def translate_matrix(tx, ty, h: int, w: int) -> np.ndarray:
    """Shift by ``tx`` of the width (right) and ``ty`` of the height (down); each (N,) fractions."""
    tx, ty = _vec(tx), _vec(ty)
    out = np.tile(np.eye(3), (tx.shape[0], 1, 1))
    out[:, 0, 2] = tx * w
    out[:, 1, 2] = ty * h
    return out


def affine_matrix(h: int, w: int, degrees=0.0, scale=1.0, tx=0.0, ty=0.0, shear_x=0.0, shear_y=0.0) -> np.ndarray:
    """Forward (N, 3, 3) map: scale, then shear, then rotate (all about the centre), then translate.

    Arguments are per-sample arrays (N,) or scalars, in the units of the single-purpose helpers.
    """
    n = np.broadcast_shapes(*(np.shape(v) for v in (degrees, scale, tx, ty, shear_x, shear_y)))
    b = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), n).reshape(-1)  # noqa: E731
    # The product T @ R @ Sh @ S written out: one pass over N instead of three 3x3 matmuls.
    t = np.deg2rad(b(degrees))
    cos, sin, f = np.cos(t), np.sin(t), b(scale)
    sx, sy = np.tan(np.deg2rad(b(shear_x))), np.tan(np.deg2rad(b(shear_y)))
    out = np.zeros((f.shape[0], 3, 3))
    out[:, 0, 0] = f * (cos + sin * sy)
    out[:, 0, 1] = f * (cos * sx + sin)
    out[:, 1, 0] = f * (cos * sy - sin)
    out[:, 1, 1] = f * (cos - sin * sx)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    out[:, 0, 2] = cx - out[:, 0, 0] * cx - out[:, 0, 1] * cy + b(tx) * w
    out[:, 1, 2] = cy - out[:, 1, 0] * cx - out[:, 1, 1] * cy + b(ty) * h
    out[:, 2, 2] = 1.0
    return out


def homography_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The (N, 3, 3) homographies sending the 4 points ``src[n]`` to ``dst[n]`` ((N, 4, 2) as x, y).

    One batched ``np.linalg.solve`` of the 8x8 direct linear system (h33 fixed to 1).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    u, v = src[..., 0], src[..., 1]
    x, y = dst[..., 0], dst[..., 1]
    a = np.zeros((n, 4, 2, 8))
    a[:, :, 0, 0], a[:, :, 0, 1], a[:, :, 0, 2] = u, v, 1.0
    a[:, :, 0, 6], a[:, :, 0, 7] = -u * x, -v * x
    a[:, :, 1, 3], a[:, :, 1, 4], a[:, :, 1, 5] = u, v, 1.0
    a[:, :, 1, 6], a[:, :, 1, 7] = -u * y, -v * y
    rhs = np.stack([x, y], -1).reshape(n, 8, 1)
    h = np.linalg.solve(a.reshape(n, 8, 8), rhs)[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def perspective_matrix(jitter: np.ndarray, h: int, w: int) -> np.ndarray:
    """OUTPUT->INPUT homographies for corners pulled inwards by ``jitter`` (N, 4, 2).

    jitter[n, k] is the inward move of corner k (top-left, top-right, bottom-right, bottom-left)
    along x and y as a fraction of half the width/height, in [0, 1]; the image content fills the
    quadrilateral spanned by the moved corners.
    """
    jitter = np.asarray(jitter, dtype=np.float64)
    if h < 2 or w < 2:  # the corners coincide: no homography is defined, and none is needed
        return np.tile(np.eye(3), (jitter.shape[0], 1, 1))
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    half = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    moved = corners + inward * half * jitter
    return homography_from_points(moved, np.broadcast_to(corners, moved.shape))
