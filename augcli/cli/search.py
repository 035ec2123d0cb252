"""``augcli search``: find a better augmentation policy for one model; write it as a strategy."""

from __future__ import annotations

import json

import click

from augcli.cli import options
from augcli.cli.progress import progress_tick
from augcli.evaluation.models import MODELS
from augcli.reporting.text import diff_text, mean_ci_text
from augcli.policy_search.api import Settings, search as run_search, space_for
from augcli.policy_search.methods import METHODS
from augcli.policy_search.report import below_input_note
from augcli.reporting.notes import few_repeats_note
from augcli.config.strategy import load_strategy


TUNED_SUFFIXES = (".yaml", ".yml")  # an -o value ending so is the old spelling of --tuned
_BUDGETS = "; ".join(f"{name}: {m.default_budget} {m.budget_unit}" for name, m in METHODS.items())


@click.command()
@options.strategy_argument
@click.option("--method", type=click.Choice(list(METHODS)), default="grid", show_default=True,
              help="grid: RandAugment's (N, M) grid by K-fold CV; density: Fast AutoAugment's density matching; "
                   "adversarial: hard but realistic (op, level) distribution; adaptive: ADA's strength control.")
@click.option("--model", type=click.Choice(list(MODELS)), default="svm", show_default=True,
              help="The model the policy is tuned for (the evaluate models). cnn (extra augcli[torch]) judges "
                   "every policy on-line, as it will be trained: a fresh draw of the images every epoch.")
@click.option("--epochs", type=click.IntRange(1), metavar="N",
              help="--model cnn: training epochs (default 150), each a fresh draw of the images it trains on.")
@click.option("--device", default="cpu", show_default=True, metavar="DEVICE",
              help="Where --model cnn trains (a torch device: cpu, cuda, cuda:1, mps).")
@click.option("--budget", type=click.IntRange(1), metavar="N", help=f"Search budget. Defaults: {_BUDGETS}.")
@click.option("--folds", type=click.IntRange(2), default=3, show_default=True,
              help="K: cross-validation folds inside the training portion for the method's own scoring; the final choice uses max(K, 5).")
@click.option("--train-fraction", "fraction", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=0.1, show_default=True, metavar="F",
              help="Share of each class in the training portion the search sees; the rest is the test split.")
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True,
              help="Repeats (seeds S..S+R-1); each searches its own training portion, scored on its test split.")
@click.option("--copies", type=click.IntRange(0), metavar="N",
              help="Copies per image of the tuned strategy (default: chosen by K-fold CV among 1x, 2x and 4x the "
                   "input's). Candidates are compared at the input's copies; the report adds the input pipeline at "
                   "the tuned copies to separate the policy's effect from the copies'.")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes (over repeats); never changes the results.")
@options.out_folder("data/out/search/<strategy>-<method>-<model>", legacy=TUNED_SUFFIXES)
@click.option("--tuned", type=click.Path(dir_okay=False, path_type=str), metavar="FILE",
              help="The tuned strategy (default: <out>/tuned.yaml); an existing one is replaced only with --overwrite "
                   "and only if augcli wrote it.")
@click.option("--report", "report", type=click.Path(file_okay=False, path_type=str), hidden=True,
              help="Deprecated: the old name of -o/--out.")
@options.overwrite
@click.option("--show-space", is_flag=True, help="Print the search space (ops, magnitude scales, rules) and exit.")
@options.limit
@options.strategy_inputs
@options.json_output
@options.verbosity
def search(strategy, method, model, epochs, device, budget, folds, fraction, repeats, copies, jobs, out, tuned, report, overwrite,
           show_space, limit, input_source, seed, overrides, as_json):
    """Search STRATEGY's training data for a better augmentation policy; write it as a strategy."""
    out, tuned = _targets(out, tuned, report)
    exprs = options.strategy_overrides(overrides, input_source, seed)
    st = load_strategy(strategy, exprs)
    if show_space:
        space = space_for(st)
        click.echo(json.dumps(space.to_json(), indent=2) if as_json else space.describe())
        return
    settings = Settings(method=method, model=model, budget=budget, folds=folds, fraction=fraction, repeats=repeats,
                        jobs=jobs, copies=copies, epochs=epochs, device=device)
    quiet = options.is_quiet()
    # the library's names predate the CLI's: its ``report`` is the folder, its ``out`` the tuned file
    result = run_search(st, settings, report=out, out=tuned, overwrite=overwrite, limit=limit, overrides=exprs,
                        progress=progress_tick(not quiet and not as_json, "search", repeats, "repeats"))
    for note in (few_repeats_note(repeats) if not as_json else None, below_input_note(result)):
        if note:
            options.warn(note)
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "repeats"}, indent=2))
    elif not quiet:
        click.echo(summary(result))


def _targets(out: str | None, tuned: str | None, report: str | None) -> tuple[str | None, str | None]:
    """(report folder, tuned file) from the options, the two deprecated spellings included: the old
    ``-o FILE.yaml`` (the tuned strategy) and ``--report FOLDER`` (the report folder)."""
    if options.has_suffix(out, TUNED_SUFFIXES):
        options.deprecated(f"-o/--out {out} (a .yaml file: the tuned strategy)", f"--tuned {out}")
        if tuned:
            raise click.UsageError(f"-o/--out {out} and --tuned {tuned} both name the tuned strategy; give --tuned only")
        out, tuned = None, out
    if report:
        options.deprecated(f"--report {report}", f"-o/--out {report}")
        if out:
            raise click.UsageError(f"--report {report} and -o/--out {out} both name the report folder; give -o only")
        out = report
    return out, tuned


def summary(report: dict) -> str:
    """The test accuracy of each arm, the two paired differences and where the files are."""
    row = report["results"][0]
    arms = row["arms"]
    diffs = {(c["treatment"], c["baseline"]): c["accuracy"] for c in row["comparisons"]}
    p = report["protocol"]
    lines = [f"{p['method']} / {p['model']} at train fraction {p['fraction']:g}, {p['repeats']} repeats: "
             f"none {mean_ci_text(arms['original']['accuracy'])}  input {mean_ci_text(arms['input']['accuracy'])}  "
             f"tuned {mean_ci_text(arms['tuned']['accuracy'])}",
             f"tuned - none {diff_text(diffs[('tuned', 'original')])} pp; tuned - input {diff_text(diffs[('tuned', 'input')])} pp",
             f"policy ({report['tuned']['chosen']}): " + "; ".join(report["tuned"]["description"]),
             f"{report['performance']['seconds']:.1f} s; tuned strategy: {report['output']['tuned']}; "
             f"report: {report['output']['dir']}/search.md"]
    return "\n".join(lines)
