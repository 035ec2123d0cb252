"""Images/s delivered to a training loop by a PyTorch DataLoader, for the ImageNet-style pipeline on
256x256 photos cropped to 224x224: augcli's BatchAugmenter (one batched call per batch, in the
collate_fn) against albumentations applied per image in ``__getitem__``, and kornia's augmentation
modules on CPU batches (in the collate_fn). torchvision is left out: the index's build does not
import beside the CPU torch build these machines install.

    .venv/bin/python -m pip install -e ".[bench,bench-torch]"   # albumentations, kornia (torch first)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_dataloader.py --images 1024 --epochs 3

Each side yields float32 (B, 3, 224, 224) tensors in [0, 1] and int64 labels, batch 64, no shuffle.
An epoch is timed from creating the loader's iterator to its last batch (worker start included, as
a training loop pays it every epoch); the rate is the median over --epochs epochs. Loaders run one
after the other, each with its workers on one thread for OpenCV, BLAS and torch. With workers, both
sides build each batch in shared memory (default_collate's output, BatchAugmenter's output), so it
reaches the main process as a handle; faulting in those fresh pages (38 MB a batch) took ~35 ms of
each side's batch on the 2-core machine the README's numbers come from.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy and torch load their thread pools

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from bench_transforms import photo_crops  # noqa: E402  (sibling script: the same photo crops)

from augcli.datasets.base import Dataset as AugcliData  # noqa: E402
from augcli.datasets.source import ArraySource  # noqa: E402
from augcli.pipeline import Pipeline  # noqa: E402
from augcli.torch import BatchAugmenter, SourceDataset  # noqa: E402

BATCH = 64
AUGCLI = [{"random_resized_crop": {"size": 224, "scale": [0.08, 1.0], "p": 1}}, {"hflip": {"p": 0.5}},
          {"color_jitter": {"p": 0.8}}, {"gaussian_blur": {"sigma": [0.5, 2.0], "p": 0.2}}]


def _one_thread(_worker_id=None) -> None:
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


class AlbumentationsImages(Dataset):
    """Per image in ``__getitem__``: what an albumentations user writes."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        import albumentations as A

        self.images, self.labels = images, labels
        self.compose = A.Compose([
            A.RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), p=1), A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=0.8),
            A.GaussianBlur(sigma_limit=(0.5, 2.0), blur_limit=0, p=0.2)], seed=0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        out = self.compose(image=self.images[i])["image"]
        return torch.from_numpy(out).permute(2, 0, 1).float().div_(255.0), int(self.labels[i])


class KorniaCollate:
    """kornia's modules on the stacked CPU batch (float NCHW), in the collate_fn."""

    def __init__(self):
        import kornia.augmentation as K

        self.augment = torch.nn.Sequential(
            K.RandomResizedCrop((224, 224), scale=(0.08, 1.0), p=1.0), K.RandomHorizontalFlip(p=0.5),
            K.ColorJitter(0.2, 0.2, 0.2, 0.05, p=0.8), K.RandomGaussianBlur((23, 23), (0.5, 2.0), p=0.2))

    def __call__(self, batch):
        x = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2).float().div_(255.0)
        with torch.no_grad():
            return self.augment(x), torch.tensor([b[1] for b in batch])


def epoch_rates(make_loader, epochs: int, images: int) -> float:
    rates = []
    for epoch in range(epochs):
        loader = make_loader(epoch)
        t0 = time.perf_counter()
        seen = 0
        for x, y in loader:
            assert x.shape[1:] == (3, 224, 224) and x.dtype == torch.float32
            seen += len(y)
        rates.append(seen / (time.perf_counter() - t0))
        assert seen == images
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="256x256 photo crops per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loader (median reported)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="num_workers values")
    args = parser.parse_args()
    _one_thread()
    photos = photo_crops(args.images)
    labels = np.arange(len(photos)) % 10
    source = ArraySource(AugcliData(photos, labels, np.array([str(i) for i in range(len(photos))]),
                                    [str(k) for k in range(10)]))
    augmenter = BatchAugmenter(Pipeline.from_config(AUGCLI, seed=0), num_classes=10)

    def augcli_loader(workers):
        def make(epoch):
            augmenter.set_epoch(epoch)
            return DataLoader(SourceDataset(source), batch_size=BATCH, collate_fn=augmenter, num_workers=workers,
                              worker_init_fn=_one_thread if workers else None)
        return make

    def albumentations_loader(workers):
        data = AlbumentationsImages(photos, labels)
        return lambda epoch: DataLoader(data, batch_size=BATCH, num_workers=workers,
                                        worker_init_fn=_one_thread if workers else None)

    def kornia_loader(workers):
        collate = KorniaCollate()
        return lambda epoch: DataLoader(SourceDataset(source), batch_size=BATCH, collate_fn=collate,
                                        num_workers=workers, worker_init_fn=_one_thread if workers else None)

    sides = {"augcli BatchAugmenter (collate_fn)": augcli_loader,
             "albumentations 2.0.8 (__getitem__)": albumentations_loader}
    try:
        import kornia

        sides[f"kornia {kornia.__version__} (collate_fn, CPU)"] = kornia_loader
    except ImportError:
        print("# kornia not installed: its row is left out")
    print(f"# {len(photos)} photos 256x256 -> 224x224, batch {BATCH}, ImageNet-style pipeline; torch {torch.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs; median of {args.epochs} epochs")
    print("| loader | num_workers | images/s | augcli / this |")
    print("|---|---:|---:|---:|")
    for workers in args.workers:
        rates = {name: epoch_rates(make(workers), args.epochs, len(photos)) for name, make in sides.items()}
        ours = next(iter(rates.values()))
        for name, rate in rates.items():
            print(f"| {name} | {workers} | {rate:,.0f} | {ours / rate:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
