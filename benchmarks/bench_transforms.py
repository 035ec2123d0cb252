"""Throughput of augcli transforms and pipelines (images/s, single process), median of repeats.

    .venv/bin/python benchmarks/bench_transforms.py                  # a default selection
    .venv/bin/python benchmarks/bench_transforms.py randaugment affine --repeats 7

Data: scikit-learn's digits (1797 × 8×8 gray) and 64 RGB 256×256 crops of its sample photos.
Sampling (drawing parameters) is included in the time: it is part of what a run costs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
from sklearn.datasets import load_digits, load_sample_image

from augcli.pipeline import Pipeline
from augcli.rng import hash_ids, sample_keys

DEFAULT = ["hflip", "affine", "rotate", "elastic", "gaussian_noise", "gaussian_blur", "color_jitter",
           "random_erasing", "randaugment", "trivialaugment", "autoaugment", "augmix"]


def digits() -> np.ndarray:
    return np.rint(load_digits().images * (255.0 / 16.0)).astype(np.uint8)[..., None]


def photo_crops(n: int = 64, size: int = 256) -> np.ndarray:
    crops = []
    for name in ("china.jpg", "flower.jpg"):
        img = load_sample_image(name)
        h, w = img.shape[:2]
        for i in range(n // 2):
            y = (i * 37) % (h - size)
            x = (i * 53) % (w - size)
            crops.append(img[y:y + size, x:x + size])
    return np.stack(crops)


def measure(pipe: Pipeline, images: np.ndarray, batch: int, repeats: int) -> float:
    """Median images/s over ``repeats`` passes of the whole array in batches of ``batch``."""
    keys = sample_keys(pipe.seed, hash_ids([str(i) for i in range(len(images))]), 1)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for lo in range(0, len(images), batch):
            pipe.run(images[lo:lo + batch], keys[lo:lo + batch])
        rates.append(len(images) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    small, photos = digits(), photo_crops()
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print("| transform (p=1) | digits 8×8, batch 256 (img/s) | photos 256×256 RGB, batch 8 (img/s) |")
    print("|---|---:|---:|")
    for name in args.names:
        pipe = Pipeline.from_config([{name: {"p": 1.0}}], seed=0)
        a = measure(pipe, small, 256, args.repeats)
        b = measure(pipe, photos, 8, args.repeats)
        print(f"| {name} | {a:,.0f} | {b:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
