"""Every cleaning detector against the digits with known, injected faults.

The faulty set: the 1797 digits, plus 30 exact copies, 30 copies moved by one pixel (half with
the background brought in, half repeating the edge), 30 copies with Gaussian noise of std 4 grey
levels, 20 blank images, 20 pure-noise images, and 3 % of the original digits (54) given another
class. Copies come after their source, as when files are added later; all faults are drawn with
augcli.rng, so the set is the same on every run. Each detector's precision and recall are
asserted per fault type at levels set from what was measured (see the comments), so that a
regression breaks them.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from augcli.clean.label_errors import find_label_errors
from augcli.clean.leakage import drop_ids, find_leakage
from augcli.clean.neardup import find_near_duplicates
from augcli.clean.outliers import find_outliers, outlier_scores
from augcli.clean.phash import shifted_phash64
from augcli.clean.quality import find_blank, find_noise_images
from augcli.datasets import Dataset
from augcli.rng import Streams
from augcli.datasets.split import split_dataset

SEED = 7
N_COPIES, N_BLANK, N_NOISE, FLIP_SHARE = 30, 20, 20, 0.03


@dataclass
class Faulty:
    dataset: Dataset
    n_clean: int
    source: dict  # copy id -> id of the digit it copies
    kinds: dict  # fault kind -> ids (copies, blank, noise, flipped)
    true_label: dict  # flipped id -> its real class


def _shift(images, dy, dx, edge):
    """Move images by (dy, dx) pixels; the uncovered row/column is 0 (background) or the edge."""
    n, h, w, _ = images.shape
    if edge:
        return images[:, np.clip(np.arange(h) - dy, 0, h - 1)][:, :, np.clip(np.arange(w) - dx, 0, w - 1)]
    out = np.zeros_like(images)
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def build_faulty(digits_images) -> Faulty:
    images, target = digits_images
    n = images.shape[0]
    labels = target.astype(np.int64).copy()
    ids = np.array([f"d{i:04d}" for i in range(n)])
    streams = Streams.from_seed(SEED, n)
    order = np.argsort(streams.bits(), kind="stable")  # a seeded permutation of the digits
    n_flip = int(round(FLIP_SHARE * n))
    exact_src, shift_src, noisy_src = (order[k * N_COPIES:(k + 1) * N_COPIES] for k in range(3))
    flipped = np.sort(order[3 * N_COPIES:3 * N_COPIES + n_flip])  # disjoint from every copied digit

    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    shifted = np.concatenate([
        _shift(images[[s]], *moves[k % 8], edge=k % 2 == 1) for k, s in enumerate(shift_src.tolist())
    ])
    noise = Streams.from_seed(SEED + 1, N_COPIES).normal(0.0, 4.0, shape=images.shape[1:])
    noisy = np.clip(np.rint(images[noisy_src] + noise), 0, 255).astype(np.uint8)
    extra = Streams.from_seed(SEED + 2, N_BLANK + N_NOISE)
    blank = np.broadcast_to(extra.integers(0, 256)[:N_BLANK, None, None, None], (N_BLANK,) + images.shape[1:]).astype(np.uint8)
    half = N_NOISE // 2
    uniform = extra.integers(0, 256, shape=images.shape[1:])[N_BLANK:N_BLANK + half]
    gaussian = np.clip(np.rint(extra.normal(128.0, 50.0, shape=images.shape[1:])), 0, 255)[N_BLANK + half:]
    garbage_labels = extra.integers(0, 10)

    new_labels = labels.copy()
    new_labels[flipped] = (labels[flipped] + 1 + Streams.from_seed(SEED + 3, n).integers(0, 9)[flipped]) % 10
    kinds = {
        "exact": [f"exact{k}" for k in range(N_COPIES)], "shift": [f"shift{k}" for k in range(N_COPIES)],
        "noisy": [f"noisy{k}" for k in range(N_COPIES)], "blank": [f"blank{k}" for k in range(N_BLANK)],
        "noise": [f"noise{k}" for k in range(N_NOISE)], "flipped": ids[flipped].tolist(),
    }
    source = {}
    for kind, src in (("exact", exact_src), ("shift", shift_src), ("noisy", noisy_src)):
        source.update(zip(kinds[kind], ids[src].tolist()))
    all_images = np.concatenate([images, images[exact_src], shifted, noisy, blank, uniform.astype(np.uint8), gaussian.astype(np.uint8)])
    all_labels = np.concatenate([new_labels, labels[exact_src], labels[shift_src], labels[noisy_src], garbage_labels])
    all_ids = np.concatenate([ids] + [np.array(kinds[k]) for k in ("exact", "shift", "noisy", "blank", "noise")])
    dataset = Dataset(all_images, all_labels, all_ids, [str(k) for k in range(10)])
    return Faulty(dataset, n, source, kinds, dict(zip(ids[flipped].tolist(), labels[flipped].tolist())))


@pytest.fixture(scope="module")
def faulty(digits_images):
    return build_faulty(digits_images)


@pytest.fixture(scope="module")
def content(faulty):
    """The faulty set without blank and noise images, as the clean stage leaves it for later checks."""
    garbage = {r["id"] for r in find_blank(faulty.dataset) + find_noise_images(faulty.dataset)}
    return drop_ids(faulty.dataset, garbage)


def _precision_recall(found: set, truth: set) -> tuple[float, float]:
    hit = len(found & truth)
    return hit / max(len(found), 1), hit / max(len(truth), 1)


# ---------------------------------------------------------------- blank and noise images


def test_blank_images_are_found_and_nothing_else(faulty):
    records = find_blank(faulty.dataset)
    precision, recall = _precision_recall({r["id"] for r in records}, set(faulty.kinds["blank"]))
    assert (precision, recall) == (1.0, 1.0)  # measured: 20 of 20, no digit has std < 2
    assert all(r["reason"] == "blank" and r["score"] < 2.0 for r in records)


def test_pure_noise_images_are_found_and_no_digit(faulty):
    records = find_noise_images(faulty.dataset)
    precision, recall = _precision_recall({r["id"] for r in records}, set(faulty.kinds["noise"]))
    assert precision == 1.0  # measured 1.0: the least correlated digit is at 0.287, the cut 0.25
    assert recall >= 0.9  # measured 1.0 (20 of 20); 8x8 noise passes the cut in < 1 % of draws
    assert all(r["reason"] == "noise" and r["score"] < 0.25 for r in records)


# ---------------------------------------------------------------- near duplicates


@pytest.fixture(scope="module")
def near(content):
    return find_near_duplicates(content, max_distance=4)


def test_near_duplicates_find_every_kind_of_copy(faulty, near):
    flagged = {r["id"]: r for r in near}
    for kind in ("exact", "shift", "noisy"):
        recall = np.mean([cid in flagged for cid in faulty.kinds[kind]])
        # measured: exact 1.0, shift 1.0, noisy 1.0 (the issue asks for >= 0.9)
        assert recall >= 0.9, (kind, recall)
    # The kept sample is the copy's source, or an earlier look-alike of it (one group); measured 96.7 %.
    kept_source = [c for c in faulty.source if c in flagged and flagged[c]["duplicate_of"] == faulty.source[c]]
    assert len(kept_source) >= 0.9 * len(faulty.source)
    for cid in kept_source:
        exact = cid in faulty.kinds["exact"]
        assert flagged[cid]["identical"] == exact
        if exact:
            assert flagged[cid]["distance"] == 0


def test_near_duplicates_rarely_flag_distinct_digits(faulty, near):
    copies = set(faulty.source)
    wrong = [r for r in near if r["id"] not in copies]
    # Measured at max_distance 4: 65 of the 1797 clean digits (3.6 %) are flagged as look-alikes of
    # an earlier digit (at max_distance 2: 4 digits, but only 83 % of the noisy copies are found).
    assert len(wrong) / faulty.n_clean <= 0.045
    # look-alikes are of one class: a label conflict means the group holds a flipped label
    flipped = {r["group"] for r in near if r["id"] in faulty.true_label or r["duplicate_of"] in faulty.true_label}
    assert all(r["group"] in flipped for r in near if r["label_conflict"])
    assert flipped and all(r["label_conflict"] for r in near if r["group"] in flipped)
    precision = 1 - len(wrong) / len(near)
    assert precision >= 0.5  # measured 0.58 (90 copies among 155 flags)


def test_near_duplicates_label_conflict_marks_a_relabelled_copy(faulty, content):
    labels = content.labels.copy()
    at = int(np.flatnonzero(content.ids == "exact0")[0])
    labels[at] = (labels[at] + 1) % 10
    relabelled = Dataset(content.images, labels, content.ids, content.class_names)
    rec = {r["id"]: r for r in find_near_duplicates(relabelled, 4)}
    assert rec["exact0"]["label_conflict"] and rec["exact0"]["duplicate_of"] == faulty.source["exact0"]


def test_near_duplicates_accept_precomputed_hashes_and_leave_the_dataset_alone(content, near):
    before = content.images.copy()
    hashes = shifted_phash64(content.images)
    assert find_near_duplicates(content, 4, hashes=hashes) == near
    np.testing.assert_array_equal(content.images, before)


# ---------------------------------------------------------------- outliers


def test_isolation_forest_flags_the_blank_and_noise_images(faulty):
    garbage = set(faulty.kinds["blank"] + faulty.kinds["noise"])
    share = len(garbage) / len(faulty.dataset)
    records = find_outliers(faulty.dataset, SEED, method="isolation_forest", contamination=share)
    precision, recall = _precision_recall({r["id"] for r in records}, garbage)
    assert precision >= 0.9 and recall >= 0.9  # measured 1.0 and 1.0 (40 flags, all of them garbage)
    assert all(r["reason"] == "outlier" and r["method"] == "isolation_forest" for r in records)


@pytest.mark.parametrize("method", ["isolation_forest", "lof"])
def test_outliers_rank_scattered_odd_images_first(faulty, method):
    # LOF compares a sample with its 20 neighbours, so it cannot see 20 alike noise images as odd
    # (measured on the full set: P = R = 0.33); a few scattered odd images it finds.
    odd = faulty.kinds["blank"][:5] + faulty.kinds["noise"][:5]
    data = faulty.dataset.subset(np.flatnonzero(~np.isin(faulty.dataset.ids, faulty.kinds["blank"][5:] + faulty.kinds["noise"][5:])))
    share = len(odd) / len(data)
    records = find_outliers(data, SEED, method=method, contamination=share)
    precision, recall = _precision_recall({r["id"] for r in records}, set(odd))
    assert precision >= 0.9 and recall >= 0.9, (method, precision, recall)  # measured 1.0 and 1.0 for both
    scores, flags = outlier_scores(data, SEED, method=method, contamination=share)
    assert scores[flags].min() >= scores[~flags].max()  # the flags are the top scores


# ---------------------------------------------------------------- label errors


@pytest.fixture(scope="module")
def label_errors(content):
    return find_label_errors(content, SEED, folds=5)


def test_label_errors_find_flipped_labels(faulty, label_errors):
    found = {r["id"] for r in label_errors}
    precision, recall = _precision_recall(found, set(faulty.kinds["flipped"]))
    # measured: 46 flags, precision 1.0, recall 0.85 (seeds 0, 1, 2: 0.98 / 0.83, 0.98 / 0.83,
    # 1.0 / 0.89); the flips missed are digits the classifier itself takes for their new class.
    # The linear detector before issue 13 gave 0.93 / 0.80 here (0.82-0.94 / 0.59-0.83 over seeds).
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)
    right = [r["suggested_label"] == str(faulty.true_label[r["id"]]) for r in label_errors if r["id"] in faulty.true_label]
    assert np.mean(right) >= 0.95  # measured 1.0: the suggestion is the digit's real class
    assert all(0.0 <= r["score"] < r["suggested_probability"] <= 1.0 for r in label_errors)


def test_label_error_detector_is_reliable_on_the_digits(content, label_errors):
    from augcli.clean.label_errors import check_labels  # issue 13; imported here so the module loads on older code

    records, check = check_labels(content, SEED, folds=5)
    assert records == label_errors and check["abstained"] is None and check["flagged"] == len(records)
    # measured: accuracy 0.946 against labels with 3 % flips, skill 0.94, overconfidence 0.001
    assert check["accuracy"] >= 0.9 and check["skill"] >= 0.9 and check["overconfidence"] <= 0.05, check


def test_label_errors_are_deterministic_and_skip_soft_labels(content, label_errors):
    assert find_label_errors(content, SEED, folds=5) == label_errors
    soft = np.eye(10, dtype=np.float32)[content.labels]
    assert find_label_errors(Dataset(content.images, soft, content.ids, content.class_names), SEED) == []


def test_label_errors_leave_out_classes_smaller_than_the_folds(content):
    keep = np.flatnonzero((content.labels != 3) | (np.arange(len(content)) < 1))  # one sample of class 3
    small = content.subset(keep)
    records = find_label_errors(small, SEED, folds=5)
    assert records and all(r["given_label"] != "3" and r["suggested_label"] != "3" for r in records)


# ---------------------------------------------------------------- leakage


def test_leakage_removes_training_copies_of_held_out_samples(faulty, content):
    splits = split_dataset(content, SEED, val=0.2, test=0.1)
    records = find_leakage(splits, max_distance=4)
    where = {i: name for name, part in splits.items() for i in part.ids.tolist()}
    # ground truth: a copy and its source on different sides of the train / held-out line
    truth = set()
    for copy, src in faulty.source.items():
        if where[copy] == "train" and where[src] != "train":
            truth.add(copy)
        elif where[src] == "train" and where[copy] != "train":
            truth.add(src)
    found = {r["id"] for r in records}
    precision, recall = _precision_recall(found, truth)
    assert recall == 1.0  # measured: all 38 cross-split copy pairs found
    assert precision >= 0.5  # measured 0.56 (68 flags): the others are train look-alikes of held-out digits
    assert all(r["split"] in ("val", "test") and where[r["duplicate_of"]] == r["split"] for r in records)
    kept = drop_ids(splits["train"], found)
    assert len(kept) == len(splits["train"]) - len(found)
    assert find_leakage({**splits, "train": kept}, max_distance=4) == []
