"""The run report: ``report.json`` for machines, ``report.md`` for people, ``preview.png`` to look at."""

from __future__ import annotations

import platform
import resource
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from augcli import __version__
from augcli.backend import active_backend
from augcli.engine.augment import add_counts
from augcli.reporting.header import report_header
from augcli.reporting.markdown import render_run
from augcli.reporting.preview import png_bytes, preview_grid
from augcli.reporting.text import json_text


class Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self):
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def total(self) -> float:
        return time.perf_counter() - self.start


def peak_memory_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def versions() -> dict:
    # Read from the installed distributions' metadata: importing SciPy and scikit-learn just for
    # their version strings cost about a second on every run that never uses them.
    return {"augcli": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": _dist_version("scipy"), "scikit-learn": _dist_version("scikit-learn"),
            "pillow": _dist_version("pillow")}


def _dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _by_reason(records: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rec in records:
        out[rec["reason"]] = out.get(rec["reason"], 0) + 1
    return out


def loaded_line(samples: int, classes: int, source, skipped: dict) -> str:
    """``loaded N samples (K classes) from SOURCE``, and the unreadable files by reason if any."""
    line = f"loaded {samples} samples ({classes} class{'es' if classes != 1 else ''}) from {source}"
    if skipped:
        reasons = ", ".join(f"{k}: {v}" for k, v in skipped.items())
        line += f"\nskipped {sum(skipped.values())} unreadable file(s) ({reasons})"
    return line


def cleaning_line(removed: int, flagged: int, reasons) -> str | None:
    """``cleaning: R removed, F flagged (reasons)``, or None when cleaning found nothing."""
    return f"cleaning: {removed} removed, {flagged} flagged ({', '.join(reasons)})" if removed or flagged else None


def split_line(sizes: dict) -> str:
    """``split: train N, val M`` from samples per split."""
    return "split: " + ", ".join(f"{name} {n}" for name, n in sizes.items())


def stage_lines(loaded, removed: list[dict], splits: dict, source) -> list[str]:
    """What the loading, cleaning and split stages found, as ``augcli run`` says it."""
    lines = [loaded_line(len(loaded), len(loaded.class_names), source, _by_reason(
        [{"reason": s.reason} for s in loaded.skipped]))]
    cleaning = cleaning_line(sum(r.get("action") == "dropped" for r in removed),
                             sum(r.get("action") == "flagged" for r in removed), _by_reason(removed))
    return lines + ([cleaning] if cleaning else []) + [split_line({name: len(part) for name, part in splits.items()})]


def class_balance(counts: dict) -> dict:
    """Counts per class and the imbalance ratio (largest / smallest non-empty class)."""
    sizes = [v for v in counts.values() if v > 0]
    ratio = (max(sizes) / min(sizes)) if sizes else 0.0
    return {"counts": counts, "imbalance_ratio": round(float(ratio), 3)}


def common_report(command: str, strategy, loaded, cleaned, removed, splits, image_shape=None) -> dict:
    """What run and inspect reports share: the header, skipped files, cleaning, counts.

    ``image_shape`` is the source's (``Source.image_shape``): a folder's clean view ``loaded`` holds
    only 32×32 gray thumbnails, whose shape is not what the output holds.
    """
    shape = loaded.image_shape if image_shape is None else image_shape
    skipped = [{"id": s.id, "reason": s.reason, "detail": s.detail} for s in loaded.skipped]
    return {
        **report_header(command, strategy, loaded.class_names, shape),
        "skipped": {"count": len(skipped), "by_reason": _by_reason(skipped), "files": skipped},
        "warnings": [{"id": w.id, "reason": w.reason, "detail": w.detail} for w in loaded.warnings],
        "clean": {"removed": sum(r.get("action") == "dropped" for r in removed),
                  "flagged": sum(r.get("action") == "flagged" for r in removed),
                  "by_reason": _by_reason(removed), "records": removed,
                  **({"label_errors": cleaned.label_check} if hasattr(cleaned, "label_check") else {})},
        "class_balance": class_balance(loaded.class_counts()),
        "counts": {
            "loaded": loaded.class_counts(),
            "after_clean": cleaned.class_counts(),
            "splits": {name: part.class_counts() for name, part in splits.items()},
        },
    }


def build_plan(strategy, loaded, cleaned, removed, splits, planned: dict, target, image_shape=None) -> dict:
    """What a run would produce, without augmenting or writing (``--dry-run``)."""
    report = common_report("run", strategy, loaded, cleaned, removed, splits, image_shape)
    report["plan"] = {"output_dir": str(target), "samples": planned, "total": sum(planned.values()),
                      "copies": strategy.section("augment")["copies"], "transforms": len(strategy.transforms)}
    return report


def build_report(strategy, loaded, cleaned, removed, splits, results, files, timer, target, execution, soft,
                 image_shape=None) -> dict:
    """The run report from the shard results (``shards.ShardResult``), in split order; ``execution``
    (``runner.Execution``) says how the run executed (batch size, workers, resumed shards)."""
    report = common_report("run", strategy, loaded, cleaned, removed, splits, image_shape)
    augmented = sum(r.augmented for r in results)
    fired: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    per_split: dict[str, dict] = {}
    samples: dict[str, int] = {}
    identical: dict[str, dict] = {}  # split -> augmented copies, and those identical to their original
    for r in results:
        add_counts(fired, r.fired)
        add_counts(suppressed, r.suppressed)
        split = r.name.split("-", 1)[0]
        add_counts(per_split.setdefault(split, {}), r.counts)
        samples[split] = samples.get(split, 0) + r.outputs
        if r.augmented:
            add_counts(identical.setdefault(split, {}), {"count": r.identical, "augmented": r.augmented})
    aug_seconds = timer.stages.get("augment", 0.0)
    report["counts"]["output"] = per_split
    report["transforms"] = {
        "pipeline": [t.to_config() for t in strategy.transforms],
        "augmented_samples": augmented,
        "fired": {name: {"count": n, "rate": round(n / augmented, 4) if augmented else 0.0} for name, n in fired.items()},
        "suppressed_by_rules": suppressed,
        "rules": strategy.section("augment")["rules"],
        "balance": strategy.section("augment")["balance"]["target"],
        "soft_labels": soft,
        "identical_copies": {split: {**v, "share": round(v["count"] / v["augmented"], 4)}
                             for split, v in identical.items()},
    }
    report["output"] = {
        "dir": str(target), "format": strategy.section("output")["format"], "shards": len(results),
        "samples": samples, "total": sum(samples.values()), "files": list(files),
    }
    # a split without some class still has its folder (PNG); readers must take indices from classes.txt
    report["output"]["classes"] = list(cleaned.class_names)
    report["output"]["missing_classes"] = {split: [c for c, n in counts.items() if n == 0]
                                           for split, counts in per_split.items() if not all(counts.values())}
    report["performance"] = {
        "seconds": {k: round(v, 4) for k, v in timer.stages.items()},
        "total_seconds": round(timer.total(), 4),
        "augmented_images_per_second": round(augmented / aug_seconds, 1) if aug_seconds > 0 else None,
        "batch_size": execution.batch_size, "workers": execution.workers, "engine": execution.engine,
        "kernel_backend": active_backend(),
        "resumed_shards": execution.resumed,
        "discarded_partial": execution.discarded_partial,
        "peak_memory_mb": peak_memory_mb(),
    }
    report["versions"] = versions()
    return report


def write_report(folder: Path, report: dict) -> None:
    """report.json and report.md into ``folder``; both are listed in the report itself."""
    report["output"]["files"] += ["report.json", "report.md"]
    (folder / "report.md").write_text(render_run(report), encoding="utf-8")
    # timings and memory differ run to run; they live in report.json only, never in data files
    (folder / "report.json").write_text(json_text(report), encoding="utf-8")


def preview_png(train, pipeline, report_cfg: dict) -> bytes:
    """preview.png: a grid, each row one training original followed by augmented copies 1..M of it."""
    return png_bytes(preview_grid(train, pipeline, report_cfg["preview_samples"], report_cfg["preview_copies"]))
