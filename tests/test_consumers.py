"""Ecosystem contract (issue 13): augcli's outputs read right by the libraries trainers use.

One small photo folder - 4 imbalanced classes, class ``d`` with a single image so val lacks it,
``mixup: {p: 0.3}``, balanced copies - is written as a PNG tree, as sharded npz and as WebDataset
tar shards (``--shard-size 200``), the tree and the shards also with JPEG images
(``image_format: jpg``, as WebDataset ImageNet shards hold), then read back with ``webdataset``, Hugging Face ``datasets``
(``imagefolder`` and ``webdataset`` builders, offline on local files), NumPy, torchvision's
``ImageFolder`` rules (reproduced: torchvision from the index does not import beside the CPU torch
installed here) and a PyTorch ``DataLoader``. Each library's part is skipped, with the reason, only
when the library cannot be imported (``pip install -e ".[test,consumers]"`` installs them).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import invoke, write_strategy

CLASSES = ["a", "b", "c", "d"]
SIZES = [33, 16, 8, 1]   # imbalanced; the single image of d stays in train (val has no d)
SIDE = 64                # real image side: reports must say (64, 64, 3), not the cleaning thumbnail
BATCH = 32
TOP = 160                # crops start below the sky, so cleaning drops none as blank
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}  # ImageFolder's, in short


def _crops(photo: np.ndarray, n: int, start: int = 0) -> list[np.ndarray]:
    """``n`` distinct, non-overlapping SIDE x SIDE crops of ``photo`` (textured: below the sky)."""
    rows, cols = (photo.shape[0] - TOP) // SIDE, photo.shape[1] // SIDE
    cells = [(TOP + r * SIDE, c * SIDE) for r in range(rows) for c in range(cols)][start:start + n]
    assert len(cells) == n, "the photo is too small for the requested crops"
    return [photo[y:y + SIDE, x:x + SIDE] for y, x in cells]


def _strategy(tmp: Path, root: Path, fmt: str, image_format: str = "png") -> Path:
    return write_strategy(tmp / f"{fmt}-{image_format}.yaml", f"""\
seed: 3
dataset: {{source: {root}, image_size: {SIDE}}}
clean: {{leakage: {{action: "off"}}}}
split: {{val: 0.25}}
augment:
  copies: 5
  balance: {{target: max}}
  pipeline:
    - hflip
    - mixup: {{p: 0.3}}
output: {{format: {fmt}, image_format: {image_format}}}
report: {{preview: false}}
""")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """{"source", "png", "npz", "tar", "png-jpg", "tar-jpg"}: the folder and the runs (sharded npz and
    tar; "-jpg": JPEG images).

    Train is balanced to 25 x 6 = 150 outputs per class: 600, three full shards of 200.
    """
    from sklearn.datasets import load_sample_image

    tmp = tmp_path_factory.mktemp("consumers")
    root = tmp / "photos"
    china, flower = load_sample_image("china.jpg"), load_sample_image("flower.jpg")
    # class a from one photo, b, c and d from consecutive cells of the other
    starts = np.cumsum([0] + SIZES[1:-1])
    crops = {"a": _crops(china, SIZES[0])} | {c: _crops(flower, n, int(s)) for c, n, s in zip(CLASSES[1:], SIZES[1:], starts)}
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i, crop in enumerate(crops[name]):
            Image.fromarray(crop).save(root / name / f"{name}{i:02d}.png")
    out = {"source": root}
    runs = (("png", "png", ()), ("npz", "png", ("--shard-size", 200)), ("tar", "png", ("--shard-size", 200)),
            ("png", "jpg", ()), ("tar", "jpg", ("--shard-size", 200)))
    for fmt, image_format, extra in runs:
        name = fmt if image_format == "png" else f"{fmt}-{image_format}"
        out[name] = tmp / name
        res = invoke("run", _strategy(tmp, root, fmt, image_format), "--out", out[name], "-q", *extra)
        assert res.exit_code == 0, res.output
    return out


def _classes_txt(folder: Path) -> list[str]:
    path = folder / "classes.txt"
    assert path.is_file(), f"{path.name} missing at the output root"
    return path.read_text(encoding="utf-8").splitlines()


def _hist(labels) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(CLASSES))


# --- the class list ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "npz", "tar", "png-jpg", "tar-jpg"])
def test_class_list_at_the_root(outputs, fmt):
    assert _classes_txt(outputs[fmt]) == CLASSES
    mapping = json.loads((outputs[fmt] / "class_to_idx.json").read_text(encoding="utf-8"))
    assert mapping == {name: i for i, name in enumerate(CLASSES)}


# --- webdataset -------------------------------------------------------------------------------

def _shards(folder: Path, split: str) -> list[str]:
    shards = sorted(str(p) for p in folder.glob(f"{split}-*.tar"))
    assert shards, f"no {split} shards in {sorted(p.name for p in folder.iterdir())}"
    return shards


@pytest.mark.parametrize("run, image", [("tar", "png"), ("tar-jpg", "jpg")])
def test_webdataset_first_batch_mixes_classes_and_cls_is_argmax(outputs, run, image):
    wds = pytest.importorskip("webdataset", reason="webdataset not installed (pip install -e '.[consumers]')")
    shards = _shards(outputs[run], "train")
    assert len(shards) >= 3, "expected several 200-sample shards"
    pipe = (wds.WebDataset(shards, shardshuffle=100, seed=0, empty_check=False)
            .decode("rgb8").to_tuple(image, "cls", "json").shuffle(200, seed=0).batched(BATCH))
    images, cls, meta = next(iter(pipe))
    assert np.asarray(images).shape == (BATCH, SIDE, SIDE, 3)
    hist = _hist(cls)
    assert (hist > 0).sum() >= 3, f"first batch class histogram {hist.tolist()}: the shards are class-sorted"

    for shard in shards:  # every shard, in file order: every class, .cls == argmax(soft_label)
        seen = []
        for _, label, info in wds.WebDataset(shard, shardshuffle=False).decode().to_tuple(image, "cls", "json"):
            seen.append(label)
            if "soft_label" in info:
                soft = np.asarray(info["soft_label"])
                assert soft.shape == (len(CLASSES),)
                assert label == int(np.argmax(soft)), f"{Path(shard).name}: .cls {label} but soft label {soft.tolist()}"
        assert (_hist(seen) > 0).all(), f"{Path(shard).name} class histogram {_hist(seen).tolist()}"


def test_webdataset_val_shards_hold_integer_classes(outputs):
    wds = pytest.importorskip("webdataset", reason="webdataset not installed (pip install -e '.[consumers]')")
    labels = [label for label, _ in wds.WebDataset(_shards(outputs["tar"], "val"), shardshuffle=False)
              .decode().to_tuple("cls", "json")]
    assert all(isinstance(v, int) for v in labels)
    assert _hist(labels)[CLASSES.index("d")] == 0 and (_hist(labels)[:3] > 0).all()


# --- Hugging Face datasets ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """The ``datasets`` module, offline, with its caches in a temporary folder."""
    home = tmp_path_factory.mktemp("hf-home")
    saved = {k: os.environ.get(k) for k in ("HF_HOME", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    os.environ.update(HF_HOME=str(home), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed (pip install -e '.[consumers]')")
    datasets.disable_progress_bars()
    yield datasets, home / "cache"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("run", ["png", "png-jpg"])
def test_hf_imagefolder_reads_labels_and_soft_labels(outputs, hf, run):
    datasets, cache = hf
    tree = outputs[run]
    ds = datasets.load_dataset("imagefolder", data_dir=str(tree), cache_dir=str(cache))
    assert {"train", "validation"} <= set(ds), f"splits {sorted(ds)}"
    train = ds["train"]
    assert "soft_label" in train.column_names, f"columns {train.column_names}"
    names = _classes_txt(tree)
    label = train.features["label"]
    if isinstance(label, datasets.ClassLabel):  # inferred from the folders: must be classes.txt
        assert label.names == names
    else:  # read from metadata.jsonl as integers: they name classes.txt entries
        train = train.cast_column("label", datasets.ClassLabel(names=names))
    labels = np.asarray(train["label"])
    soft = np.asarray(train["soft_label"], dtype=np.float64)
    assert soft.shape == (len(train), len(names))
    assert (labels == soft.argmax(axis=1)).all(), f"{(labels != soft.argmax(axis=1)).sum()} labels are not argmax(soft_label)"
    assert np.asarray(train[0]["image"]).shape == (SIDE, SIDE, 3)
    paths = [Path(im["path"]) for im in train.cast_column("image", datasets.Image(decode=False))["image"]]
    assert [names[i] for i in labels] == [p.parent.name for p in paths], "label disagrees with the class folder"
    assert {p.suffix for p in paths} == {".jpg" if run == "png-jpg" else ".png"}
    manifest = [json.loads(line) for line in (tree / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(train) == sum(r["split"] == "train" for r in manifest)
    val = np.asarray(ds["validation"]["label"])
    assert val.dtype.kind == "i" and _hist(val)[CLASSES.index("d")] == 0


@pytest.mark.parametrize("run, image", [("tar", "png"), ("tar-jpg", "jpg")])
def test_hf_webdataset_reads_the_tar_shards(outputs, hf, run, image):
    datasets, cache = hf
    files = {"train": _shards(outputs[run], "train"), "validation": _shards(outputs[run], "val")}
    ds = datasets.load_dataset("webdataset", data_files=files, cache_dir=str(cache))
    train = ds["train"]
    assert {image, "cls", "json"} <= set(train.column_names), f"columns {train.column_names}"
    assert np.asarray(train[0][image]).shape == (SIDE, SIDE, 3)
    cls = np.asarray(train["cls"])
    assert cls.dtype.kind == "i"
    soft = np.asarray([m["soft_label"] for m in train["json"]])
    assert (cls == soft.argmax(axis=1)).all(), f"{(cls != soft.argmax(axis=1)).sum()} of {len(cls)} .cls are not argmax(soft_label)"
    manifest = [json.loads(line) for line in (outputs[run] / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(train) == sum(r["split"] == "train" for r in manifest)
    assert (_hist(train["cls"]) > 0).all() and _hist(ds["validation"]["cls"])[CLASSES.index("d")] == 0


# --- NumPy ------------------------------------------------------------------------------------

def test_npz_labels_are_integer_and_soft_labels_only_in_train(outputs):
    folder, k = outputs["npz"], len(CLASSES)
    splits = {"train": sorted(folder.glob("train-*.npz")), "val": sorted(folder.glob("val-*.npz"))}
    assert splits["train"] and splits["val"]
    for split, paths in splits.items():
        for path in paths:
            with np.load(path) as data:
                labels = data["labels"]
                assert labels.dtype == np.int64 and labels.shape == (len(data["images"]),), f"{path.name}: {labels.dtype} {labels.shape}"
                assert list(data["class_names"]) == CLASSES
                if split == "train":
                    soft = data["soft_labels"]
                    assert soft.shape == (len(labels), k) and soft.dtype == np.float32
                    assert (soft.argmax(axis=1) == labels).all()
                else:
                    assert "soft_labels" not in data.files
                    assert _hist(labels)[CLASSES.index("d")] == 0


# --- torchvision's ImageFolder rules ------------------------------------------------------------

def _image_folder(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """torchvision ImageFolder's rules: classes = sorted sub-folder names; samples by extension."""
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    samples = [(str(p), i) for i, c in enumerate(classes) for p in sorted((split_dir / c).rglob("*"))
               if p.suffix.lower() in IMAGE_EXTS]
    return classes, samples


@pytest.mark.parametrize("run", ["png", "png-jpg"])
def test_image_folder_rules_give_one_class_index_for_every_split(outputs, run):
    tree = outputs[run]
    per_split = {split: _image_folder(tree / split) for split in ("train", "val")}
    assert per_split["train"][0] == per_split["val"][0], f"class index differs between splits: {per_split['train'][0]} vs {per_split['val'][0]}"
    names = _classes_txt(tree)
    for split, (folders, samples) in per_split.items():
        assert len(folders) == len(names), f"{split}: folders {folders}, classes.txt {names}"
        assert samples
    d_folder = tree / "val" / per_split["val"][0][names.index("d")]
    assert d_folder.is_dir() and not any(d_folder.iterdir()), "val lacks d: its folder must exist, empty"
    # the folder a file sits in is its class, in classes.txt order
    manifest = [json.loads(line) for line in (tree / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    by_file = {r["file"]: r["label"] for r in manifest}
    for _folders, samples in per_split.values():
        for path, index in samples:
            assert by_file[str(Path(path).relative_to(tree))] == index, path
    files = [path for _folders, samples in per_split.values() for path, _index in samples]
    assert len(files) == len(manifest), "every manifest entry names an image ImageFolder finds, and no more"
    with Image.open(files[0]) as first:  # the bytes are what the extension says
        assert first.format == {"png": "PNG", "png-jpg": "JPEG"}[run] and first.size == (SIDE, SIDE)


# --- PyTorch DataLoader ------------------------------------------------------------------------

def test_torch_dataloader_over_npz_mixes_classes(outputs):
    torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0, see Makefile)")
    from torch.utils.data import ConcatDataset, DataLoader, Dataset

    class NpzSplit(Dataset):
        """A map-style dataset over one npz shard: (CHW float image, the stored label as is)."""

        def __init__(self, path):
            with np.load(path) as data:
                self.images, self.labels = data["images"], data["labels"]

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return torch.from_numpy(self.images[i]).permute(2, 0, 1).float() / 255, self.labels[i]

    shards = sorted(outputs["npz"].glob("train-*.npz"))
    loader = DataLoader(ConcatDataset([NpzSplit(p) for p in shards]), batch_size=BATCH, shuffle=False)
    images, labels = next(iter(loader))
    assert images.shape == (BATCH, 3, SIDE, SIDE)
    assert labels.dtype == torch.int64 and labels.shape == (BATCH,), f"labels {labels.dtype} {tuple(labels.shape)}"
    hist = _hist(labels.numpy())
    assert (hist > 0).sum() >= 3, f"first batch class histogram {hist.tolist()}: the output is class-sorted"


# --- reports give the real image shape ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "tar"])
def test_run_reports_give_the_real_image_shape(outputs, fmt):
    report = json.loads((outputs[fmt] / "report.json").read_text(encoding="utf-8"))
    assert report["dataset"]["image_shape"] == [SIDE, SIDE, 3]
    assert f"image shape ({SIDE}, {SIDE}, 3)" in (outputs[fmt] / "report.md").read_text(encoding="utf-8")


def test_inspect_and_dry_run_give_the_real_image_shape(outputs, tmp_path):
    out = tmp_path / "inspect"
    res = invoke("inspect", outputs["source"], "-o", out, "-q")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "inspect.json").read_text(encoding="utf-8"))["dataset"]["image_shape"] == [SIDE, SIDE, 3]
    assert f"image shape ({SIDE}, {SIDE}, 3)" in (out / "inspect.md").read_text(encoding="utf-8")
    res = invoke("run", _strategy(tmp_path, outputs["source"], "png"), "--out", tmp_path / "dry", "--dry-run", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["dataset"]["image_shape"] == [SIDE, SIDE, 3]
