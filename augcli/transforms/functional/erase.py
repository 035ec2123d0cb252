"""Pure batched occlusion kernels: box / hole / grid masks built by broadcasting row and column index
ranges (no per-sample loops), and filling masked pixels of uint8 (N, H, W, C) arrays.

Masks are boolean (N, H, W); geometry parameters are integer pixel arrays with leading dimension N.
"""

from __future__ import annotations

import numpy as np


def _col(values) -> np.ndarray:
    return np.asarray(values).reshape(-1, 1)


def box_masks(height: int, width: int, top, left, box_h, box_w) -> np.ndarray:
    """(N, H, W) masks of the boxes ``[top, top + box_h) x [left, left + box_w)`` (clipped to the image).

    All arguments after the image size are (N,) integer arrays; a box of size 0 masks nothing.
    """
    rows = np.arange(height)[None, :]
    cols = np.arange(width)[None, :]
    in_rows = (rows >= _col(top)) & (rows < _col(top) + _col(box_h))
    in_cols = (cols >= _col(left)) & (cols < _col(left) + _col(box_w))
    return in_rows[:, :, None] & in_cols[:, None, :]


def first_fitting_box(height: int, width: int, area, log_aspect, u_top, u_left, area_range: tuple) -> tuple:
    """Pick per sample the first of T candidate boxes that fits (random erasing, Zhong et al. 2020).

    ``area`` (N, T) is the target area as a fraction of the image, ``log_aspect`` (N, T) the log of
    height / width, ``u_top`` and ``u_left`` (N, T) uniform draws in [0, 1) placing the box. A
    candidate fits when its rounded size is inside the image and its rounded area fraction is still
    inside ``area_range``. Returns (top, left, box_h, box_w) int64 arrays of shape (N,), all zero
    for samples where no candidate fits (those are left unchanged).
    """
    total = float(height * width)
    aspect = np.exp(np.asarray(log_aspect, dtype=np.float64))
    area = np.asarray(area, dtype=np.float64)
    box_h = np.rint(np.sqrt(area * total * aspect)).astype(np.int64)
    box_w = np.rint(np.sqrt(area * total / aspect)).astype(np.int64)
    frac = box_h * box_w / total
    fits = (box_h >= 1) & (box_h <= height) & (box_w >= 1) & (box_w <= width)
    fits &= (frac >= area_range[0]) & (frac <= area_range[1])
    first = np.argmax(fits, axis=1)[:, None]  # argmax of booleans = index of the first True
    found = np.take_along_axis(fits, first, axis=1)[:, 0]
    box_h = np.where(found, np.take_along_axis(box_h, first, axis=1)[:, 0], 0)
    box_w = np.where(found, np.take_along_axis(box_w, first, axis=1)[:, 0], 0)
    u_top = np.take_along_axis(np.asarray(u_top), first, axis=1)[:, 0]
    u_left = np.take_along_axis(np.asarray(u_left), first, axis=1)[:, 0]
    top = np.minimum(np.floor(u_top * (height - box_h + 1)), height - box_h).astype(np.int64)
    left = np.minimum(np.floor(u_left * (width - box_w + 1)), width - box_w).astype(np.int64)
    return np.where(found, top, 0), np.where(found, left, 0), box_h, box_w


def hole_masks(height: int, width: int, center_y, center_x, hole_h, hole_w) -> np.ndarray:
    """(N, H, W) union of holes centred at (``center_y``, ``center_x``) with sizes ``hole_h`` x
    ``hole_w``; all (N, n_holes) integer pixel arrays. Holes may extend past the border (cutout,
    DeVries & Taylor 2017), where they are clipped."""
    center_y, center_x = np.asarray(center_y), np.asarray(center_x)
    hole_h, hole_w = np.asarray(hole_h), np.asarray(hole_w)
    mask = np.zeros((center_y.shape[0], height, width), dtype=bool)
    for j in range(center_y.shape[1]):  # a handful of holes
        top = center_y[:, j] - hole_h[:, j] // 2
        left = center_x[:, j] - hole_w[:, j] // 2
        mask |= box_masks(height, width, top, left, hole_h[:, j], hole_w[:, j])
    return mask


def grid_masks(height: int, width: int, unit, masked, offset_y, offset_x) -> np.ndarray:
    """(N, H, W) GridMask masks (Chen et al. 2020): in every ``unit`` x ``unit`` cell (pixels) the
    top-left ``masked`` x ``masked`` square is set; the grid is shifted by (``offset_y``, ``offset_x``)
    pixels. All arguments after the image size are (N,) integer arrays, ``unit`` >= 1."""
    unit = _col(unit)
    rows = (np.arange(height)[None, :] + _col(offset_y)) % unit < _col(masked)
    cols = (np.arange(width)[None, :] + _col(offset_x)) % unit < _col(masked)
    return rows[:, :, None] & cols[:, None, :]


def fill_masked(images: np.ndarray, mask: np.ndarray, value) -> np.ndarray:
    """Copy of ``images`` with pixels under ``mask`` (N, H, W) set to ``value``.

    ``value`` is a number in [0, 255] (rounded) for every channel, or a uint8 array broadcastable to
    ``images`` (e.g. per-pixel random values of shape (N, H, W, C)).
    """
    if np.ndim(value) == 0:
        value = np.uint8(np.clip(np.rint(float(value)), 0, 255))
    return np.where(mask[..., None], value, images)
