"""`augcli run` on an image folder with broken files: skipped, counted, reported; --strict fails."""

import json

import numpy as np
import pytest

from tests.helpers import broken_file, fingerprint, invoke, square, write_strategy, write_tree


@pytest.fixture
def folder(tmp_path, photo):
    images = {f"{name}/{name}{i}.png": square(photo, 200 + 30 * i, 150 + 60 * c, 48)  # textured, not sky
              for c, name in enumerate(["cat", "dog"]) for i in range(6)}
    return write_tree(tmp_path / "imgs", images | {
        "cat/empty.png": broken_file("empty"),
        "dog/cut.png": broken_file("truncated", images["dog/dog0.png"]),
    })


def strategy(tmp_path, root):
    return write_strategy(tmp_path / "s.yaml", f"""\
dataset:
  source: {root}
  image_size: 32
augment:
  copies: 2
  pipeline:
    - hflip
    - brightness: {{limit: 0.1}}
""")


def test_corrupt_files_are_skipped_and_reported(tmp_path, folder):
    before = fingerprint(folder)
    out = tmp_path / "out"
    res = invoke("run", strategy(tmp_path, folder), "--out", out)
    assert res.exit_code == 0, res.output
    assert "skipped 2 unreadable file(s)" in res.output
    report = json.loads((out / "report.json").read_text())
    skipped = {f["id"]: f["reason"] for f in report["skipped"]["files"]}
    assert set(skipped) == {"cat/empty.png", "dog/cut.png"}
    assert skipped["cat/empty.png"] == "empty"
    assert report["output"]["total"] == 12 * 3
    md = (out / "report.md").read_text()
    assert "`cat/empty.png`" in md and "`dog/cut.png`" in md
    data = np.load(out / "train.npz")
    assert data["images"].shape == (36, 32, 32, 3)
    assert fingerprint(folder) == before, "input folder was modified"


def test_strict_fails_with_exit_1_and_writes_nothing(tmp_path, folder):
    out = tmp_path / "out"
    res = invoke("run", strategy(tmp_path, folder), "--out", out, "--strict")
    assert res.exit_code == 1
    assert "empty.png" in res.output and "Traceback" not in res.output
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))
