"""Noise, blur and occlusion transforms checked on real images against scipy / Pillow references and
against the statistics their parameters promise."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from augcli.rng import Streams
from augcli.transforms import build

# Textured 96x96 regions of the sample photo (roof tiles, foliage, sky edge, building).
CORNERS = [(100, 200), (250, 50), (0, 300), (300, 500)]


@pytest.fixture(scope="module")
def crops(photo):
    return np.stack([photo[y : y + 96, x : x + 96] for y, x in CORNERS])


@pytest.fixture(scope="module")
def digits(digits_images):
    return digits_images[0][:24]


def run(config, images, seed=0):
    """Build ``config`` at p=1, sample for ``images`` and return (output, params)."""
    name, values = next(iter(config.items()))
    t = build({name: {**values, "p": 1.0}})
    params = t.sample(Streams.from_seed(seed, len(images)), images.shape)
    return t(images, params=params), params


def grey(n, h=64, w=64, c=3, level=128):
    return np.full((n, h, w, c), level, dtype=np.uint8)


# --- blur ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["crops", "digits"])
def test_gaussian_blur_matches_scipy_reflect(which, crops, digits):
    # digits: radius up to 12 > 8 px, so the border reflection repeats
    x = np.concatenate([crops] * 3) if which == "crops" else digits
    y, params = run({"gaussian_blur": {"sigma": [0.3, 3.0]}}, x)
    assert params["sigma"].min() < 1.0 < params["sigma"].max()
    for img, out, s in zip(x, y, params["sigma"]):
        ref = ndimage.gaussian_filter(img.astype(np.float64), (s, s, 0), mode="reflect", truncate=4.0)
        ref = np.clip(np.rint(ref), 0, 255)
        assert np.abs(out.astype(int) - ref).max() <= 1
        assert np.mean(out == ref) > 0.97  # off-by-one only where float32 rounding straddles .5


def test_gaussian_blur_smooths_and_keeps_mean(crops):
    y, _ = run({"gaussian_blur": {"sigma": [2.0, 2.0]}}, crops)
    dx_before = np.abs(np.diff(crops.astype(float), axis=2)).mean()
    dx_after = np.abs(np.diff(y.astype(float), axis=2)).mean()
    assert dx_after < 0.6 * dx_before
    assert abs(y.mean() - crops.mean()) < 1.0


@pytest.mark.parametrize("which", ["crops", "digits"])
def test_median_blur_equals_scipy(which, crops, digits):
    x = crops if which == "crops" else digits
    y, params = run({"median_blur": {"sizes": [1, 3, 5, 9]}}, x, seed=3)
    assert len(np.unique(params["ksize"])) >= 2
    for img, out, k in zip(x, y, params["ksize"]):
        ref = ndimage.median_filter(img, size=(k, k, 1), mode="reflect")
        assert np.array_equal(out, ref), f"k={k}"


def test_median_blur_rejects_even_sizes():
    from augcli.errors import SchemaError

    with pytest.raises(SchemaError):
        build({"median_blur": {"sizes": [3, 4]}})


def test_motion_blur_constant_image_stays_constant():
    x = grey(6, 20, 24, 3, level=173)
    y, params = run({"motion_blur": {"length": [3, 15], "angle": [0, 360]}}, x)
    assert params["length"].max() > 3
    assert np.array_equal(y, x)


def test_motion_blur_length_one_is_identity(crops):
    y, _ = run({"motion_blur": {"length": [1, 1]}}, crops)
    assert np.array_equal(y, crops)


@pytest.mark.parametrize("angle,axis", [(0, 1), (90, 0), (180, 1)])
def test_motion_blur_axis_aligned_is_box_filter(crops, angle, axis):
    y, _ = run({"motion_blur": {"length": [5, 5], "angle": [angle, angle]}}, crops)
    for img, out in zip(crops, y):
        ref = ndimage.uniform_filter1d(img.astype(np.float64), 5, axis=axis, mode="reflect")
        assert np.array_equal(out, np.clip(np.rint(ref), 0, 255))


def test_motion_blur_diagonal_blurs_along_its_direction(crops):
    # A 45-degree line averages along the anti-diagonal (up-right), so it smooths that direction most.
    y, _ = run({"motion_blur": {"length": [9, 9], "angle": [45, 45]}}, crops)
    f = y.astype(float)
    along = np.abs(f[:, 1:, :-1] - f[:, :-1, 1:]).mean()  # neighbour up-right
    across = np.abs(f[:, 1:, 1:] - f[:, :-1, :-1]).mean()  # neighbour down-right
    assert along < 0.7 * across


@pytest.mark.parametrize("rgb", [True, False])
def test_jpeg_quality_equals_pillow(crops, rgb):
    x = crops if rgb else crops[..., :1].copy()
    y, params = run({"jpeg_quality": {"quality": [10, 95]}}, x)
    assert y.shape == x.shape
    for img, out, q in zip(x, y, params["quality"]):
        buf = io.BytesIO()
        Image.fromarray(img if rgb else img[..., 0]).save(buf, format="JPEG", quality=int(q))
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        assert np.array_equal(out, ref.reshape(out.shape))
    assert not np.array_equal(y, x)


# --- noise --------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [True, False])
def test_gaussian_noise_statistics(per_channel):
    s = 0.04
    y, _ = run({"gaussian_noise": {"std": [s, s], "per_channel": per_channel}}, grey(4))
    for out in y.astype(np.float64):
        assert abs(out.std() - s * 255) < 0.05 * s * 255
        assert abs(out.mean() - 128) < 1.0
    same = np.all(y == y[..., :1])
    assert same == (not per_channel)


def test_gaussian_noise_std_varies_per_sample():
    y, params = run({"gaussian_noise": {"std": [0.01, 0.1]}}, grey(8))
    measured = y.reshape(8, -1).astype(float).std(axis=1)
    assert np.corrcoef(measured, params["std"] * 255)[0, 1] > 0.99


def test_speckle_noise_is_multiplicative():
    s = 0.1
    x = np.concatenate([grey(2, level=200), grey(2, level=50), grey(1, level=0)])
    y, _ = run({"speckle_noise": {"std": [s, s]}}, x)
    for out, level in zip(y.astype(float), [200, 200, 50, 50]):
        assert abs(out.std() - s * level) < 0.05 * s * level + 0.3
        assert abs(out.mean() - level) < 1.0
    assert not y[4].any()  # black stays black


def test_salt_and_pepper_fractions():
    y, params = run({"salt_and_pepper": {"amount": [0.02, 0.2], "salt_vs_pepper": 0.3}}, grey(6))
    salt = np.all(y == 255, axis=-1)
    pepper = np.all(y == 0, axis=-1)
    changed = np.any(y != 128, axis=-1)
    assert np.array_equal(changed, salt | pepper)  # a hit pixel changes on every channel
    for a, s, _p, c in zip(params["amount"], salt, pepper, changed):
        assert abs(c.mean() - a) < 0.02
        assert abs(s.sum() / c.sum() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / c.sum())  # 4 binomial sds


# --- occlusion ----------------------------------------------------------------------------------


def box_mask_of(params, i, h, w):
    m = np.zeros((h, w), dtype=bool)
    t, l = params["top"][i], params["left"][i]
    m[t : t + params["box_h"][i], l : l + params["box_w"][i]] = True
    return m


@pytest.mark.parametrize("which", ["crops", "digits"])
def test_random_erasing_area_and_fill(which, crops, digits):
    x = np.concatenate([crops] * 8) if which == "crops" else digits
    lo, hi = 0.05, 0.3
    y, params = run({"random_erasing": {"area": [lo, hi], "value": 7}}, x)
    n, h, w, _ = x.shape
    assert params["box_h"].min() > 0, "every sample finds a box in 10 attempts"
    for i in range(n):
        m = box_mask_of(params, i, h, w)
        assert lo <= m.mean() <= hi
        assert np.all(y[i][m] == 7)
        assert np.array_equal(y[i][~m], x[i][~m])
    assert len({(t, l) for t, l in zip(params["top"], params["left"])}) > n // 2


def test_random_erasing_random_fill_comes_from_the_stream(crops):
    y, params = run({"random_erasing": {"value": "random"}}, crops)
    for i in range(len(crops)):
        m = box_mask_of(params, i, 96, 96)
        assert np.array_equal(y[i][m], params["fill"][i][m])
        assert len(np.unique(y[i][m])) > 50  # per-pixel values, not one colour


def test_random_erasing_aspect_is_log_uniform():
    # log-uniform over [1/3, 3] is symmetric: as many tall boxes as wide ones (uniform would give 75% tall)
    t = build({"random_erasing": {"aspect": [1 / 3, 3], "area": [0.02, 0.1], "value": 0}})
    params = t.sample(Streams.from_seed(5, 2000), (2000, 96, 96, 3))
    tall = np.mean(params["box_h"] > params["box_w"])
    wide = np.mean(params["box_h"] < params["box_w"])
    assert abs(tall - wide) < 0.06
    ratio = params["box_h"] / params["box_w"]
    assert ratio.min() > 1 / 3.5 and ratio.max() < 3.5


def test_cutout_single_hole_is_a_clipped_square(crops):
    x = np.concatenate([crops] * 8)
    y, params = run({"cutout": {"n_holes": 1, "size": [0.25, 0.25], "value": 9}}, x)
    assert np.all(params["hole_h"] == 24) and np.all(params["hole_w"] == 24)
    for i in range(len(x)):
        cy, cx = params["center_y"][i, 0], params["center_x"][i, 0]
        m = np.zeros((96, 96), dtype=bool)
        m[max(0, cy - 12) : cy + 12, max(0, cx - 12) : cx + 12] = True
        assert np.all(y[i][m] == 9)
        assert np.array_equal(y[i][~m], x[i][~m])
        # the centre lies in the image, so at least a quarter of the 24x24 hole is kept
        assert 144 <= m.sum() <= 576
    assert len(set(params["center_y"][:, 0])) > 10


def test_cutout_masked_fraction_bounds():
    y, _ = run({"cutout": {"n_holes": 3, "size": [0.2, 0.2], "value": 0}}, grey(16, 50, 50))
    frac = np.mean(y[..., 0] == 0, axis=(1, 2))
    assert frac.min() >= 0.1**2 - 1e-9  # at least one hole, clipped to a quarter of 10x10
    assert frac.max() <= 3 * 0.2**2 + 1e-9
    assert frac.mean() > 0.06  # three 10x10 holes mostly inside and mostly disjoint


@pytest.mark.parametrize("ratio,expected", [(0.5, 0.25), (0.3, (7 / 24) ** 2)])
def test_grid_mask_exact_fraction_when_image_is_whole_units(ratio, expected):
    y, params = run({"grid_mask": {"unit": [0.25, 0.25], "ratio": ratio, "value": 0}}, grey(8, 96, 96))
    assert np.all(params["unit"] == 24)
    assert len({(a, b) for a, b in zip(params["offset_y"], params["offset_x"])}) > 1
    frac = np.mean(y[..., 0] == 0, axis=(1, 2))
    assert np.allclose(frac, expected)


def test_grid_mask_is_periodic_with_unit_and_fraction_near_ratio_squared(crops):
    y, params = run({"grid_mask": {"unit": [0.15, 0.4], "ratio": 0.6, "value": 0}}, grey(8, 90, 70))
    for out, d, l in zip(y[..., 0] == 0, params["unit"], params["masked"]):
        assert np.array_equal(out[d:], out[:-d]) and np.array_equal(out[:, d:], out[:, :-d])
        assert abs(out.mean() - (l / d) ** 2) < 0.1
    assert len(np.unique(params["unit"])) > 1
