"""Output order (issue 13): a seeded shuffle of each split, so every shard mixes classes and the copies
of one image are spread out; copies identical to their original are counted and reported."""

import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import fingerprint, invoke, write_strategy

NAMES = ["zero", "one", "two", "three"]
PER_CLASS = (150, 70, 40, 20)  # imbalanced, as a photo folder often is

STRATEGY = """\
seed: 5
dataset: {{source: {source}}}
split: {{val: 0.2}}
augment:
  copies: 3
  pipeline:
{pipeline}
report: {{preview: false}}
"""
PLAIN = "    - rotate: {degrees: 15, p: 0.5}\n    - gaussian_noise: {std: 0.05, p: 0.4}"
MIXING = PLAIN + "\n    - mixup: {p: 0.3}"


def four_classes(tmp_path: Path) -> Path:
    """Digits 0-3, 150/70/40/20 of them, as an .npz source read class by class (sorted by label)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == c)[:n] for c, n in enumerate(PER_CLASS)])
    images = np.rint(digits.images[rows] * (255 / 16)).astype(np.uint8)[..., None]
    path = tmp_path / "four.npz"
    np.savez(path, images=images, labels=digits.target[rows].astype(np.int64),
             ids=np.array([f"img{r:04d}" for r in rows]), class_names=np.array(NAMES))
    return path


def run(tmp_path, name, *extra, pipeline=PLAIN, code=0):
    source = four_classes(tmp_path)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(source=source, pipeline=pipeline))
    res = invoke("run", strategy, "--out", tmp_path / name, *extra)
    assert res.exit_code == code, res.output
    return tmp_path / name, res


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def tar_classes(path: Path) -> list[int]:
    with tarfile.open(path) as tar:
        return [int(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".cls")]


def npz_classes(path: Path) -> np.ndarray:
    with np.load(path) as data:
        labels = data["labels"]
    return labels if labels.ndim == 1 else labels.argmax(axis=1)


def test_every_tar_shard_holds_every_class(tmp_path):
    """Before: the split was written class by class, so train-00000.tar held class 0 only."""
    out, _ = run(tmp_path, "tar", "--format", "tar", "--shard-size", 200, "-q")
    shards = sorted(out.glob("train-*.tar"))
    assert len(shards) >= 5
    for shard in shards + sorted(out.glob("val-*.tar")):
        assert set(tar_classes(shard)) == {0, 1, 2, 3}, shard.name


def test_every_npz_shard_holds_every_class(tmp_path):
    out, _ = run(tmp_path, "npz", "--shard-size", 200, "-q")
    shards = sorted(out.glob("train-*.npz"))
    assert len(shards) >= 5
    for shard in shards:
        assert set(npz_classes(shard).tolist()) == {0, 1, 2, 3}, shard.name


def test_copies_of_one_source_are_spread_over_the_split(tmp_path):
    """Before: the 4 outputs of a source (original + 3 copies) were adjacent, 3 of every 4 neighbours."""
    out, _ = run(tmp_path, "tar", "--format", "tar", "--shard-size", 200, "-q")
    train = [r for r in manifest(out) if r["split"] == "train"]
    sources = [r["source"] for r in train]
    adjacent = sum(a == b for a, b in zip(sources, sources[1:]))
    assert adjacent <= len(train) // 100  # a random order puts about copies/N of neighbours together
    positions: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        positions.setdefault(s, []).append(i)
    spans = [p[-1] - p[0] for p in positions.values()]
    assert np.median(spans) > len(train) / 3  # 4 draws from N places span about 3N/5
    # the manifest follows the files: line i is member i of its shard
    first = tarfile.open(out / "train-00000.tar").getnames()[0]
    assert train[0]["file"] == f"train-00000.tar#{first.rsplit('.', 1)[0]}"


def test_the_order_does_not_depend_on_workers_or_batch_size(tmp_path):
    """With mixup: partners come from the same shard, and stay the same whatever runs the shard."""
    base = fingerprint(run(tmp_path, "a", "--format", "tar", "--shard-size", 200, "--batch-size", 64, "-q",
                           pipeline=MIXING)[0])
    other = fingerprint(run(tmp_path, "b", "--format", "tar", "--shard-size", 200, "--batch-size", 7,
                            "--workers", 2, "-q", pipeline=MIXING)[0])
    assert other == base
    npz = fingerprint(run(tmp_path, "c", "--shard-size", 200, "--batch-size", 7, "-q", pipeline=MIXING)[0])
    assert npz == fingerprint(run(tmp_path, "d", "--shard-size", 200, "--workers", 2, "-q", pipeline=MIXING)[0])
    records = manifest(tmp_path / "a")
    sources: dict[str, set] = {}
    for r in records:
        sources.setdefault(r["file"].split("#")[0], set()).add(r["source"])
    partners = [(op["partner"], r["file"].split("#")[0]) for r in records for op in r["ops"] if op["op"] == "mixup"]
    assert len(partners) > 100
    assert all(0 <= p < len(sources[shard]) for p, shard in partners)  # a row of the shard's own sources


def test_png_shards_follow_the_shuffled_order(tmp_path):
    out, _ = run(tmp_path, "png", "--format", "png", "--shard-size", 200, "-q")
    records = manifest(out)
    assert sorted(str(p.relative_to(out)) for p in out.glob("*/*/*.png")) == sorted(r["file"] for r in records)
    first = [r["label"] for r in records if r["split"] == "train"][:200]
    assert set(first) == {0, 1, 2, 3}


def test_shuffle_off_keeps_the_source_order_and_the_same_pixels(tmp_path):
    """The order changes, never a sample: each (source, copy) has the same pixels either way."""
    on, _ = run(tmp_path, "on", "--shard-size", 200, "-q")
    off, _ = run(tmp_path, "off", "--shard-size", 200, "--set", "output.shuffle=false", "-q")
    rec_on, rec_off = manifest(on), manifest(off)
    assert [(r["source"], r["copy"]) for r in rec_on] != [(r["source"], r["copy"]) for r in rec_off]
    assert {(r["source"], r["copy"], r["sha256"]) for r in rec_on} == {(r["source"], r["copy"], r["sha256"])
                                                                       for r in rec_off}
    # off is today's order: sources in split order, each followed by its copies 1..3
    train = [(r["source"], r["copy"]) for r in rec_off if r["split"] == "train"]
    sources = list(dict.fromkeys(s for s, _ in train))
    assert train == [(s, k) for s in sources for k in range(4)]
    classes = [r["label"] for r in rec_off if r["split"] == "train"]
    assert classes == sorted(classes)  # the source is stored class by class: so is the output


def test_one_file_per_split_is_not_shuffled_by_default_and_tar_is(tmp_path):
    """auto: a single npz is read whole (and shuffled by the loader); a tar is streamed."""
    npz, _ = run(tmp_path, "npz", "-q")
    labels = npz_classes(npz / "train.npz")
    assert (np.diff(labels) >= 0).all()  # source order kept
    tar, _ = run(tmp_path, "tar", "--format", "tar", "-q", pipeline=MIXING)
    assert len(set(tar_classes(tar / "train.tar")[:40])) == 4
    # one shard: the shuffled split mixes with the same partners as the unshuffled one
    flat, _ = run(tmp_path, "flat", "--format", "tar", "--set", "output.shuffle=false", "-q", pipeline=MIXING)
    assert {(r["source"], r["copy"], r["sha256"]) for r in manifest(tar)} == {
        (r["source"], r["copy"], r["sha256"]) for r in manifest(flat)}


def test_dry_run_counts_match_the_shuffled_output(tmp_path):
    _, planned = run(tmp_path, "plan", "--format", "tar", "--shard-size", 200, "--dry-run", "--json")
    out, _ = run(tmp_path, "tar", "--format", "tar", "--shard-size", 200, "-q")
    written = Counter(r["split"] for r in manifest(out))
    assert json.loads(planned.stdout)["plan"]["samples"] == dict(written)


@pytest.mark.parametrize("quiet", [False, True])
def test_identical_copies_are_counted_reported_and_warned(tmp_path, quiet):
    """Before: nothing said that about a third of the copies (p < 1 on every step) equal their original."""
    out, res = run(tmp_path, "o", "--format", "tar", "--shard-size", 200, *(["-q"] if quiet else []))
    records = manifest(out)
    original = {r["source"]: r["sha256"] for r in records if r["copy"] == 0}
    copies = [r for r in records if r["copy"] > 0]
    same = sum(r["sha256"] == original[r["source"]] for r in copies)
    assert 0.1 * len(copies) < same < len(copies)  # rotate p=0.5, noise p=0.4: about 30 % untouched
    report = json.loads((out / "report.json").read_text())
    counted = report["transforms"]["identical_copies"]
    assert counted == {"train": {"count": same, "augmented": len(copies), "share": round(same / len(copies), 4)}}
    assert f"train: {same:,} of {len(copies):,} augmented copies" in (out / "report.md").read_text()
    warned = [line for line in res.stderr.splitlines() if "identical to their original" in line]
    if quiet:
        assert not warned
    else:
        assert len(warned) == 1 and warned[0].startswith("augcli: warning: train: ")
        assert "removes them as exact duplicates" in warned[0]


def test_no_warning_when_few_copies_are_identical(tmp_path):
    out, res = run(tmp_path, "o", "--format", "tar", pipeline="    - rotate: {degrees: 15}")
    assert json.loads((out / "report.json").read_text())["transforms"]["identical_copies"]["train"]["share"] <= 0.1
    assert "identical to their original" not in res.stderr


def test_a_bad_shuffle_value_is_a_strategy_error(tmp_path):
    _, res = run(tmp_path, "o", "--set", "output.shuffle=sometimes", code=2)
    assert "output.shuffle: expected" in res.output and "auto" in res.output
