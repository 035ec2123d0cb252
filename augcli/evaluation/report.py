"""Evaluation results -> ``evaluate.json`` (machines), ``evaluate.md`` (people), ``evaluate.png``
and the quality gate. The protocol's prose lives here too: it is what the report says was done."""

from __future__ import annotations

import math

from augcli.errors import GateError
from augcli.evaluation import models as M
from augcli.evaluation.plots import write_png
from augcli.evaluation.protocol import Settings
from augcli.evaluation.summary import aggregate
from augcli.reporting.header import header_lines, report_header
from augcli.reporting.text import diff_text, finish_command, mean_ci_text, p_text, pct, pp, write_json

FILES = ["evaluate.json", "evaluate.md", "evaluate.png"]


def build_report(strategy, settings: Settings, prepared, results: list[dict], *, limit: int | None, min_gain: float,
                 fail_if_worse: bool, overrides=(), adaptive: dict | None = None) -> dict:
    """The report (not yet ``clean_json``-ed): header, dataset counts, protocol, results and gate.

    ``prepared`` is ``api.prepare``'s result; ``adaptive`` the strategy's enabled ``adaptive:`` section.
    """
    loaded, cleaned = prepared.loaded, prepared.cleaned
    report = report_header("evaluate", strategy, cleaned.class_names, cleaned.image_shape, overrides)
    report["dataset"].update(loaded=len(loaded), samples=len(cleaned), removed_by_cleaning=len(loaded) - len(cleaned),
                             cleaning_records=len(prepared.removed))
    report["protocol"] = _protocol(strategy.section("augment"), settings, prepared, limit)
    report["results"] = aggregate(results, settings, min_gain)
    report["gate"] = {"enabled": bool(fail_if_worse), "min_gain": float(min_gain)}
    if adaptive:  # only then: reports of strategies without the section stay as they were
        report["protocol"]["adaptive"] = {**adaptive, "applied": settings.online}
        report["protocol"]["notes"].append(_adaptive_note(settings, adaptive))
    report["gate"]["failures"] = gate_failures(report)
    return report


def _protocol(aug: dict, settings: Settings, prepared, limit: int | None) -> dict:
    return {"models": list(settings.models), "fractions": list(settings.fractions),
            "repeats": settings.repeats, "arms": list(settings.arms),
            "comparisons": [list(c) for c in settings.comparisons], "online": settings.online,
            "epochs": _epochs(settings), "pca": settings.pca, "limit": limit, "device": settings.device,
            "copies": aug["copies"], "keep_originals": aug["keep_originals"],
            "leakage_max_distance": prepared.near_distance, "label_error_folds": prepared.label_folds,
            "model_specs": {m: M.describe(m, settings.pca) for m in settings.models},
            "notes": _notes(settings, aug)}


def _epochs(settings: Settings) -> dict | None:
    """Epochs per model where they apply (on-line arms, the CNN), else None."""
    return {m: settings.epochs_for(m) for m in settings.models if settings.online or M.MODELS[m].torch} or None


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
        "Soft labels (mixup, cutmix) train as one weighted row per class (sample_weight = label mass), the cnn on "
        "them as they are (soft-label cross-entropy); models "
        "without sample_weight (knn) use the argmax class.",
        "Statistics: mean and 95% Student-t interval over repeats; paired differences with a t interval and the "
        "paired t-test (scipy.stats.ttest_rel); per-class accuracy = recall of that class on the test split.",
    ]
    cnn = [m for m in settings.models if M.MODELS[m].torch]
    if cnn and not settings.online:
        notes.append(
            "cnn: both arms train by the same number of epochs (protocol.epochs) of len(train) samples each, from the "
            "same initial weights, so they differ in data, not in training budget; the augmented arm reads the "
            "augmented training set above in windows of len(train) rows ordered by (copy, source).")
    if settings.online:
        notes.append(
            "Online: every arm trains by the model's epochs (protocol.epochs) of partial_fit passes of len(train) "
            "samples each, from the "
            "same initial weights - original: the originals every pass; offline: the augmented training set above, "
            "read in windows of len(train) rows ordered by (copy, source), so without balancing pass e is copy "
            "e mod (copies+1); online: pass e is a fresh draw Pipeline(images, ids, copy=e+1) of the training "
            "split (no originals).")
    return notes


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
        args.append("--online")
    epochs = set((p["epochs"] or {}).values())
    if len(epochs) == 1:  # one value for every model reproduces it; several are each model's default
        args += ["--epochs", str(epochs.pop())]
    if p.get("device", "cpu") != "cpu":
        args += ["--device", p["device"]]
    if p["pca"]:
        args += ["--pca", str(p["pca"])]
    return finish_command(args, report)


def to_markdown(report: dict) -> str:
    """``evaluate.md``: the protocol, the accuracy tables, per-class changes and the gate."""
    arms = report["protocol"]["arms"]
    ds = report["dataset"]
    lines = header_lines(report, f"augcli evaluate: {report['strategy']['name']}", command_line(report))
    lines += [f"- after cleaning: {ds['samples']} samples ({ds['removed_by_cleaning']} removed)", "",
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
                         f"{diff_text(acc)} | {p_text(acc['p_value'])} | {acc['wins']}/{acc['losses']}/{acc['ties']} | "
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


def write_files(folder, report: dict) -> None:
    """``FILES`` into ``folder``."""
    write_json(folder / "evaluate.json", report)
    (folder / "evaluate.md").write_text(to_markdown(report), encoding="utf-8")
    write_png(folder / "evaluate.png", report)
