"""The image zoo (issue #8): every odd or hostile file is loaded correctly or skipped with a reason,
`augcli run` completes end to end, and --strict fails with exit 1 writing nothing.

The zoo is generated here (no binaries in the repository) from scikit-learn's sample photograph.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from augcli.datasets import load_folder
from tests.helpers import (bomb_png, broken_file, fingerprint, invoke, jpeg_bytes, png_bytes, square, write_strategy,
                           write_tree)

S = 24  # side of the ordinary zoo images; the dataset is loaded at S x S


def _two_tone(h, w):
    """Left half dark, right half bright, a band on top: orientation is visible."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, w // 2:] = 230
    arr[: max(1, h // 6)] = 120
    return arr


def build_zoo(root, photo) -> dict:
    """Write the zoo below ``root``; returns {relative path: expected outcome}.

    Outcomes: ("loaded", expected uint8 S x S x 3 pixels or None, tolerance), ("skipped", reason),
    ("warned", reason) for files that load but look wrong, ("ignored",) for files never listed.
    """
    crops = [np.ascontiguousarray(photo[150 + 11 * k: 150 + 11 * k + S, 200 + 13 * k: 200 + 13 * k + S]) for k in range(20)]
    files, expect = {}, {}

    def add(rel, data, outcome):
        files[rel] = data
        expect[rel] = outcome

    add("cat/plain.png", png_bytes(crops[0]), ("loaded", crops[0], 0))
    add("cat/zero.png", b"", ("skipped", "empty"))
    add("cat/cut.png", png_bytes(crops[1])[:200], ("skipped", "truncated"))
    add("cat/cut.jpg", jpeg_bytes(crops[2], quality=95)[:400], ("skipped", "truncated"))
    add("cat/words.jpg", b"these are words, not pixels\n" * 30, ("skipped", "undecodable"))
    add("cat/words.gif", b"GIF89a but then nothing sensible", ("skipped", "undecodable"))
    add("cat/jpeg inside.png", jpeg_bytes(crops[3], quality=95), ("warned", "wrong_extension"))
    grey = crops[4][..., 1]
    add("cat/grey16.png", png_bytes(grey.astype(np.uint16) * 257), ("loaded", np.repeat(grey[..., None], 3, -1), 0))
    pal = Image.fromarray(crops[5]).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    index = np.asarray(pal)
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=int(index[0, 0]))
    on_black = np.where((index == index[0, 0])[..., None], 0, np.asarray(pal.convert("RGB")))
    add("cat/palette_transparent.png", buf.getvalue(), ("loaded", on_black.astype(np.uint8), 0))
    alpha = np.tile(np.linspace(0, 255, S).round().astype(np.uint8), (S, 1))
    rgba = np.dstack([crops[6], alpha])
    add("cat/rgba.png", png_bytes(rgba), ("loaded", np.rint(crops[6] * (alpha[..., None] / 255.0)).astype(np.uint8), 0))
    add("cat/cmyk.jpg", jpeg_bytes(Image.fromarray(crops[7]).convert("CMYK"), quality=95), ("loaded", crops[7], 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 12 wide x 24 high; shown rotated 90 degrees clockwise
    stored = _two_tone(S, S // 2)
    shown = np.asarray(Image.fromarray(np.rot90(stored, k=-1).copy()).resize((S, S), Image.Resampling.BILINEAR))
    add("cat/exif_rotated.jpg", jpeg_bytes(stored, quality=95, exif=exif.tobytes()), ("loaded", shown, 8))
    frames = [Image.fromarray(crops[8 + i]) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    first = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    add("dog/animated.gif", buf.getvalue(), ("loaded", first, 0))
    add("dog/one_pixel.png", png_bytes(np.array([[[200, 100, 50]]], np.uint8)),
        ("loaded", np.broadcast_to(np.array([200, 100, 50], np.uint8), (S, S, 3)), 0))
    strip = np.repeat(np.linspace(0, 255, 600).astype(np.uint8)[None, :, None], 3, axis=-1)
    resized = np.asarray(Image.fromarray(strip).resize((S, S), Image.Resampling.BILINEAR))
    add("dog/wide_1x600.png", png_bytes(strip), ("loaded", resized, 0))
    tall = strip.transpose(1, 0, 2).copy()
    add("dog/tall_600x1.png", png_bytes(tall), ("loaded", np.asarray(Image.fromarray(tall).resize((S, S), Image.Resampling.BILINEAR)), 0))
    add("dog/ünïcødé 猫 ☃.png", png_bytes(crops[11]), ("loaded", crops[11], 0))
    add("dog/with  spaces .png", png_bytes(crops[12]), ("loaded", crops[12], 0))
    add("dog/nested/deeper/inner.png", png_bytes(crops[13]), ("loaded", crops[13], 0))
    add("dog/.hidden.png", png_bytes(crops[14]), ("ignored",))
    add("dog/.hidden_dir/x.png", png_bytes(crops[15]), ("ignored",))
    add("dog/notes.txt", b"not an image", ("ignored",))
    add("dog/labels.csv", b"a,b\n1,2\n", ("ignored",))
    add("dog/bomb.png", bomb_png(50_000, 50_000), ("skipped", "too_large"))
    add("dog/moderate_bomb.png", bomb_png(12_000, 12_000), ("skipped", "too_large"))  # below Pillow's own error
    add("README.md", b"files beside the class folders are not classes", ("ignored",))
    write_tree(root, files | {".hidden_class/x.png": png_bytes(crops[16])})
    (root / "empty_class").mkdir()
    return expect


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, photo):
    root = tmp_path_factory.mktemp("zoo") / "zoo"
    return root, build_zoo(root, photo)


def _by(expect, *kinds):
    return {rel: out for rel, out in expect.items() if out[0] in kinds}


def test_every_zoo_file_is_loaded_correctly_or_skipped_with_its_reason(zoo, recwarn):
    root, expect = zoo
    d = load_folder(root, image_size=(S, S), color_mode="rgb", max_pixels=100_000_000)
    assert d.class_names == ["cat", "dog", "empty_class"]
    loaded = _by(expect, "loaded", "warned")
    assert sorted(d.ids) == sorted(loaded)
    assert {s.id: s.reason for s in d.skipped} == {rel: out[1] for rel, out in _by(expect, "skipped").items()}
    assert {w.id: w.reason for w in d.warnings} == {rel: out[1] for rel, out in _by(expect, "warned").items()}
    assert all(s.detail and "\n" not in s.detail for s in d.skipped + d.warnings)
    assert d.class_counts() == {"cat": 7, "dog": 7, "empty_class": 0}
    for i, rel in enumerate(d.ids):
        assert d.labels[i] == d.class_names.index(rel.split("/")[0]), rel
        out = expect[rel]
        if out[0] == "loaded":
            diff = np.abs(d.images[i].astype(int) - out[1].astype(int))
            assert diff.mean() <= out[2], (rel, diff.mean())
    # the EXIF rotation is really applied: far from the unrotated picture
    rotated = d.images[list(d.ids).index("cat/exif_rotated.jpg")].astype(int)
    unrotated = np.asarray(Image.fromarray(_two_tone(S, S // 2)).resize((S, S), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(rotated - unrotated).mean() > 40
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_gray_mode_loads_the_same_zoo(zoo):
    root, expect = zoo
    d = load_folder(root, image_size=(S, S), color_mode="gray")
    assert d.images.shape == (len(_by(expect, "loaded", "warned")), S, S, 1)
    grey = d.images[list(d.ids).index("cat/grey16.png"), ..., 0]
    np.testing.assert_array_equal(grey, expect["cat/grey16.png"][1][..., 0])


ZOO_STRATEGY = """\
dataset: {{source: "{root}", image_size: {size}}}
clean: {{blank: {{action: "off"}}, exact_duplicates: "off", near_duplicates: {{action: "off"}}, leakage: {{action: "off"}}}}
augment:
  copies: 1
  pipeline: [hflip, {{rotate: {{degrees: 20}}}}, {{gaussian_noise: {{std: 0.02}}}}]
report: {{preview: true}}
"""


@pytest.mark.parametrize("fmt", ["npz", "png", "tar"])
def test_cli_run_completes_on_the_zoo(tmp_path, zoo, fmt):
    root, expect = zoo
    before = fingerprint(root)
    strategy = write_strategy(tmp_path / "zoo.yaml", ZOO_STRATEGY.format(root=root, size=S))
    out = tmp_path / "out"
    res = invoke("run", strategy, "--out", out, "--format", fmt)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    n_loaded = len(_by(expect, "loaded", "warned"))
    report = json.loads((out / "report.json").read_text())
    assert report["output"]["total"] == 2 * n_loaded
    assert {f["id"]: f["reason"] for f in report["skipped"]["files"]} == {r: o[1] for r, o in _by(expect, "skipped").items()}
    assert report["counts"]["loaded"]["empty_class"] == 0
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(manifest) == 2 * n_loaded
    assert {m["source"] for m in manifest} == set(_by(expect, "loaded", "warned"))
    rows = (out / "quarantine.csv").read_text(encoding="utf-8").splitlines()
    assert any(r.startswith("cat/jpeg inside.png,wrong_extension,kept") for r in rows)
    if fmt == "png":  # one file per manifest record: no two samples share a name
        pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png") if p.parent != out)
        assert pngs == sorted(m["file"] for m in manifest)
    assert fingerprint(root) == before, "the input folder was modified"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".partial" in p.name or ".old-" in p.name]


def test_strict_fails_on_the_zoo_with_exit_1_and_writes_nothing(tmp_path, zoo):
    root, _ = zoo
    strategy = write_strategy(tmp_path / "zoo.yaml", ZOO_STRATEGY.format(root=root, size=S))
    out = tmp_path / "out"
    res = invoke("run", strategy, "--out", out, "--strict")
    assert res.exit_code == 1
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.output
    assert str(root / "cat/cut.jpg") in res.stderr and "truncated" in res.stderr  # first bad file in id order
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and p.name != ".out.lock"]


GRADIENT = np.full((S, S, 3), 9, np.uint8) + np.arange(S, dtype=np.uint8)[:, None, None]
BAD_FILES = {reason: broken_file(reason, GRADIENT) for reason in ("empty", "truncated", "undecodable", "too_large")}


def _column(photo, cls: str, n: int, y: int, x: int, step: int = 30, name: str = "{i}.png") -> dict:
    """n S x S crops of ``photo`` for class ``cls``, going down from (y, x) by ``step``."""
    return {f"{cls}/{name.format(i=i)}": square(photo, y + step * i, x, S) for i in range(n)}


@pytest.mark.parametrize("reason", sorted(BAD_FILES))
def test_each_kind_of_bad_file_is_fatal_under_strict_and_skipped_otherwise(tmp_path, photo, reason):
    root = write_tree(tmp_path / "imgs", _column(photo, "a", 3, 100, 100) | _column(photo, "b", 3, 100, 140)
                      | {"b/bad.png": BAD_FILES[reason]})
    strategy = write_strategy(tmp_path / "s.yaml", ZOO_STRATEGY.format(root=root, size=S))
    res = invoke("run", strategy, "--out", tmp_path / "strict", "--strict")
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith(f"augcli: error: {root / 'b/bad.png'}: {reason}: ")
    assert not (tmp_path / "strict").exists()
    res = invoke("run", strategy, "--out", tmp_path / "lenient", "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["skipped"]["files"][0]["id"] == "b/bad.png" and report["skipped"]["by_reason"] == {reason: 1}


def test_max_pixels_from_the_strategy_protects_memory(tmp_path, photo):
    """dataset.max_pixels: images above the limit are skipped as too_large before decoding."""
    root = write_tree(tmp_path / "sizes", {
        "a/small.png": square(photo, 0, 0, 20),  # 400 px
        "a/large.png": square(photo, 0, 0, 40),  # 1,600 px
        "a/small2.png": square(photo, 50, 50, 20),
    })
    text = ZOO_STRATEGY.format(root=root, size=20).replace("image_size: 20", "image_size: 20, max_pixels: 1000")
    strategy = write_strategy(tmp_path / "s.yaml", text)
    res = invoke("run", strategy, "--out", tmp_path / "out", "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [(f["id"], f["reason"]) for f in report["skipped"]["files"]] == [("a/large.png", "too_large")]
    assert "1600 pixels exceeds the limit of 1000" in report["skipped"]["files"][0]["detail"]
    res = invoke("validate", write_strategy(tmp_path / "bad.yaml", text.replace("1000", "0")))
    assert res.exit_code == 2 and "dataset.max_pixels" in res.stderr


def test_single_class_dataset_runs_end_to_end(tmp_path, photo):
    """One class: split, outliers and label-error checks, balancing and mixing still work."""
    root = write_tree(tmp_path / "one", _column(photo, "only", 12, 100, 150, step=20, name="{i:02d}.png"))
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
dataset: {{source: "{root}", image_size: {S}}}
clean: {{outliers: {{action: flag}}, label_errors: {{action: flag}}}}
split: {{val: 0.25}}
augment:
  copies: 2
  balance: {{target: max}}
  pipeline: [hflip, {{mixup: {{alpha: 0.4, p: 0.5}}}}]
""")
    res = invoke("run", strategy, "--out", tmp_path / "out", "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert list(report["counts"]["loaded"]) == ["only"] and report["output"]["total"] > 12
    assert "Traceback" not in res.output


def test_a_folder_of_only_bad_files_is_a_data_error(tmp_path):
    root = write_tree(tmp_path / "bad", {f"a/{reason}.png": data for reason, data in BAD_FILES.items()})
    strategy = write_strategy(tmp_path / "s.yaml", ZOO_STRATEGY.format(root=root, size=S))
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and "no readable images (4 skipped)" in res.stderr
    assert len(res.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cleaning_that_drops_every_sample_is_a_data_error(tmp_path):
    """A folder of blank images: nothing survives cleaning, so the run says so (exit 1, no output)."""
    root = write_tree(tmp_path / "blank", {f"a/{i}.png": np.full((8, 8, 3), 40 * i, np.uint8) for i in range(3)})
    strategy = write_strategy(tmp_path / "s.yaml", f'dataset: {{source: "{root}"}}\naugment: {{copies: 1}}\n')
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1 and "internal error" not in res.stderr
    assert "cleaning dropped every sample (3 found as blank)" in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cached", [True, False], ids=["source_cache", "decoded_again"])
def test_a_file_changed_during_the_run_is_a_data_error(tmp_path, photo, monkeypatch, cached):
    """A file truncated after the scan fails the run cleanly: seen by its stamp at the end of the run
    (source cache) or when the augmentation pass decodes it again (no cache)."""
    import augcli.datasets.source as source

    if not cached:
        monkeypatch.setattr(source, "_new_cache", lambda *args: None)
    root = write_tree(tmp_path / "imgs", _column(photo, "a", 4, 100, 150))
    real_scan = source.scan_folder

    def scan_then_truncate(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        (root / "a" / "2.png").write_bytes(broken_file("empty"))
        return result

    monkeypatch.setattr(source, "scan_folder", scan_then_truncate)
    strategy = write_strategy(tmp_path / "s.yaml", ZOO_STRATEGY.format(root=root, size=S))
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1
    if cached:
        assert "a/2.png: changed during the run: its size or modification time differs" in res.stderr
    else:
        assert "a/2.png: empty on the second read" in res.stderr and "modified during the run" in res.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".partial" in p.name]


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    """Even with --overwrite, a file named like the output is never replaced (option or strategy)."""
    target = tmp_path / "taken"
    target.write_text("precious")
    strategy = write_strategy(tmp_path / "s.yaml", f'dataset: {{source: digits, limit: 20}}\noutput: {{dir: "{target}"}}\n')
    res = invoke("run", strategy, "--overwrite")
    assert res.exit_code == 2 and res.stderr == f"augcli: error: {target}: exists and is not a folder\n"
    res = invoke("run", strategy, "--out", target, "--overwrite")
    assert res.exit_code == 2 and "is a file" in res.stderr
    assert target.read_text() == "precious"
