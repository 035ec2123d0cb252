"""Whole-run speed-up of `--workers 2` over `--workers 1` on a folder of JPEG photos (first pass included).

    .venv/bin/python benchmarks/bench_workers.py                    # 500 photos, 4 classes, 3 pairs
    .venv/bin/python benchmarks/bench_workers.py --images 2000 --pairs 5

The folder (data/out/bench-workers/photos-<N>/, git-ignored like all the script writes) is cut from
scikit-learn's two sample photos: 256×256 crops at seeded offsets, flipped at random, JPEG quality
90, in 4 class folders. The run has cleaning off and an affine + flip pipeline, 4 copies, PNG output.
Runs alternate (1, 2, 1, 2, ...) so that load on a shared machine hits both alike; the speed-up is
the median of the per-pair ratios. Each run's report.json `performance.seconds` per stage is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from sklearn.datasets import load_sample_image

from augcli.rng import Streams

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 4
STRATEGY = """\
seed: 1
dataset: {{source: {folder}}}
clean:
  exact_duplicates: "off"
  blank: {{action: "off"}}
  noise: {{action: "off"}}
  near_duplicates: {{action: "off"}}
  leakage: {{action: "off"}}
augment:
  copies: 4
  pipeline:
    - hflip
    - affine: {{degrees: 15, scale: 0.1, translate: 0.05}}
output: {{format: png}}
report: {{preview: false}}
"""


def make_folder(folder: Path, n: int) -> None:
    """Write n JPEG crops, spread over CLASSES folders, unless the folder already holds them."""
    if len(list(folder.glob("*/*.jpg"))) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    photos = [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    streams = Streams.from_seed(0, n)
    ys, xs, flips = streams.uniform(), streams.uniform(), streams.bernoulli(0.5)
    for i in range(n):
        img = photos[i % 2]
        y, x = int(ys[i] * (img.shape[0] - 256)), int(xs[i] * (img.shape[1] - 256))
        crop = img[y:y + 256, x:x + 256]
        if flips[i]:
            crop = crop[:, ::-1]
        path = folder / f"class{i % CLASSES}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop.copy()).save(path, quality=90)


def run_once(strategy: Path, out: Path, workers: int, extra: list[str]) -> tuple[float, dict]:
    """Wall time of one whole `augcli run` process, and its per-stage seconds."""
    cmd = [sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite", "-q",
           "--workers", str(workers), *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    stages = json.loads((out / "report.json").read_text())["performance"]["seconds"]
    return wall, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--engine", default="local")
    args = parser.parse_args()
    data = ROOT / "data" / "out" / "bench-workers"
    folder = data / f"photos-{args.images}"
    make_folder(folder, args.images)
    strategy = data / "strategy.yaml"
    strategy.write_text(STRATEGY.format(folder=json.dumps(str(folder))), encoding="utf-8")
    extra = ["--engine", args.engine]
    ratios = []
    for pair in range(args.pairs):
        times = {}
        for workers in (1, 2):
            times[workers], stages = run_once(strategy, data / f"out{workers}", workers, extra)
            seconds = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
            print(f"pair {pair + 1}, --workers {workers}: {times[workers]:.2f} s wall ({seconds}); "
                  f"load average {os.getloadavg()[0]:.1f}")
        ratios.append(times[1] / times[2])
        print(f"pair {pair + 1}: workers 2 is {ratios[-1]:.2f}x workers 1")
    print(f"median speed-up of --workers 2 over 1: {statistics.median(ratios):.2f}x  ({args.images} images, "
          f"{os.cpu_count()} cores)")
    for workers in (1, 2):
        shutil.rmtree(data / f"out{workers}", ignore_errors=True)


if __name__ == "__main__":
    main()
