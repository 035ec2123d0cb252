"""Streaming a big image folder in bounded memory: peak RSS of `augcli run` on N 256×256 photos.

    .venv/bin/python benchmarks/bench_streaming.py                 # 50,000 images (made once)
    .venv/bin/python benchmarks/bench_streaming.py --images 5000 --kill-after 20

The folder (data/bench-folder/, git-ignored) is cut from scikit-learn's two sample photos: random
256×256 crops, flipped at random, saved as JPEG in 2 classes. The run is timed with /usr/bin/time -v
for its peak resident memory. With --kill-after S the first run is killed (SIGKILL) after S seconds
and the same command is run again: it must finish, reusing the shards already written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

from augcli.rng import Streams

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = """\
seed: 1
dataset: {{source: {folder}, image_size: 256, color_mode: rgb}}
augment:
  copies: 1
  keep_originals: false
  pipeline:
    - hflip
    - affine: {{degrees: 15, scale: 0.1, translate: 0.05}}
    - brightness: {{limit: 0.2}}
    - contrast: {{factor: 0.2}}
    - gaussian_noise: {{std: [0.01, 0.03]}}
report: {{preview: false}}
"""


def make_folder(folder: Path, n: int) -> None:
    """Write n JPEG crops (half per class) unless the folder already holds them."""
    if len(list(folder.glob("*/*.jpg"))) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    photos = {"china": load_sample_image("china.jpg"), "flower": load_sample_image("flower.jpg")}
    streams = Streams.from_seed(0, n)
    ys, xs, flips = streams.uniform(), streams.uniform(), streams.bernoulli(0.5)
    for i in range(n):
        name = "china" if i % 2 == 0 else "flower"
        img = photos[name]
        y = int(ys[i] * (img.shape[0] - 256))
        x = int(xs[i] * (img.shape[1] - 256))
        crop = img[y:y + 256, x:x + 256]
        if flips[i]:
            crop = crop[:, ::-1]
        (folder / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / name / f"{i:06d}.jpg", quality=90)


def run(cmd: list[str], kill_after: float | None = None) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MB, stdout) of one timed run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: time and the augcli process under it
    out, err = proc.communicate()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return proc.returncode, time.perf_counter() - t0, int(rss.group(1)) / 1024 if rss else float("nan"), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--shard-size", type=int, help="default: augcli's own choice (about 128 MiB per shard)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kill-after", type=float, help="kill the first run after this many seconds, then rerun")
    args = parser.parse_args()
    folder = ROOT / "data" / "bench-folder"
    t0 = time.perf_counter()
    make_folder(folder, args.images)
    print(f"folder: {args.images} JPEG images ({time.perf_counter() - t0:.0f} s to prepare)")
    strategy = ROOT / "data" / "out" / "bench-strategy.yaml"
    strategy.parent.mkdir(parents=True, exist_ok=True)
    strategy.write_text(STRATEGY.format(folder=folder), encoding="utf-8")
    out = ROOT / "data" / "out" / "bench-streaming"
    cmd = [sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite", "--json",
           "--workers", str(args.workers)]
    if args.shard_size:
        cmd += ["--shard-size", str(args.shard_size)]
    if args.kill_after:
        code, seconds, rss, _ = run(cmd, kill_after=args.kill_after)
        print(f"first run killed after {seconds:.0f} s (exit {code}), peak RSS {rss:.0f} MB")
    code, seconds, rss, stdout = run(cmd)
    if code != 0:
        sys.exit(f"run failed with exit {code}")
    report = json.loads(stdout)
    perf = report["performance"]
    print(f"run: {report['output']['total']} samples in {report['output']['shards']} shards, {seconds:.0f} s, "
          f"peak RSS {rss:.0f} MB (limit 600), reused shards {perf['resumed_shards']}, backend {perf['kernel_backend']}")
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in perf["seconds"].items()))


if __name__ == "__main__":
    main()
