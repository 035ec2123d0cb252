"""Labels a trainer can trust (issue 13): integer hard labels that agree with the soft labels under
mixup, integer val labels, every class folder in every split in class order, the class list at the
output root, a warning for a split that lacks a class, and a Pipeline that knows K."""

import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from augcli import Pipeline
from tests.helpers import invoke, write_strategy

CLASSES = ["ant", "bee", "cat", "dog"]
COUNTS = {"ant": 12, "bee": 8, "cat": 5, "dog": 1}  # imbalanced; 'dog' has one image, so val has none
FORMATS = ["png", "tar", "npz"]


def _folder(root, photo):
    """Textured 32x32 crops of the sample photo, none overlapping; every class has a ``00.png``, so
    PNG names of mixed copies filed under another class would clash if stems were per class."""
    k = 0
    for name, n in COUNTS.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            r, c = divmod(k, 12)
            k += 1
            Image.fromarray(photo[200 + 40 * r:232 + 40 * r, 20 + 50 * c:52 + 50 * c]).save(root / name / f"{i:02d}.png")
    return root


def _strategy(path, source, fmt):
    return write_strategy(path, f"""\
dataset: {{source: {source}, image_size: 24}}
split: {{val: 0.25}}
augment:
  copies: 3
  pipeline:
    - hflip
    - mixup: {{p: 0.3}}
output: {{format: {fmt}}}
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, photo):
    """One run per format on the same folder: fmt -> (output folder, CLI result)."""
    base = tmp_path_factory.mktemp("labels")
    root = _folder(base / "imgs", photo)
    out = {}
    for fmt in FORMATS:
        res = invoke("run", _strategy(base / f"{fmt}.yaml", root, fmt), "--out", base / fmt)
        assert res.exit_code == 0, res.output
        out[fmt] = (base / fmt, res)
    return out


def _manifest(folder):
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def _tar_samples(path):
    """(cls, json) per sample key of a WebDataset shard."""
    members = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            key, ext = m.name.split(".", 1)
            members.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return [(int(v["cls"]), json.loads(v["json"])) for v in members.values()]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_training_hard_labels_are_the_argmax_of_the_soft_labels(runs, fmt):
    folder, _ = runs[fmt]
    records = [r for r in _manifest(folder) if r["split"] == "train"]
    moved = [r for r in records if int(np.argmax(r["soft_label"])) != CLASSES.index(r["source"].split("/")[0])]
    assert moved, "no mixed sample is dominated by its partner: the case is not exercised"
    for r in records:
        assert r["label"] == int(np.argmax(r["soft_label"])) and r["class"] == CLASSES[r["label"]]
    if fmt == "npz":
        data = np.load(folder / "train.npz")
        assert data["labels"].dtype == np.int64 and data["labels"].shape == (len(records),)
        assert data["soft_labels"].dtype == np.float32 and data["soft_labels"].shape == (len(records), 4)
        assert np.array_equal(data["soft_labels"].argmax(axis=1), data["labels"])
    elif fmt == "tar":
        samples = _tar_samples(folder / "train.tar")
        assert len(samples) == len(records)
        for cls, meta in samples:
            assert cls == meta["label"] == int(np.argmax(meta["soft_label"])) and meta["class"] == CLASSES[cls]
    else:
        lines = _jsonl(folder / "train" / "metadata.jsonl")
        assert len(lines) == len(records)
        files = {p.relative_to(folder / "train").as_posix() for p in (folder / "train").rglob("*.png")}
        assert files == {line["file_name"] for line in lines}  # one file per sample: mixed names never clash
        for line in lines:
            label = int(np.argmax(line["soft_label"]))
            assert line["label"] == label and line["file_name"].split("/")[0] == CLASSES[label]


@pytest.mark.parametrize("fmt", FORMATS)
def test_validation_labels_are_integer_class_indices(runs, fmt):
    folder, _ = runs[fmt]
    if fmt == "npz":
        data = np.load(folder / "val.npz")
        assert data["labels"].dtype == np.int64 and data["labels"].ndim == 1
        assert "soft_labels" not in data.files
        labels = data["labels"].tolist()
    elif fmt == "tar":
        samples = _tar_samples(folder / "val.tar")
        assert all(meta["label"] == cls for cls, meta in samples)
        labels = [cls for cls, _ in samples]
    else:
        lines = _jsonl(folder / "val" / "metadata.jsonl")
        assert all(isinstance(line["label"], int) for line in lines)
        labels = [line["label"] for line in lines]
    assert labels and set(labels) <= {0, 1, 2}  # dog (3) has no val sample
    assert [r["label"] for r in _manifest(folder) if r["split"] == "val"] == labels


def test_every_split_has_every_class_folder_and_sorted_folders_give_the_class_index(runs):
    folder, _ = runs["png"]
    # torchvision ImageFolder's rule: class index = position in the sorted folder names
    dirs = {split: sorted(p.name for p in (folder / split).iterdir() if p.is_dir()) for split in ("train", "val")}
    assert dirs["val"] == dirs["train"] == CLASSES
    assert not any((folder / "val" / "dog").iterdir())  # present, empty
    assert (folder / "classes.txt").read_text(encoding="utf-8").splitlines() == dirs["val"]
    for split in ("train", "val"):
        for line in _jsonl(folder / split / "metadata.jsonl"):
            assert dirs[split].index(line["file_name"].split("/")[0]) == line["label"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_class_list_is_at_the_output_root(runs, fmt):
    folder, _ = runs[fmt]
    assert (folder / "classes.txt").read_text(encoding="utf-8") == "ant\nbee\ncat\ndog\n"
    assert json.loads((folder / "class_to_idx.json").read_text()) == {c: i for i, c in enumerate(CLASSES)}
    report = json.loads((folder / "report.json").read_text())
    assert {"classes.txt", "class_to_idx.json"} <= set(report["output"]["files"])


def test_a_split_without_a_class_is_warned_in_the_report_and_on_stderr(runs, tmp_path):
    folder, res = runs["png"]
    report = json.loads((folder / "report.json").read_text())
    assert report["output"]["missing_classes"] == {"val": ["dog"]}
    assert "split 'val' has no sample of class 'dog'" in (folder / "report.md").read_text(encoding="utf-8")
    warned = [line for line in res.stderr.splitlines() if "has no sample of class" in line]
    assert warned == ["augcli: warning: split 'val' has no sample of class 'dog'; class indices stay those of "
                      "classes.txt (its folder is empty)"]
    source = runs["npz"][0].parent / "imgs"
    quiet = invoke("run", _strategy(tmp_path / "s.yaml", source, "npz"), "--out", tmp_path / "q", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_folder_names_are_prefixed_when_sorting_them_would_reorder_the_classes(tmp_path, photo):
    names = ["zebra", "ant", "bird"]
    images = np.stack([photo[200 + 8 * i:224 + 8 * i, 40 * i:24 + 40 * i] for i in range(9)])
    np.savez(tmp_path / "in.npz", images=images, labels=np.arange(9) % 3, class_names=np.array(names))
    res = invoke("run", _strategy(tmp_path / "s.yaml", tmp_path / "in.npz", "png"), "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    dirs = sorted(p.name for p in (tmp_path / "out" / "train").iterdir() if p.is_dir())
    assert dirs == ["00_zebra", "01_ant", "02_bird"]
    assert (tmp_path / "out" / "classes.txt").read_text(encoding="utf-8").splitlines() == names
    from augcli.io.encoders import class_dirs

    assert class_dirs(["a", "b"]) == ["a", "b"]  # already in order: the plain names


def test_the_pipeline_knows_k_whatever_classes_a_batch_holds(tmp_path, photo):
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits}\naugment:\n  pipeline:\n"
                                                   "    - mixup: {p: 1.0}\n")
    pipe = Pipeline.from_strategy(strategy, class_names=CLASSES)
    batch = np.stack([photo[i:i + 16, i:i + 16] for i in range(32)])
    images, soft = pipe(batch, ids=[f"s{i}" for i in range(32)], copy=1, labels=np.zeros(32, dtype=np.int64))
    assert soft.shape == (32, 4) and images.shape == batch.shape
    assert pipe.num_classes == 4
    _, soft = pipe(batch, labels=np.zeros(32, dtype=np.int64), num_classes=6)
    assert soft.shape == (32, 6)
    _, soft, _ = pipe.run(batch, pipe.keys([f"s{i}" for i in range(32)], 1), np.full(32, 3))
    assert soft.shape == (32, 4)
    unsized = Pipeline.from_config([{"mixup": {"p": 1.0}}])
    with pytest.raises(ValueError, match="pass num_classes"):
        unsized(batch, labels=np.zeros(32, dtype=np.int64))
    with pytest.raises(ValueError, match="class indices in 0..3"):
        pipe(batch, labels=np.full(32, 4))
