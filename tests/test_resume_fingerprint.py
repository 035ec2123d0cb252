"""Resume never mixes datasets: a partial output is reused only for the very input it was made from.

Each case interrupts a sharded run with ``--resume`` (a ``KeyboardInterrupt`` from the third shard
job leaves ``.<name>.partial`` with two finished shards), changes the input, resumes, and compares
the result with a fresh run on the changed input, byte for byte (reports aside). A changed input
discards the partial output and runs fresh. A file whose pixels change between the scan and the
augmentation pass is a data error.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tests.helpers import fingerprint, invoke, write_strategy

SHARD = 40  # output samples per shard: 45 images -> 36 train x 4 outputs -> 4 train shards

FOLDER_STRATEGY = """\
seed: 3
dataset: {{source: "{root}", image_size: [16, 16]}}
split: {{val: 0.2}}
augment:
  copies: 3
  pipeline:
    - affine: {{degrees: 15, translate: 0.1}}
    - gaussian_noise: {{p: 0.5}}
output: {{format: {fmt}}}
"""


def _digit_png(image: np.ndarray, path) -> None:
    """An 8x8 digit (0..16) as a 16x16 gray PNG."""
    pixels = np.kron(image * 15, np.ones((2, 2))).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def make_folder(root, digits, per_class=15):
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == c][:per_class]):
            _digit_png(image, root / f"class{c}" / f"{i:02d}.png")
    return root


def interrupt(tmp_path, monkeypatch, strategy, out, at=3):
    """Run with --resume and stop at the ``at``-th shard job, leaving a partial output."""
    import augcli.engine.executors as executors

    real, calls = executors.run_shard, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "run_shard", flaky)
    res = invoke("run", strategy, "--out", out, "--shard-size", SHARD, "--resume", "-q")
    monkeypatch.setattr(executors, "run_shard", real)
    assert res.exit_code == 130, res.output
    parts = out.parent / f".{out.name}.partial" / ".parts"
    assert len(list(parts.glob("*.json"))) == at - 1


def resume(strategy, out, *flags) -> int:
    """Rerun into ``out`` (after the interruption); returns the number of shards reused."""
    res = invoke("run", strategy, "--out", out, "--shard-size", SHARD, "--json", *flags)
    assert res.exit_code == 0, res.output
    assert not (out.parent / f".{out.name}.partial").exists()
    performance = json.loads(res.stdout)["performance"]
    assert performance["discarded_partial"] == (performance["resumed_shards"] == 0)  # the report says which
    return performance["resumed_shards"]


def fresh(strategy, out) -> dict:
    res = invoke("run", strategy, "--out", out, "--shard-size", SHARD, "-q")
    assert res.exit_code == 0, res.output
    return fingerprint(out)


def keep_mtime(path):
    """Restore ``path``'s times after a rewrite, so only the content tells the inputs apart."""
    st = os.stat(path)
    return lambda: os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _invert_in_place(root, digits):
    """Every third image of each class redrawn (same names, same modification times)."""
    for c in range(3):
        for i, image in enumerate(digits.images[digits.target == c][:15]):
            if i % 3 == 0:
                path = root / f"class{c}" / f"{i:02d}.png"
                restore = keep_mtime(path)
                _digit_png(16 - image, path)
                restore()


def _add_two(root, digits):
    for i, image in enumerate(digits.images[digits.target == 1][20:22]):
        _digit_png(image, root / "class1" / f"{i:02d}a.png")  # sorts between existing names


def _delete_one(root, digits):
    (root / "class0" / "01.png").unlink()


def _unchanged(root, digits):
    pass


@pytest.mark.parametrize("change, fmt, flags, reused", [
    (_invert_in_place, "npz", ["--resume"], 0),
    (_add_two, "npz", ["--resume"], 0),
    (_delete_one, "png", [], 0),  # a plain rerun picks up a partial output too
    (_unchanged, "npz", ["--resume"], 2),  # the control: an unchanged folder still resumes
], ids=["changed_in_place", "two_added", "one_deleted", "unchanged"])
def test_resume_after_the_folder_changed_equals_a_fresh_run(tmp_path, monkeypatch, digits, change, fmt, flags, reused):
    root = make_folder(tmp_path / "imgs", digits)
    strategy = write_strategy(tmp_path / "s.yaml", FOLDER_STRATEGY.format(root=root, fmt=fmt))
    interrupt(tmp_path, monkeypatch, strategy, tmp_path / "out")
    change(root, digits)
    resumed = resume(strategy, tmp_path / "out", *flags)
    assert fingerprint(tmp_path / "out") == fresh(strategy, tmp_path / "fresh")
    assert resumed == reused


NPZ_STRATEGY = """\
seed: 5
dataset: {{source: "{path}"}}
split: {{val: 0.2}}
augment:
  copies: 3
  pipeline: [{{affine: {{degrees: 15, translate: 0.1}}}}, gaussian_noise]
"""


def test_resume_after_the_npz_arrays_changed_equals_a_fresh_run(tmp_path, monkeypatch, digits):
    path = tmp_path / "data.npz"
    images = (digits.images[:50] * 15).astype(np.uint8)[..., None]
    labels = digits.target[:50]
    np.savez(path, images=images, labels=labels)
    strategy = write_strategy(tmp_path / "s.yaml", NPZ_STRATEGY.format(path=path))
    interrupt(tmp_path, monkeypatch, strategy, tmp_path / "out")
    restore = keep_mtime(path)
    changed = images.copy()
    changed[::4] = 255 - changed[::4]
    np.savez(path, images=changed, labels=labels)  # same name, same size, same mtime: only the arrays differ
    restore()
    resumed = resume(strategy, tmp_path / "out", "--resume")
    assert fingerprint(tmp_path / "out") == fresh(strategy, tmp_path / "fresh")
    assert resumed == 0


PHOTO_STRATEGY = """\
seed: 4
dataset: {{source: "{root}"}}
split: {{val: 0.2}}
augment:
  copies: 3
  pipeline: [{{affine: {{degrees: 30, scale: 0.2}}}}, {{gaussian_blur: {{p: 0.5}}}}]
"""


def make_photos(root):
    """45 textured 64x64 RGB crops of the sample photo: large enough for the OpenCV kernels to
    round differently from the NumPy ones (on 16x16 digits the two backends give the same bytes)."""
    from sklearn.datasets import load_sample_image

    photo = load_sample_image("china.jpg")
    for k in range(45):
        folder = root / f"class{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        y, x = 20 * (k // 9), 60 * (k % 9)
        Image.fromarray(photo[y:y + 64, x:x + 64]).save(folder / f"{k:02d}.png")
    return root


def test_resume_with_another_kernel_backend_equals_a_fresh_run(tmp_path, monkeypatch):
    from augcli import backend

    if backend._import_cv2() is None:
        pytest.skip("the OpenCV backend needs opencv-python-headless >= 5")
    root = make_photos(tmp_path / "imgs")
    strategy = write_strategy(tmp_path / "s.yaml", PHOTO_STRATEGY.format(root=root))
    monkeypatch.setattr(backend, "_active", "numpy")  # restored after the test
    interrupt(tmp_path, monkeypatch, strategy, tmp_path / "out")
    monkeypatch.setattr(backend, "_active", "opencv")
    resumed = resume(strategy, tmp_path / "out", "--resume")
    assert fingerprint(tmp_path / "out") == fresh(strategy, tmp_path / "fresh")
    assert resumed == 0
    monkeypatch.setattr(backend, "_active", "numpy")
    assert fingerprint(tmp_path / "out") != fresh(strategy, tmp_path / "numpy")  # the backends differ here


def _same_size(root, digits):
    _digit_png(digits.images[digits.target == 2][0], root / "class0" / "04.png")  # another class's digit


def _other_size(root, digits):
    Image.fromarray(np.full((40, 30), 200, np.uint8)).save(root / "class0" / "04.png")


@pytest.mark.parametrize("replace, workers, cached", [(_same_size, 1, True), (_other_size, 1, True), (_same_size, 2, True),
                                                     (_same_size, 1, False), (_other_size, 1, False),
                                                     (_same_size, 2, False)],
                         ids=["same_size", "other_size", "same_size_2_workers", "same_size_decoded_again",
                              "other_size_decoded_again", "same_size_2_workers_decoded_again"])
def test_a_file_replaced_after_the_scan_is_a_data_error(tmp_path, monkeypatch, digits, replace, workers, cached):
    """The scan judged the old pixels (duplicates, outliers, split): the new ones are never used.
    With the source cache the run reads the scan's own pixels and finds the change by the file's
    stamp at its end; without it, by the pixels when it decodes the file again."""
    import augcli.datasets.source as source

    if not cached:
        monkeypatch.setattr(source, "_new_cache", lambda *args: None)
    root = make_folder(tmp_path / "imgs", digits)
    real_scan = source.scan_folder

    def scan_then_replace(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        replace(root, digits)
        return result

    monkeypatch.setattr(source, "scan_folder", scan_then_replace)
    strategy = write_strategy(tmp_path / "s.yaml", FOLDER_STRATEGY.format(root=root, fmt="npz"))
    res = invoke("run", strategy, "--out", tmp_path / "out", "--shard-size", SHARD, "--workers", workers)
    assert res.exit_code == 1, res.output
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    what = "its size or modification time differs" if cached else "its pixels differ"
    assert f"{root / 'class0' / '04.png'}: changed during the run: {what} from the first pass" in res.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and not p.name.endswith(".lock")]
