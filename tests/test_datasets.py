"""Loaders: digits, image folders (formats, modes, corrupt files, determinism), npz, load_source."""

import os

import numpy as np
import pytest
from PIL import Image

from augcli.datasets import Dataset, load_digits, load_folder, load_npz, load_source
from augcli.datasets.convert import rgb_to_gray
from augcli.errors import DataError
from tests.helpers import bomb_png, broken_file, jpeg_bytes, write_tree

# ---------------------------------------------------------------- digits


def test_digits_shape_range_ids_and_classes(digits_images):
    expected, target = digits_images
    d = load_digits()
    assert d.images.shape == (1797, 8, 8, 1) and d.images.dtype == np.uint8
    assert d.images.min() == 0 and d.images.max() == 255
    np.testing.assert_array_equal(d.images, expected)
    np.testing.assert_array_equal(d.labels, target)
    assert d.labels.dtype == np.int64
    assert d.ids[0] == "0" and d.ids[-1] == "1796" and len(set(d.ids)) == 1797
    assert d.class_names == [str(k) for k in range(10)]


def test_digits_resize_matches_pillow_bilinear_and_rgb_repeats(digits_images):
    expected, _ = digits_images
    d = load_digits(image_size=(16, 12), color_mode="rgb")
    assert d.images.shape == (1797, 16, 12, 3)
    ref = np.asarray(Image.fromarray(expected[5, ..., 0]).resize((12, 16), Image.Resampling.BILINEAR))
    for c in range(3):
        np.testing.assert_array_equal(d.images[5, ..., c], ref)
    with pytest.raises(ValueError, match="color_mode"):
        load_digits(color_mode="bgr")


# ---------------------------------------------------------------- folders

SIZE = 32
FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF", "webp": "WEBP"}
LOSSLESS = {"png", "bmp", "tif", "webp"}


def _crop(photo, k):
    y, x = 40 + 37 * k, 60 + 53 * k
    return np.ascontiguousarray(photo[y : y + SIZE, x : x + SIZE])


def _save(arr, path, fmt, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "WEBP":
        kw.setdefault("lossless", True)
    Image.fromarray(arr).save(path, fmt, **kw)


@pytest.fixture
def image_tree(tmp_path, photo):
    """root/{cat,dog,zebra} with one crop per format, plus files that must be ignored."""
    root = tmp_path / "data"
    crops, k = {}, 0
    for cls, exts in {"dog": ["png", "jpg", "bmp"], "cat": ["gif", "tif", "webp"], "zebra": ["png"]}.items():
        for ext in exts:
            rel = f"{cls}/img {k:02d}.{ext}"
            crops[rel] = _crop(photo, k)
            _save(crops[rel], root / rel, FORMATS[ext])
            k += 1
    # A nested sub-folder inside a class counts for that class.
    crops["zebra/sub/deep.png"] = _crop(photo, k)
    _save(crops["zebra/sub/deep.png"], root / "zebra/sub/deep.png", "PNG")
    (root / "cat/.hidden.png").write_bytes(b"not an image")  # hidden: ignored
    (root / "cat/notes.txt").write_text("not an image")  # no image extension: ignored
    (root / ".git").mkdir()  # hidden folder: not a class
    (root / "README.md").write_text("top-level files are not classes")
    return root, crops


def test_folder_loads_counts_labels_ids_and_pixels(image_tree):
    root, crops = image_tree
    d = load_folder(root, image_size=(SIZE, SIZE), color_mode="rgb")
    assert d.class_names == ["cat", "dog", "zebra"]
    assert list(d.ids) == sorted(crops)
    assert d.images.shape == (len(crops), SIZE, SIZE, 3) and d.images.dtype == np.uint8
    expected_labels = [d.class_names.index(i.split("/")[0]) for i in d.ids]
    np.testing.assert_array_equal(d.labels, expected_labels)
    assert d.class_counts() == {"cat": 3, "dog": 3, "zebra": 2}
    assert d.skipped == []
    for i, rel in enumerate(d.ids):
        diff = np.abs(d.images[i].astype(int) - crops[rel].astype(int))
        ext = rel.rsplit(".", 1)[1]
        if ext in LOSSLESS:
            assert diff.max() == 0, rel
        else:  # JPEG and GIF (256-colour palette) are lossy but must stay close
            assert diff.mean() < 12, rel


def test_folder_resizes_with_pillow_bilinear_and_gray_uses_pillow_luma(image_tree):
    root, crops = image_tree
    d = load_folder(root, image_size=(20, 24), color_mode="gray")
    assert d.images.shape == (len(crops), 20, 24, 1)
    i = list(d.ids).index("dog/img 00.png")
    ref = Image.fromarray(crops["dog/img 00.png"]).convert("L").resize((24, 20), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(d.images[i, ..., 0], np.asarray(ref))
    # The array helper used for npz and digits agrees with Pillow's own conversion bit for bit.
    crop = crops["dog/img 00.png"]
    np.testing.assert_array_equal(rgb_to_gray(crop)[..., 0], np.asarray(Image.fromarray(crop).convert("L")))


def test_folder_default_size_is_first_readable_image(tmp_path, photo):
    root = tmp_path / "d"
    _save(photo[:30, :40], root / "a/1.png", "PNG")
    _save(photo[:50, :20], root / "a/2.png", "PNG")
    d = load_folder(root)
    assert d.images.shape == (2, 30, 40, 3)
    np.testing.assert_array_equal(d.images[0], photo[:30, :40])


def test_folder_result_does_not_depend_on_listing_order(image_tree, monkeypatch):
    root, _ = image_tree
    baseline = load_folder(root, image_size=(16, 16))
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path):
            with real_scandir(path) as it:
                self.entries = sorted(it, key=lambda e: e.name, reverse=True)

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            return iter(self.entries)

    monkeypatch.setattr(os, "scandir", Reversed)
    again = load_folder(root, image_size=(16, 16))
    assert list(again.ids) == list(baseline.ids)
    np.testing.assert_array_equal(again.images, baseline.images)
    np.testing.assert_array_equal(again.labels, baseline.labels)


def test_exif_orientation_is_applied(tmp_path):
    # Left half dark, right half bright, 40 wide x 24 high; orientation 6 = rotate 90 deg clockwise.
    arr = np.zeros((24, 40, 3), np.uint8)
    arr[:, 20:] = 230
    arr[:4] = 120  # a band on top so the rotation direction is visible
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "r/a/rot.jpg"
    _save(arr, path, "JPEG", exif=exif.tobytes(), quality=95)
    d = load_folder(tmp_path / "r", image_size=None)
    assert d.images.shape == (1, 40, 24, 3)  # rotated: 40 high, 24 wide
    out = d.images[0].astype(int)
    clockwise = np.rot90(arr, k=-1).astype(int)
    assert np.abs(out - clockwise).mean() < 4
    assert np.abs(out - np.rot90(arr, k=1).astype(int)).mean() > 40


def test_modes_are_converted(tmp_path, photo):
    root = tmp_path / "m"
    rgb = _crop(photo, 0)
    alpha = np.tile(np.linspace(0, 255, SIZE).round().astype(np.uint8), (SIZE, 1))
    _save(np.dstack([rgb, alpha]), root / "a/rgba.png", "PNG")
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    _save(np.dstack([gray, alpha]), root / "a/la.png", "PNG")
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.save(root / "a/pal.png")
    pal_t = pal.copy()
    pal_t.info["transparency"] = int(np.asarray(pal)[0, 0])
    pal_t.save(root / "a/pal_t.png", transparency=int(np.asarray(pal)[0, 0]))
    wide = (np.arange(SIZE * SIZE, dtype=np.uint32).reshape(SIZE, SIZE) % 256).astype(np.uint16) * 257
    Image.fromarray(wide).save(root / "a/sixteen.png")  # mode I;16, values v * 257
    Image.fromarray(rgb).convert("CMYK").save(root / "a/cmyk.tif")
    d = load_folder(root, image_size=(SIZE, SIZE), color_mode="rgb")
    get = {rel.split("/")[-1]: d.images[i] for i, rel in enumerate(d.ids)}
    assert d.skipped == [] and len(get) == 6
    on_black = np.rint(rgb.astype(np.float32) * alpha[..., None] / 255).astype(np.uint8)
    np.testing.assert_array_equal(get["rgba.png"], on_black)
    gray_on_black = np.rint(gray.astype(np.float32) * alpha / 255).astype(np.uint8)
    np.testing.assert_array_equal(get["la.png"], np.repeat(gray_on_black[..., None], 3, axis=-1))
    np.testing.assert_array_equal(get["pal.png"], np.asarray(pal.convert("RGB")))
    transparent = np.asarray(pal) == int(np.asarray(pal)[0, 0])
    assert transparent.any() and (get["pal_t.png"][transparent] == 0).all()
    np.testing.assert_array_equal(get["pal_t.png"][~transparent], np.asarray(pal.convert("RGB"))[~transparent])
    expected16 = (wide // 257).astype(np.uint8)
    np.testing.assert_array_equal(get["sixteen.png"], np.repeat(expected16[..., None], 3, axis=-1))
    np.testing.assert_array_equal(get["cmyk.tif"], rgb)  # RGB -> CMYK -> RGB is exact in Pillow


@pytest.fixture
def corrupt_tree(tmp_path, photo):
    root = write_tree(tmp_path / "c", {
        "a/good.png": _crop(photo, 0),
        "b/good.jpg": jpeg_bytes(_crop(photo, 1)),
        "a/empty.png": broken_file("empty"),
        "a/trunc.png": broken_file("truncated", _crop(photo, 2)),
        "b/garbage.jpg": broken_file("undecodable"),
        "b/bomb.png": bomb_png(20_000, 20_000),
    })
    os.symlink(root / "nowhere.png", root / "b/dangling.png")
    return root


def test_corrupt_files_are_skipped_with_reasons(corrupt_tree, recwarn):
    d = load_folder(corrupt_tree, image_size=(SIZE, SIZE))
    assert list(d.ids) == ["a/good.png", "b/good.jpg"]
    np.testing.assert_array_equal(d.labels, [0, 1])
    reasons = {s.id: s.reason for s in d.skipped}
    assert reasons == {
        "a/empty.png": "empty",
        "a/trunc.png": "truncated",
        "b/bomb.png": "too_large",
        "b/dangling.png": "unreadable",
        "b/garbage.jpg": "undecodable",
    }
    assert all(s.detail and "\n" not in s.detail for s in d.skipped)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillow_bomb_warning_becomes_a_skip_and_never_leaks(tmp_path, photo, recwarn):
    root = tmp_path / "w"
    _save(_crop(photo, 0), root / "a/good.png", "PNG")
    # 10000 x 10000 lies between Pillow's warning (89.5 Mpx) and error (2x) thresholds.
    (root / "a/warn.png").write_bytes(bomb_png(10_000, 10_000))
    d = load_folder(root, image_size=(8, 8), max_pixels=10**12)
    assert [(s.id, s.reason) for s in d.skipped] == [("a/warn.png", "too_large")]
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_limit_skips_large_images(tmp_path, photo):
    root = tmp_path / "big"
    _save(photo[:100, :100], root / "a/big.png", "PNG")
    _save(photo[:10, :10], root / "a/small.png", "PNG")
    d = load_folder(root, image_size=(10, 10), max_pixels=5000)
    assert list(d.ids) == ["a/small.png"]
    assert [(s.id, s.reason) for s in d.skipped] == [("a/big.png", "too_large")]


def test_strict_raises_on_first_corrupt_file(corrupt_tree):
    with pytest.raises(DataError) as err:
        load_folder(corrupt_tree, image_size=(SIZE, SIZE), strict=True)
    message = str(err.value)
    assert message == f"{corrupt_tree / 'a/empty.png'}: empty: file has zero bytes"
    assert err.value.exit_code == 1


def test_input_files_are_not_modified(corrupt_tree, image_tree):
    for root in (corrupt_tree, image_tree[0]):
        files = [p for p in root.rglob("*") if p.is_file()]
        before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
        load_folder(root, image_size=(16, 16), color_mode="gray")
        assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
        assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(files)


def test_folder_errors_name_the_path(tmp_path, photo):
    with pytest.raises(DataError, match="no such folder") as err:
        load_folder(tmp_path / "missing", (8, 8))
    assert str(tmp_path / "missing") in str(err.value)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "file.png", (8, 8))
    (tmp_path / "flat").mkdir()
    _save(photo[:8, :8], tmp_path / "flat/x.png", "PNG")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_folder(tmp_path / "flat", (8, 8))
    write_tree(tmp_path / "bad", {"a/empty.png": broken_file("empty")})
    with pytest.raises(DataError, match=r"no readable images \(1 skipped\)") as err:
        load_folder(tmp_path / "bad", (8, 8))
    assert str(tmp_path / "bad") in str(err.value)


def test_extensions_option_restricts_files(image_tree):
    root, _ = image_tree
    d = load_folder(root, image_size=(8, 8), extensions=["PNG"])
    assert all(i.endswith(".png") for i in d.ids) and len(d) == 3


# ---------------------------------------------------------------- npz


def test_npz_round_trip_of_augcli_layout(tmp_path, digits_images):
    images, target = digits_images
    path = tmp_path / "out.npz"
    np.savez(
        path,
        images=images[:20],
        labels=target[:20],
        ids=np.array([f"s{i}" for i in range(20)]),
        source_index=np.arange(20),
        copy_index=np.zeros(20, np.int64),
        class_names=np.array([f"digit{k}" for k in range(10)]),
    )
    d = load_npz(path)
    np.testing.assert_array_equal(d.images, images[:20])
    np.testing.assert_array_equal(d.labels, target[:20])
    assert d.labels.dtype == np.int64
    assert list(d.ids) == [f"s{i}" for i in range(20)]
    assert d.class_names == [f"digit{k}" for k in range(10)]
    assert load_npz(path, color_mode="rgb").images.shape == (20, 8, 8, 3)


def test_npz_soft_labels_defaults_and_float_images(tmp_path):
    soft = np.array([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]], dtype=np.float64)
    unit = np.linspace(0, 1, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    np.savez(tmp_path / "soft.npz", images=unit, labels=soft)
    d = load_npz(tmp_path / "soft.npz")
    assert d.labels.dtype == np.float32 and d.labels.shape == (2, 3)
    np.testing.assert_allclose(d.labels, soft)
    assert list(d.ids) == ["0", "1"] and d.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(d.images, np.rint(unit * 255).astype(np.uint8))
    # Values above 1 mean the 0..255 scale: used as they are.
    np.savez(tmp_path / "f255.npz", images=unit * 200 + 0.4, labels=np.array([0, 1]))
    np.testing.assert_array_equal(load_npz(tmp_path / "f255.npz").images, np.rint(unit * 200 + 0.4).astype(np.uint8))


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((2, 4, 4), np.uint8), extra=np.zeros(2))
    with pytest.raises(DataError, match="missing key 'labels'; keys present: images, extra"):
        load_npz(tmp_path / "nolabels.npz")
    bad = np.zeros((2, 4, 4), np.float32)
    bad[1, 2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", images=bad, labels=np.array([0, 1]))
    ds = load_npz(tmp_path / "nan.npz")  # the bad sample is skipped with a reason, the rest loads
    assert list(ds.ids) == ["0"] and [(s.id, s.reason) for s in ds.skipped] == [("1", "non_finite")]
    labels = np.array([[1.0, 0.0], [np.inf, 0.0]], np.float32)
    np.savez(tmp_path / "nanlabel.npz", images=np.zeros((2, 4, 4), np.uint8), labels=labels)
    assert [s.reason for s in load_npz(tmp_path / "nanlabel.npz").skipped] == ["non_finite"]
    np.savez(tmp_path / "allnan.npz", images=np.full((2, 4, 4), np.nan, np.float32), labels=np.array([0, 1]))
    with pytest.raises(DataError, match="every sample holds NaN or Inf"):
        load_npz(tmp_path / "allnan.npz")
    np.savez(tmp_path / "obj.npz", images=np.zeros((1, 2, 2), np.uint8), labels=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="key 'labels'"):
        load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "len.npz", images=np.zeros((3, 2, 2), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"shape \(3,\)"):
        load_npz(tmp_path / "len.npz")
    with pytest.raises(DataError, match="no such file"):
        load_npz(tmp_path / "missing.npz")


# ---------------------------------------------------------------- load_source


def test_load_source_dispatches_by_kind(tmp_path, image_tree):
    assert load_source("digits", color_mode="gray", strict=True).source == "digits"
    root, crops = image_tree
    d = load_source(str(root), image_size=(8, 8), color_mode=None)
    assert isinstance(d, Dataset) and len(d) == len(crops) and d.images.shape[-1] == 3
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4, 1), np.uint8), labels=np.array([1, 0]))
    assert load_source(tmp_path / "x.npz", strict=True).class_names == ["0", "1"]
    with pytest.raises(DataError, match="no such file or folder") as err:
        load_source(tmp_path / "nothing_here")
    assert str(tmp_path / "nothing_here") in str(err.value) and "relative to" not in str(err.value)
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported source"):
        load_source(tmp_path / "plain.txt")
    with pytest.raises(TypeError, match="colour_mode"):
        load_source("digits", colour_mode="gray")


def test_wrong_extension_loads_with_a_warning(tmp_path, photo):
    root = write_tree(tmp_path / "imgs", {"a/really_a_jpeg.png": jpeg_bytes(photo[:32, :32]), "a/fine.png": photo[32:64, :32]})
    ds = load_folder(root, image_size=(32, 32))
    assert len(ds) == 2 and not ds.skipped
    assert [(w.id, w.reason) for w in ds.warnings] == [("a/really_a_jpeg.png", "wrong_extension")]


@pytest.mark.parametrize("source, what", [("data/not-here", "no such file or folder"), ("gone.npz", "no such file")])
def test_a_relative_source_that_is_not_there_says_where_it_was_looked_up(tmp_path, monkeypatch, source, what):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load_source(source)
    assert str(err.value).startswith(f"{source}: {what} (relative to the current folder {tmp_path});")


def test_fit_size_stretches_crops_or_pads():
    """crop keeps the centre at the aspect ratio, pad fits the whole image on black, stretch fills."""
    from PIL import Image

    from augcli.datasets.folder import fit_size

    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 200  # a bright centre square between dark sides
    pil = Image.fromarray(wide)
    crop = np.asarray(fit_size(pil, (20, 20), "crop"))
    pad = np.asarray(fit_size(pil, (20, 20), "pad"))
    stretch = np.asarray(fit_size(pil, (20, 20), "stretch"))
    assert crop.shape == pad.shape == stretch.shape == (20, 20, 3)
    assert crop.min() >= 150  # only the bright centre is left
    assert (pad[:4] == 0).all() and (pad[-4:] == 0).all() and pad[10, 10, 0] == 200  # black bars above and below
    assert stretch[10, 0, 0] == 0 and stretch[10, 10, 0] == 200  # the dark sides squeezed in


@pytest.mark.parametrize("resize", ["stretch", "crop", "pad"])
def test_mixed_sizes_are_noted_unless_a_size_is_set(tmp_path, photo, resize):
    from PIL import Image

    from tests.helpers import invoke, write_strategy

    for i, (h, w) in enumerate([(30, 30), (30, 50), (40, 30), (30, 30)]):
        path = tmp_path / "imgs" / f"c{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(photo[i * 40:i * 40 + h, i * 50:i * 50 + w])).save(path)
    auto = write_strategy(tmp_path / "auto.yaml", f"dataset: {{source: '{tmp_path / 'imgs'}', resize: {resize}}}\n"
                                                  "augment: {copies: 1, pipeline: [{hflip: {p: 1}}]}\nclean: {exact_duplicates: off}\n")
    res = invoke("run", auto, "--out", tmp_path / "auto")
    done = {"stretch": "stretched", "crop": "cropped", "pad": "padded"}[resize]
    assert res.exit_code == 0, res.output
    assert f"warning: 2 of 4 images differ in size from the first and were {done} to 30x30" in res.stderr
    assert "(e.g. c0/2.png: 40x30 -> 30x30)" in res.stderr  # the first in listing order
    assert "were " + done in (tmp_path / "auto" / "report.md").read_text()
    sized = write_strategy(tmp_path / "sized.yaml", f"dataset: {{source: '{tmp_path / 'imgs'}', image_size: 24, "
                                                    f"resize: {resize}}}\naugment: {{copies: 1, pipeline: [{{hflip: {{p: 1}}}}]}}\n"
                                                    "clean: {exact_duplicates: off}\n")
    res = invoke("run", sized, "--out", tmp_path / "sized")
    assert res.exit_code == 0 and "differ in size" not in res.stderr
    data = np.load(tmp_path / "sized" / "train.npz")
    assert data["images"].shape[1:] == (24, 24, 3)
