"""augcli.torch: the same batches for any num_workers and start method, soft labels of width K for
any batch, and no dependence on the batch size without mixing."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from augcli.datasets import load_source  # noqa: E402
from augcli.datasets.source import ArraySource  # noqa: E402
from augcli.pipeline import Pipeline  # noqa: E402
from augcli.torch import BatchAugmenter, SourceDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = [{"affine": {"degrees": 10, "translate": 0.1}}, {"gaussian_noise": {"std": [0.01, 0.05], "p": 0.5}}]


@pytest.fixture(scope="module")
def source():
    data = load_source("digits")
    return ArraySource(data.subset(np.arange(96)))


def _batches(source, augmenter, batch_size, **loader):
    data = SourceDataset(source)
    batches = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=augmenter, **loader)
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


def test_batches_are_the_same_for_any_workers_and_start_method(source):
    augmenter = BatchAugmenter(Pipeline.from_config(ENTRIES, seed=3), num_classes=10)
    augmenter.set_epoch(2)
    x0, y0 = _batches(source, augmenter, 32)
    assert x0.shape == (96, 1, 8, 8) and x0.dtype == torch.float32 and 0 <= x0.min() and x0.max() <= 1
    assert torch.equal(y0, torch.as_tensor(source.labels[:96]))
    for method in ("fork", "spawn"):
        x, y = _batches(source, augmenter, 32, num_workers=2, multiprocessing_context=method)
        assert torch.equal(x, x0) and torch.equal(y, y0), method
    strategy = torch.multiprocessing.get_sharing_strategy()
    try:  # workers then write batches straight into torch's shared memory (no memfd)
        torch.multiprocessing.set_sharing_strategy("file_system")
        assert torch.equal(_batches(source, augmenter, 32, num_workers=1)[0], x0)
    finally:
        torch.multiprocessing.set_sharing_strategy(strategy)
    x16, _ = _batches(source, augmenter, 16)  # no mixing: a sample's draws do not depend on its batch
    assert torch.equal(x16, x0)
    augmenter.set_epoch(3)
    assert not torch.equal(_batches(source, augmenter, 32)[0], x0)  # another epoch, other draws
    raw = torch.from_numpy(source.read(np.arange(96))).permute(0, 3, 1, 2).float() / 255
    assert not torch.equal(x0, raw)


def test_an_in_memory_source_gives_read_only_views(source):
    image, label, sample_id = SourceDataset(source, rows=[5, 7])[1]
    assert np.array_equal(image, source.read(np.array([7]))[0])
    assert (label, sample_id) == (source.labels[7], source.ids[7])
    assert np.shares_memory(image, source.data.images) and not image.flags.writeable
    assert source.data.images.flags.writeable


def test_mixing_gives_soft_labels_of_width_k_for_any_batch(source):
    augmenter = BatchAugmenter(Pipeline.from_config([{"mixup": {"alpha": 0.4, "p": 1}}], seed=0), num_classes=10)
    zeros = [i for i in range(96) if source.labels[i] == 0][:5]  # a batch of one class only
    x, y = augmenter([(source.read(np.array([i]))[0], int(source.labels[i]), str(source.ids[i])) for i in zeros])
    assert x.shape == (len(zeros), 1, 8, 8) and y.shape == (len(zeros), 10) and y.dtype == torch.float32
    assert torch.allclose(y.sum(dim=1), torch.ones(len(zeros)))


EVERY_BYTE = np.arange(2 * 16 * 16 * 3, dtype=np.uint8).reshape(2, 16, 16, 3)  # each byte value in each channel
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _collate(images, entries=(), **options):
    augmenter = BatchAugmenter(Pipeline.from_config(list(entries), seed=3), num_classes=10, **options)
    return augmenter([(image, 0, str(i)) for i, image in enumerate(images)])[0]


def test_float_batches_are_exactly_the_plain_formula(source):
    x = _collate(EVERY_BYTE)
    assert x.dtype == torch.float32 and x.is_contiguous()
    assert torch.equal(x, torch.from_numpy(EVERY_BYTE).permute(0, 3, 1, 2).float().div_(255))
    images = source.read(np.arange(16))  # augmented, one channel
    augmented = Pipeline.from_config(ENTRIES, seed=3)(images, ids=[str(i) for i in range(16)], copy=1)
    plain = torch.from_numpy(augmented).permute(0, 3, 1, 2).float().div_(255)
    assert torch.equal(_collate(images, ENTRIES), plain) and not np.array_equal(augmented, images)


def test_mean_std_normalise_as_torchvision_does():
    x = _collate(EVERY_BYTE, **IMAGENET)
    mean, std = (torch.tensor(IMAGENET[k]).view(3, 1, 1) for k in ("mean", "std"))
    plain = torch.from_numpy(EVERY_BYTE).permute(0, 3, 1, 2).float().div_(255)
    assert torch.equal(x, plain.sub_(mean).div_(std))  # Normalize's float32 steps: the same bits
    assert torch.equal(_collate(EVERY_BYTE, mean=0.5, std=0.5), _collate(EVERY_BYTE, mean=[0.5] * 3, std=[0.5] * 3))
    with pytest.raises(ValueError, match="1 or 3 values"):
        _collate(EVERY_BYTE, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(ValueError, match="together"):
        _collate(EVERY_BYTE, mean=(0.5, 0.5, 0.5))


def test_uint8_batches_are_the_augmented_bytes(source):
    x = _collate(EVERY_BYTE, dtype=torch.uint8)
    assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(EVERY_BYTE).permute(0, 3, 1, 2))
    augmenter = BatchAugmenter(Pipeline.from_config(ENTRIES, seed=3), num_classes=10, dtype=torch.uint8)
    x0, _ = _batches(source, augmenter, 32)
    assert x0.dtype == torch.uint8 and torch.equal(_batches(source, augmenter, 32, num_workers=1)[0], x0)
    assert torch.equal(x0.float().div_(255), _batches(source, BatchAugmenter(augmenter.pipeline, 10), 32)[0])
    with pytest.raises(ValueError, match="only with dtype=torch.float32"):
        _collate(EVERY_BYTE, mean=0.5, std=0.5, dtype=torch.uint8)


def test_an_adaptive_augmenter_moves_p_between_epochs_the_same_for_any_workers(source):
    from augcli import AdaptiveController, AdaptivePipeline

    def run(**loader):
        control = AdaptiveController(target=0.05, step=0.5, p_init=0.0)
        augmenter = BatchAugmenter(AdaptivePipeline(Pipeline.from_config(ENTRIES, seed=3), control), num_classes=10)
        epochs = []
        for epoch in range(3):
            augmenter.set_epoch(epoch)
            epochs.append(_batches(source, augmenter, 32, **loader)[0])
            augmenter.update(1.0, 0.5)  # train 1.0, val 0.5: the gap is above the target, so p goes up
        return epochs, [h["p"] for h in control.history]

    epochs, ps = run()
    assert ps == [0.5, 1.0, 1.0]
    raw = torch.from_numpy(source.read(np.arange(96))).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(epochs[0], raw)  # p = 0: nothing augmented
    changed = [(x != raw).flatten(1).any(dim=1).float().mean().item() for x in epochs]
    assert 0.2 < changed[1] < 0.8 and changed[2] > 0.9  # about half the samples at p = 0.5, all at p = 1
    again, _ = run(num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(epochs, again))


def test_from_strategy_honours_the_adaptive_section():
    names = [str(d) for d in range(10)]
    adaptive = BatchAugmenter.from_strategy(ROOT / "configs" / "digits-adaptive.yaml", names)
    assert adaptive.p == 0.0 and adaptive.num_classes == 10
    assert adaptive.update(0.99) == 0.05  # metric confidence: 0.99 > target 0.9, one step up
    plain = BatchAugmenter.from_strategy(ROOT / "configs" / "digits.yaml", names)
    assert plain.p == 1.0 and plain.controller is None
    with pytest.raises(ValueError, match="adaptive"):
        plain.update(0.9, 0.8)


def _doc_loop(workers: int, epochs: int):
    text = (ROOT / "docs" / "training-loops.md").read_text(encoding="utf-8")
    section = text.split("## PyTorch `Dataset` and `DataLoader`", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope = {"WORKERS": workers, "EPOCHS": epochs, "print": lambda *a: None}
    exec(code, scope)
    return scope


def test_the_documented_training_loop_runs_the_same_on_0_and_2_workers(monkeypatch):
    monkeypatch.chdir(ROOT)  # the example names configs/ relative to the repository
    one, two = _doc_loop(0, 2), _doc_loop(2, 2)
    history = one["augmenter"].controller.history
    assert len(history) == 2 and one["p"] == history[-1]["p"] and 0.0 <= one["p"] <= 0.1
    assert one["val_accuracy"] > 0.5
    for a, b in zip(one["model"].state_dict().values(), two["model"].state_dict().values()):
        assert torch.equal(a, b)
