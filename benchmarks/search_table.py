"""The README's search table: every method for every model on digits at 10 % training data.

    python benchmarks/search_table.py [--models svm,mlp,logreg,knn] [--methods grid,...] [--jobs 2] [--repeats 10]

Runs ``augcli search configs/digits.yaml --method M --model X`` with each method's default budget
and ``--repeats`` repeats (seeds 0 .. R-1), and ``augcli evaluate`` of RandAugment (n=2, m=9) on the same splits (evaluate's
repeat r and search's repeat r share the seed S + r, hence the training portion and test split).
Prints a Markdown table of held-out test accuracy and each method's wall time, and writes it to
data/out/search-table/table.md; the reports stay in data/out/search-table/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "out" / "search-table"
STRATEGY = "configs/digits.yaml"
FRACTION = "0.1"
# RandAugment's usual setting; fill 0 is the digits' background (its default grey 128 would paint
# a frame no test digit has)
RANDAUGMENT = "augment.pipeline=[{randaugment: {n: 2, m: 9, fill: 0}}]"


def _augcli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "augcli", *args, "-q", "--overwrite"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def _accuracy(arm: dict) -> float:
    return 100.0 * arm["accuracy"]["mean"]


def _diff(row: dict, treatment: str, baseline: str) -> str:
    c = next(c["accuracy"] for c in row["comparisons"] if c["treatment"] == treatment and c["baseline"] == baseline)
    lo, hi = (100.0 * v for v in c["ci"])
    return f"{100.0 * c['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="svm,mlp,logreg,knn")
    ap.add_argument("--methods", default="grid,density,adversarial,adaptive")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--repeats", default="10", help="repeats (seeds 0..R-1); evaluate's default is 10")
    args = ap.parse_args()
    repeats = args.repeats
    models, methods = args.models.split(","), args.methods.split(",")
    ra_dir = OUT / "randaugment"
    _augcli("evaluate", STRATEGY, "--set", RANDAUGMENT, "--train-fraction", FRACTION, "--repeats", repeats,
            "--jobs", args.jobs, *[a for m in models for a in ("--model", m)], "-o", str(ra_dir))
    ra = {row["model"]: row for row in json.loads((ra_dir / "evaluate.json").read_text())["results"]}
    rows, seconds = {}, {}
    for model in models:
        for method in methods:
            target = OUT / f"{method}-{model}"
            seconds[model, method] = _augcli("search", STRATEGY, "--method", method, "--model", model,
                                             "--train-fraction", FRACTION, "--repeats", repeats, "--jobs", args.jobs,
                                             "-o", str(target))
            rows[model, method] = json.loads((target / "search.json").read_text())
    lines = [f"Held-out test accuracy (%), digits, {float(FRACTION):.0%} of each class for training, mean of "
             f"{repeats} repeats; below each method: tuned - digits.yaml in points [95 % CI].", "",
             "| model | none | digits.yaml | randaugment n=2 m=9 | " + " | ".join(methods) + " |",
             "|---|" + "---:|" * (3 + len(methods))]
    for model in models:
        first = rows[model, methods[0]]["results"][0]
        cells = [f"{_accuracy(first['arms']['original']):.2f}", f"{_accuracy(first['arms']['input']):.2f}",
                 f"{_accuracy(ra[model]['arms']['augmented']):.2f}"]
        for method in methods:
            row = rows[model, method]["results"][0]
            cells.append(f"{_accuracy(row['arms']['tuned']):.2f}<br>{_diff(row, 'tuned', 'input')}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "Policy effect at equal copies (tuned - digits.yaml's pipeline at the tuned copies), and the copies "
              "repeat 0 chose:", "", "| model | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for model in models:
        cells = []
        for method in methods:
            report = rows[model, method]
            cells.append(f"{_diff(report['results'][0], 'tuned', 'input_copies')} ({report['protocol']['tuned_copies']})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time of `augcli search` ({repeats} repeats, --jobs " + args.jobs + "; the slowest repeat's search in "
              "brackets):", "", "| model | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for model in models:
        cells = [f"{seconds[model, m]:.0f} s ({max(rows[model, m]['performance']['search_seconds']):.0f} s)"
                 for m in methods]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (OUT / "table.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
