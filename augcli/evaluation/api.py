"""``augcli evaluate`` as a library call: does the strategy's augmentation raise test accuracy?

    report = evaluate(strategy, Settings(models=("svm",), fractions=(0.1,), repeats=5))
    check_gate(report)   # GateError (exit 3) if a gated difference is surely below min_gain

See ``protocol`` for the paired train/test protocol, ``stats`` for the intervals and tests.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import time
from functools import partial
from pathlib import Path
from typing import Callable

from augcli import __version__
from augcli.engine import runner
from augcli.errors import UsageError
from augcli.evaluation import models as M
from augcli.evaluation.plots import write_png
from augcli.evaluation.protocol import Context, Settings, require_samples, run_all
from augcli.evaluation.report import aggregate, check_gate, clean_json, gate_failures, pct, to_markdown, write_json
from augcli.io.atomic import AtomicFolder, check_target
from augcli.io.guard import strategy_inputs
from augcli.config.strategy import Strategy

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
    if isinstance(leak, dict) and leak.get("action") != "off" and importlib.util.find_spec("augcli.clean.leakage"):
        near = int(leak["max_distance"])
    labels = clean.get("label_errors")
    if not isinstance(labels, dict) or labels.get("action") == "off":
        return strategy, near, None
    config = copy.deepcopy(strategy.config)
    config["clean"]["label_errors"]["action"] = "off"
    folds = int(labels["folds"]) if labels.get("action") == "drop" else None
    return dataclasses.replace(strategy, config=config), near, folds


def prepare(strategy: Strategy, limit: int | None, command: str):
    """What evaluate and search start from: (loaded, cleaned, removed, pipeline, near_distance,
    label_folds), cleaned without label-based checks (those run per training split later)."""
    loaded = runner.load_dataset(strategy, limit=limit)
    label_free, near_distance, label_folds = cleaning_plan(strategy)
    cleaned, removed = runner.clean_dataset(label_free, loaded)
    pipeline = runner.build_pipeline(strategy, cleaned.class_names)
    shape = pipeline.output_shape((1,) + cleaned.image_shape)[1:]
    if tuple(shape) != cleaned.image_shape:
        raise UsageError(f"{strategy.path}: augment.pipeline changes the image size {cleaned.image_shape[:2]} -> "
                         f"{tuple(shape)[:2]}; {command} needs augmented images the size of the test images")
    return loaded, cleaned, removed, pipeline, near_distance, label_folds


def adaptive_section(strategy: Strategy) -> dict | None:
    """The strategy's ``adaptive:`` section when it is enabled, else None."""
    section = strategy.config.get("adaptive") or {}
    return section if section.get("enabled") else None


def _adaptive_note(settings: Settings, adaptive: dict) -> str:
    if not settings.online:
        return "The strategy's adaptive: section is enabled but applies to --online only; not used here."
    held_out = (f"{pct(adaptive['val_fraction'], 0)}% of each class of the training split is held out (hash-ranked, "
                "seed S+r) and not trained on; each pass draws the rest" if adaptive["metric"] == "gap" else
                "each pass draws the whole training split (the confidence measure needs no held-out part)")
    return (f"Adaptive online arm (the strategy's adaptive: section): {held_out}, every sample augmented with "
            "probability p (the other arms are unchanged). After each pass the "
            f"model's {'train - val accuracy' if adaptive['metric'] == 'gap' else 'mean top-class probability'} on the "
            f"real images is measured; every {adaptive['interval']} pass(es) p moves by {adaptive['step']:g} towards "
            f"the target {adaptive['target']:g} (ADA's sign rule), from {adaptive['p_init']:g} within [0, "
            f"{adaptive['p_max']:g}].")


def _notes(settings: Settings, aug: dict) -> list[str]:
    balance = aug["balance"]["target"]
    notes = [
        "Repeat r uses seed S+r (S = the strategy seed) for the split, the augmentation draws and every model's "
        "random_state; all arms of a repeat share them, so differences are paired.",
        "Train: the given fraction of each class of the cleaned dataset (hash-ranked stratified split); test: all the "
        "rest, never augmented. The strategy's split section is not used.",
        "Cleaning (the strategy's clean section) runs once on the whole dataset before splitting, except "
        "label-error detection, which sees labels: it runs on each training split only. Training images that "
        "duplicate a test image (equal pixels, or within clean.leakage.max_distance pHash bits) are removed from "
        "the training side, and so are augmented images equal to a test image (leak_removed, "
        "leak_removed_augmented, label_errors_removed in evaluate.json).",
        f"Augmented training set: exactly what `augcli run` writes for the training split: {aug['copies']} copies "
        f"per image{' (raised by class balancing to ' + str(balance) + ')' if balance is not None else ''}, "
        f"originals {'kept' if aug['keep_originals'] else 'not kept'}.",
        "Soft labels (mixup, cutmix) train as one weighted row per class (sample_weight = label mass); models "
        "without sample_weight (knn) use the argmax class.",
        "Statistics: mean and 95% Student-t interval over repeats; paired differences with a t interval and the "
        "paired t-test (scipy.stats.ttest_rel); per-class accuracy = recall of that class on the test split.",
    ]
    if settings.online:
        notes.append(
            f"Online: every arm trains by {settings.epochs} partial_fit passes of len(train) samples each, from the "
            "same initial weights - original: the originals every pass; offline: the augmented training set above, "
            "read in windows of len(train) rows ordered by (copy, source), so without balancing pass e is copy "
            "e mod (copies+1); online: pass e is a fresh draw Pipeline(images, ids, copy=e+1) of the training "
            "split (no originals).")
    return notes


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
    loaded, cleaned, removed, pipeline, near_distance, label_folds = prepare(strategy, limit, "evaluate")
    for fraction in settings.fractions:  # before any work: scikit-learn would fail deep inside
        require_samples(cleaned, fraction, 1, 3 if "knn" in settings.models else 2, "evaluate",
                        "every model needs two classes, knn 3 images (n_neighbors=3), and the test split one")
    aug = strategy.section("augment")
    adaptive = adaptive_section(strategy)
    ctx = Context(cleaned, pipeline, partial(runner.train_copies, aug), aug["keep_originals"], strategy.seed, settings,
                  near_distance=near_distance, label_folds=label_folds, adaptive=adaptive if settings.online else None)
    results = run_all(ctx, progress)
    report = {
        "augcli_version": __version__,
        "strategy": {"path": strategy.path, "name": strategy.name, "sha256": strategy.sha256, "seed": strategy.seed,
                     "overrides": list(overrides)},
        "dataset": {"source": strategy.section("dataset")["source"], "loaded": len(loaded), "samples": len(cleaned),
                    "removed_by_cleaning": len(loaded) - len(cleaned), "cleaning_records": len(removed),
                    "classes": list(cleaned.class_names), "image_shape": list(cleaned.image_shape)},
        "protocol": {"models": list(settings.models), "fractions": list(settings.fractions),
                     "repeats": settings.repeats, "arms": list(settings.arms),
                     "comparisons": [list(c) for c in settings.comparisons], "online": settings.online,
                     "epochs": settings.epochs if settings.online else None, "pca": settings.pca, "limit": limit,
                     "copies": aug["copies"], "keep_originals": aug["keep_originals"],
                     "leakage_max_distance": near_distance, "label_error_folds": label_folds,
                     "model_specs": {m: M.describe(m, settings.pca) for m in settings.models},
                     "notes": _notes(settings, aug)},
        "results": aggregate(results, settings, min_gain),
        "gate": {"enabled": bool(fail_if_worse), "min_gain": float(min_gain)},
    }
    if adaptive:  # only then: reports of strategies without the section stay as they were
        report["protocol"]["adaptive"] = {**adaptive, "applied": settings.online}
        report["protocol"]["notes"].append(_adaptive_note(settings, adaptive))
    report["gate"]["failures"] = gate_failures(report)
    report["performance"] = {"seconds": time.perf_counter() - started, "jobs": settings.jobs, "tasks": len(results)}
    report = clean_json(report)
    with AtomicFolder(target, overwrite, inputs=strategy_inputs(strategy)) as tmp:
        write_json(tmp / "evaluate.json", report)
        (tmp / "evaluate.md").write_text(to_markdown(report), encoding="utf-8")
        write_png(tmp / "evaluate.png", report)
    report["output"] = {"dir": str(target), "files": ["evaluate.json", "evaluate.md", "evaluate.png"]}
    return report
