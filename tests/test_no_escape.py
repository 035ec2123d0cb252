"""No escape (issue #8): crafted names never make augcli write outside --out or forge a record;
symbolic links leading out of the input root are not followed unless asked; .npz files are read
with pickling disabled."""

import csv
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augcli.datasets import load_folder
from augcli.io.encoders import safe_name, unique_names
from tests.helpers import broken_file, invoke, png_bytes, square, write_strategy, write_tree

# Ids and class names an attacker (or an unlucky dataset) might carry.
CRAFTED_IDS = [
    "../../escape", "/tmp/absolute", "a/../../b", "..", ".", "", "\\..\\windows", "x\ny", 'q"uote', "comma,here",
    "=cmd|' /C calc'!A0", "+1+2", "-3", "@SUM(A1)", "\x00nul", "名前", "a" * 300, "x.png", "x.jpg", "X.png",
    "sub/y.png", "sub_y.png", '{"file":"forged"}', "tab\there", "\u202eexe.png", "~tilde",
]
CRAFTED_CLASSES = ["../../up", "/etc", "..", "a\\b", "c\nd", "=HYPERLINK(\"x\")", "名", "A", "a"]


def _outside_snapshot(tmp_path: Path, out: Path) -> set:
    """Every path below ``tmp_path`` that is not inside ``out`` (what a run must not touch)."""
    return {p for p in tmp_path.rglob("*") if not p.resolve().is_relative_to(out.resolve())}


def _crafted_npz(path: Path) -> int:
    n = len(CRAFTED_IDS)
    k = len(CRAFTED_CLASSES)
    images = ((np.arange(n * 6 * 6 * 3).reshape(n, 6, 6, 3) * 7) % 251).astype(np.uint8)
    np.savez(path, images=images, labels=np.arange(n) % k, ids=np.array(CRAFTED_IDS),
             class_names=np.array(CRAFTED_CLASSES))
    return n


NPZ_STRATEGY = """\
dataset: {{source: "{source}"}}
clean: {{exact_duplicates: "off", blank: {{action: "off"}}, near_duplicates: {{action: flag}}, leakage: {{action: "off"}}}}
augment: {{copies: 1, pipeline: [hflip]}}
"""


@pytest.mark.parametrize("fmt", ["png", "tar"])
def test_crafted_ids_and_class_names_stay_inside_out(tmp_path, fmt):
    n = _crafted_npz(tmp_path / "crafted.npz")
    strategy = write_strategy(tmp_path / "s.yaml", NPZ_STRATEGY.format(source=tmp_path / "crafted.npz"))
    out = tmp_path / "deep" / "out"
    before = _outside_snapshot(tmp_path, out)
    res = invoke("run", strategy, "--out", out, "--format", fmt, "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert _outside_snapshot(tmp_path, out) - before <= {tmp_path / "deep", tmp_path / "deep" / ".out.lock"}
    assert not Path("/tmp/absolute").exists() and not (tmp_path.parent / "escape").exists()
    for p in out.rglob("*"):
        assert p.resolve().is_relative_to(out.resolve()) and not p.is_symlink(), p
    # the "a\x00..." id loses numpy's trailing-NUL padding only, so every id is distinct
    loaded = n - report["skipped"]["count"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert len(manifest) == 2 * loaded
    if fmt == "png":  # one file per record: crafted names neither escape nor collide
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png") if p.parent != out)
        assert files == sorted(m["file"] for m in manifest)
        assert all(".." not in part.split("/") for part in files)
    else:
        with tarfile.open(out / "train.tar") as tar:
            names = tar.getnames()
            metas = [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]
        assert all("/" not in name and not name.startswith(".") for name in names)
        assert sorted(m["source"] for m in metas) == sorted(m["source"] for m in manifest)
    assert {m["source"] for m in manifest} <= set(CRAFTED_IDS) | {i.rstrip("\x00") for i in CRAFTED_IDS}
    assert {m["class"] for m in manifest} <= set(CRAFTED_CLASSES)


def _folder_name_zoo(root: Path, photo) -> dict:
    """Class folders and files with names that try to break JSON lines and CSV rows."""
    classes = ['=cmd,"x"\ninjected', "-flag", "plain"]
    names = ['evil\n{"file":"forged.png"}.png', 'a,b".png', "=1+1.png", "+SUM(A1).png", "@x.png", "-2.png", "ok.png"]
    images = {f"{cls}/{name}": square(photo, 40 + 25 * i, 60 + 80 * c, 16)
              for c, cls in enumerate(classes) for i, name in enumerate(names)}
    ids = {f"{cls}/{name}": cls for cls in classes for name in names}
    empties = {f"{cls}/=empty,\n.png": broken_file("empty") for cls in classes}  # findings with crafted names
    # an exact copy under a crafted name: a duplicate finding whose partner is crafted too
    ids['plain/"dup",=HYPERLINK().png'] = "plain"
    write_tree(root, images | empties | {'plain/"dup",=HYPERLINK().png': png_bytes(images["plain/ok.png"])})
    return ids


def test_crafted_folder_names_cannot_forge_manifest_or_csv_records(tmp_path, photo):
    root = tmp_path / "crafted"
    ids = _folder_name_zoo(root, photo)
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
dataset: {{source: "{root}", image_size: 16}}
clean: {{exact_duplicates: flag, blank: {{action: "off"}}, noise: {{action: "off"}}, near_duplicates: {{action: "off"}},
        leakage: {{action: "off"}}}}
augment: {{copies: 1, pipeline: [hflip]}}
output: {{format: png}}
""")
    out = tmp_path / "out"
    res = invoke("run", strategy, "--out", out)
    assert res.exit_code == 0, res.output
    # manifest.jsonl: exactly one record per line, names round-trip exactly
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 2 * len(ids)
    records = [json.loads(line) for line in lines[:-1]]
    assert sorted(r["source"] for r in records) == sorted(list(ids) * 2)  # copies 0 and 1 of each
    assert all(r["class"] == ids[r["source"]] for r in records)
    assert not any(r.get("file") == "forged.png" for r in records)
    # quarantine.csv: one row per finding (3 empty files + 1 duplicate), cells parse back
    with open(out / "quarantine.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    empties = sorted(r["id"] for r in rows if r["reason"] == "empty")
    expected = sorted(f"'{c}/=empty,\n.png" if c[0] in "=+-@" else f"{c}/=empty,\n.png"
                      for c in ('=cmd,"x"\ninjected', "-flag", "plain"))
    assert empties == expected
    dup = [r for r in rows if r["reason"] == "exact_duplicate"]
    assert len(dup) == 1 and {dup[0]["id"], dup[0]["duplicate_of"]} == {'plain/"dup",=HYPERLINK().png', "plain/ok.png"}
    # no cell may start a formula (numbers such as a negative score are fine)
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@") and not _number(cell)]
    for p in out.rglob("*"):
        assert p.resolve().is_relative_to(out.resolve())


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_safe_names_are_single_components_and_one_to_one():
    names = ["..", ".", "", "/", "a/b", "a\\b", "\x00", "..\\..", "名前", "a" * 400, "é" * 200, "~x", "CON"]
    for name in names:
        safe = safe_name(name)
        assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe and safe not in (".", "..")
        assert not safe.startswith(".") and len(safe.encode("utf-8")) <= 120 and "~" not in safe
    unique = unique_names(names)
    assert len(set(u.casefold() for u in unique)) == len(names)
    stems = unique_names(["x", "x", "X"], keys=["c/x.png", "c/x.jpg", "c/X.png"])
    assert len(set(s.casefold() for s in stems)) == 3 and all("~" in s for s in stems)
    assert unique_names(["ok", "fine"]) == ["ok", "fine"]  # names that do not clash are left alone


# --------------------------------------------------------------------- symbolic links

@pytest.fixture
def linked_tree(tmp_path, photo):
    """root/cat with a real image, a link inside the root, a link out of it, a link loop and a linked
    sub-folder; root/dog is a class folder that is itself a link out of the root."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "cat").mkdir(parents=True)
    (outside / "dogs").mkdir(parents=True)
    Image.fromarray(photo[200:216, 150:166]).save(root / "cat" / "real.png")  # textured: not blank
    Image.fromarray(photo[250:266, 300:316]).save(outside / "secret.png")
    Image.fromarray(photo[300:316, 200:216]).save(outside / "dogs" / "d.png")
    os.symlink(root / "cat" / "real.png", root / "cat" / "inside_link.png")
    os.symlink("../cat/real.png", root / "cat" / "relative_inside.png")
    os.symlink(outside / "secret.png", root / "cat" / "outside_abs.png")
    os.symlink("../../outside/secret.png", root / "cat" / "outside_rel.png")
    os.symlink(outside / "dogs", root / "cat" / "linked_subfolder")  # folders below a class are never followed
    os.symlink("loop_b.png", root / "cat" / "loop_a.png")
    os.symlink("loop_a.png", root / "cat" / "loop_b.png")
    os.symlink(outside / "dogs", root / "dog")
    return root


def test_links_out_of_the_root_are_skipped_unless_asked(linked_tree, photo):
    d = load_folder(linked_tree, image_size=16)
    assert d.class_names == ["cat", "dog"]  # the linked class keeps its label, with no samples
    assert list(d.ids) == ["cat/inside_link.png", "cat/real.png", "cat/relative_inside.png"]
    reasons = {s.id: s.reason for s in d.skipped}
    assert reasons == {"cat/outside_abs.png": "outside_root", "cat/outside_rel.png": "outside_root",
                       "dog/": "outside_root", "cat/loop_a.png": "unreadable", "cat/loop_b.png": "unreadable"}
    assert not any((d.images == photo[250:266, 300:316]).all(axis=(1, 2, 3)))  # the secret was not read
    followed = load_folder(linked_tree, image_size=16, follow_symlinks=True)
    assert {"cat/outside_abs.png", "cat/outside_rel.png", "dog/d.png"} <= set(followed.ids)
    assert "cat/linked_subfolder/d.png" not in set(followed.ids)


def test_links_out_of_the_root_through_the_cli(tmp_path, linked_tree):
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
dataset: {{source: "{linked_tree}", image_size: 16}}
clean: {{exact_duplicates: "off"}}
augment: {{copies: 1, pipeline: [hflip]}}
""")
    res = invoke("run", strategy, "--out", tmp_path / "out", "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["skipped"]["by_reason"] == {"outside_root": 3, "unreadable": 2}
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text()
    assert "outside" not in manifest and "dog/d.png" not in manifest
    res = invoke("run", strategy, "--out", tmp_path / "strict", "--strict")
    assert res.exit_code == 1 and "outside_root" in res.stderr and len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "strict").exists()


# --------------------------------------------------------------------- npz without pickles

class _Payload:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("key", ["images", "labels", "ids", "class_names"])
def test_npz_object_arrays_are_refused_without_unpickling(tmp_path, key):
    marker = tmp_path / f"pwned-{key}"
    arrays = {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1]),
              "ids": np.array(["a", "b"]), "class_names": np.array(["x", "y"])}
    arrays[key] = np.array([_Payload(marker), _Payload(marker)], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    strategy = write_strategy(tmp_path / "s.yaml", f'dataset: {{source: "{tmp_path / "evil.npz"}"}}\n')
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert f"key '{key}' cannot be read without pickle" in res.stderr and len(res.stderr.splitlines()) == 1
    assert not marker.exists(), "a pickle was executed"
    assert not (tmp_path / "out").exists()


def test_npz_repeated_ids_keep_the_first_sample(tmp_path):
    """An id is a sample's identity (random stream, file name, manifest record): repeats are skipped."""
    images = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30, 40)])
    np.savez(tmp_path / "rep.npz", images=images, labels=np.array([0, 1, 0, 1]), ids=np.array(["a", "b", "a", "c"]))
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
dataset: {{source: "{tmp_path / 'rep.npz'}"}}
clean: {{blank: {{action: "off"}}}}
augment: {{copies: 1, pipeline: [hflip]}}
output: {{format: png}}
""")
    res = invoke("run", strategy, "--out", tmp_path / "out", "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [(f["id"], f["reason"]) for f in report["skipped"]["files"]] == [("a", "duplicate_id")]
    a0 = np.asarray(Image.open(io.BytesIO((tmp_path / "out/train/0/a__0.png").read_bytes())))
    assert (a0 == 10).all()  # the first "a", not the later one
    assert len(list((tmp_path / "out/train").rglob("*.png"))) == 6
