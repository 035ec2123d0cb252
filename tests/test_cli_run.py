"""`augcli run` end to end: outputs, counts, exit codes, atomicity, determinism."""

import json

import numpy as np
import pytest

from tests.helpers import fingerprint, invoke, write_strategy

STRATEGY = """\
version: 1
seed: 11
dataset:
  source: digits
augment:
  copies: 3
  pipeline:
    - hflip: {p: 0.5}
    - brightness: {limit: 0.2, p: 0.7}
output:
  format: npz
"""


@pytest.fixture
def strategy(tmp_path):
    return write_strategy(tmp_path / "s.yaml", STRATEGY)


def run(strategy, out, *extra):
    return invoke("run", strategy, "--out", out, "--limit", 120, *extra)


def test_run_writes_every_output(strategy, tmp_path):
    out = tmp_path / "out"
    res = run(strategy, out)
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"train.npz", "manifest.jsonl", "report.json", "report.md", "preview.png"} <= names
    data = np.load(out / "train.npz", allow_pickle=False)
    assert data["images"].shape == (120 * 4, 8, 8, 1) and data["images"].dtype == np.uint8
    assert list(data["copy_index"][:4]) == [0, 1, 2, 3]
    assert list(data["class_names"]) == [str(i) for i in range(10)]
    report = json.loads((out / "report.json").read_text())
    assert report["output"]["total"] == 480
    assert sum(report["counts"]["output"]["train"].values()) == 480
    assert report["transforms"]["augmented_samples"] == 360
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 480
    first_copy = json.loads(lines[1])
    assert first_copy["copy"] == 1 and first_copy["source"] == "0" and len(first_copy["sha256"]) == 64
    # originals are untouched copies of the source
    from sklearn.datasets import load_digits

    src = np.rint(load_digits().images[:120] * 255 / 16).astype(np.uint8)[..., None]
    assert np.array_equal(data["images"][data["copy_index"] == 0], src)
    assert not list(tmp_path.glob(".out.tmp-*")), "temporary folder left behind"


RICH = """\
seed: 5
dataset: {source: digits}
split: {val: 0.2}
augment:
  copies: 3
  balance: {target: max}
  rules:
    - classes: [6, 9]
      max_abs: {angle: 10}
  pipeline:
    - affine: {degrees: 15, translate: 0.1, p: 0.8}
    - one_of:
        - elastic: {alpha: 2, sigma: 1.2}
        - gaussian_noise: {}
        - random_erasing: {}
    - some_of:
        n: [0, 2]
        transforms: [contrast, gamma, gaussian_blur]
    - mixup: {p: 0.3}
"""


def test_same_seed_same_bytes_any_batch_size_and_workers(tmp_path):
    strategy = write_strategy(tmp_path / "rich.yaml", RICH)
    prints = []
    for i, (bs, workers) in enumerate([(1, 1), (7, 1), (64, 1), (256, 1), (7, 2)]):
        out = tmp_path / f"o{i}"
        res = run(strategy, out, "--batch-size", bs, "--workers", workers)
        assert res.exit_code == 0, res.output
        prints.append(fingerprint(out))
    assert all(p == prints[0] for p in prints[1:])
    other = tmp_path / "other-seed"
    assert run(strategy, other, "--seed", 12).exit_code == 0
    changed = fingerprint(other)
    assert changed["train.npz"] != prints[0]["train.npz"]


def test_existing_output_needs_overwrite(strategy, tmp_path):
    out = tmp_path / "out"
    assert run(strategy, out).exit_code == 0
    before = fingerprint(out)
    res = run(strategy, out, "--seed", 5)
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert fingerprint(out) == before
    res = run(strategy, out, "--seed", 5, "--overwrite")
    assert res.exit_code == 0 and fingerprint(out) != before


def test_dry_run_writes_nothing(strategy, tmp_path):
    out = tmp_path / "out"
    res = run(strategy, out, "--dry-run")
    assert res.exit_code == 0 and "would write 480 samples" in res.output
    assert not out.exists()


def test_dry_run_says_what_the_real_run_would_refuse(strategy, tmp_path):
    """An existing output: the dry run shows its plan, then fails as the real run would (exit 2)."""
    out = tmp_path / "out"
    assert run(strategy, out).exit_code == 0
    before = fingerprint(out)
    res = run(strategy, out, "--dry-run")
    assert res.exit_code == 2 and "would write 480 samples" in res.stdout
    assert res.stderr == f"augcli: error: {out}: output already exists; pass --overwrite to replace it (the real run would stop here)\n"
    res = run(strategy, out, "--dry-run", "--overwrite")
    assert res.exit_code == 0 and res.stderr == "" and fingerprint(out) == before
    report = json.loads(run(strategy, out, "--dry-run", "--overwrite", "--json").stdout)
    assert report["plan"]["output_problem"] is None
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's own")
    res = run(strategy, tmp_path / "mine", "--dry-run", "--overwrite")
    assert res.exit_code == 2 and "was not made by augcli" in res.stderr


def test_json_prints_the_report(strategy, tmp_path):
    res = run(strategy, tmp_path / "out", "--json")
    assert res.exit_code == 0
    report = json.loads(res.output)
    assert report["strategy"]["seed"] == 11 and report["output"]["total"] == 480


@pytest.mark.parametrize("edit, line", [
    (("hflip: {p: 0.5}", "hflp: {p: 0.5}"), 8),
    (("limit: 0.2", "limit: 3"), 9),
    (("copies: 3", "copies: lots"), 6),
])
def test_bad_strategy_exits_2_with_one_line_and_writes_nothing(tmp_path, edit, line):
    bad = write_strategy(tmp_path / "bad.yaml", STRATEGY.replace(*edit))
    out = tmp_path / "out"
    res = run(bad, out)
    assert res.exit_code == 2
    err = res.output.strip()
    assert err.startswith(f"augcli: error: {bad}:{line}: ") and "\n" not in err
    assert "Traceback" not in res.output
    assert not out.exists()


def test_png_tree(strategy, tmp_path):
    out = tmp_path / "png"
    res = invoke("run", strategy, "--out", out, "--limit", 20, "--format", "png", "--set", "augment.copies=1")
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png") if p.name != "preview.png")
    assert len(files) == 40
    assert "train/0/0__0.png" in files and "train/0/0__1.png" in files
    from PIL import Image

    assert np.asarray(Image.open(out / "train/0/0__1.png")).shape == (8, 8)


def test_split_augments_train_only(strategy, tmp_path):
    out = tmp_path / "out"
    res = run(strategy, out, "--set", "split.val=0.25")
    assert res.exit_code == 0, res.output
    train = np.load(out / "train.npz")
    val = np.load(out / "val.npz")
    assert set(val["copy_index"]) == {0}
    n_val = len(val["ids"])
    assert abs(n_val - 30) <= 3 and len(train["ids"]) == (120 - n_val) * 4  # per-class rounding
    assert not set(val["ids"]) & set(train["ids"])


def test_input_override_and_missing_source(strategy, tmp_path):
    res = run(strategy, tmp_path / "o", "--input", tmp_path / "missing")
    assert res.exit_code == 1 and "missing" in res.output and "Traceback" not in res.output


def test_digits_config_gives_1797_times_6(tmp_path):
    """Acceptance: configs/digits.yaml (copies: 5, no split) -> 1797 x 6 samples, counts agree."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "digits.yaml"
    out = tmp_path / "digits"
    res = invoke("run", config, "--out", out)
    assert res.exit_code == 0, res.output
    data = np.load(out / "train.npz")
    assert len(data["labels"]) == 1797 * 6
    report = json.loads((out / "report.json").read_text())
    assert report["output"]["total"] == 1797 * 6
    assert sum(report["counts"]["output"]["train"].values()) == 1797 * 6
    assert report["counts"]["output"]["train"] == {
        str(k): int(v) * 6 for k, v in enumerate(np.bincount(data["labels"][data["copy_index"] == 0]))
    }


def test_input_runs_the_strategy_on_an_earlier_output(strategy, tmp_path):
    first = tmp_path / "first"
    assert run(strategy, first).exit_code == 0
    second = tmp_path / "second"
    res = invoke("run", strategy, "--input", first / "train.npz", "--out", second, "--set", "augment.copies=1")
    assert res.exit_code == 0, res.output
    data = np.load(second / "train.npz")
    report = json.loads((second / "report.json").read_text())
    # copies where no transform fired equal their original: exact-duplicate cleaning drops them
    kept = 480 - report["clean"]["removed"]
    assert report["clean"]["removed"] > 0 and len(data["labels"]) == kept * 2
    assert len(set(data["ids"])) == kept, "copy ids are made unique (id#k)"
    assert json.loads((second / "report.json").read_text())["dataset"]["source"].endswith("train.npz")


def test_python_api_matches_the_cli(strategy, tmp_path):
    """The Pipeline a training loop uses gives the same copy-k images as `augcli run`."""
    from augcli import Pipeline

    out = tmp_path / "out"
    assert run(strategy, out).exit_code == 0
    data = np.load(out / "train.npz")
    pipe = Pipeline.from_strategy(strategy)
    originals = data["images"][data["copy_index"] == 0]
    ids = data["ids"][data["copy_index"] == 0]
    again = pipe(originals, ids=list(ids), copy=2)
    assert np.array_equal(again, data["images"][data["copy_index"] == 2])


def test_one_class_and_an_empty_pipeline_are_warned_about(tmp_path, digits_images):
    """Strategies that run but cannot be what was meant say so on stderr and in report.md."""
    from PIL import Image

    images = digits_images[0]
    for i in range(6):
        (tmp_path / "imgs" / "only").mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i, ..., 0]).save(tmp_path / "imgs" / "only" / f"{i}.png")
    one = write_strategy(tmp_path / "one.yaml", f"dataset: {{source: '{tmp_path / 'imgs'}'}}\n"
                                                  "augment: {copies: 1, pipeline: [hflip]}\n")
    res = invoke("run", one, "--out", tmp_path / "one")
    assert res.exit_code == 0 and "(1 class)" in res.stdout, res.output
    assert "warning: the dataset has one class ('only'): a classifier needs two or more" in res.stderr
    assert "one class ('only')" in (tmp_path / "one" / "report.md").read_text()
    empty = write_strategy(tmp_path / "empty.yaml", "dataset: {source: digits, limit: 50}\n"
                                                    "augment: {copies: 2, pipeline: []}\n")
    res = invoke("run", empty, "--out", tmp_path / "empty")
    assert res.exit_code == 0
    assert res.stderr.count("warning:") == 1  # not also the identical-copies note, whose hint does not apply
    assert "augment.pipeline is empty, so the 100 augmented copies are their originals again" in res.stderr
    assert "augment.pipeline is empty" in (tmp_path / "empty" / "report.md").read_text()
    res = invoke("run", write_strategy(tmp_path / "ok.yaml", "dataset: {source: digits, limit: 50}\n"
                                                            "augment: {copies: 1, pipeline: [{hflip: {p: 1}}]}\n"),
                 "--out", tmp_path / "ok")
    assert res.exit_code == 0 and "warning" not in res.stderr
