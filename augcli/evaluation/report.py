"""Evaluation results -> ``evaluate.json`` (machines), ``evaluate.md`` (people) and the quality gate."""

from __future__ import annotations

import json
import math
import shlex
import warnings

import numpy as np

from augcli.errors import GateError
from augcli.evaluation import stats
from augcli.evaluation.protocol import Settings


def _runs(results: list[dict], model: str, fraction: float) -> list[dict]:
    runs = [r for r in results if r["model"] == model and r["fraction"] == fraction]
    return sorted(runs, key=lambda r: r["repeat"])


def _nanmean(rows) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class absent from every test split stays NaN
        return np.nanmean(np.asarray(rows, dtype=np.float64), axis=0).tolist()


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


def _mean_int(values) -> float:
    v = list(values)
    return round(float(np.mean(v)), 1) if v else 0.0


def gate_failures(report: dict) -> list[dict]:
    """Gated comparisons whose accuracy difference CI lies entirely below ``min_gain``."""
    return [{"model": row["model"], "fraction": row["fraction"], "treatment": c["treatment"],
             "ci_high": c["accuracy"]["ci"][1]}
            for row in report["results"] for c in row["comparisons"] if c["gated"] and c["below_min_gain"]]


def check_gate(report: dict) -> None:
    """Raise GateError (exit 3) naming every failing model and fraction, if the gate is on."""
    gate = report["gate"]
    if not gate["enabled"] or not gate["failures"]:
        return
    by_model: dict[str, list[str]] = {}
    for f in gate["failures"]:
        by_model.setdefault(f["model"], []).append(f"{pct(f['fraction'], 0)}%" + (
            f" ({f['treatment']})" if f["treatment"] != "augmented" else ""))
    names = "; ".join(f"{model} at {', '.join(where)}" for model, where in by_model.items())
    raise GateError(f"{report['strategy']['path']}: augmentation makes accuracy worse (95% CI of the difference "
                    f"entirely below {pp(gate['min_gain'])} pp) for {names}; see evaluate.md")


def clean_json(value):
    """NaN/inf -> None and floats rounded to 6 places, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def command_line(report: dict) -> str:
    """An ``augcli evaluate`` command that reproduces the results section of ``report``."""
    p = report["protocol"]
    args = ["augcli", "evaluate", report["strategy"]["path"]]
    for m in p["models"]:
        args += ["--model", m]
    for f in p["fractions"]:
        args += ["--train-fraction", f"{f:g}"]
    args += ["--repeats", str(p["repeats"])]
    if p["online"]:
        args += ["--online", "--epochs", str(p["epochs"])]
    if p["pca"]:
        args += ["--pca", str(p["pca"])]
    return finish_command(args, report)


def finish_command(args: list[str], report: dict) -> str:
    """``args`` plus the options every command shares (``--limit``, ``--set``), shell-quoted."""
    p = report["protocol"]
    args = args + (["--limit", str(p["limit"])] if p["limit"] else [])
    for expr in report["strategy"]["overrides"]:
        args += ["--set", expr]
    return shlex.join(args)


def pct(x, digits: int = 1) -> str:
    """A fraction as a percentage, "-" when unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}"


def pp(x) -> str:
    """A difference of fractions as signed percentage points, "-" when unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}"


def mean_ci_text(s: dict) -> str:
    """"92.3 ± 0.8": a mean_ci summary in percent with the CI half-width."""
    lo, hi = s["ci"]
    if lo is None or not math.isfinite(lo):
        return pct(s["mean"])
    return f"{pct(s['mean'])} ± {100 * (hi - lo) / 2:.1f}"


def diff_text(s: dict) -> str:
    """"+0.62 [+0.21, +1.03]": a paired difference and its CI in percentage points."""
    return f"{pp(s['mean'])} [{pp(s['ci'][0])}, {pp(s['ci'][1])}]"


def _p(x) -> str:
    return "-" if x is None or not math.isfinite(x) else (f"{x:.1e}" if x < 1e-3 else f"{x:.3f}")


def to_markdown(report: dict) -> str:
    """``evaluate.md``: the protocol, the accuracy tables, per-class changes and the gate."""
    p = report["protocol"]
    arms = p["arms"]
    lines = [f"# augcli evaluate: {report['strategy']['name']}", "",
             f"Command: `{command_line(report)}`", "",
             f"Strategy `{report['strategy']['path']}` (sha256 {report['strategy']['sha256'][:12]}, seed "
             f"{report['strategy']['seed']}); dataset {report['dataset']['samples']} samples after cleaning "
             f"({report['dataset']['removed_by_cleaning']} removed), {len(report['dataset']['classes'])} classes.", "",
             "## Accuracy on the held-out test split (%, mean ± 95% CI over repeats)", "",
             "| model | train fraction | train | " + " | ".join(arms) + " |",
             "|---|---:|---:|" + "---:|" * len(arms)]
    for row in report["results"]:
        lines.append(f"| {row['model']} | {pct(row['fraction'], 0)}% | {row['n_train']:g} | "
                     + " | ".join(mean_ci_text(row["arms"][a]["accuracy"]) for a in arms) + " |")
    lines += ["", "## Paired differences (percentage points, treatment - baseline, 95% t interval)", "",
              "| model | train fraction | comparison | Δ accuracy [95% CI] | p (paired t) | wins/losses/ties "
              "| Δ macro-F1 [95% CI] | verdict |", "|---|---:|---|---|---:|---:|---|---|"]
    for row in report["results"]:
        for c in row["comparisons"]:
            acc = c["accuracy"]
            lines.append(f"| {row['model']} | {pct(row['fraction'], 0)}% | {c['treatment']} - {c['baseline']} | "
                         f"{diff_text(acc)} | {_p(acc['p_value'])} | {acc['wins']}/{acc['losses']}/{acc['ties']} | "
                         f"{diff_text(c['macro_f1'])} | {c['verdict']} |")
    lines += _adaptive_table(report) + _per_class_table(report) + _gate_lines(report) + _protocol_lines(report)
    return "\n".join(lines) + "\n"


def _adaptive_table(report: dict) -> list[str]:
    rows = [row for row in report["results"] if "adaptive" in row]
    if not rows:
        return []
    lines = ["", "## Adaptive strength of the online arm (p after the last update)", "",
             "The online arm ran under the strategy's `adaptive:` section (see Protocol); evaluate.json keeps each "
             "repeat's trajectory.", "",
             "| model | train fraction | fit / held out | final p (mean ± 95% CI) | final p per repeat |",
             "|---|---:|---:|---:|---|"]
    for row in rows:
        a = row["adaptive"]
        final = a["final_p"]
        lo, hi = final["ci"]
        ci = "" if lo is None or not math.isfinite(lo) else f" ± {(hi - lo) / 2:.2f}"
        lines.append(f"| {row['model']} | {pct(row['fraction'], 0)}% | {a['n_fit']:g} / {a['n_val']:g} | "
                     f"{final['mean']:.2f}{ci} | {', '.join(f'{v:.2f}' for v in final['values'])} |")
    return lines


def _per_class_table(report: dict) -> list[str]:
    classes = report["dataset"]["classes"]
    lines = ["", "## Per-class accuracy change (percentage points, mean over repeats)", "",
             "| model | fraction | comparison | " + " | ".join(classes) + " |",
             "|---|---:|---|" + "---:|" * len(classes)]
    for row in report["results"]:
        for c in row["comparisons"]:
            cells = " | ".join(pp(v) for v in c["per_class_change"])
            lines.append(f"| {row['model']} | {pct(row['fraction'], 0)}% | {c['treatment']} - {c['baseline']} | {cells} |")
    return lines


def _gate_lines(report: dict) -> list[str]:
    gate = report["gate"]
    state = "on" if gate["enabled"] else "off (report only)"
    lines = ["", "## Quality gate", "",
             f"`--fail-if-worse` is {state}; threshold (`--min-gain`) {pp(gate['min_gain'])} pp on accuracy."]
    if gate["failures"]:
        lines.append("Below the threshold (whole CI): " + "; ".join(
            f"{f['model']} at {pct(f['fraction'], 0)}% ({f['treatment']})" for f in gate["failures"]))
    else:
        lines.append("No gated comparison has its whole CI below the threshold.")
    return lines


def _protocol_lines(report: dict) -> list[str]:
    p = report["protocol"]
    lines = ["", "## Protocol", ""] + [f"- {text}" for text in p["notes"]]
    lines += ["", "Models:", ""] + [f"- `{name}`: {text}" for name, text in p["model_specs"].items()]
    perf = report.get("performance", {})
    if perf:
        lines += ["", f"Run time {perf['seconds']:.1f} s with --jobs {perf['jobs']} ({perf['tasks']} tasks)."]
    return lines


def write_json(path, report: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(clean_json(report), fh, indent=2)
        fh.write("\n")
