"""Task results -> one summary row per (model, train fraction): per-arm means and the paired
comparisons. ``evaluate`` and ``search`` both report their test arms through it."""

from __future__ import annotations

import warnings

import numpy as np

from augcli.evaluation import stats
from augcli.evaluation.protocol import Settings


def _runs(results: list[dict], model: str, fraction: float) -> list[dict]:
    runs = [r for r in results if r["model"] == model and r["fraction"] == fraction]
    return sorted(runs, key=lambda r: r["repeat"])


def _nanmean(rows) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class absent from every test split stays NaN
        return np.nanmean(np.asarray(rows, dtype=np.float64), axis=0).tolist()


def _mean_int(values) -> float:
    v = list(values)
    return round(float(np.mean(v)), 1) if v else 0.0


def _arm_summary(runs: list[dict], arm: str) -> dict:
    acc = [r["arms"][arm]["accuracy"] for r in runs]
    f1 = [r["arms"][arm]["macro_f1"] for r in runs]
    return {"accuracy": {**stats.mean_ci(acc), "values": acc},
            "macro_f1": {**stats.mean_ci(f1), "values": f1},
            "per_class_accuracy": _nanmean([r["arms"][arm]["per_class"] for r in runs])}


def _comparison(runs: list[dict], treatment: str, baseline: str, min_gain: float) -> dict:
    def values(arm, metric):
        return [r["arms"][arm][metric] for r in runs]

    acc = stats.paired(values(treatment, "accuracy"), values(baseline, "accuracy"))
    change = [np.asarray(r["arms"][treatment]["per_class"]) - np.asarray(r["arms"][baseline]["per_class"]) for r in runs]
    return {
        "treatment": treatment, "baseline": baseline,
        "accuracy": acc,
        "macro_f1": stats.paired(values(treatment, "macro_f1"), values(baseline, "macro_f1")),
        "per_class_change": _nanmean(change),
        "gated": baseline == "original",  # the gate asks "does augmenting help?", not online vs offline
        "verdict": "better" if stats.above(acc, 0.0) else "worse" if stats.below(acc, 0.0) else "no clear difference",
        "below_min_gain": stats.below(acc, min_gain),
    }


def _adaptive_summary(runs: list[dict]) -> dict:
    """The adaptive online arm: final p over repeats and each repeat's trajectory (p after each update)."""
    final = [(r["adaptive"]["p"] or [r["adaptive"]["p_init"]])[-1] for r in runs]
    return {"final_p": {**stats.mean_ci(final), "values": final},
            "n_fit": _mean_int(r["adaptive"]["n_fit"] for r in runs),
            "n_val": _mean_int(r["adaptive"]["n_val"] for r in runs),
            "trajectories": [{key: r["adaptive"][key] for key in ("p", "measure", "train", "val")} for r in runs]}


def aggregate(results: list[dict], settings: Settings, min_gain: float = 0.0) -> list[dict]:
    """One row per (model, fraction): per-arm summaries and the paired comparisons."""
    rows = []
    for model in settings.models:
        for fraction in settings.fractions:
            runs = _runs(results, model, fraction)
            rows.append({
                "model": model, "fraction": fraction, "repeats": len(runs),
                "n_train": _mean_int(r["n_train"] for r in runs),
                "n_augmented": _mean_int(r["n_augmented"] for r in runs),
                "n_test": _mean_int(r["n_test"] for r in runs),
                "leak_removed": sum(r["leak_removed"] for r in runs),
                "leak_removed_augmented": sum(r["leak_removed_augmented"] for r in runs),
                "label_errors_removed": sum(r["label_errors_removed"] for r in runs),
                "arms": {arm: _arm_summary(runs, arm) for arm in settings.arms},
                "comparisons": [_comparison(runs, t, b, min_gain) for t, b in settings.comparisons],
            })
            if runs and all("adaptive" in r for r in runs):
                rows[-1]["adaptive"] = _adaptive_summary(runs)
    return rows
