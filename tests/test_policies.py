"""The AutoAugment op table (against Pillow and the published magnitude scales), the batched
grouping, and the four policies' sampling: AutoAugment tables, RandAugment's records and op
frequencies, TrivialAugment's bins, AugMix's Dirichlet/Beta weights and mixing."""

import numpy as np
import pytest
from PIL import Image
from scipy.stats import chi2

from augcli.errors import SchemaError
from augcli.rng import Streams
from augcli.transforms import build
from augcli.transforms.functional import ops as O
from augcli.transforms.policies import POLICIES, dirichlet

FILL = 128


@pytest.fixture(scope="module")
def crop(photo):
    return np.ascontiguousarray(photo[150:214, 200:264])  # 64x64: roof and trees, lots of edges


@pytest.fixture(scope="module")
def mixed(photo, digits_images):
    """Four 32x32 RGB photo crops and the same crops as gray."""
    rgb = np.stack([photo[y : y + 32, x : x + 32] for y, x in [(0, 0), (150, 200), (300, 400), (200, 520)]])
    gray = np.stack([np.asarray(Image.fromarray(c).convert("L")) for c in rgb])[..., None]
    return rgb, gray


def one(images, op, level, sign=1, space="standard"):
    n = len(images)
    return O.apply_op_batch(images, np.full(n, op), np.full(n, level, float), np.full(n, sign), FILL, space)


# --- the op table -----------------------------------------------------------------------------
NEUTRAL_AT_ZERO = [O.IDENTITY, O.SHEAR_X, O.SHEAR_Y, O.TRANSLATE_X, O.TRANSLATE_Y, O.ROTATE, O.BRIGHTNESS,
                   O.COLOR, O.CONTRAST, O.SHARPNESS, O.POSTERIZE, O.SOLARIZE]  # fmt: skip


@pytest.mark.parametrize("space", ["standard", "wide"])
@pytest.mark.parametrize("op", NEUTRAL_AT_ZERO, ids=lambda i: O.OP_NAMES[i])
def test_level_zero_is_identity(mixed, op, space):
    for images in mixed:
        for sign in (1, -1):
            assert np.array_equal(one(images, op, 0, sign, space), images)
        # and a strong level does change the (colour) images, except Color on gray
        if not (op == O.IDENTITY or (op == O.COLOR and images.shape[-1] == 1)):
            assert not np.array_equal(one(images, op, 9, 1, space), images)


def test_identity_ignores_level(mixed):
    assert np.array_equal(one(mixed[0], O.IDENTITY, 30), mixed[0])


@pytest.mark.parametrize(
    "space, levels, bits, thresholds",
    [
        ("standard", [0, 5, 9, 10, 30], [8, 6, 4, 4, 1], [256, 128, 25.6, 0, 0]),
        ("wide", [0, 15, 30], [8, 5, 2], [256, 128, 0]),
    ],
)
def test_posterize_solarize_levels(space, levels, bits, thresholds):
    n = len(levels)
    got = O.op_values(np.full(n, O.POSTERIZE), levels, np.ones(n), 32, 32, space)
    assert got.tolist() == bits
    got = O.op_values(np.full(n, O.SOLARIZE), levels, -np.ones(n), 32, 32, space)  # sign is ignored
    assert np.allclose(got, thresholds)


def test_posterize_solarize_pixels(crop):
    x = crop[None]
    assert np.array_equal(one(x, O.POSTERIZE, 5), x & 0b11111100)  # level 5: 6 bits
    assert np.array_equal(one(x, O.SOLARIZE, 5), np.where(x < 128, x, 255 - x))  # level 5: threshold 128


def test_signed_magnitudes():
    ops = [O.SHEAR_X, O.TRANSLATE_X, O.TRANSLATE_Y, O.ROTATE, O.BRIGHTNESS, O.CONTRAST]
    vals = O.op_values(ops, np.full(6, 10.0), -np.ones(6), h=331, w=662)
    # AutoAugment's maxima: shear 0.3, translate 150 px of a 331 image, rotate 30 deg, factor 1 - 0.9
    assert np.allclose(vals, [-0.3, -300, -150, -30, 0.1, 0.1])
    wide = O.op_values([O.SHEAR_Y, O.TRANSLATE_X, O.ROTATE, O.SHARPNESS], np.full(4, 30.0), np.ones(4), 8, 8, "wide")
    assert np.allclose(wide, [0.99, 32, 135, 1.99])
    # levels past 10 extrapolate, enhance factors stay >= 0
    assert O.op_values([O.COLOR], [30.0], [-1], 8, 8)[0] == 0.0
    # AugMix's enhance factors are unsigned 0.1..1.9 and its translate is a third of the size
    mix = O.op_values([O.COLOR, O.COLOR, O.TRANSLATE_Y], [0.0, 10.0, 10.0], [-1, -1, 1], 30, 60, "augmix")
    assert np.allclose(mix, [0.1, 1.9, 10])


def _interior(op, value, size, margin=2):
    """Output pixels whose source point lies at least ``margin`` pixels inside the image."""
    m = O.inverse_matrices([op], [value], size, size)[0]
    y, x = np.mgrid[0:size, 0:size].astype(float)
    sx = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    sy = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    return (sx >= margin) & (sx <= size - 1 - margin) & (sy >= margin) & (sy <= size - 1 - margin)


@pytest.mark.parametrize("level, sign", [(5, 1), (9, -1)])
@pytest.mark.parametrize("op", [O.SHEAR_X, O.SHEAR_Y, O.ROTATE, O.TRANSLATE_X], ids=lambda i: O.OP_NAMES[i])
def test_geometry_matches_pillow(crop, op, level, sign):
    v = O.op_values([op], [level], [sign], 64, 64)[0]
    img = Image.fromarray(crop)
    fill = (FILL,) * 3
    if op == O.ROTATE:
        ref = img.rotate(v, resample=Image.BILINEAR, fillcolor=fill)
    else:
        data = {O.SHEAR_X: (1, v, 0, 0, 1, 0), O.SHEAR_Y: (1, 0, 0, v, 1, 0), O.TRANSLATE_X: (1, 0, -v, 0, 1, 0)}[op]
        ref = img.transform((64, 64), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=fill)
    ours = one(crop[None], op, level, sign)[0]
    mask = _interior(op, v, 64)
    assert mask.mean() > 0.4
    err = np.abs(ours.astype(float) - np.asarray(ref, dtype=float))[mask]
    assert err.mean() < 1.0
    if op == O.TRANSLATE_X:  # whole-pixel shifts are exact, borders included
        assert np.array_equal(ours, np.asarray(ref))


def test_grouped_batch_equals_one_by_one(mixed):
    """Grouping by op kind gives exactly what applying each sample alone gives."""
    rgb = np.concatenate([mixed[0]] * 4)  # 16 samples
    s = Streams.from_seed(3, len(rgb))
    ops = s.integers(0, len(O.OP_NAMES))
    levels = s.uniform(0, 30)
    signs = np.where(s.bernoulli(0.5), 1, -1)
    assert len(set(ops.tolist())) > 8
    batch = O.apply_op_batch(rgb, ops, levels, signs, FILL)
    alone = np.concatenate([O.apply_op_batch(rgb[i : i + 1], ops[i : i + 1], levels[i : i + 1], signs[i : i + 1], FILL) for i in range(len(rgb))])
    assert np.array_equal(batch, alone)


def test_op_sets():
    assert len(O.RANDAUGMENT_OPS) == 14 and O.INVERT not in O.RANDAUGMENT_OPS and O.IDENTITY in O.RANDAUGMENT_OPS
    assert not set(O.ENHANCE) & set(O.AUGMIX_OPS)
    assert len(O.AUGMIX_OPS) == 9 and set(O.AUGMIX_ALL_OPS) - set(O.AUGMIX_OPS) == set(O.ENHANCE)


# --- AutoAugment ------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["cifar10", "svhn", "imagenet"])
def test_autoaugment_tables(policy):
    ops, probs, levels = POLICIES[policy]
    assert ops.shape == probs.shape == levels.shape == (25, 2)
    assert ((probs >= 0) & (probs <= 1)).all() and ((levels >= 0) & (levels <= 9)).all()
    assert np.array_equal(levels, np.round(levels)) and O.IDENTITY not in ops


def test_autoaugment_published_entries():
    ops, probs, levels = POLICIES["imagenet"]
    assert [O.OP_NAMES[i] for i in ops[0]] == ["Posterize", "Rotate"]
    assert probs[0].tolist() == [0.4, 0.6] and levels[0].tolist() == [8, 9]
    ops, probs, levels = POLICIES["cifar10"]
    assert [O.OP_NAMES[i] for i in ops[24]] == ["TranslateY", "AutoContrast"] and probs[24].tolist() == [0.7, 0.9]
    ops, probs, levels = POLICIES["svhn"]
    assert [O.OP_NAMES[i] for i in ops[0]] == ["ShearX", "Invert"] and levels[0, 0] == 4


def test_autoaugment_sampling():
    t = build({"autoaugment": {"policy": "cifar10"}})
    n = 4000
    p = t.sample(Streams.from_seed(1, n), (n, 8, 8, 1))
    table_ops, table_probs, table_levels = POLICIES["cifar10"]
    sub = p["sub_policy"]
    assert p["ops"].shape == p["levels"].shape == p["signs"].shape == (n, 2)
    assert np.bincount(sub, minlength=25).min() > 100  # every sub-policy is used (expected 160)
    fired = p["ops"] != O.IDENTITY
    assert np.array_equal(p["ops"][fired], table_ops[sub][fired])
    assert np.array_equal(p["levels"], table_levels[sub])
    # the observed firing rate matches the table's probabilities
    assert abs(fired.mean() - table_probs[sub].mean()) < 0.02
    assert not fired[table_probs[sub] == 0].any() and fired[table_probs[sub] == 1].all()


# --- RandAugment / TrivialAugment -------------------------------------------------------------
def test_randaugment_records_n_ops():
    t = build({"randaugment": {"n": 3, "m": 7}})
    p = t.sample(Streams.from_seed(0, 50), (50, 8, 8, 3))
    assert p["ops"].shape == p["levels"].shape == p["signs"].shape == (50, 3)
    assert np.isin(p["ops"], O.RANDAUGMENT_OPS).all() and (p["levels"] == 7).all()
    assert set(np.unique(p["signs"]).tolist()) == {-1, 1}
    noisy = build({"randaugment": {"m": 9, "m_std": 5}}).sample(Streams.from_seed(0, 500), (500, 8, 8, 3))
    lv = noisy["levels"]
    assert lv.min() >= 0 and lv.max() <= 30 and 3.5 < lv.std() < 5.5 and abs(lv.mean() - 9) < 0.6


@pytest.mark.parametrize("name", ["randaugment", "trivialaugment"])
def test_op_frequency_is_uniform(name):
    n = 4000
    p = build(name).sample(Streams.from_seed(5, n), (n, 8, 8, 3))
    counts = np.bincount(p["ops"].ravel(), minlength=len(O.OP_NAMES))[list(O.RANDAUGMENT_OPS)]
    expected = p["ops"].size / len(O.RANDAUGMENT_OPS)
    stat = ((counts - expected) ** 2 / expected).sum()
    assert stat < chi2.ppf(0.999, len(counts) - 1)
    assert np.abs(counts / expected - 1).max() < 0.2


def test_trivialaugment_bins():
    n = 4000
    p = build("trivialaugment").sample(Streams.from_seed(2, n), (n, 8, 8, 3))
    assert p["ops"].shape == (n, 1)
    bins = np.bincount(p["levels"].ravel().astype(int), minlength=31)
    assert len(bins) == 31 and bins.min() > 80  # all 31 strength bins, about 129 each


def test_randaugment_on_digits(digits_images):
    x = digits_images[0][:64]
    y = build("randaugment")(x, Streams.from_seed(0, len(x)))
    assert y.shape == x.shape and y.dtype == np.uint8
    assert (y != x).reshape(len(x), -1).any(axis=1).mean() > 0.8  # two ops at m=9 change nearly all


# --- AugMix -----------------------------------------------------------------------------------
def test_augmix_mix_by_hand():
    original = np.full((2, 2, 2, 1), 100, np.uint8)
    chains = [np.full_like(original, 0), np.full_like(original, 200)]
    weights = np.array([[0.25, 0.75], [1.0, 0.0]])
    skip = np.array([0.5, 0.2])
    out = O.augmix_mix(original, chains, weights, skip)
    # sample 0: mix 150, 0.5 * 100 + 0.5 * 150 = 125; sample 1: mix 0, 0.8 * 100 = 80
    assert out[0].tolist() == np.full((2, 2, 1), 125).tolist() and (out[1] == 80).all()
    # rounding to nearest: 0.7 * 100 + 0.3 * 5 = 71.5 -> 72
    out = O.augmix_mix(original[:1], [np.full_like(original[:1], 5)], [[1.0]], [0.3])
    assert (out == 72).all()


def test_dirichlet_weights():
    w = dirichlet(Streams.from_seed(4, 3000), 1.0, 3)
    assert w.shape == (3000, 3) and (w >= 0).all() and np.allclose(w.sum(axis=1), 1)
    assert np.allclose(w.mean(axis=0), 1 / 3, atol=0.02)
    # Dirichlet(1, 1, 1) marginals are Beta(1, 2): variance 1/18
    assert np.allclose(w.var(axis=0), 1 / 18, atol=0.006)
    assert np.allclose(dirichlet(Streams.from_seed(4, 5), 1.0, 1), 1.0)


def test_augmix_sampling_and_apply(mixed):
    rgb = mixed[0]
    t = build({"augmix": {"width": 2}})
    p = t.sample(Streams.from_seed(8, 400), (400, 32, 32, 3))
    assert p["ops"].shape == p["levels"].shape == (400, 2, 3) and p["weights"].shape == (400, 2)
    assert ((p["depths"] >= 1) & (p["depths"] <= 3)).all() and len(np.unique(p["depths"])) == 3
    steps = np.arange(3) < p["depths"][..., None]
    assert np.isin(p["ops"][steps], O.AUGMIX_OPS).all() and (p["ops"][~steps] == O.IDENTITY).all()
    assert ((p["levels"] >= 0.1) & (p["levels"] <= 3)).all() and ((p["skip"] >= 0) & (p["skip"] <= 1)).all()

    # with all weight on chain 1 and skip 1, the output is chain 1 alone
    p = t.sample(Streams.from_seed(8, len(rgb)), rgb.shape)
    p["weights"] = np.tile([0.0, 1.0], (len(rgb), 1))
    p["skip"] = np.ones(len(rgb))
    chain = rgb
    for step in range(3):
        chain = O.apply_op_batch(chain, p["ops"][:, 1, step], p["levels"][:, 1, step], p["signs"][:, 1, step], FILL, "augmix")
    assert np.array_equal(t.apply(rgb, p), chain)
    p["skip"] = np.zeros(len(rgb))  # skip 0: the original comes back
    assert np.array_equal(t.apply(rgb, p), rgb)


def test_augmix_all_ops_and_fixed_depth():
    p = build({"augmix": {"all_ops": True, "depth": 2}}).sample(Streams.from_seed(0, 2000), (2000, 8, 8, 3))
    assert p["ops"].shape == (2000, 3, 2) and (p["depths"] == 2).all()
    assert set(np.unique(p["ops"]).tolist()) == set(O.AUGMIX_ALL_OPS)


def test_bad_configs():
    with pytest.raises(SchemaError):
        build({"augmix": {"depth": 0}})
    with pytest.raises(SchemaError, match="did you mean .cifar10"):
        build({"autoaugment": {"policy": "cifar100"}})
    with pytest.raises(SchemaError):
        build({"randaugment": {"m": 31}})
