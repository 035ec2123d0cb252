"""A label-error check that can be trusted (issue 13): it measures itself (out-of-fold accuracy and
calibration, in inspect.json and inspect.md), abstains and says why when it is too weak for the
data, flags correctly labelled photos almost never, and still finds photos moved to the wrong class.

Photo sets are crops of scikit-learn's two sample photos (china.jpg, flower.jpg), 64x64 PNG, with
crop positions and sizes drawn from augcli.rng, so every run sees the same files.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augcli.clean import label_errors
from augcli.clean.phash import phash64
from augcli.datasets import Dataset
from augcli.datasets.convert import rgb_to_gray
from augcli.reporting.inspection import inspect, strategy_for_source
from augcli.rng import Streams
from augcli.datasets.source import open_source
from tests.helpers import invoke

SAMPLE_FOLDER = Path(__file__).resolve().parent.parent / "data" / "sample-folder"


def _crops(photo: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """n square crops (a quarter to 0.6 of the short side) of ``photo``, resized to 64x64."""
    h, w = photo.shape[:2]
    s = Streams.from_seed(seed, n)
    side = (s.uniform(0.25, 0.6) * min(h, w)).astype(int)
    y = (s.uniform(0.0, 1.0) * (h - side)).astype(int)
    x = (s.uniform(0.0, 1.0) * (w - side)).astype(int)
    return [np.asarray(Image.fromarray(photo[y[i]:y[i] + side[i], x[i]:x[i] + side[i]]).resize((64, 64)))
            for i in range(n)]


def photo_folder(root: Path, halves: bool, n: int = 40) -> Path:
    """Correctly labelled photo classes: china vs flower, or (``halves``) the left and right half of
    each photo as four classes."""
    from sklearn.datasets import load_sample_image

    for k, name in enumerate(("china", "flower")):
        photo = load_sample_image(f"{name}.jpg")
        w = photo.shape[1] // 2
        parts = {f"{name}{j}": photo[:, j * w:(j + 1) * w] for j in (0, 1)} if halves else {name: photo}
        for j, (cls, part) in enumerate(parts.items()):
            (root / cls).mkdir(parents=True)
            for i, crop in enumerate(_crops(part, n, 10 * k + j)):
                Image.fromarray(crop).save(root / cls / f"{i:03d}.png")
    return root


def _label_flags(source: Path) -> tuple[int, dict]:
    report, records, _ = inspect(strategy_for_source(str(source)))
    return sum(r["reason"] == "label_error" for r in records), report


# ---------------------------------------------------------------- no false alarms


@pytest.mark.filterwarnings("ignore:.*label-error check abstained")
def test_sample_folder_gets_at_most_one_label_error():
    flags, report = _label_flags(SAMPLE_FOLDER)
    assert flags <= 1  # landed: 9 of the 24 images
    check = report["clean"]["label_errors"]
    assert {"accuracy", "balanced_accuracy", "chance", "ece", "overconfidence", "confident_accuracy"} <= set(check)
    assert check["abstained"] and "too few samples per class" in check["abstained"]  # 12 per class


@pytest.mark.parametrize("halves", [False, True], ids=["2-classes", "4-classes"])
def test_correctly_labelled_photos_are_not_flagged(tmp_path, halves):
    root = photo_folder(tmp_path / "photos", halves)
    flags, report = _label_flags(root)
    check = report["clean"].get("label_errors", {})
    total = sum(report["counts"]["loaded"].values())
    assert flags <= 0.02 * total or check.get("abstained"), (flags, check)  # landed: 3 of 80, 43 of 160
    assert check["flagged"] == flags
    assert check["accuracy"] >= 0.9  # measured 1.00 and 0.96: colour makes the classes easy


def test_shuffled_labels_make_the_detector_abstain(digits_images):
    """Labels unrelated to the pixels: the detector cannot beat chance, so it flags nothing."""
    images, target = digits_images
    labels = Streams.from_seed(3, len(target)).integers(0, 10)
    data = Dataset(images, labels.astype(np.int64), np.array([f"d{i}" for i in range(len(target))]), [str(k) for k in range(10)])
    assert label_errors.find_label_errors(data, 0) == []  # landed: 994 of 1797 flagged
    records, check = label_errors.check_labels(data, seed=0)
    assert records == []
    assert "too weak" in check["abstained"] and check["skill"] < 0.6


# ---------------------------------------------------------------- still finds real errors


def test_photos_moved_to_another_class_are_found(tmp_path):
    root = photo_folder(tmp_path / "photos", halves=True)
    classes = sorted(p.name for p in root.iterdir())
    moved = set()
    for k, cls in enumerate(classes):  # two photos of each class filed under the next class
        for i in (3, 11):
            target = root / classes[(k + 1) % len(classes)] / f"moved_{cls}_{i}.png"
            shutil.move(root / cls / f"{i:03d}.png", target)
            moved.add(f"{target.parent.name}/{target.name}")
    report, records, _ = inspect(strategy_for_source(str(root)))
    found = {r["id"] for r in records if r["reason"] == "label_error"}
    # measured: 7 of the 8 moved photos (the eighth is given 0.72 for its real class, below that
    # class's threshold 0.76) and 2 others, crops the model takes for the neighbouring half of the
    # same photo: plain teal background, petals (landed: the same 7 and 34 others)
    assert len(found & moved) >= 7 and len(found - moved) <= 2, sorted(found)
    assert report["clean"]["label_errors"]["abstained"] is None


# ---------------------------------------------------------------- reports and messages


def test_inspect_reports_reliability_and_abstention(tmp_path):
    out = tmp_path / "report"
    res = invoke("inspect", SAMPLE_FOLDER, "--out", out)
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "label-error" in line]
    assert len(lines) == 1 and lines[0].startswith("augcli: warning: ") and "abstained" in lines[0]
    assert "too few samples per class" in lines[0]
    check = json.loads((out / "inspect.json").read_text())["clean"]["label_errors"]
    assert check["flagged"] == 0 and 0.0 <= check["accuracy"] <= 1.0 and 0.0 <= check["ece"] <= 1.0
    md = (out / "inspect.md").read_text()
    assert "out-of-fold accuracy" in md and "expected calibration error" in md and "abstained" in md

    quiet = invoke("inspect", SAMPLE_FOLDER, "--out", out, "--overwrite", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_run_report_carries_the_detector_reliability(tmp_path):
    root = photo_folder(tmp_path / "photos", halves=False, n=24)
    strategy = tmp_path / "s.yaml"
    strategy.write_text(f"dataset: {{source: {root}, image_size: [32, 32]}}\naugment: {{copies: 0}}\n"
                        f"clean: {{label_errors: {{action: flag}}}}\noutput: {{dir: {tmp_path / 'out'}}}\n")
    res = invoke("run", strategy, "-q")
    assert res.exit_code == 0, res.output
    check = json.loads((tmp_path / "out" / "report.json").read_text())["clean"]["label_errors"]
    assert check["samples"] == 48 and check["abstained"] is None and check["flagged"] == 0
    assert "Label-error detector: out-of-fold accuracy" in (tmp_path / "out" / "report.md").read_text()


# ---------------------------------------------------------------- colour in the folder view


def test_folder_view_keeps_colour_and_gray_checks_see_the_same_luma(tmp_path):
    root = photo_folder(tmp_path / "photos", halves=False, n=4)
    _, view, _ = open_source(strategy_for_source(str(root)))
    assert view.images.shape[1:] == (32, 32, 3)  # landed: (32, 32, 1), the label check saw no colour
    gray = rgb_to_gray(view.images)
    assert np.array_equal(phash64(view.images), phash64(gray))  # near duplicates judged as before
