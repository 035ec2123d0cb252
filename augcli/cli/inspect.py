"""``augcli inspect``: class balance, duplicates, corrupt files, outliers, likely label errors — read-only."""

from __future__ import annotations

import json
from pathlib import Path

import click

from augcli.cli import options
from augcli.reporting.inspection import inspect as run_inspection
from augcli.io.atomic import check_target
from augcli.io.guard import strategy_inputs
from augcli.reporting.inspection import strategy_for_source, write_inspection
from augcli.config.strategy import load_strategy


@click.command()
@click.argument("target", metavar="SOURCE|STRATEGY")
@options.out_folder("data/out/inspect/<name>")
@options.limit
@options.overwrite
@options.strategy_inputs
@options.json_output
@options.verbosity
def inspect(target, out, limit, overwrite, input_source, seed, overrides, as_json):
    """Check a source ('digits', a folder, an .npz) or a strategy's source; change nothing.

    With a strategy, its clean settings are used but every action becomes "flag". Writes
    inspect.json, inspect.md, quarantine.csv and clean.png. Exits 0 even when problems are found.
    --input replaces a STRATEGY's source (a SOURCE argument is the input already).
    """
    is_strategy = target.lower().endswith((".yaml", ".yml"))
    if input_source and not is_strategy:
        raise click.UsageError("--input needs a STRATEGY argument; SOURCE is the input already")
    exprs = options.strategy_overrides(overrides, input_source, seed)
    st = load_strategy(target, exprs) if is_strategy else strategy_for_source(target, exprs)
    folder = Path(out) if out else Path("data") / "out" / "inspect" / (Path(target).stem or "source")
    inputs = strategy_inputs(st) + ([Path(target)] if is_strategy else [])
    check_target(folder, overwrite, inputs)  # before any work: read-only means never over the input
    report, records, datasets = run_inspection(st, limit=limit)
    write_inspection(folder, report, records, datasets, overwrite, inputs)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not options.is_quiet():
        click.echo(summary(report))


def summary(report: dict) -> str:
    bal = report["class_balance"]
    lines = [f"{sum(bal['counts'].values())} samples, {len(bal['counts'])} classes, "
             f"imbalance ratio {bal['imbalance_ratio']:.2f} (largest/smallest class)"]
    if report["skipped"]["count"]:
        lines.append(f"unreadable files: {report['skipped']['count']} "
                     f"({', '.join(f'{k}: {v}' for k, v in report['skipped']['by_reason'].items())})")
    found = report["clean"]["by_reason"]
    lines.append("findings: " + (", ".join(f"{k}: {v}" for k, v in found.items()) if found else "none"))
    lines.append(f"report: {report['output']['dir']}/inspect.md (quarantine.csv lists every finding)")
    return "\n".join(lines)
