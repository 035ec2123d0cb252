"""The two kernel backends ("numpy" and "opencv") against each other, each one's determinism, the
backend switch itself, and the properties of the Box-Muller streams both backends draw noise from.

Tolerances: OpenCV >= 5 interpolates warps in float32 like the NumPy kernels, but in another order,
so an interpolated value within ~1e-3 of a half may round the other way: at most 1 grey level,
on well under 1% of the pixels. Point operations (tables built from the NumPy arithmetic), flips and
JPEG re-encoding (libjpeg-turbo behind both Pillow and OpenCV) are exact; blur and noise are rounded
by OpenCV itself, again at most 1 grey level apart.
"""

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from scipy import stats

from augcli.errors import UsageError
from augcli.rng import Streams
from augcli import backend
from augcli.transforms.functional import color as C
from augcli.transforms.functional import filters as Fl
from augcli.transforms.functional import geometric as G
from augcli.transforms.functional import noise as Nz
from tests.helpers import assert_contract, make_transform, registered

if backend._import_cv2() is None:
    pytest.skip("the OpenCV backend needs opencv-python-headless >= 5", allow_module_level=True)
BACKENDS = backend.BACKENDS


@contextmanager
def using(name):
    """Run a block on backend ``name``, then put the previous one back."""
    before = backend.active_backend()
    backend.set_backend(name)
    try:
        yield
    finally:
        backend.set_backend(before)


@pytest.fixture(autouse=True)
def restore_backend():
    """Tests here switch backends; the rest of the suite must see the one it started with."""
    before = backend.active_backend()
    yield
    backend.set_backend(before)


@pytest.fixture(scope="module")
def crops(photo):
    """Four textured 96x96 RGB crops (above the OpenCV backend's per-image warp threshold)."""
    return np.stack([photo[y : y + 96, x : x + 96] for y, x in [(100, 200), (250, 50), (0, 300), (300, 500)]])


@pytest.fixture(scope="module")
def gray32(digits_images):
    """Digits at 32x32 (bilinear): gray images small enough for the stacked-tiles warp path."""
    with using("numpy"):
        return G.resize(digits_images[0][:12], (32, 32))


def both(fn, *args):
    """``fn(*args)`` under each backend: {"numpy": ..., "opencv": ...}."""
    out = {}
    for name in BACKENDS:
        with using(name):
            out[name] = fn(*args)
    return out


def assert_close(res, max_diff=1, share=0.01):
    a, b = res["numpy"].astype(int), res["opencv"].astype(int)
    assert a.shape == b.shape
    diff = np.abs(a - b)
    assert diff.max() <= max_diff
    assert np.mean(diff > 0) < share


# --- the switch -------------------------------------------------------------------------------
def test_default_is_opencv_and_environment_overrides(monkeypatch):
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    assert backend.active_backend() == "opencv"
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv(backend.ENV_VAR, "NumPy")
    assert backend.active_backend() == "numpy" and backend.cv2_or_none() is None
    backend.set_backend("opencv")
    assert backend.active_backend() == "opencv" and backend.cv2_or_none() is not None


def test_unknown_backend_is_a_one_line_usage_error(monkeypatch):
    with pytest.raises(UsageError, match="expected one of numpy, opencv, got 'torch'"):
        backend.set_backend("torch")
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv(backend.ENV_VAR, "gpu")
    with pytest.raises(UsageError, match="AUGCLI_BACKEND"):
        backend.active_backend()


# --- warps: numpy vs opencv -------------------------------------------------------------------
def _matrices(n, h, w, projective):
    if projective:  # different pull per corner: a genuinely projective map
        jitter = Streams.from_seed(4, n).uniform(0.0, 0.4, shape=(4, 2))
        return G.perspective_matrix(jitter, h, w)
    fwd = G.affine_matrix(h, w, np.linspace(-40, 40, n), np.linspace(0.7, 1.3, n), 0.1, -0.05, 10.0, -5.0)
    return np.linalg.inv(fwd)


@pytest.mark.parametrize("projective", [False, True], ids=["affine", "perspective"])
@pytest.mark.parametrize("border", G.BORDERS)
@pytest.mark.parametrize("which", ["crops", "gray32"])
def test_warps_agree_across_backends(which, border, projective, crops, gray32):
    x = crops if which == "crops" else gray32
    n, h, w, _ = x.shape
    m = _matrices(n, h, w, projective)
    assert_close(both(G.warp_homography, x, m, (h, w), "bilinear", border, 37))


def test_remap_based_warps_agree_across_backends(crops, gray32):
    for x in (crops, gray32):
        n, h, w, _ = x.shape
        noise = Streams.from_seed(2, n).uniform(-1, 1, shape=(h, w, 2), dtype=np.float32)
        dy, dx = G.elastic_field(noise, 40.0, 3.0)
        assert_close(both(G.displace, x, dy, dx, "bilinear", "reflect"))
        assert_close(both(G.resized_crop, x, [3, 10, 0, 5] * (n // 4), 7, h - 20, w - 9, (h + 7, w - 3)))
        assert_close(both(G.resize, x, (2 * h - 5, w // 2 + 1)))


def test_flips_are_exact_on_both_backends(crops, gray32):
    for x in (crops, gray32):
        for name, res in both(G.hflip, x).items():
            assert np.array_equal(res, x[:, :, ::-1]), name
        for name, res in both(G.vflip, x).items():
            assert np.array_equal(res, x[:, ::-1]), name


@pytest.mark.parametrize("name", BACKENDS)
def test_warps_are_batch_invariant_per_backend(name, crops, gray32):
    backend.set_backend(name)
    for x in (crops, np.concatenate([gray32] * 6)):  # 72 gray images: several stacked-tile calls
        n, h, w, _ = x.shape
        m = _matrices(n, h, w, projective=False)
        whole = G.warp_homography(x, m, (h, w), "bilinear", "constant", 0)
        cuts = [(0, 1), (1, 3), (3, n)]
        parts = [G.warp_homography(x[a:b], m[a:b], (h, w), "bilinear", "constant", 0) for a, b in cuts]
        assert np.array_equal(whole, np.concatenate(parts))


# --- colour, blur, noise ----------------------------------------------------------------------
def test_point_operations_are_identical_across_backends(crops, gray32):
    for x in (crops, gray32):
        f = np.linspace(0.3, 1.9, len(x))
        for fn, args in [
            (C.brightness, (np.linspace(-0.4, 0.4, len(x)),)),
            (C.enhance_brightness, (f,)),
            (C.enhance_contrast, (f,)),
            (C.adjust_gamma, (f,)),
            (C.equalize, ()),
            (C.autocontrast, ()),
            (C.gray_mean, ()),
        ]:
            res = both(fn, x, *args)
            assert np.array_equal(res["numpy"], res["opencv"]), fn.__name__


def test_colour_space_operations_agree_across_backends(crops):
    """Hue turns (both signs, over every hue of a rainbow too), HSV saturation and luma blends."""
    x = np.arange(256, dtype=np.uint8)
    rainbow = np.stack([*np.meshgrid(x, x[::-1]), np.full((256, 256), 90, np.uint8)], -1)[None, :96, :96]
    batch = np.concatenate([crops, rainbow.repeat(4, 0)])
    shift = np.linspace(-0.5, 0.5, len(batch))
    factor = np.linspace(0.0, 2.5, len(batch))
    assert_close(both(C.adjust_hue, batch, shift))
    assert_close(both(C.adjust_saturation, batch, factor))
    assert_close(both(C.enhance_color, batch, factor))


def test_median_rot90_exact_and_motion_blur_close(crops, gray32):
    for x in (crops, gray32):
        n = len(x)
        res = both(Fl.median_blur, x, np.array([3, 5, 1, 7] * n)[:n])
        assert np.array_equal(res["numpy"], res["opencv"])
        res = both(G.rot90, x, np.arange(n) % 4)
        assert np.array_equal(res["numpy"], res["opencv"])
        assert_close(both(Fl.motion_blur, x, np.arange(n) % 9 + 1, np.linspace(0, 170, n), 4))


def test_elastic_field_smoothing_agrees_with_scipy(crops):
    noise = Streams.from_seed(3, 2).uniform(-1, 1, shape=(64, 80, 2), dtype=np.float32)
    res = both(lambda: G.elastic_field(noise, 30.0, 4.0)[1])
    assert np.allclose(res["numpy"], res["opencv"], atol=1e-4)


def test_gray_mean_is_pillows_exact_luma_on_both_backends(crops):
    from PIL import Image

    ref = [np.floor(np.asarray(Image.fromarray(img).convert("L"), dtype=np.int64).mean() + 0.5) for img in crops]
    for res in both(C.gray_mean, crops).values():
        assert res.tolist() == ref


def test_gaussian_blur_agrees_across_backends(crops, gray32):
    for x in (crops, gray32):
        sigma = np.linspace(0.3, 2.5, len(x))
        assert_close(both(Fl.gaussian_blur, x, sigma, 4.0, Fl.gaussian_radius(2.5, 4.0)), share=0.03)


def test_gaussian_noise_kernel_agrees_across_backends(crops):
    field = Streams.from_seed(1, len(crops)).normal(shape=crops.shape[1:], dtype=np.float32)
    std = np.array([0.01, 0.05, 0.2, 1.0])
    assert_close(both(Nz.gaussian_noise, crops, std, field))
    shared = field[..., :1]  # one field for all channels
    assert_close(both(Nz.gaussian_noise, crops, std, shared))


# --- every transform is deterministic and batch-invariant on the NumPy backend too ------------
@pytest.mark.parametrize("name", registered())
def test_numpy_backend_contract(name, crops):
    """The contract test runs on the default backend; this repeats its checks on the other one."""
    backend.set_backend("numpy" if backend.active_backend() == "opencv" else "opencv")
    t = make_transform(name)
    if t.uses_labels:
        pytest.skip("mixing transforms need labels; their pairing is covered by the contract test")
    x = crops[:, :64, :64]
    keys = Streams.from_seed(9, len(x)).keys
    assert_contract(t, x, lambda b, k: t(b, Streams(k)), keys, cuts=[(0, 1), (1, 4)])


# --- the normal streams -----------------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_is_standard_and_batch_invariant(name, dtype):
    backend.set_backend(name)
    keys = Streams.from_seed(3, 40).keys
    z = Streams(keys).normal(shape=(33, 31), dtype=dtype)  # odd count: the last sine is dropped
    assert z.dtype == dtype and z.shape == (40, 33, 31)
    flat = z.reshape(-1).astype(np.float64)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert abs(flat.mean()) < 0.02 and abs(flat.std() - 1.0) < 0.02
    # a sample's values depend only on its own key, draw index and element index
    s = Streams(keys[7:9])
    assert np.array_equal(s.normal(shape=(33, 31), dtype=dtype), z[7:9])
    # the cos and sin halves of a pair are uncorrelated
    pairs = (33 * 31 + 1) // 2
    half = z.reshape(40, -1)
    assert abs(np.corrcoef(half[:, : pairs - 1].ravel(), half[:, pairs:].ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("name", BACKENDS)
def test_normal_large_fields_span_tiles(name):
    """Fields longer than one Box-Muller tile are cut in pieces; values must not depend on it."""
    backend.set_backend(name)
    keys = Streams.from_seed(5, 3).keys
    big = Streams(keys).normal(shape=(96, 100, 3), dtype=np.float32)  # 14400 pairs: several tiles
    assert np.array_equal(big[1:2], Streams(keys[1:2]).normal(shape=(96, 100, 3), dtype=np.float32))
    assert abs(big.std() - 1.0) < 0.02 and np.isfinite(big).all()
    # neighbouring pixels are independent (no structure left by the tiling)
    assert abs(np.corrcoef(big[..., :-1, 0].ravel(), big[..., 1:, 0].ravel())[0, 1]) < 0.02


def test_normal_loc_scale_and_float64_ignore_backend():
    keys = Streams.from_seed(8, 6).keys
    got = both(lambda: Streams(keys).normal(2.0, np.arange(1.0, 7.0), shape=(5,)))
    assert np.array_equal(got["numpy"], got["opencv"])  # float64 draws never use OpenCV's math
    z = Streams(keys).normal(shape=(5,))
    assert np.allclose(got["numpy"], 2.0 + np.arange(1.0, 7.0)[:, None] * z)


def test_float32_normal_backends_differ_only_in_the_last_bits():
    keys = Streams.from_seed(6, 4).keys
    got = both(lambda: Streams(keys).normal(shape=(64, 64), dtype=np.float32))
    assert np.allclose(got["numpy"], got["opencv"], rtol=1e-5, atol=1e-5)


# --- fused and per-image paths (issue 15) -------------------------------------------------------
def test_jpeg_is_identical_across_backends(crops, gray32):
    """OpenCV's codec (opencv backend) and Pillow's (numpy backend) are both libjpeg-turbo with the
    same settings: the same bytes, RGB and gray, over the whole quality range."""
    for x in (crops, gray32[:4]):
        quality = np.linspace(5, 100, len(x)).astype(int)
        res = both(Fl.jpeg, x, quality)
        assert np.array_equal(res["numpy"], res["opencv"])
        assert not np.array_equal(res["opencv"], x)


def test_colour_jitter_in_place_path_equals_the_separate_kernels(crops):
    """The OpenCV backend's image-by-image jitter gives exactly the bytes of the four kernels
    called one after the other in each sample's order (on the same backend)."""
    n = len(crops)
    factors = {"brightness": np.linspace(0.6, 1.4, n), "contrast": np.linspace(1.5, 0.5, n),
               "saturation": np.linspace(0.2, 1.8, n), "hue": np.linspace(-0.3, 0.3, n)}
    order = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]])
    kernels = (C.enhance_brightness, C.enhance_contrast, C.enhance_color, C.adjust_hue)
    with using("opencv"):
        fused = C.color_jitter(crops, factors, order)
        for i in range(n):
            one = crops[i : i + 1]
            for op in order[i]:
                one = kernels[op](one, factors[C.JITTER_OPS[op]][i : i + 1])
            assert np.array_equal(fused[i : i + 1], one), i
    with using("numpy"):  # and the batched path agrees within the colour-space tolerance
        assert_close({"numpy": C.color_jitter(crops, factors, order), "opencv": fused}, share=0.02)


def test_colour_matrix_jitter_agrees_across_backends(crops, gray32):
    """One colour matrix per sample: OpenCV's float32 cv2.transform and NumPy's einsum round the
    same map; they may differ only where float32 sums land on the other side of a half."""
    for x in (crops, gray32[:4]):
        n = len(x)
        factors = {"brightness": np.linspace(0.6, 1.4, n), "contrast": np.linspace(1.5, 0.5, n),
                   "saturation": np.linspace(0.2, 1.8, n), "hue": np.linspace(-0.3, 0.3, n)}
        order = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]])
        res = both(C.color_jitter_matrix, x, factors, order)
        assert_close(res, share=1e-3)
        assert not np.array_equal(res["opencv"], x)


def test_byte_tables_equal_cv2_lut(crops, monkeypatch):
    """The stringzilla table path and cv2.LUT (its fallback) map every byte alike."""
    from augcli.transforms.functional import opencv_kernels as ocv

    cv2 = backend._import_cv2()
    tables = Streams.from_seed(5, len(crops)).integers(0, 256, (256,)).astype(np.uint8)
    fast = ocv.lut(cv2, crops, tables)
    monkeypatch.setattr(ocv, "_translate", None)
    assert np.array_equal(fast, ocv.lut(cv2, crops, tables))
    assert np.array_equal(fast, np.stack([t[x] for t, x in zip(tables, crops)]))


# Allocates 6 arrays of 16 MiB (below the raised mmap threshold: they come from the heap), frees
# them, and counts the page faults of doing it again.
_REFAULT_PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "augcli":
    import augcli.backend
else:  # glibc with only its mmap threshold raised (augcli before it kept the freed heap)
    block = bytearray(24 << 20); del block
def cycle():
    arrays = [np.ones(16 << 20, np.uint8) for _ in range(6)]
    del arrays
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap trimming")
def test_freed_heap_is_kept_for_the_next_shard():
    """A worker frees a shard's pixels and temporaries, then allocates as much again: with augcli's
    allocator settings that reuses the pages instead of faulting them in anew (glibc trims the freed top)."""
    faults = {mode: int(subprocess.run([sys.executable, "-c", _REFAULT_PROBE, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("augcli", "default")}
    assert faults["default"] > 2_000 and faults["augcli"] < 200, faults
