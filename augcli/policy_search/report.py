"""Search results -> ``search.json``, ``search.md``, ``search.png`` and the tuned strategy's YAML.
The protocol's prose lives here too: it is what the report says was done."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from augcli.evaluation import models as M
from augcli.evaluation.summary import aggregate
from augcli.policy_search import scoring as S
from augcli.policy_search.adaptive import STEP, TARGET
from augcli.policy_search.methods import METHODS
from augcli.policy_search.policy import from_json
from augcli.policy_search.protocol import COPY_FACTORS, Settings, summary_scores
from augcli.reporting.header import header_lines, report_header
from augcli.reporting.text import clean_json, diff_text, finish_command, mean_ci_text, p_text, pct, write_json

FILES = ["search.json", "search.md", "search.png", "tuned.yaml"]

ARM_NAMES = {"original": "no augmentation", "input": "input strategy", "tuned": "tuned policy",
             "input_copies": "input pipeline at the tuned copies"}


def arm_order(arms: dict) -> list[str]:
    """The arms present, in display order."""
    return [a for a in ("original", "input", "input_copies", "tuned") if a in arms]


def build_report(strategy, settings: Settings, prepared, job, results: list[dict], *, limit: int | None, overrides=(),
                 target: Path, tuned_path: Path) -> dict:
    """The report (``clean_json``-ed, without performance): header, dataset counts, protocol, search
    space, test results, the tuned policy and every repeat's search.

    ``prepared`` is ``evaluation.api.prepare``'s result, ``job`` the search's ``protocol.Job``.
    """
    loaded, cleaned = prepared.loaded, prepared.cleaned
    chosen, extra = results[0]["chosen"], results[0]["search"]["extra"]
    report = report_header("search", strategy, cleaned.class_names, cleaned.image_shape, overrides)
    report["dataset"].update(loaded=len(loaded), samples=len(cleaned), removed_by_cleaning=len(loaded) - len(cleaned))
    report["protocol"] = _protocol(strategy.section("augment"), settings, job, chosen["copies"], limit)
    report["space"] = job.space.to_json()
    report["results"] = aggregate(results, job.ctx.settings)
    report["tuned"] = {"chosen": chosen["name"], "entries": chosen["entries"], "policy": chosen["policy"],
                       "cv_accuracy": summary_scores(results)["cv_accuracy_repeat0"],
                       "description": describe(chosen["policy"], chosen["entries"])}
    report["method"] = {k: v for k, v in extra.items() if k in ("p", "level", "distribution", "score")}
    report["repeats"] = [_repeat_summary(r) for r in results]
    report["output"] = {"dir": str(target), "tuned": str(tuned_path), "files": list(FILES)}
    return clean_json(report)


def _protocol(aug: dict, settings: Settings, job, tuned_copies: int, limit: int | None) -> dict:
    return {"method": settings.method, "model": settings.model, "model_spec": M.describe(settings.model, None),
            "budget": settings.effective_budget, "budget_unit": METHODS[settings.method].budget_unit,
            "folds": settings.folds, "fraction": settings.fraction, "repeats": settings.repeats, "limit": limit,
            "copies": aug["copies"], "copies_choice": "cv" if settings.copies is None else "fixed",
            "copies_ladder": job.ladder(), "tuned_copies": tuned_copies,
            "keep_originals": aug["keep_originals"], "options": dict(settings.options), "online": settings.online,
            "epochs": settings.model_options["epochs"] if M.MODELS[settings.model].torch else None,
            "device": settings.device, "notes": _notes(settings)}


def _notes(settings: Settings) -> list[str]:
    method = METHODS[settings.method]
    return [
        f"Method {settings.method}: {method.summary}; budget {settings.effective_budget} {method.budget_unit}.",
        "Repeat r splits the cleaned dataset exactly as `augcli evaluate --train-fraction F` does in its repeat r (seed "
        "S+r): the given fraction of each class is the training portion, the rest the test split.",
        f"The search sees only the training portion: its {settings.folds} stratified folds are made inside it, and "
        "every candidate is augmented with the repeat's seed (common random numbers).",
        f"Each method's candidates, no augmentation and the input strategy's pipeline are compared by "
        f"{max(settings.folds, S.FINAL_FOLDS)}-fold CV accuracy over {S.PASSES} fresh passes (fold partitions and draws "
        "no method searched on, new ones each pass; the model trained on the fold-train images " + (
            f"drawn afresh in each of its {settings.model_options['epochs']} epochs, as it will be trained" if
            settings.online else "plus their copies, as `augcli run` would write them") + "). The incumbent - the input strategy, or no augmentation when "
        f"it has no pipeline - stays unless the best candidate beats it by more than {S.SWITCH_T:g} standard errors of "
        "the paired per-fold differences.",
        "Copies per image: " + ("fixed by --copies." if settings.copies is not None else
                                "the input's: on-line training draws afresh every epoch, so copies do not change it."
                                if settings.online else
                                f"the chosen policy is scored at {' / '.join(f'{f}x' for f in COPY_FACTORS)} the input's "
                                "copies and moves up a step unless CV finds that step worse than the copies kept so far "
                                "by more than one standard error."),
        "Test arms, all trained with the same model and random_state on the whole training portion: original (no "
        "augmentation), input (the strategy's augmentation, evaluate's 'augmented' arm), input_copies (the input "
        "pipeline at the repeat's tuned copies, which separates the policy's effect from the copies') and tuned (the "
        "repeat's policy and copies, with the input's balance and keep_originals). Augmented images equal to a test "
        "image are dropped, as in evaluate." + (" The augmented arms train on-line: every epoch a fresh draw "
                                                "Pipeline(images, ids, copy=e+1) of the training portion." if
                                                settings.online else ""),
        "Repeat 0's policy is the tuned strategy; the other repeats re-run the search on their own training portion, "
        "so the test differences estimate searching-then-training (nested validation), not one fixed policy.",
        "Statistics: mean and 95% Student-t interval over repeats; paired differences with the paired t-test "
        "(augcli.evaluation.stats).",
    ]


def adaptive_block(report: dict) -> dict | None:
    """The tuned strategy's ``adaptive:`` section when the adaptive method's policy was chosen. The
    tuned ops already fire with the settled p, so the on-line gate starts at 1 (the tuned strength)
    and the controller moves it from there."""
    if report["protocol"]["method"] != "adaptive" or not report["tuned"]["chosen"].startswith("ada"):
        return None
    return {"enabled": True, "metric": "gap", "target": TARGET, "step": STEP, "p_init": 1.0, "p_max": 1.0,
            "interval": 1, "val_fraction": 0.2}


def _repeat_summary(r: dict) -> dict:
    chosen = r["chosen"]["name"]
    cv = next(c["cv_accuracy"] for c in r["search"]["candidates"] if c["name"] == chosen)
    return {"repeat": r["repeat"], "seed": r["seed"], "n_train": r["n_train"], "n_test": r["n_test"], "chosen": chosen,
            "cv_accuracy": cv, "policy": r["chosen"]["policy"], "entries": r["chosen"]["entries"],
            "copies": r["chosen"]["copies"], "copies_trace": r["search"]["copies"], "arms": r["arms"],
            "seconds": r["seconds"]["search"], "trials": r["search"]["trials"], "candidates": r["search"]["candidates"],
            "extra": r["search"]["extra"]}


def command_line(report: dict) -> str:
    """An ``augcli search`` command that reproduces ``report``."""
    p = report["protocol"]
    args = ["augcli", "search", report["strategy"]["path"], "--method", p["method"], "--model", p["model"],
            "--budget", str(p["budget"]), "--folds", str(p["folds"]), "--train-fraction", f"{p['fraction']:g}",
            "--repeats", str(p["repeats"])]
    if p["copies_choice"] == "fixed":
        args += ["--copies", str(p["tuned_copies"])]
    return finish_command(args, report)


def _diff_line(row: dict, treatment: str, baseline: str) -> str:
    c = next(c for c in row["comparisons"] if c["treatment"] == treatment and c["baseline"] == baseline)
    acc = c["accuracy"]
    return (f"{diff_text(acc)} pp (paired t p={p_text(acc['p_value'])}, "
            f"W/L/T {acc['wins']}/{acc['losses']}/{acc['ties']}, {c['verdict']})")


# The first words of every tuned strategy: how ``--overwrite`` knows a file is one augcli wrote.
TUNED_SIGNATURE = b"# Tuned by augcli search:"


def below_input_note(report: dict) -> str | None:
    """A warning when the kept policy scored below the input strategy on the held-out test split."""
    row = report["results"][0]
    c = next((c for c in row["comparisons"] if c["treatment"] == "tuned" and c["baseline"] == "input"), None)
    if c is None or c["accuracy"]["mean"] >= 0:
        return None
    return (f"the tuned policy scored {diff_text(c['accuracy'])} pp against the input strategy on the held-out test "
            f"split ({c['verdict']}); the input strategy may be the better one to keep")


def tuned_yaml(strategy, report: dict, adaptive: dict | None = None) -> str:
    """The tuned strategy: the input strategy (resolved) with repeat 0's policy as its pipeline."""
    config = copy.deepcopy(strategy.config)
    config["augment"]["pipeline"] = report["tuned"]["entries"]
    config["augment"]["copies"] = report["protocol"]["tuned_copies"]
    # the input's output folder (its configured one, or data/out/<its name>) + "-tuned": never the
    # input's own output, and not a generic data/out/tuned for every tuned strategy
    base = strategy.section("output")["dir"] or f"data/out/{strategy.name}"
    config["output"]["dir"] = f"{str(base).rstrip('/')}-tuned"
    if adaptive is not None:
        config["adaptive"] = adaptive
    p, row = report["protocol"], report["results"][0]
    arms = row["arms"]
    lines = [f"{TUNED_SIGNATURE.decode()} method {p['method']}, model {p['model']}, seed {report['strategy']['seed']} "
             f"(repeat 0's policy; budget {p['budget']} {p['budget_unit']}, {p['folds']} folds, "
             f"{p['tuned_copies']} copies per image)",
             f"# Command: {command_line(report)}",
             f"# Input strategy: {report['strategy']['path']} (sha256 {report['strategy']['sha256'][:12]})",
             f"# Score: K-fold CV accuracy {pct(report['tuned']['cv_accuracy'])} % on repeat 0's training portion "
             f"(chosen: {report['tuned']['chosen']})",
             f"# Held-out test accuracy over {p['repeats']} repeats at train fraction {p['fraction']:g} (nested, %): tuned "
             f"{mean_ci_text(arms['tuned']['accuracy'])}, none {mean_ci_text(arms['original']['accuracy'])}, input "
             f"{mean_ci_text(arms['input']['accuracy'])}",
             f"# tuned - none: {_diff_line(row, 'tuned', 'original')}",
             f"# tuned - input: {_diff_line(row, 'tuned', 'input')}"]
    lines += [f"# policy: {text}" for text in report["tuned"]["description"]]
    return "\n".join(lines) + "\n" + dataclasses.replace(strategy, config=config).to_yaml()


def to_markdown(report: dict) -> str:
    """``search.md``: result first, then the tuned policy, the repeats, the method's trace and the protocol."""
    p, row = report["protocol"], report["results"][0]
    lines = header_lines(report, f"augcli search: {report['strategy']['name']} ({p['method']}, {p['model']})",
                         command_line(report))
    lines += ["", f"## Held-out test accuracy (%, mean ± 95% CI over {p['repeats']} repeats, train fraction "
              f"{p['fraction']:g})", "", "| arm | accuracy | macro-F1 |", "|---|---:|---:|"]
    for arm in arm_order(row["arms"]):
        s = row["arms"][arm]
        lines.append(f"| {ARM_NAMES[arm]} | {mean_ci_text(s['accuracy'])} | {mean_ci_text(s['macro_f1'])} |")
    lines += ["", "Paired differences (percentage points, 95% t interval):", ""]
    for c in row["comparisons"]:
        t, b = c["treatment"], c["baseline"]
        lines.append(f"- {ARM_NAMES[t]} - {ARM_NAMES[b]}: {_diff_line(row, t, b)}")
    if "input_copies" in row["arms"]:
        copies = sorted({r["copies"] for r in report["repeats"]})
        lines += ["", f"The tuned strategy writes {p['tuned_copies']} copies per image (repeats chose "
                  f"{', '.join(map(str, copies))}), the input strategy {p['copies']}; 'input pipeline at the tuned "
                  "copies' separates the policy's effect from the copies'."]
    tuned = report["tuned"]
    lines += ["", "## Tuned policy (repeat 0)", "", f"Chosen candidate: `{tuned['chosen']}` (K-fold CV accuracy "
              f"{pct(tuned['cv_accuracy'])} %); written to `{report['output']['tuned']}`.", ""]
    lines += [f"- {text}" for text in tuned["description"]]
    lines += ["", "## Repeats", "", "| repeat | seed | train | test | chosen | copies | CV acc | none | input | tuned | search s |",
              "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["repeats"]:
        acc = {a: pct(r["arms"][a]["accuracy"]) for a in ("original", "input", "tuned")}
        lines.append(f"| {r['repeat']} | {r['seed']} | {r['n_train']} | {r['n_test']} | {r['chosen']} | {r['copies']} | "
                     f"{pct(r['cv_accuracy'])} | {acc['original']} | {acc['input']} | {acc['tuned']} | {r['seconds']:.1f} |")
    lines += _method_lines(report) + _space_lines(report)
    lines += ["", "## Protocol", ""] + [f"- {text}" for text in p["notes"]]
    perf = report["performance"]
    lines += ["", f"Run time {perf['seconds']:.1f} s with --jobs {perf['jobs']}."]
    return "\n".join(lines) + "\n"


def _method_lines(report: dict) -> list[str]:
    first = report["repeats"][0]
    lines = ["", f"## Search trace (repeat 0, {report['protocol']['method']})", "",
             f"Score: {first['extra'].get('score', '-')}. Candidates scored by K-fold CV for the final choice:", "",
             "| candidate | CV accuracy |", "|---|---:|"]
    lines += [f"| {c['name']} | {pct(c['cv_accuracy'])} |" for c in first["candidates"]]
    best = sorted(first["trials"], key=lambda t: -t["score"])[:10]
    if best:
        lines += ["", "Best trials:", "", "| trial | score | what |", "|---:|---:|---|"]
        lines += [f"| {t['trial']} | {t['score']:.4f} | {t['label']} |" for t in best]
    extra = first["extra"]
    if "distribution" in extra:
        lines += ["", f"Realistic (op, level) pairs: {extra['pairs'] - len(extra['rejected'])} of {extra['pairs']} "
                  f"(reference accuracy {pct(extra['reference_accuracy'])} %). Final distribution: " + ", ".join(
                      f"{d['op']} L{d['level']} {d['prob']:.2f}" for d in extra["distribution"])]
    if report["protocol"]["method"] == "adaptive" and extra.get("trajectory"):
        lines += ["", f"Settled strength p = {extra['p']:.3f}, level {extra['level']} (target gap {extra['target']}, "
                  f"step {extra['step']}). p at epochs 1, 25%, 50%, 75%, end per fold: " + "; ".join(
                      " ".join(f"{h[int(q * (len(h) - 1))]['p']:.2f}" for q in (0, 0.25, 0.5, 0.75, 1.0))
                      for h in extra["trajectory"])]
    return lines


def _space_lines(report: dict) -> list[str]:
    space = report["space"]
    lines = ["", "## Search space", "", f"Levels {space['levels']}; probabilities 0.0..1.0 by 0.1. Ops (largest level "
             "allowed by the rules): " + ", ".join(f"{o['op']} ({o['transform']}, L{o['max_level']})" for o in space["ops"]) + "."]
    if space["removed"]:
        lines.append("Removed by the strategy's rules: " + "; ".join(f"{k}: {v}" for k, v in space["removed"].items()) + ".")
    return lines


def _step_rows(policy: dict) -> list[tuple[str, float]]:
    """(label, probability that the step fires for a sample) for every step of a policy."""
    rows = []
    for i, layer in enumerate(policy["layers"]):
        subs = layer["sub_policies"]
        weights = np.asarray(layer["weights"] if layer["weights"] else [1.0] * len(subs), dtype=np.float64)
        weights = weights / weights.sum()
        for j, sub in enumerate(subs):
            for step in sub:
                rows.append((f"L{i + 1}.{j + 1} {step['op']} lvl {step['level']}", layer["p"] * weights[j] * step["p"]))
    return rows


def _entry_rows(entries: list) -> list[tuple[str, float]]:
    """(name, p) for every top-level entry of a pipeline, its p as built (a name alone: its default)."""
    from augcli.transforms.registry import build  # as the strategy loader does: the registry at call time

    return [(t.name, float(t.p)) for t in (build(e) for e in entries)]


def search_figure(report: dict):
    """Score per trial, the tuned policy's steps, test accuracy per arm, and the method's trajectory."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    first = report["repeats"][0]
    ax = axes[0, 0]
    for r in report["repeats"]:
        scores = [t["score"] for t in r["trials"]]
        if scores:
            ax.plot(scores, ".", ms=3, alpha=0.9 if r is first else 0.25, label=f"repeat {r['repeat']}")
    ax.set(title=f"score per trial ({first['extra'].get('score', '')})", xlabel="trial", ylabel="score")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    # what tuned.yaml holds: the kept policy's steps, or the kept pipeline's entries (the input's, say)
    title, policy = f"kept: {report['tuned']['chosen']}", report["tuned"]["policy"]
    rows = _step_rows(policy) if policy and policy["layers"] else _entry_rows(report["tuned"]["entries"])
    ax = axes[0, 1]
    if rows:
        ax.barh(range(len(rows)), [v for _, v in rows], color="#1f77b4")
        ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=6)
        ax.invert_yaxis()
    ax.set(title=title, xlabel="probability a sample gets the step", xlim=(0, 1))
    ax.title.set_fontsize(9)
    _arms_panel(axes[1, 0], report)
    _trajectory_panel(axes[1, 1], report)
    fig.suptitle(f"augcli search: {report['strategy']['name']} - {report['protocol']['method']}, {report['protocol']['model']}")
    return fig


def _arms_panel(ax, report: dict) -> None:
    arms = report["results"][0]["arms"]
    names = arm_order(arms)
    for i, arm in enumerate(names):
        s = arms[arm]["accuracy"]
        lo, hi = s["ci"]
        mean = 100 * s["mean"]
        err = None if lo is None else [[mean - max(0.0, 100 * lo)], [min(100.0, 100 * hi) - mean]]  # within 0-100 %
        ax.errorbar([i], [mean], yerr=err, fmt="o", capsize=4)
        ax.plot(np.full(len(s["values"]), i + 0.15), 100 * np.asarray(s["values"]), ".", color="#999999", ms=4)
    ax.set_xticks(range(len(names)), [ARM_NAMES[a].replace(" at the ", "\nat the ") for a in names], fontsize=7)
    ax.set(title="held-out test accuracy (mean, 95% CI; dots = repeats)", ylabel="accuracy (%)")
    ax.title.set_fontsize(9)


def _trajectory_panel(ax, report: dict) -> None:
    extra = report["repeats"][0]["extra"]
    method = report["protocol"]["method"]
    if method == "adaptive" and extra.get("trajectory"):
        for k, history in enumerate(extra["trajectory"]):
            ax.plot([h["p"] for h in history], label=f"fold {k} p")
            ax.plot([h["level"] / 10 for h in history], "--", lw=0.8, label=f"fold {k} level/10")
        ax.set(title="adaptive strength p per epoch (ADA sign rule)", xlabel="epoch", ylabel="p", ylim=(0, 1.05))
        ax.legend(fontsize=6)
    elif method == "adversarial" and extra.get("trajectory"):
        traj = extra["trajectory"]
        ax.plot([t["hardness"] for t in traj], label="mean hardness (log-loss)")
        ax.plot([t["entropy"] for t in traj], label="entropy of the distribution")
        ax.plot([t["val_accuracy"] for t in traj], label="fold val accuracy")
        ax.set(title="adversarial: model/policy rounds", xlabel="round")
        ax.legend(fontsize=7)
    else:
        cands = report["repeats"][0]["candidates"]
        ax.barh(range(len(cands)), [100 * c["cv_accuracy"] for c in cands], color="#888888")
        ax.set_yticks(range(len(cands)), [c["name"] for c in cands], fontsize=6)
        lo = min([100 * c["cv_accuracy"] for c in cands] + [100.0])
        ax.set(title="final K-fold choice (repeat 0)", xlabel="CV accuracy (%)", xlim=(max(0.0, lo - 5), 100))
        ax.invert_yaxis()
    ax.title.set_fontsize(9)


def write_png(path, report: dict) -> None:
    """``search.png`` without timestamp metadata."""
    search_figure(report).savefig(path, format="png", metadata={"Software": None})


def describe(policy_json: dict | None, entries: list) -> list[str]:
    """Human lines for a chosen candidate (the input strategy has no policy: show its transforms)."""
    if policy_json is not None:
        return from_json(policy_json).describe()
    return [f"the input strategy's pipeline: {', '.join(next(iter(e)) for e in entries)}"] if entries else ["no augmentation"]


def write_files(folder: Path, report: dict, tuned_text: str) -> None:
    """``FILES`` into ``folder``."""
    write_json(folder / "search.json", report)
    (folder / "search.md").write_text(to_markdown(report), encoding="utf-8")
    write_png(folder / "search.png", report)
    (folder / "tuned.yaml").write_text(tuned_text, encoding="utf-8")
