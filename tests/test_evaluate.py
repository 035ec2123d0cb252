"""`augcli evaluate`: split discipline, statistics, the quality gate, online mode, determinism."""

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from augcli.engine import stages
from augcli.clean.exact import duplicates_of
from augcli.datasets.base import Dataset
from augcli.errors import GateError
from augcli.evaluation.api import Settings
from augcli.evaluation import stats
from augcli.evaluation import models as M
from augcli.evaluation import protocol as P
from augcli.evaluation.report import check_gate, gate_failures
from augcli.evaluation.summary import aggregate
from augcli.config.strategy import strategy_from_text
from tests.helpers import invoke, write_strategy

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
version: 1
seed: 3
dataset: {source: digits}
augment:
  copies: 2
  pipeline:
    - affine: {degrees: 6, shear: 6, scale: 0.05, p: 0.8}
"""

FLIP = """\
version: 1
seed: 5
dataset: {source: digits}
augment:
  copies: 1
  pipeline:
    - hflip: {p: 1.0}
"""


def _context(text: str, dataset: Dataset, **settings) -> P.Context:
    st = strategy_from_text(text, "s.yaml")
    aug = st.section("augment")
    pipe = stages.build_pipeline(st, dataset.class_names)
    return P.Context(dataset, pipe, partial(stages.train_copies, aug), aug["keep_originals"], st.seed,
                     Settings(**settings))


def _planted(digits_images) -> Dataset:
    """200 digits where 150..199 repeat the pixels of 0..49 and 100..149 are mirror images of 0..49."""
    images, target = digits_images
    imgs = images[:200].copy()
    imgs[150:200] = imgs[0:50]
    imgs[100:150] = imgs[0:50, :, ::-1]
    labels = target[:200].astype(np.int64)
    labels[150:200] = labels[0:50]
    return Dataset(imgs, labels, np.array([f"s{i}" for i in range(200)]), [str(k) for k in range(10)])


def _rows(images):
    return {bytes(row) for row in images.reshape(images.shape[0], -1)}


def test_split_discipline_no_test_image_or_augmented_sample_leaks(digits_images):
    dataset = _planted(digits_images)
    ctx = _context(TINY, dataset)
    by_id = {i: k for k, i in enumerate(dataset.ids)}
    leaked = 0
    for repeat in range(3):
        data = P.prepare(ctx, 0.3, repeat)
        train, test, aug = data.train, data.test, data.augmented
        assert not set(train.ids) & set(test.ids)
        # the test split is the untouched originals
        assert np.array_equal(test.images, dataset.images[[by_id[i] for i in test.ids]])
        # no training image, original or augmented, equals a test image
        test_rows = _rows(test.images)
        assert not _rows(train.images) & test_rows
        assert not _rows(aug.images) & test_rows
        # the augmented arm is built from the same training split only
        assert set(aug.ids) == set(train.ids)
        assert np.array_equal(aug.images[aug.copy_index == 0], train.images)
        assert (aug.images[aug.copy_index > 0] != np.repeat(train.images, 2, axis=0)).any()
        leaked += data.leaked
    assert leaked > 0, "the planted duplicates never straddled the split: the check was not exercised"


def test_augmented_copies_equal_to_a_test_image_are_dropped(digits_images):
    # hflip with p=1 turns sample i (0..49) into sample 100 + i: those copies must not train
    dataset = _planted(digits_images)
    ctx = _context(FLIP, dataset)
    dropped = 0
    for repeat in range(3):
        data = P.prepare(ctx, 0.3, repeat)
        assert not _rows(data.augmented.images) & _rows(data.test.images)
        dropped += data.leaked_augmented
    assert dropped > 0


def test_duplicates_of_matches_a_pairwise_check(digits_images):
    images = digits_images[0][:60]
    reference = np.concatenate([images[10:20], images[40:45]])
    mask = duplicates_of(images, reference)
    expected = [any(np.array_equal(a, b) for b in reference) for a in images]
    assert mask.tolist() == expected and mask.sum() >= 15


def test_split_is_stratified_nested_and_seeded(digits_images):
    dataset = _planted(digits_images)
    small, _ = P.split_for(dataset, 0.1, 7)
    large, test = P.split_for(dataset, 0.4, 7)
    assert set(small) <= set(large) and not set(large) & set(test)
    assert np.array_equal(P.split_for(dataset, 0.4, 7)[0], large)
    assert not np.array_equal(P.split_for(dataset, 0.4, 8)[0], large)
    counts = np.bincount(dataset.labels[large], minlength=10)
    assert np.all(np.abs(counts - 0.4 * np.bincount(dataset.labels, minlength=10)) <= 1)


def test_paired_statistics_on_a_known_difference():
    base = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    diff = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = stats.paired(base + diff, base)
    # mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776445 -> half-width 1.963243; t = 4.2426, p = 0.013236
    assert out["mean"] == pytest.approx(3.0)
    assert out["ci"] == pytest.approx([1.036757, 4.963243], abs=1e-6)
    assert out["p_value"] == pytest.approx(0.0132356, abs=1e-6)
    assert (out["wins"], out["losses"], out["ties"], out["n"]) == (5, 0, 0, 5)
    assert stats.above(out, 0.0) and not stats.below(out, 0.0) and stats.below(out, 5.0)


def test_paired_statistics_edge_cases():
    a = np.array([0.5, 0.6, 0.7])
    same = stats.paired(a, a)
    assert same["p_value"] == 1.0 and same["ci"] == [0.0, 0.0] and same["ties"] == 3
    shifted = stats.paired(a + 0.25, a)
    assert shifted["ci"] == pytest.approx([0.25, 0.25]) and shifted["p_value"] == 0.0
    mixed = stats.paired([0.9, 0.7, 0.8, 0.6], [0.8, 0.8, 0.7, 0.7])
    assert mixed["mean"] == pytest.approx(0.0) and mixed["ci"][0] < 0 < mixed["ci"][1]
    assert (mixed["wins"], mixed["losses"]) == (2, 2)
    one = stats.mean_ci([0.9])
    assert one["mean"] == 0.9 and math.isnan(one["ci"][0]) and not stats.below({"ci": one["ci"]}, 0.0)


def _fake_results(model: str, shift: float, repeats: int = 4) -> list[dict]:
    out = []
    for r in range(repeats):
        base = 0.80 + 0.01 * r
        wiggle = 0.002 * (r % 2)  # a small, known spread of the difference
        arms = {"original": {"accuracy": base, "macro_f1": base, "per_class": [base, base]},
                "augmented": {"accuracy": base + shift + wiggle, "macro_f1": base + shift,
                              "per_class": [base + 2 * shift, base]}}
        out.append({"model": model, "fraction": 0.1, "repeat": r, "n_train": 10, "n_test": 90, "n_augmented": 30,
                    "leak_removed": 0, "leak_removed_augmented": 0, "label_errors_removed": 0, "arms": arms})
    return out


def test_gate_names_the_worse_model_and_respects_min_gain():
    settings = Settings(models=("worse", "better"), fractions=(0.1,), repeats=4)
    results = _fake_results("worse", -0.05) + _fake_results("better", 0.03)
    rows = aggregate(results, settings)
    assert rows[0]["comparisons"][0]["verdict"] == "worse" and rows[1]["comparisons"][0]["verdict"] == "better"
    assert rows[1]["comparisons"][0]["per_class_change"] == pytest.approx([0.06, 0.0])
    report = {"strategy": {"path": "s.yaml"}, "results": rows, "gate": {"enabled": True, "min_gain": 0.0}}
    report["gate"]["failures"] = gate_failures(report)
    with pytest.raises(GateError, match="worse at 10%") as err:
        check_gate(report)
    assert "better" not in str(err.value)
    # a gain of about 3 points is surely below a required 4
    strict = {"strategy": {"path": "s.yaml"}, "results": aggregate(results, settings, min_gain=0.04),
              "gate": {"enabled": True, "min_gain": 0.04}}
    strict["gate"]["failures"] = gate_failures(strict)
    assert {f["model"] for f in strict["gate"]["failures"]} == {"worse", "better"}
    report["gate"]["enabled"] = False
    check_gate(report)  # report-only mode never raises


def test_soft_labels_become_weighted_rows():
    soft = np.array([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    rows, y, w = M.targets(soft, use_weights=True)
    assert rows.tolist() == [0, 0, 1] and y.tolist() == [0, 1, 1] and w == pytest.approx([0.7, 0.3, 1.0])
    rows, y, w = M.targets(soft, use_weights=False)
    assert rows.tolist() == [0, 1] and y.tolist() == [0, 1] and w is None


def _evaluate(strategy, out, *extra):
    return invoke("evaluate", strategy, "--out", out, "--limit", 200, "--train-fraction", 0.3, "--repeats", 2, *extra)


def _results(folder: Path) -> dict:
    report = json.loads((folder / "evaluate.json").read_text())
    report.pop("performance")
    return report


def test_results_are_identical_across_reruns_and_jobs(tmp_path):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    args = ("--model", "knn", "--model", "mlp", "-q")
    assert _evaluate(strategy, tmp_path / "a", *args, "--jobs", 1).exit_code == 0
    assert _evaluate(strategy, tmp_path / "b", *args, "--jobs", 1).exit_code == 0
    assert _evaluate(strategy, tmp_path / "c", *args, "--jobs", 2).exit_code == 0
    first = _results(tmp_path / "a")
    assert first == _results(tmp_path / "b") == _results(tmp_path / "c")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"evaluate.json", "evaluate.md", "evaluate.png",
                                                           ".augcli-output"}
    assert [r["model"] for r in first["results"]] == ["knn", "mlp"]
    assert len(first["results"][0]["arms"]["augmented"]["accuracy"]["values"]) == 2
    # another seed is another experiment
    assert _evaluate(strategy, tmp_path / "d", *args, "--seed", 4).exit_code == 0
    assert _results(tmp_path / "d")["results"] != first["results"]


def test_harmful_strategy_fails_the_gate_with_exit_3(tmp_path):
    out = tmp_path / "harm"
    res = invoke("evaluate", ROOT / "configs" / "digits-harmful.yaml", "--out", out, "--limit", 400,
                 "--train-fraction", 0.25, "--repeats", 3, "--model", "logreg", "--fail-if-worse")
    assert res.exit_code == 3, res.output
    assert "logreg at 25%" in res.output and "Traceback" not in res.output
    report = json.loads((out / "evaluate.json").read_text())  # the evidence is written before failing
    assert report["gate"]["failures"][0]["model"] == "logreg"
    assert report["results"][0]["comparisons"][0]["accuracy"]["ci"][1] < 0


def test_online_mode_for_the_mlp(tmp_path):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    res = _evaluate(strategy, tmp_path / "on", "--online", "--epochs", 3, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["protocol"]["models"] == ["mlp"] and report["protocol"]["arms"] == ["original", "offline", "online"]
    pairs = [(c["treatment"], c["baseline"]) for c in report["results"][0]["comparisons"]]
    assert pairs == [("offline", "original"), ("online", "original"), ("online", "offline")]
    md = (tmp_path / "on" / "evaluate.md").read_text()
    assert "## Paired differences" in md and "| online - offline |" in md
    bad = _evaluate(strategy, tmp_path / "svm", "--online", "--model", "svm")
    assert bad.exit_code == 2 and "partial_fit" in bad.output


def test_existing_output_needs_overwrite(tmp_path):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = _evaluate(strategy, out, "--model", "knn")
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert (out / "keep.txt").exists()
    res = _evaluate(strategy, out, "--model", "knn", "--overwrite", "-q")  # not augcli's: never replaced
    assert res.exit_code == 2 and "not made by augcli" in res.output and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()  # an empty folder (or augcli's own output) may be replaced
    assert _evaluate(strategy, out, "--model", "knn", "--overwrite", "-q").exit_code == 0
    assert _evaluate(strategy, out, "--model", "knn", "--overwrite", "-q").exit_code == 0
    assert (out / "evaluate.md").exists()


def test_few_repeats_are_warned_about_and_intervals_are_labelled(tmp_path):
    """2 repeats: a warning that the intervals are too wide to decide on; the console says what
    '±' means; the plotted band never leaves [0, 100] %."""
    from augcli.evaluation.plots import _values

    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    res = _evaluate(strategy, tmp_path / "few", "--model", "knn", "--repeats", 2)
    assert res.exit_code == 0, res.output
    assert "warning: with 2 repeats the 95 % intervals are wide" in res.stderr
    assert res.stdout.startswith("test accuracy (%) as mean ± half-width of its 95 % CI over 2 repeats")
    rows = [{"arms": {"a": {"accuracy": {"mean": 0.95, "ci": [0.7, 1.2]}}}}]
    assert _values(rows, "a", "high").tolist() == [100.0] and _values(rows, "a", "low").tolist() == [70.0]
    many = _evaluate(strategy, tmp_path / "many", "--model", "knn", "--repeats", 5)
    assert many.exit_code == 0 and "warning" not in many.stderr
