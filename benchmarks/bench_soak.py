"""Soak run: about 200,000 augmented digits written in shards, timed, measured, and run again.

    .venv/bin/python benchmarks/bench_soak.py                      # ~200,000 samples, 10 shards
    .venv/bin/python benchmarks/bench_soak.py --workers 2 --format tar   # rerun on 2 workers, WebDataset

Each run is `augcli run` under /usr/bin/time -v (peak resident memory). The second run uses another
batch size (and, with --workers, another worker count) and must produce byte-identical files: every
output file except report.json / report.md (which hold timings) is hashed and compared. Not a test:
it takes a few minutes. Outputs go to data/out/soak-{a,b} (git-ignored) and are removed afterwards
unless --keep is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = """\
seed: 8
dataset: {{source: digits}}
clean: {{near_duplicates: {{action: "off"}}}}
augment:
  copies: {copies}
  pipeline:
    - affine: {{degrees: 12, scale: 0.1, translate: 0.08, shear: 6}}
    - one_of:
        - elastic: {{alpha: 2.0, sigma: 1.2}}
        - gaussian_blur: {{sigma: [0.2, 0.8]}}
    - gaussian_noise: {{std: [0.01, 0.03], p: 0.5}}
    - random_erasing: {{p: 0.2}}
report: {{preview: false}}
"""
VOLATILE = {"report.json", "report.md"}


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every output file but the timing reports, by relative path."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in VOLATILE:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            out[str(path.relative_to(folder))] = digest.hexdigest()
    return out


def timed_run(cmd: list[str]) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, report) of one `augcli run --json`."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"run failed with exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return seconds, int(rss.group(1)) / 1024 if rss else float("nan"), json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=110, help="augmented copies per digit (110: 1797 x 111 = 199,467 samples)")
    parser.add_argument("--shard-size", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=512, help="first run; the rerun uses a quarter of it")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the rerun (the first run uses 1)")
    parser.add_argument("--format", default="npz", choices=["npz", "png", "tar"])
    parser.add_argument("--keep", action="store_true", help="keep the two output folders")
    args = parser.parse_args()

    work = ROOT / "data" / "out"
    work.mkdir(parents=True, exist_ok=True)
    strategy = work / "soak-strategy.yaml"
    strategy.write_text(STRATEGY.format(copies=args.copies), encoding="utf-8")
    runs = [("a", args.batch_size, 1), ("b", max(1, args.batch_size // 4), args.workers)]
    sums, lines = [], []
    for name, batch, workers in runs:
        out = work / f"soak-{name}"
        cmd = [sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite", "--json",
               "--shard-size", str(args.shard_size), "--batch-size", str(batch), "--workers", str(workers),
               "--format", args.format]
        seconds, rss, report = timed_run(cmd)
        total, shards = report["output"]["total"], report["output"]["shards"]
        augment = report["performance"]["seconds"].get("augment", float("nan"))
        lines.append(f"run {name}: {total:,} samples in {shards} shards, batch {batch}, workers {workers}: "
                     f"{seconds:.1f} s wall ({total / seconds:,.0f} samples/s), augment stage {augment:.1f} s, "
                     f"peak RSS {rss:.0f} MB")
        print(lines[-1], flush=True)
        sums.append(checksums(out))
    same = sums[0] == sums[1]
    size = sum((work / "soak-a" / rel).stat().st_size for rel in sums[0]) / 2**20
    print(f"outputs: {len(sums[0])} files, {size:.0f} MiB; identical on rerun: {'yes' if same else 'NO'}")
    if not same:
        differ = sorted(k for k in set(sums[0]) | set(sums[1]) if sums[0].get(k) != sums[1].get(k))
        print("differing files: " + ", ".join(differ[:10]))
    if not args.keep:
        for name, _, _ in runs:
            shutil.rmtree(work / f"soak-{name}", ignore_errors=True)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
