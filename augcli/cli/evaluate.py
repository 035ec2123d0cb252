"""``augcli evaluate``: does the strategy's augmentation raise test accuracy? (paired, with CIs)"""

from __future__ import annotations

import json

import click

from augcli.cli import options
from augcli.cli.progress import progress_tick
from augcli.evaluation.api import Settings, check_gate, evaluate as run_evaluation
from augcli.evaluation.models import DEFAULT_MODELS, DEFAULT_ONLINE_MODELS, MODELS
from augcli.reporting.notes import few_repeats_note
from augcli.reporting.text import diff_text, mean_ci_text, pct
from augcli.config.strategy import load_strategy


@click.command()
@options.strategy_argument
@click.option("--model", "models", multiple=True, type=click.Choice(list(MODELS)),
              help=f"Model to train (repeatable). Default: {', '.join(DEFAULT_MODELS)}; with --online: mlp. "
                   "cnn: a small CNN sized to the image (needs the extra augcli[torch]).")
@click.option("--train-fraction", "fractions", multiple=True,
              type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), metavar="F",
              help="Share of each class used for training; the rest is the test split (repeatable). "
                   "Default: 0.05, 0.1, 0.25.")
@click.option("--repeats", type=click.IntRange(1), default=10, show_default=True,
              help="Repeats per model and fraction (seeds S..S+R-1).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes; never changes the results.")
@click.option("--online", is_flag=True,
              help="Compare on-line augmentation (a fresh draw per epoch) with offline copies (partial_fit models); "
                   "an enabled adaptive: section in the strategy adapts the online arm's strength p.")
@click.option("--epochs", type=click.IntRange(1), metavar="N",
              help="cnn: training epochs (default 150), each of as many samples as the training split; with "
                   "--online: passes per arm, each of as many samples as the training split (mlp: default 100).")
@click.option("--device", default="cpu", show_default=True, metavar="DEVICE",
              help="Where --model cnn trains (a torch device: cpu, cuda, cuda:1, mps).")
@click.option("--pca", type=click.IntRange(1), metavar="N", help="Reduce the pixels to N PCA components first.")
@click.option("--fail-if-worse", is_flag=True,
              help="Exit 3 if the accuracy difference's 95% CI lies entirely below --min-gain for some model/fraction.")
@click.option("--min-gain", type=float, default=0.0, show_default=True, metavar="G",
              help="Gate threshold as an accuracy difference (0.01 = one percentage point).")
@options.out_folder("data/out/evaluate/<strategy name>")
@options.overwrite
@options.limit
@options.strategy_inputs
@options.json_output
@options.verbosity
def evaluate(strategy, models, fractions, repeats, jobs, online, epochs, device, pca, fail_if_worse, min_gain, out, overwrite,
             limit, input_source, seed, overrides, as_json):
    """Train models with and without STRATEGY's augmentation on the same splits; report the paired gain."""
    exprs = options.strategy_overrides(overrides, input_source, seed)
    st = load_strategy(strategy, exprs)
    default = DEFAULT_ONLINE_MODELS if online else DEFAULT_MODELS
    settings = Settings(models=tuple(dict.fromkeys(models or default)),
                        fractions=tuple(dict.fromkeys(fractions or (0.05, 0.1, 0.25))),
                        repeats=repeats, online=online, epochs=epochs, pca=pca, jobs=jobs, device=device)
    quiet = options.is_quiet()
    total = len(settings.models) * len(settings.fractions) * repeats
    report = run_evaluation(st, settings, out=out, overwrite=overwrite, limit=limit, min_gain=min_gain,
                            fail_if_worse=fail_if_worse, overrides=exprs,
                            progress=progress_tick(not quiet and not as_json, "evaluate", total, "tasks"))
    note = few_repeats_note(repeats)
    if note and not as_json:  # (--json: the report's protocol carries the repeats)
        options.warn(note)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not quiet:
        click.echo(summary(report))
    check_gate(report)


def summary(report: dict) -> str:
    """One line per model, fraction and comparison: both arms' accuracy and the paired difference."""
    lines = [f"test accuracy (%) as mean ± half-width of its 95 % CI over {report['protocol']['repeats']} repeats; "
             "diff: paired difference [95 % CI] in percentage points"]
    for row in report["results"]:
        for c in row["comparisons"]:
            t, b = row["arms"][c["treatment"]]["accuracy"], row["arms"][c["baseline"]]["accuracy"]
            acc = c["accuracy"]
            lines.append(f"{row['model']:>13} {pct(row['fraction'], 0):>3}%  {c['baseline']} {mean_ci_text(b)}  "
                         f"{c['treatment']} {mean_ci_text(t)}  diff {diff_text(acc)} pp  "
                         f"W/L/T {acc['wins']}/{acc['losses']}/{acc['ties']}  {c['verdict']}")
    perf = report["performance"]
    lines.append(f"{perf['tasks']} tasks in {perf['seconds']:.1f}s (--jobs {perf['jobs']}); "
                 f"report: {report['output']['dir']}/evaluate.md")
    return "\n".join(lines)
