"""`augcli inspect` (read-only findings) and the clean stage inside `augcli run` (leakage, quarantine)."""

import csv
import json

import numpy as np
import pytest

from augcli.clean.phash import hamming, phash64
from augcli.rng import Streams
from tests.helpers import broken_file, fingerprint, invoke, jpeg_bytes, square, write_strategy, write_tree


@pytest.fixture
def broken_folder(tmp_path, photo):
    images = {f"{name}/{i}.png": square(photo, 30 * i, 100 * c, 64) for c, name in enumerate(["a", "b"]) for i in range(8)}
    return write_tree(tmp_path / "imgs", images | {
        "a/zero.png": broken_file("empty"),
        "b/cut.png": broken_file("truncated", images["b/0.png"]),
        "b/text.jpg": broken_file("undecodable"),
        "b/jpeg_named.png": jpeg_bytes(square(photo, 300, 300, 64)),
    })


def test_inspect_lists_corrupt_files_and_changes_nothing(tmp_path, broken_folder):
    before = fingerprint(broken_folder)
    out = tmp_path / "report"
    res = invoke("inspect", broken_folder, "--out", out)
    assert res.exit_code == 0, res.output
    assert "unreadable files: 3" in res.output
    report = json.loads((out / "inspect.json").read_text())
    reasons = {f["id"]: f["reason"] for f in report["skipped"]["files"]}
    assert reasons["a/zero.png"] == "empty"
    assert set(reasons) == {"a/zero.png", "b/cut.png", "b/text.jpg"}
    assert all(reasons.values())
    md = (out / "inspect.md").read_text()
    assert "`b/text.jpg`" in md and "Imbalance ratio" in md
    rows = list(csv.DictReader((out / "quarantine.csv").open()))
    listed = {(r["id"], r["reason"], r["action"]) for r in rows}
    assert ("a/zero.png", "empty", "skipped") in listed
    assert ("b/jpeg_named.png", "wrong_extension", "kept") in listed
    assert "wrong_extension" in md
    assert fingerprint(broken_folder) == before


def test_inspect_flags_injected_faults_on_digits(tmp_path):
    """A strategy's npz source with copies, a blank and a shifted copy: each is found with its reason."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images[:300] * 255 / 16).astype(np.uint8)
    labels = d.target[:300].copy()
    extra = [images[5], np.roll(images[9], 1, axis=1), np.zeros((8, 8), np.uint8)]
    images = np.concatenate([images, np.stack(extra)])
    labels = np.concatenate([labels, [labels[5], labels[9], 0]])
    np.savez(tmp_path / "faulty.npz", images=images, labels=labels)
    out = tmp_path / "report"
    res = invoke("inspect", tmp_path / "faulty.npz", "--out", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "quarantine.csv").open()))
    by_id: dict = {}
    for r in rows:
        by_id.setdefault(r["id"], set()).add(r["reason"])
    assert "exact_duplicate" in by_id["300"] and "near_duplicate" not in by_id["300"], "an exact copy is reported once"
    assert "near_duplicate" in by_id["301"]
    assert "blank" in by_id["302"]
    assert all(r["action"] == "flagged" for r in rows), "inspect never drops"
    assert (out / "clean.png").exists()


def test_no_near_duplicate_of_a_validation_image_reaches_training(tmp_path):
    """Plant near copies of samples across the dataset; after the split, none may sit in train
    while its twin sits in val."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images[:400] * 255 / 16).astype(np.uint8)
    labels = d.target[:400]
    noise = Streams.from_seed(3, 100).normal(0, 3.0, shape=(8, 8))
    twins = np.clip(images[:100] + noise, 0, 255).astype(np.uint8)
    np.savez(tmp_path / "twins.npz", images=np.concatenate([images, twins]), labels=np.concatenate([labels, labels[:100]]))
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
seed: 4
dataset: {{source: {tmp_path / 'twins.npz'}}}
clean:
  near_duplicates: {{action: flag}}
  leakage: {{action: drop, max_distance: 4}}
split: {{val: 0.3}}
augment:
  copies: 2
  pipeline: [{{rotate: {{degrees: 5}}}}]
""")
    out = tmp_path / "out"
    res = invoke("run", strategy, "--out", out)
    assert res.exit_code == 0, res.output
    train, val = np.load(out / "train.npz"), np.load(out / "val.npz")
    originals = train["images"][train["copy_index"] == 0]
    report = json.loads((out / "report.json").read_text())
    assert report["clean"]["by_reason"].get("leakage", 0) > 0
    # brute force: no training original is within the leakage distance of a validation image
    from augcli.clean.phash import shifted_phash64

    val_hashes = phash64(val["images"])
    train_hashes = shifted_phash64(originals)  # (N, 17): plain + shifted versions
    dist = hamming(train_hashes[:, :, None], val_hashes[None, None, :]).min(axis=1)
    assert dist.min() > 4
    leaked_ids = {r["id"] for r in report["clean"]["records"] if r["reason"] == "leakage"}
    assert not leaked_ids & set(train["ids"].tolist())
    assert (out / "quarantine.csv").read_text().count("leakage") == len(leaked_ids)


def test_clean_picture_shows_colour_captions_twins_and_what_is_left_out():
    """Colour tiles for colour data; a near duplicate framed with its kept twin; a label error
    captioned given -> suggested; a reason with more findings than fit says how many are not shown."""
    import numpy as np

    from augcli.clean.outputs import _PER_ROW, _captions, _cards, _tile, clean_picture
    from augcli.datasets.base import Dataset

    n = 30
    images = np.zeros((n, 8, 8, 3), np.uint8)
    images[:, :, :, 0] = np.arange(n)[:, None, None] * 8  # red varies: colour must survive
    data = Dataset(images, np.zeros(n, np.int64), np.array([f"s{i}" for i in range(n)]), ["a"])
    lookup = {f"s{i}": images[i] for i in range(n)}
    dup = {"id": "s1", "reason": "near_duplicate", "score": 3.0, "duplicate_of": "s0"}
    lab = {"id": "s2", "reason": "label_error", "score": 0.1, "given_label": "cat", "suggested_label": "dog",
           "suggested_probability": 0.87}
    outliers = [{"id": f"s{i}", "reason": "outlier", "score": 0.5} for i in range(3, n)]
    assert _captions(lab) == ("s2", "cat -> dog (87%)") and _captions(outliers[0]) == ("s3", "score 0.5")
    cards, left = _cards([dup], lookup, _PER_ROW)
    assert left == 0 and len(cards[0][0]) == 2 and cards[0][1][1] == ("s0", "kept twin")
    cards, left = _cards(outliers, lookup, _PER_ROW)
    assert len(cards) == _PER_ROW and left == len(outliers) - _PER_ROW
    tile = _tile(images[20])
    assert (tile[..., 0] != tile[..., 1]).any()  # not turned gray
    picture = clean_picture([dup, lab, *outliers], [data])
    assert picture.mode == "RGB" and picture.width >= _PER_ROW * 64
    assert clean_picture([{"id": "missing", "reason": "outlier"}], [data]) is None
