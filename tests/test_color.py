"""Colour kernels against Pillow / colorsys / direct formulas on real photos and digits, and the
colour transforms' sampling (ranges, color_jitter's per-sample order)."""

import colorsys
import itertools

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps, ImageStat

from augcli.errors import SchemaError
from augcli.rng import Streams
from augcli.transforms import build
from augcli.transforms.functional import color as F

CORNERS = [(0, 0), (150, 200), (300, 400), (200, 520)]  # sky, roof, trees, building


@pytest.fixture(scope="module")
def rgb_crops(photo):
    return np.stack([photo[y : y + 96, x : x + 96] for y, x in CORNERS])


@pytest.fixture(scope="module")
def gray_crops(rgb_crops):
    return np.stack([np.asarray(Image.fromarray(c).convert("L")) for c in rgb_crops])[..., None]


@pytest.fixture(scope="module")
def digits(digits_images):
    return digits_images[0][:8]


@pytest.fixture(params=["rgb_crops", "gray_crops", "digits"])
def batch(request):
    return request.getfixturevalue(request.param)


def to_pil(img):
    return Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)


def pillow_each(images, fn):
    """Apply ``fn(pil_image, sample_index)`` to every image and stack the results like ``images``."""
    return np.stack([np.asarray(fn(to_pil(img), i)).reshape(img.shape) for i, img in enumerate(images)])


def per_sample(values, n):
    return np.resize(np.asarray(values, dtype=np.float64), n)


def max_diff(a, b):
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# --- ImageEnhance -----------------------------------------------------------------------------

ENHANCE = [
    (F.enhance_brightness, ImageEnhance.Brightness, [0.0, 0.5, 1.0, 1.3, 2.0]),
    (F.enhance_contrast, ImageEnhance.Contrast, [0.0, 0.4, 1.0, 1.8, 3.0]),
    (F.enhance_color, ImageEnhance.Color, [0.0, 0.3, 1.0, 1.7, 2.5]),
    (F.enhance_sharpness, ImageEnhance.Sharpness, [0.0, 0.5, 1.0, 2.0, 3.0]),
]


@pytest.mark.parametrize("kernel, enhancer, values", ENHANCE, ids=lambda v: getattr(v, "__name__", ""))
def test_enhance_matches_pillow(batch, kernel, enhancer, values):
    factor = per_sample(values, len(batch))
    ours = kernel(batch, factor)
    ref = pillow_each(batch, lambda im, i: enhancer(im).enhance(float(factor[i])))
    # Within 1 grey level, not exact: Pillow's blend truncates toward zero, we round to nearest.
    assert max_diff(ours, ref) <= 1
    # Factors 0 (the degenerate image itself: black, mean grey, luma, smoothed) and 1 are integral
    # blends, so they must match exactly - this pins the degenerate images bit for bit.
    integral = np.isin(factor, [0.0, 1.0])
    assert np.array_equal(ours[integral], ref[integral])
    assert np.array_equal(ours[factor == 1.0], batch[factor == 1.0])
    colour_only = kernel is F.enhance_color and batch.shape[-1] == 1
    changed = [not np.array_equal(o, x) for o, x in zip(ours[~integral], batch[~integral])]
    assert (not any(changed)) if colour_only else all(changed)


def test_contrast_mean_is_pillows(rgb_crops, gray_crops):
    for images in (rgb_crops, gray_crops):
        ref = [int(ImageStat.Stat(to_pil(img).convert("L")).mean[0] + 0.5) for img in images]
        assert F.gray_mean(images).tolist() == ref


def test_sharpness_keeps_borders(rgb_crops):
    out = F.enhance_sharpness(rgb_crops, per_sample([0.0, 2.5], len(rgb_crops)))
    for edge in (np.s_[:, 0], np.s_[:, -1], np.s_[:, :, 0], np.s_[:, :, -1]):
        assert np.array_equal(out[edge], rgb_crops[edge])
    assert not np.array_equal(out[:, 1:-1, 1:-1], rgb_crops[:, 1:-1, 1:-1])


# --- ImageOps (all exact: these are integer tables in Pillow) ----------------------------------


def test_invert_matches_pillow(batch):
    assert np.array_equal(F.invert(batch), pillow_each(batch, lambda im, i: ImageOps.invert(im)))


def test_posterize_matches_pillow(batch):
    bits = np.resize(np.array([1, 3, 5, 8]), len(batch))
    ref = pillow_each(batch, lambda im, i: ImageOps.posterize(im, int(bits[i])))
    assert np.array_equal(F.posterize(batch, bits), ref)


def test_solarize_matches_pillow(batch):
    threshold = np.resize(np.array([0, 64, 128, 200, 256]), len(batch))
    ref = pillow_each(batch, lambda im, i: ImageOps.solarize(im, int(threshold[i])))
    assert np.array_equal(F.solarize(batch, threshold), ref)


@pytest.mark.parametrize("squeeze", [False, True], ids=["photo", "low_contrast"])
def test_autocontrast_matches_pillow(rgb_crops, gray_crops, digits, squeeze):
    for images in (rgb_crops, gray_crops, digits):
        if squeeze:  # narrow every channel's range so the stretch is far from the identity
            images = (images // 3 + 70).astype(np.uint8)
        ours = F.autocontrast(images)
        assert np.array_equal(ours, pillow_each(images, lambda im, i: ImageOps.autocontrast(im)))
        if squeeze:
            assert ours.min() == 0 and ours.max() == 255


def test_equalize_matches_pillow(rgb_crops, gray_crops):
    for images in (rgb_crops, gray_crops, (rgb_crops // 3 + 70).astype(np.uint8)):
        ours = F.equalize(images)
        assert np.array_equal(ours, pillow_each(images, lambda im, i: ImageOps.equalize(im)))
        assert not np.array_equal(ours, images)


def test_equalize_small_images(digits):
    # Pillow leaves images with < 256 pixels unchanged (integer step 0); we use the exact step.
    assert np.array_equal(pillow_each(digits, lambda im, i: ImageOps.equalize(im)), digits)
    out = F.equalize(digits)
    for x, y in zip(digits, out):
        values = np.unique(x)
        mapped = np.array([y[x == v][0] for v in values])
        assert all((y[x == v] == m).all() for v, m in zip(values, mapped))  # a per-value table
        assert mapped[0] == 0 and mapped[-1] == 255 and (np.diff(mapped.astype(int)) > 0).all()
    flat = np.full((2, 8, 8, 1), 77, np.uint8)
    assert np.array_equal(F.equalize(flat), flat)  # constant channels stay as they are (as Pillow)


def test_grayscale_matches_pillow(rgb_crops, gray_crops):
    ours = F.grayscale(rgb_crops)
    ref = np.stack([np.asarray(to_pil(img).convert("L")) for img in rgb_crops])
    assert ours.shape == rgb_crops.shape
    for c in range(3):
        assert np.array_equal(ours[..., c], ref)
    assert np.array_equal(F.grayscale(gray_crops), gray_crops)


# --- HSV, gamma, channels ----------------------------------------------------------------------


def test_identities(rgb_crops):
    n = len(rgb_crops)
    assert np.array_equal(F.adjust_hue(rgb_crops, np.zeros(n)), rgb_crops)
    assert np.array_equal(F.adjust_saturation(rgb_crops, np.ones(n)), rgb_crops)
    assert np.array_equal(F.adjust_gamma(rgb_crops, np.ones(n)), rgb_crops)


def test_colour_only_kernels_keep_gray_images(gray_crops):
    n = len(gray_crops)
    for out in (
        F.adjust_hue(gray_crops, np.full(n, 0.3)),
        F.adjust_saturation(gray_crops, np.full(n, 0.2)),
        F.enhance_color(gray_crops, np.full(n, 2.0)),
        F.channel_shuffle(gray_crops, np.tile([2, 1, 0], (n, 1))),
    ):
        assert np.array_equal(out, gray_crops)


@pytest.fixture(scope="module")
def pixels(rgb_crops):
    """Photo pixels plus pure and mixed colours, as one (1, 1, P, 3) image."""
    pure = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    mixed = [(128, 128, 128), (0, 0, 0), (255, 255, 255), (200, 100, 50), (13, 240, 97), (90, 90, 200)]
    photo = rgb_crops.reshape(-1, 3)[::523][:40]
    return np.concatenate([np.array(pure + mixed, np.uint8), photo])[None, None]


def colorsys_map(pixels, fn):
    rgb = pixels.reshape(-1, 3) / 255.0
    out = [colorsys.hsv_to_rgb(*fn(*colorsys.rgb_to_hsv(*p))) for p in rgb]
    return np.rint(np.array(out) * 255.0).reshape(pixels.shape[1:])


def test_hcv_matches_colorsys(pixels):
    h6, chroma, value = F.rgb_to_hcv(pixels)
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in pixels.reshape(-1, 3) / 255.0])
    assert ((h6 >= 0) & (h6 < 6)).all()
    np.testing.assert_allclose(h6.ravel(), ref[:, 0] * 6.0, atol=1e-4)
    np.testing.assert_allclose(value.ravel(), ref[:, 2] * 255.0, atol=1e-3)
    np.testing.assert_allclose(chroma.ravel(), ref[:, 1] * ref[:, 2] * 255.0, atol=1e-3)


def test_hue_matches_colorsys(pixels):
    shifts = np.array([0.1, -0.25, 0.5, 1 / 3, -0.05])
    ours = F.adjust_hue(np.repeat(pixels, len(shifts), axis=0), shifts)
    for out, s in zip(ours, shifts):
        ref = colorsys_map(pixels, lambda h, sat, v, s=s: ((h + s) % 1.0, sat, v))
        # within 1: float32 here vs float64 in colorsys can land on either side of a .5
        assert max_diff(out, ref) <= 1
    red_to_green = F.adjust_hue(np.array([[[[255, 0, 0]]]], np.uint8), np.array([1 / 3]))
    assert red_to_green.tolist() == [[[[0, 255, 0]]]]


def test_hsv_saturation_matches_colorsys(pixels):
    factors = np.array([0.0, 0.5, 1.5, 3.0])
    ours = F.adjust_saturation(np.repeat(pixels, len(factors), axis=0), factors)
    for out, f in zip(ours, factors):
        ref = colorsys_map(pixels, lambda h, sat, v, f=f: (h, min(sat * f, 1.0), v))
        assert max_diff(out, ref) <= 1  # float32 vs float64, as for hue


def test_gamma_matches_formula(batch):
    gamma = per_sample([0.5, 0.8, 1.0, 2.2], len(batch))
    expected = np.rint(255.0 * (batch / 255.0) ** gamma.reshape(-1, 1, 1, 1)).astype(np.uint8)
    assert np.array_equal(F.adjust_gamma(batch, gamma), expected)


def test_channel_shuffle_is_a_permutation(rgb_crops):
    perms = np.array(list(itertools.permutations(range(3))))
    images = np.resize(rgb_crops, (6,) + rgb_crops.shape[1:])
    out = F.channel_shuffle(images, perms)
    for x, y, p in zip(images, out, perms):
        for c in range(3):
            assert np.array_equal(y[..., c], x[..., p[c]])


# --- transforms -------------------------------------------------------------------------------


@pytest.mark.parametrize("images", ["rgb_crops", "gray_crops"])
def test_color_jitter_applies_each_sample_in_its_order(request, images):
    x = np.resize(request.getfixturevalue(images), (12,) + request.getfixturevalue(images).shape[1:])
    t = build({"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1,
                                "mode": "sequential"}})
    params = t.sample(Streams.from_seed(3, len(x)), x.shape)
    order = params["order"]
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    assert len({tuple(o) for o in order}) > 3  # orders really vary between samples
    ops = [
        (F.enhance_brightness, "brightness"),
        (F.enhance_contrast, "contrast"),
        (F.enhance_color, "saturation"),
        (F.adjust_hue, "hue"),
    ]
    out = t.apply(x, params)
    for n in range(len(x)):
        y = x[n : n + 1]
        for j in order[n]:
            kernel, key = ops[j]
            y = kernel(y, params[key][n : n + 1])
        assert np.array_equal(out[n : n + 1], y)


def _affine_reference(x, a, t):
    """rint(A x + t) clipped, in float64: what one colour matrix per sample means."""
    y = np.einsum("nhwc,ndc->nhwd", x.astype(np.float64), a) + t[:, None, None, :]
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _jitter_factors(n, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0):
    return {"brightness": np.full(n, brightness), "contrast": np.full(n, contrast),
            "saturation": np.full(n, saturation), "hue": np.full(n, hue)}


def test_jitter_matrix_of_each_op_alone(rgb_crops):
    """Each op alone is its textbook map: brightness scales, contrast blends with the mean luma,
    saturation with the luma image; hue turns about grey and keeps luma."""
    x = rgb_crops
    n, luma = len(x), np.array([0.299, 0.587, 0.114])
    means = x.reshape(n, -1, 3).mean(axis=1)
    order = np.tile(np.arange(4), (n, 1))
    a, t = F.jitter_matrices(means, _jitter_factors(n, brightness=1.3), order)
    assert np.allclose(a, 1.3 * np.eye(3)) and np.allclose(t, 0)
    a, t = F.jitter_matrices(means, _jitter_factors(n, contrast=0.6), order)
    assert np.allclose(a, 0.6 * np.eye(3)) and np.allclose(t, 0.4 * (means @ luma)[:, None])
    a, t = F.jitter_matrices(means, _jitter_factors(n, saturation=0.0), order)
    assert np.allclose(a, np.tile(luma, (3, 1)))  # saturation 0: every channel becomes the luma
    a, t = F.jitter_matrices(means, _jitter_factors(n, hue=0.2), order)
    assert np.allclose(luma @ a, luma) and np.allclose(a @ np.ones(3), np.ones(3))  # luma and grey kept
    assert not np.allclose(a, np.eye(3))
    back, _ = F.jitter_matrices(means, _jitter_factors(n, hue=-0.2), order)
    assert np.allclose(back @ a, np.eye(3))


def test_jitter_hue_turns_the_way_hsv_does():
    """A positive shift moves HSV hue forward (red towards yellow), by roughly the same angle."""
    colours = np.array([[200, 50, 50], [50, 200, 50], [60, 60, 200], [200, 180, 40]], float)
    turned = colours @ F.hue_rotations(np.array([0.05]))[0].T
    for before, after in zip(colours, np.clip(turned, 0, 255)):
        h0 = colorsys.rgb_to_hsv(*(before / 255))[0]
        h1 = colorsys.rgb_to_hsv(*(after / 255))[0]
        assert 0.02 < (h1 - h0) % 1.0 < 0.08


def test_jitter_matrix_composes_in_each_samples_order(rgb_crops):
    """Contrast after brightness blends towards the brightened mean: order moves the offset (the
    linear parts commute: hue and saturation both keep grey and luma), and the composed map equals
    the ops applied one after the other in float."""
    x = rgb_crops[:2]
    means = x.reshape(2, -1, 3).mean(axis=1)
    f = _jitter_factors(2, brightness=1.4, contrast=0.5, saturation=1.5, hue=0.1)
    orders = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    a, t = F.jitter_matrices(means, f, orders)
    assert not np.allclose(t[0] / means[0] @ [0.299, 0.587, 0.114], t[1] / means[1] @ [0.299, 0.587, 0.114])
    for i, order in enumerate(orders):  # op by op in float64, on the mean colour and on a pixel
        for v in (means[i], x[i, 5, 7].astype(float)):
            y, m = v.copy(), means[i].copy()
            for op in order:
                name = F.JITTER_OPS[op]
                alone = _jitter_factors(1) | {name: f[name][i:i + 1]}
                one, shift = F.jitter_matrices(m[None], alone, np.arange(4)[None])
                y, m = one[0] @ y + shift[0], one[0] @ m + shift[0]
            assert np.allclose(a[i] @ v + t[i], y)


def test_color_jitter_matrix_is_one_rounding_of_the_map(batch):
    n = len(batch)
    f = {"brightness": np.linspace(0.6, 1.4, n), "contrast": np.linspace(1.5, 0.5, n),
         "saturation": np.linspace(0.2, 1.8, n), "hue": np.linspace(-0.3, 0.3, n)}
    order = np.argsort(np.linspace(0, 1, 4 * n).reshape(n, 4)[:, ::-1] * (np.arange(n)[:, None] % 2 * 2 - 1), axis=1)
    out = F.color_jitter_matrix(batch, f, order)
    a, t = F.jitter_matrices(batch.reshape(n, -1, batch.shape[-1]).mean(axis=1), f, order)
    ref = _affine_reference(batch, a, t)
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 against float64 at rounding ties
    assert not np.array_equal(out, batch)
    one = F.color_jitter_matrix(batch[1:2], {k: v[1:2] for k, v in f.items()}, order[1:2])
    assert np.array_equal(one, out[1:2])  # a sample's bytes do not depend on its batch


def test_color_jitter_matrix_modes_agree_within_rounding(rgb_crops):
    """With factors that keep pixels in range and no hue, the one-matrix jitter and torchvision's
    steps differ only by the steps' intermediate roundings (and Pillow's rounded mean grey)."""
    n = len(rgb_crops)
    f = _jitter_factors(n, brightness=0.9, contrast=0.85, saturation=1.1)
    order = np.tile([2, 1, 0, 3], (n, 1))
    diff = np.abs(F.color_jitter_matrix(rgb_crops, f, order).astype(int) - F.color_jitter(rgb_crops, f, order))
    # saturation goes first and is the only op here that can leave [0, 255]: the steps clip there,
    # the matrix does not (brightness 0.9 brings such pixels back); elsewhere only roundings differ
    x = rgb_crops.astype(float)
    luma = x @ [0.299, 0.587, 0.114]
    inside = ((luma[..., None] + 1.1 * (x - luma[..., None])).clip(0.5, 254.5) == luma[..., None] + 1.1 * (x - luma[..., None])).all(-1)
    assert inside.mean() > 0.9
    assert diff[inside].max() <= 2 and diff[inside].mean() < 0.6
    assert diff.mean() < 0.6


def test_color_jitter_identity_factors_leave_images_unchanged(batch):
    n = len(batch)
    order = np.tile(np.arange(4), (n, 1))
    assert np.array_equal(F.color_jitter_matrix(batch, _jitter_factors(n), order), batch)


def test_sampled_ranges():
    s = Streams.from_seed(11, 400)
    bits = build({"posterize": {"bits": [1, 8]}}).sample(s, (400, 4, 4, 3))["bits"]
    assert set(bits.tolist()) == set(range(1, 9))
    thr = build({"solarize": {"threshold": [100, 102]}}).sample(s, (400, 4, 4, 3))["threshold"]
    assert set(thr.tolist()) == {100, 101, 102}
    gamma = build("gamma").sample(s, (400, 4, 4, 3))["gamma"]
    assert gamma.min() >= 0.8 and gamma.max() <= 1.25
    assert 0.4 < (gamma < 1.0).mean() < 0.6  # log-uniform: [0.8, 1.25] is symmetric around 1
    shift = build({"hue": {"limit": 0.2}}).sample(s, (400, 4, 4, 3))["shift"]
    assert -0.2 <= shift.min() < -0.15 and 0.15 < shift.max() <= 0.2
    perm = build("channel_shuffle").sample(s, (400, 4, 4, 1))["permutation"]
    assert len({tuple(p) for p in perm}) == 6


def test_config_validation():
    assert build({"contrast": {"factor": 0.3}}).factor == (0.7, 1.3)
    for bad in (
        {"hue": {"limit": 0.6}},
        {"posterize": {"bits": [0, 4]}},
        {"posterize": {"bits": [2.5, 4]}},
        {"solarize": {"threshold": [10, 300]}},
        {"saturation": {"mode": "hls"}},
        {"gamma": {"gamma": [0.0, 2.0]}},
    ):
        with pytest.raises(SchemaError):
            build(bad)


def test_saturation_modes(rgb_crops):
    s = Streams.from_seed(5, len(rgb_crops))
    for mode, kernel in (("blend", F.enhance_color), ("hsv", F.adjust_saturation)):
        t = build({"saturation": {"factor": [0.2, 0.5], "mode": mode}})
        params = t.sample(s.take(np.arange(len(rgb_crops))), rgb_crops.shape)
        assert np.array_equal(t(rgb_crops, params=params), kernel(rgb_crops, params["factor"]))


def test_grayscale_transform_at_p1(rgb_crops):
    out = build({"grayscale": {"p": 1.0}})(rgb_crops, Streams.from_seed(0, len(rgb_crops)))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert not np.array_equal(out, rgb_crops)
