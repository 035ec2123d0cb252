"""Geometric family: exactness against NumPy, agreement with Pillow and SciPy on real images."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from augcli.errors import SchemaError
from augcli.rng import Streams
from augcli.transforms import build
from augcli.transforms.functional import geometric as F

# Pillow puts pixel corners at integers, we put centres there: conjugate by a half-pixel shift.
HALF = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
UNHALF = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def crop96(photo):
    return np.ascontiguousarray(photo[150:246, 250:346])  # textured roof area, 96x96x3


@pytest.fixture(scope="module")
def digits32(digits_images):
    return F.resize(digits_images[0][:24], (32, 32))  # (24, 32, 32, 1)


def run(name, images, seed=0, **config):
    t = build({name: {"p": 1.0, **config}})
    params = t.sample(Streams.from_seed(seed, len(images)), images.shape)
    return t(images, params=params), params


def replay(name, images, params, **config):
    params = {"gate": np.ones(len(images), bool), **params}
    return build({name: {"p": 1.0, **config}})(images, params=params)


def source_coords(inverse, h, w):
    """Source (x, y) of every output pixel centre under an output->input matrix."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    p = inverse @ np.stack([xx.ravel(), yy.ravel(), np.ones(h * w)])
    return (p[0] / p[2]).reshape(h, w), (p[1] / p[2]).reshape(h, w)


def interior(inverse, h, w, margin=3):
    """Output pixels whose source lies ``margin`` pixels inside the image (no border effects)."""
    sx, sy = source_coords(inverse, h, w)
    return (sx >= margin) & (sx <= w - 1 - margin) & (sy >= margin) & (sy <= h - 1 - margin)


def pil_warp(image, inverse, kind):
    m = HALF @ inverse @ UNHALF
    m = m / m[2, 2]
    data = tuple(m[:2].ravel()) if kind == Image.AFFINE else tuple(m.ravel()[:8])
    size = (image.shape[1], image.shape[0])
    return np.asarray(Image.fromarray(image.squeeze()).transform(size, kind, data, resample=Image.BILINEAR))


def scipy_affine(image, inverse):
    """Exact float bilinear reference (SciPy takes (row, col) order)."""
    a = np.array([[inverse[1, 1], inverse[1, 0]], [inverse[0, 1], inverse[0, 0]]])
    offset = [inverse[1, 2], inverse[0, 2]]
    return np.stack(
        [ndimage.affine_transform(plane.astype(float), a, offset=offset, order=1) for plane in np.moveaxis(image, -1, 0)],
        -1,
    )


def check_against_references(images, inverses, pil_kind, with_scipy=True):
    n, h, w, _ = images.shape
    out = F.warp_homography(images, inverses, (h, w))
    for i in range(n):
        mask = interior(inverses[i], h, w)
        assert mask.mean() > 0.3
        ours = out[i].astype(float)
        pil = pil_warp(images[i], inverses[i], pil_kind).reshape(ours.shape)
        diff = np.abs(ours - pil)[mask]
        # Pillow truncates where we round, hence differences of 0 or 1 grey level
        assert diff.mean() < 1.0 and diff.max() <= 1
        if with_scipy:
            exact = scipy_affine(images[i], inverses[i])
            err = np.abs(ours - exact)[mask]
            # only the final rounding, plus float32 coordinates (~1e-5 px times up to 255 levels/px)
            assert err.mean() < 1.0 and err.max() <= 0.51
    return out


# --- exact operations ------------------------------------------------------------------------
def test_flips_and_rot90_equal_numpy(crop96, digits32):
    for x in (crop96[None].repeat(4, 0), digits32[:8]):
        assert np.array_equal(F.hflip(x), np.flip(x, 2))
        assert np.array_equal(F.vflip(x), np.flip(x, 1))
        k = np.arange(len(x)) % 4
        y = F.rot90(x, k)
        for i in range(len(x)):
            assert np.array_equal(y[i], np.rot90(x[i], k[i]))
    y, params = run("rot90", digits32)
    assert set(params["k"]) == {0, 1, 2, 3}
    assert all(np.array_equal(y[i], np.rot90(digits32[i], k)) for i, k in enumerate(params["k"]))


def test_rot90_keeps_non_square_shapes(crop96):
    x = crop96[None, :, :80].repeat(12, 0)
    y, params = run("rot90", x)
    assert y.shape == x.shape and set(params["k"]) <= {0, 2} and len(set(params["k"])) == 2
    with pytest.raises(ValueError):
        F.rot90(x, np.ones(len(x)))


def test_rotate_quarter_turns_are_exact(digits32):
    out = replay("rotate", digits32[:3], {"angle": np.array([90.0, 180.0, -90.0])})
    for i, k in enumerate([1, 2, 3]):
        assert np.array_equal(out[i], np.rot90(digits32[i], k))


def test_rotation_is_counter_clockwise():
    x = np.zeros((1, 5, 5, 1), np.uint8)
    x[0, 2, 4] = 255  # right of the centre
    y = replay("rotate", x, {"angle": np.array([90.0])}, interpolation="nearest")
    assert y[0, 0, 2, 0] == 255 and y.sum() == 255  # now above the centre


@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_identity_matrix_is_exact(crop96, digits32, border):
    for x in (crop96[None], digits32):
        for interpolation in ("nearest", "bilinear"):
            y = F.warp_homography(x, np.eye(3), x.shape[1:3], interpolation, border)
            assert np.array_equal(y, x)


def test_nearest_reads_the_closest_source_pixel(crop96):
    inverse = np.linalg.inv(F.affine_matrix(96, 96, 23.0, 1.3, 0.05, -0.02, 8.0, 3.0))
    out = F.warp_homography(crop96[None], inverse, (96, 96), "nearest")[0]
    sx, sy = source_coords(inverse[0], 96, 96)
    far_from_ties = (np.abs(sx % 1 - 0.5) > 1e-3) & (np.abs(sy % 1 - 0.5) > 1e-3)
    mask = interior(inverse[0], 96, 96, margin=1) & far_from_ties
    rows, cols = np.floor(sy + 0.5).astype(int), np.floor(sx + 0.5).astype(int)
    assert mask.mean() > 0.5
    assert np.array_equal(out[mask], crop96[rows[mask], cols[mask]])


def test_integer_translation_shifts_exactly(crop96, digits32):
    for x, (dy, dx) in ((crop96[None], (7, -5)), (digits32[:4], (3, 4))):
        h, w = x.shape[1:3]
        for interpolation in ("bilinear", "nearest"):
            n = len(x)
            shift = {"tx": np.full(n, dx / w), "ty": np.full(n, dy / h)}
            y = replay("translate", x, shift, interpolation=interpolation, fill=9)
            src = x[:, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
            assert np.array_equal(y[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)], src)
            assert (y[:, : max(dy, 0)] == 9).all() and (y[:, :, w + min(dx, 0) :] == 9).all()


def test_borders_match_numpy_pad(crop96, digits32):
    for x in (crop96[None].repeat(2, 0), digits32[:3]):
        for border in ("edge", "reflect"):
            padded = np.pad(x, ((0, 0), (5, 5), (5, 5), (0, 0)), mode=border)
            assert np.array_equal(F.pad(x, 5, border), padded)
            # the sampling kernel folds coordinates the same way np.pad extends the image
            h, w = padded.shape[1:3]
            assert np.array_equal(F.crop(x, -5, -5, (h, w), border), padded)
        framed = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), constant_values=17)
        assert np.array_equal(F.pad(x, 3, "constant", 17), framed)


def test_random_crop_and_center_crop_are_slices(crop96):
    x = np.stack([crop96, crop96[::-1], crop96[:, ::-1]])
    y, params = run("random_crop", x, size=[40, 56], padding=6, border="reflect")
    padded = np.pad(x, ((0, 0), (6, 6), (6, 6), (0, 0)), mode="reflect")
    for i in range(len(x)):
        t, l = params["top"][i] + 6, params["left"][i] + 6
        assert np.array_equal(y[i], padded[i, t : t + 40, l : l + 56])
    y, _ = run("center_crop", x, size=[40, 30])
    assert np.array_equal(y, x[:, 28:68, 33:63])
    # a window larger than the image is filled around it
    y, _ = run("center_crop", x[:, :20, :20], size=24, fill=5)
    assert np.array_equal(y[:, 2:22, 2:22], x[:, :20, :20]) and (y[:, :2] == 5).all()


def test_random_crop_offsets_cover_the_padded_range(digits32):
    _, params = run("random_crop", digits32.repeat(20, 0), padding=4)
    assert params["top"].min() == -4 and params["top"].max() == 4
    with pytest.raises(SchemaError):
        build({"random_crop": {"size": 24, "p": 0.5}})


# --- agreement with Pillow and SciPy ---------------------------------------------------------
def test_rotate_matches_pillow_and_scipy(crop96):
    angles = np.array([12.5, -33.0, 71.0, 150.0])
    x = crop96[None].repeat(len(angles), 0)
    out = replay("rotate", x, {"angle": angles})
    inverses = np.linalg.inv(F.rotation_matrix(angles, 96, 96))
    assert np.array_equal(out, check_against_references(x, inverses, Image.AFFINE))
    for i, angle in enumerate(angles):  # and Image.rotate itself, which has the same sign convention
        pil = np.asarray(Image.fromarray(crop96).rotate(angle, resample=Image.BILINEAR)).astype(float)
        mask = interior(inverses[i], 96, 96)
        assert np.abs(out[i] - pil)[mask].max() <= 1


def test_affine_matches_pillow_and_scipy(crop96, digits32):
    for x in (crop96[None].repeat(5, 0), digits32[:6]):
        h, w = x.shape[1:3]
        config = dict(degrees=40, scale=[0.7, 1.4], translate=0.15, shear=20)
        out, params = run("affine", x, seed=3, **config)
        assert np.ptp(params["shear_y"]) > 0 and np.ptp(params["tx"]) > 0  # really per sample
        keys = ("angle", "scale", "tx", "ty", "shear_x", "shear_y")
        fwd = F.affine_matrix(h, w, *(params[k] for k in keys))
        assert np.array_equal(out, check_against_references(x, np.linalg.inv(fwd), Image.AFFINE))


def test_perspective_matches_pillow(crop96):
    x = crop96[None].repeat(4, 0)
    out, params = run("perspective", x, seed=1, distortion=0.6)
    homographies = F.perspective_matrix(params["corners"], 96, 96)
    assert np.any(np.abs(homographies[:, 2, :2]) > 1e-4)  # genuinely projective
    assert np.array_equal(out, check_against_references(x, homographies, Image.PERSPECTIVE, with_scipy=False))


def test_perspective_moves_the_corners(crop96):
    jitter = np.array([[[0.2, 0.1], [0.3, 0.0], [0.1, 0.4], [0.0, 0.25]]])
    hom = F.perspective_matrix(jitter, 96, 96)[0]
    half = 95 / 2
    corners = np.array([[0, 0], [95, 0], [95, 95], [0, 95]])
    moved = corners + np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * half * jitter[0]
    p = hom @ np.c_[moved, np.ones(4)].T
    assert np.allclose((p[:2] / p[2]).T, corners)
    assert np.array_equal(run("perspective", crop96[None], distortion=0.0)[0], crop96[None])


def test_resize_matches_pillow_upsampling(crop96, digits_images):
    """Pillow resizes in two separable passes and rounds to 8 bits in between, so results may
    differ by one grey level; on average they differ by well under a third of one."""
    cases = [(digits_images[0][:16], (32, 32)), (digits_images[0][:16], (29, 45)), (crop96[None], (150, 130))]
    for x, size in cases:
        ours = run("resize", x, size=list(size))[0]
        pil = np.stack([np.asarray(Image.fromarray(im.squeeze()).resize(size[::-1], Image.BILINEAR)) for im in x])
        diff = np.abs(ours.astype(float) - pil.reshape(ours.shape))
        assert diff.max() <= 1 and diff.mean() < 0.3
    nearest = run("resize", digits_images[0][:5], size=24, interpolation="nearest")[0]
    assert np.array_equal(nearest, digits_images[0][:5].repeat(3, 1).repeat(3, 2))
    # 96 -> 160 puts no output centre exactly half-way between input centres, so no rounding ties
    nearest = run("resize", crop96[None], size=160, interpolation="nearest")[0][0]
    assert np.array_equal(nearest, np.asarray(Image.fromarray(crop96).resize((160, 160), Image.NEAREST)))


def test_random_resized_crop_matches_pillow_box_resize(crop96):
    x = crop96[None].repeat(6, 0)
    out, p = run("random_resized_crop", x, scale=[0.1, 0.5], size=[100, 90])
    area = p["height"] * p["width"] / 96**2
    ratio = p["width"] / p["height"]
    assert np.all((area > 0.09) & (area < 0.51) & (ratio > 0.7) & (ratio < 1.4))
    assert len(set(p["top"])) > 1
    for i in range(len(x)):
        box = (p["left"][i], p["top"][i], p["left"][i] + p["width"][i], p["top"][i] + p["height"][i])
        pil = np.asarray(Image.fromarray(crop96).resize((90, 100), Image.BILINEAR, box=box))
        diff = np.abs(out[i].astype(float) - pil)
        assert diff.max() <= 1 and diff.mean() < 0.3


def test_random_resized_crop_falls_back_to_a_centre_crop(crop96):
    x = crop96[None, :, :40].repeat(3, 0)  # 96 x 40 cannot hold a square box of 90% of its area
    _, p = run("random_resized_crop", x, scale=[0.9, 1.0], ratio=[1.0, 1.0])
    assert np.all(p["height"] == 40) and np.all(p["width"] == 40)
    assert np.all(p["top"] == 28) and np.all(p["left"] == 0)


# --- displacement fields ---------------------------------------------------------------------
def test_zero_strength_fields_are_identity(crop96, digits32):
    for x in (crop96[None].repeat(2, 0), digits32[:5]):
        assert np.array_equal(run("elastic", x, alpha=0)[0], x)
        assert np.array_equal(run("grid_distortion", x, distort_limit=0)[0], x)


def test_elastic_field_is_smooth_and_scaled(digits32):
    noise = Streams.from_seed(0, 4).uniform(-1, 1, shape=(32, 32, 2), dtype=np.float32)
    dy, dx = F.elastic_field(noise, alpha=34.0, sigma=4.0)
    ref = ndimage.gaussian_filter(noise[1, :, :, 1].astype(float), 4.0) * 34.0
    assert np.allclose(dx[1], ref, atol=1e-3)
    assert np.abs(np.diff(dx, axis=2)).max() < 0.5 * np.abs(dx).max()  # smooth, not noise
    out, _ = run("elastic", digits32[:4])
    assert out.shape == digits32[:4].shape and not np.array_equal(out, digits32[:4])


def test_grid_field_interpolates_control_points():
    grid = Streams.from_seed(1, 2).uniform(-0.3, 0.3, shape=(3, 3, 2))
    dy, dx = F.grid_field(grid, 9, 17)  # control points at rows 0, 4, 8 and columns 0, 8, 16
    assert np.allclose(dy[:, ::4, ::8], grid[..., 0] * 4, atol=1e-5)
    assert np.allclose(dx[:, ::4, ::8], grid[..., 1] * 8, atol=1e-5)
    assert np.allclose(dx[:, 4, 4], (grid[:, 1, 0, 1] + grid[:, 1, 1, 1]) * 8 / 2, atol=1e-5)
    _, params = run("grid_distortion", np.zeros((3, 20, 20, 1), np.uint8))
    g = params["grid"]
    assert np.all(g[:, [0, -1], :, 0] == 0) and np.all(g[:, :, [0, -1], 1] == 0) and np.abs(g).max() > 0.1


def test_shortcuts_reuse_affine(crop96):
    x = crop96[None].repeat(3, 0)
    v = np.array([-10.0, 4.0, 25.0])
    full = {k: np.zeros(3) for k in ("angle", "tx", "ty", "shear_x", "shear_y")} | {"scale": np.ones(3)}
    assert np.array_equal(replay("rotate", x, {"angle": v}), replay("affine", x, full | {"angle": v}))
    zoom = {"scale": 1 + v / 50}
    assert np.array_equal(replay("scale", x, zoom), replay("affine", x, full | zoom))
    shear = {"shear_x": v, "shear_y": -v}
    assert np.array_equal(replay("shear", x, shear), replay("affine", x, full | shear))
    shift = {"tx": v / 100, "ty": v / 80}
    assert np.array_equal(replay("translate", x, shift), replay("affine", x, full | shift))
