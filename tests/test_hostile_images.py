"""The image zoo (issue #8): every odd or hostile file is loaded correctly or skipped with a reason,
`augcli run` completes end to end, and --strict fails with exit 1 writing nothing.

The zoo is generated here (no binaries in the repository) from scikit-learn's sample photograph.
"""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from augcli.datasets import load_folder
from tests.helpers import fingerprint, invoke, write_strategy

S = 24  # side of the ordinary zoo images; the dataset is loaded at S x S


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height pixels followed by a tiny IDAT: a few hundred bytes
    that would need width * height * 3 bytes of memory if decoded."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\0" * 256)
    chunk = lambda body: struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(ihdr) + chunk(idat) + chunk(b"IEND")


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

    add("cat/plain.png", _png(crops[0]), ("loaded", crops[0], 0))
    add("cat/zero.png", b"", ("skipped", "empty"))
    add("cat/cut.png", _png(crops[1])[:200], ("skipped", "truncated"))
    add("cat/cut.jpg", _jpeg(Image.fromarray(crops[2]))[:400], ("skipped", "truncated"))
    add("cat/words.jpg", b"these are words, not pixels\n" * 30, ("skipped", "undecodable"))
    add("cat/words.gif", b"GIF89a but then nothing sensible", ("skipped", "undecodable"))
    add("cat/jpeg inside.png", _jpeg(Image.fromarray(crops[3])), ("warned", "wrong_extension"))
    grey = crops[4][..., 1]
    add("cat/grey16.png", _png(grey.astype(np.uint16) * 257), ("loaded", np.repeat(grey[..., None], 3, -1), 0))
    pal = Image.fromarray(crops[5]).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    index = np.asarray(pal)
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=int(index[0, 0]))
    on_black = np.where((index == index[0, 0])[..., None], 0, np.asarray(pal.convert("RGB")))
    add("cat/palette_transparent.png", buf.getvalue(), ("loaded", on_black.astype(np.uint8), 0))
    alpha = np.tile(np.linspace(0, 255, S).round().astype(np.uint8), (S, 1))
    rgba = np.dstack([crops[6], alpha])
    add("cat/rgba.png", _png(rgba), ("loaded", np.rint(crops[6] * (alpha[..., None] / 255.0)).astype(np.uint8), 0))
    add("cat/cmyk.jpg", _jpeg(Image.fromarray(crops[7]).convert("CMYK")), ("loaded", crops[7], 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 12 wide x 24 high; shown rotated 90 degrees clockwise
    stored = _two_tone(S, S // 2)
    shown = np.asarray(Image.fromarray(np.rot90(stored, k=-1).copy()).resize((S, S), Image.Resampling.BILINEAR))
    add("cat/exif_rotated.jpg", _jpeg(Image.fromarray(stored), exif=exif.tobytes()), ("loaded", shown, 8))
    frames = [Image.fromarray(crops[8 + i]) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    first = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    add("dog/animated.gif", buf.getvalue(), ("loaded", first, 0))
    add("dog/one_pixel.png", _png(np.array([[[200, 100, 50]]], np.uint8)),
        ("loaded", np.broadcast_to(np.array([200, 100, 50], np.uint8), (S, S, 3)), 0))
    strip = np.repeat(np.linspace(0, 255, 600).astype(np.uint8)[None, :, None], 3, axis=-1)
    resized = np.asarray(Image.fromarray(strip).resize((S, S), Image.Resampling.BILINEAR))
    add("dog/wide_1x600.png", _png(strip), ("loaded", resized, 0))
    tall = strip.transpose(1, 0, 2).copy()
    add("dog/tall_600x1.png", _png(tall), ("loaded", np.asarray(Image.fromarray(tall).resize((S, S), Image.Resampling.BILINEAR)), 0))
    add("dog/ünïcødé 猫 ☃.png", _png(crops[11]), ("loaded", crops[11], 0))
    add("dog/with  spaces .png", _png(crops[12]), ("loaded", crops[12], 0))
    add("dog/nested/deeper/inner.png", _png(crops[13]), ("loaded", crops[13], 0))
    add("dog/.hidden.png", _png(crops[14]), ("ignored",))
    add("dog/.hidden_dir/x.png", _png(crops[15]), ("ignored",))
    add("dog/notes.txt", b"not an image", ("ignored",))
    add("dog/labels.csv", b"a,b\n1,2\n", ("ignored",))
    add("dog/bomb.png", bomb_png(50_000, 50_000), ("skipped", "too_large"))
    add("dog/moderate_bomb.png", bomb_png(12_000, 12_000), ("skipped", "too_large"))  # below Pillow's own error
    add("README.md", b"files beside the class folders are not classes", ("ignored",))
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty_class").mkdir()
    (root / ".hidden_class").mkdir()
    (root / ".hidden_class" / "x.png").write_bytes(_png(crops[16]))
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


BAD_FILES = {
    "empty": b"",
    "truncated": _png(np.full((S, S, 3), 9, np.uint8) + np.arange(S, dtype=np.uint8)[:, None, None])[:60],
    "undecodable": b"plain text with an image extension",
    "too_large": bomb_png(30_000, 30_000),
}


@pytest.mark.parametrize("reason", sorted(BAD_FILES))
def test_each_kind_of_bad_file_is_fatal_under_strict_and_skipped_otherwise(tmp_path, photo, reason):
    root = tmp_path / "imgs"
    for k, cls in enumerate(["a", "b"]):
        for i in range(3):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo[100 + 30 * i: 100 + 30 * i + S, 100 + 40 * k: 100 + 40 * k + S]).save(root / cls / f"{i}.png")
    (root / "b" / "bad.png").write_bytes(BAD_FILES[reason])
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
    root = tmp_path / "sizes"
    (root / "a").mkdir(parents=True)
    Image.fromarray(photo[:20, :20]).save(root / "a/small.png")      # 400 px
    Image.fromarray(photo[:40, :40]).save(root / "a/large.png")      # 1,600 px
    Image.fromarray(photo[50:70, 50:70]).save(root / "a/small2.png")
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
    root = tmp_path / "one"
    (root / "only").mkdir(parents=True)
    for i in range(12):
        Image.fromarray(photo[100 + 20 * i: 100 + 20 * i + S, 150: 150 + S]).save(root / "only" / f"{i:02d}.png")
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
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    for reason, data in BAD_FILES.items():
        (root / "a" / f"{reason}.png").write_bytes(data)
    strategy = write_strategy(tmp_path / "s.yaml", ZOO_STRATEGY.format(root=root, size=S))
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and "no readable images (4 skipped)" in res.stderr
    assert len(res.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cleaning_that_drops_every_sample_is_a_data_error(tmp_path):
    """A folder of blank images: nothing survives cleaning, so the run says so (exit 1, no output)."""
    root = tmp_path / "blank"
    (root / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / "a" / f"{i}.png")
    strategy = write_strategy(tmp_path / "s.yaml", f'dataset: {{source: "{root}"}}\naugment: {{copies: 1}}\n')
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1 and "internal error" not in res.stderr
    assert "cleaning dropped every sample (3 found as blank)" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_changed_during_the_run_is_a_data_error(tmp_path, photo, monkeypatch):
    """Folders are decoded twice (scan, then augment): a file truncated in between fails cleanly."""
    import augcli.datasets.source as source

    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(photo[100 + 30 * i: 100 + 30 * i + S, 150: 150 + S]).save(root / "a" / f"{i}.png")
    real_scan = source.scan_folder

    def scan_then_truncate(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        (root / "a" / "2.png").write_bytes(b"")
        return result

    monkeypatch.setattr(source, "scan_folder", scan_then_truncate)
    strategy = write_strategy(tmp_path / "s.yaml", ZOO_STRATEGY.format(root=root, size=S))
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1
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
