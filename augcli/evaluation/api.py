"""``augcli evaluate`` as a library call: does the strategy's augmentation raise test accuracy?

    report = evaluate(strategy, Settings(models=("svm",), fractions=(0.1,), repeats=5))
    check_gate(report)   # GateError (exit 3) if a gated difference is surely below min_gain

See ``protocol`` for the paired train/test protocol, ``stats`` for the intervals and tests.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

from augcli.config.strategy import Strategy
from augcli.datasets.base import Dataset
from augcli.engine import stages
from augcli.errors import UsageError
from augcli.evaluation import models as M
from augcli.evaluation import report as R
from augcli.evaluation.protocol import Context, Settings, require_samples, run_all
from augcli.evaluation.report import check_gate
from augcli.io.atomic import AtomicFolder, check_target
from augcli.io.guard import strategy_inputs
from augcli.pipeline import Pipeline
from augcli.reporting.text import clean_json

__all__ = ["Settings", "evaluate", "check_gate", "output_dir"]


def output_dir(strategy: Strategy, out: str | None) -> Path:
    """``out``, or data/out/evaluate/<strategy name>."""
    return Path(out) if out else Path("data") / "out" / "evaluate" / strategy.name


def check_settings(settings: Settings, fail_if_worse: bool) -> None:
    """Refuse (exit 2) combinations that cannot be evaluated, before any work."""
    unknown = [m for m in settings.models if m not in M.MODELS]
    if unknown:
        raise UsageError(f"unknown model {unknown[0]!r}; expected one of {', '.join(M.MODELS)}")
    if not settings.models or not settings.fractions:
        raise UsageError("evaluate needs at least one model and one train fraction")
    bad = [f for f in settings.fractions if not 0.0 < f < 1.0]
    if bad:
        raise UsageError(f"--train-fraction must be in (0, 1), got {bad[0]}")
    if settings.online:
        offline_only = [m for m in settings.models if not M.MODELS[m].online]
        if offline_only:
            raise UsageError(f"--online needs models with partial_fit ({', '.join(n for n, s in M.MODELS.items() if s.online)}); "
                             f"got {', '.join(offline_only)}")
        if settings.pca:
            raise UsageError("--pca cannot be combined with --online (PCA would be fitted on one epoch only)")
    if settings.pca and any(M.MODELS[m].torch for m in settings.models):
        raise UsageError("--pca applies to the scikit-learn models, not to --model cnn (it learns from the images)")
    M.check_available(settings.models, settings.device)
    if fail_if_worse and settings.repeats < 2:
        raise UsageError("--fail-if-worse needs --repeats of at least 2 to estimate an interval")


def cleaning_plan(strategy: Strategy) -> tuple[Strategy, int | None, int | None]:
    """(strategy to clean the whole dataset with, pHash leakage radius or None, label-error folds or None).

    Detectors that decide with labels (``clean.label_errors``) must not see the test labels, so they
    are switched off for the whole-dataset pass and run on each training split instead (``drop``
    only: a flag changes no training data). Near-duplicate leakage uses ``clean.leakage`` unless off.
    """
    clean = strategy.section("clean")
    near = None
    leak = clean.get("leakage")
    if isinstance(leak, dict) and leak.get("action") != "off":
        near = int(leak["max_distance"])
    labels = clean.get("label_errors")
    if not isinstance(labels, dict) or labels.get("action") == "off":
        return strategy, near, None
    config = copy.deepcopy(strategy.config)
    config["clean"]["label_errors"]["action"] = "off"
    folds = int(labels["folds"]) if labels.get("action") == "drop" else None
    return dataclasses.replace(strategy, config=config), near, folds


class Prepared(NamedTuple):
    """What evaluate and search start from (a tuple, so it unpacks as one)."""

    loaded: Dataset
    cleaned: Dataset            # without label-based checks: those run per training split later
    removed: list[dict]         # the cleaning findings
    pipeline: Pipeline
    near_distance: int | None   # pHash leakage radius, or None
    label_folds: int | None     # folds of the per-split label-error check, or None


def prepare(strategy: Strategy, limit: int | None, command: str) -> Prepared:
    """The dataset loaded and cleaned, the strategy's pipeline checked against the image size."""
    loaded = stages.load_dataset(strategy, limit=limit)
    label_free, near_distance, label_folds = cleaning_plan(strategy)
    cleaned, removed = stages.clean_dataset(label_free, loaded)
    pipeline = stages.build_pipeline(strategy, cleaned.class_names)
    shape = pipeline.output_shape((1,) + cleaned.image_shape)[1:]
    if tuple(shape) != cleaned.image_shape:
        raise UsageError(f"{strategy.path}: augment.pipeline changes the image size {cleaned.image_shape[:2]} -> "
                         f"{tuple(shape)[:2]}; {command} needs augmented images the size of the test images")
    return Prepared(loaded, cleaned, removed, pipeline, near_distance, label_folds)


def adaptive_section(strategy: Strategy) -> dict | None:
    """The strategy's ``adaptive:`` section when it is enabled, else None."""
    section = strategy.config.get("adaptive") or {}
    return section if section.get("enabled") else None


def check_samples(cleaned: Dataset, settings: Settings) -> None:
    """Refuse (DataError) before any work: scikit-learn would fail deep inside."""
    for fraction in settings.fractions:
        require_samples(cleaned, fraction, 1, 3 if "knn" in settings.models else 2, "evaluate",
                        "every model needs two classes, knn 3 images (n_neighbors=3), and the test split one")


def _context(strategy: Strategy, settings: Settings, prepared: Prepared, adaptive: dict | None) -> Context:
    aug = strategy.section("augment")
    return Context(prepared.cleaned, prepared.pipeline, partial(stages.train_copies, aug), aug["keep_originals"],
                   strategy.seed, settings, near_distance=prepared.near_distance, label_folds=prepared.label_folds,
                   adaptive=adaptive if settings.online else None)


def evaluate(strategy: Strategy, settings: Settings, out: str | None = None, overwrite: bool = False,
             limit: int | None = None, min_gain: float = 0.0, fail_if_worse: bool = False,
             overrides=(), progress: Callable[[int], None] | None = None) -> dict:
    """Run the protocol, write evaluate.json/md/png atomically and return the report (JSON-ready).

    ``min_gain`` is an accuracy difference (0.01 = one percentage point). The gate is not applied
    here: call ``check_gate(report)`` after showing the results.
    """
    started = time.perf_counter()
    check_settings(settings, fail_if_worse)
    target = output_dir(strategy, out)
    check_target(target, overwrite, strategy_inputs(strategy))  # before any work: exit 2, nothing touched
    prepared = prepare(strategy, limit, "evaluate")
    check_samples(prepared.cleaned, settings)
    adaptive = adaptive_section(strategy)
    results = run_all(_context(strategy, settings, prepared, adaptive), progress)
    report = R.build_report(strategy, settings, prepared, results, limit=limit, min_gain=min_gain,
                            fail_if_worse=fail_if_worse, overrides=overrides, adaptive=adaptive)
    report["performance"] = {"seconds": time.perf_counter() - started, "jobs": settings.jobs, "tasks": len(results)}
    report = clean_json(report)
    with AtomicFolder(target, overwrite, inputs=strategy_inputs(strategy)) as tmp:
        R.write_files(tmp, report)
    report["output"] = {"dir": str(target), "files": list(R.FILES)}
    return report
