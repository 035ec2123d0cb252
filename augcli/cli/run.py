"""``augcli run``: execute a strategy end to end."""

from __future__ import annotations

import json

import click

from augcli.cli import options
from augcli.cli.progress import end_line, make_progress, stage_printer
from augcli.errors import UsageError


@click.command()
@options.strategy_argument
@options.out_folder("output.dir, else data/out/<strategy name>")
@click.option("--format", "fmt", type=click.Choice(["npz", "png", "tar"]), help="Output format (overrides output.format).")
@click.option("--shard-size", type=click.IntRange(1), help="Output samples per shard file (overrides output.shard_size).")
@options.strategy_inputs
@click.option("--batch-size", type=click.IntRange(1),
              help="Images per batch (default: about 4 MiB of pixels); never changes the output bytes.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes; never changes the output bytes.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where shards run: this machine, or a Dask cluster (needs the dask extra).")
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler address (default: start a local cluster).")
@click.option("--scheduler-file", type=click.Path(dir_okay=False), help="Dask scheduler file.")
@click.option("--resume", is_flag=True,
              help="Keep finished shards if the run is interrupted; a rerun then skips them (a crashed run is always resumable).")
@options.limit
@click.option("--dry-run", is_flag=True, help="Validate, load and plan; print counts; write nothing.")
@options.overwrite
@click.option("--strict", is_flag=True, help="Fail (exit 1) on the first unreadable image instead of skipping it.")
@click.option("--progress", "show_progress", is_flag=True,
              help="Progress bars and stage lines on stderr even when it is not a terminal (-q and --json stay silent).")
@options.json_output
@options.verbosity
def run(strategy, out, fmt, shard_size, input_source, seed, overrides, batch_size, workers, engine, scheduler,
        scheduler_file, resume, limit, dry_run, overwrite, strict, show_progress, as_json):
    """Load, clean, split, augment and write the dataset described by STRATEGY."""
    if workers > 1 and engine == "local":
        # The workers' server imports what their jobs need (~0.3 s); started before this process
        # imports the engine (below), the two overlap and the workers can take the first files sooner.
        from augcli.engine.workers import start_server

        start_server()
    # function-level: ~0.25 s of imports, paid after the server has started
    from augcli.config.strategy import load_strategy
    from augcli.engine.runner import RunOptions, run as run_strategy
    from augcli.reporting.notes import IDENTICAL_WARN_SHARE, identical_notes, missing_class_notes, setup_notes

    extra = (f"output.format={fmt}",) if fmt else ()
    st = load_strategy(strategy, options.strategy_overrides(overrides, input_source, seed, extra))
    if (scheduler or scheduler_file) and engine != "dask":
        raise click.UsageError("--scheduler and --scheduler-file need --engine dask")
    quiet = options.is_quiet()
    opts = RunOptions(out=out, batch_size=batch_size, workers=workers, strict=strict, dry_run=dry_run,
                      overwrite=overwrite, limit=limit, shard_size=shard_size, engine=engine, scheduler=scheduler,
                      scheduler_file=scheduler_file, resume=resume,
                      progress=make_progress(not quiet and not as_json, force=show_progress),
                      stage=stage_printer(not quiet and not as_json, force=show_progress))
    report = run_strategy(st, opts)
    end_line()  # the last bar's line, before the warnings and the summary
    if not as_json:  # worth knowing before training (--json: the report carries the counts)
        for note in identical_notes(report, IDENTICAL_WARN_SHARE):
            options.warn(note)
    for note in setup_notes(report) + missing_class_notes(report):  # a trainer numbering classes per split would be wrong
        options.warn(note)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not quiet:
        click.echo(summary(report, dry_run, staged=opts.stage is not None))
    problem = report.get("plan", {}).get("output_problem")
    if problem:  # the plan is shown; the dry run then fails as the real run would (exit 2)
        raise UsageError(f"{problem} (the real run would stop here)")


def summary(report: dict, dry_run: bool, staged: bool = False) -> str:
    """A few lines for the terminal: what went in, what was skipped or removed, what came out
    (without the stage lines when they were already shown as the stages ended: ``staged``)."""
    lines = [] if staged else _stages(report)
    if dry_run:
        plan = report["plan"]
        lines.append(f"dry run: would write {plan['total']} samples to {plan['output_dir']} "
                     f"({', '.join(f'{k} {v}' for k, v in plan['samples'].items())})")
        return "\n".join(lines)
    out, perf = report["output"], report["performance"]
    shards = f" in {out['shards']} shards" if out["shards"] > len(out["samples"]) else ""
    resumed = f", {perf['resumed_shards']} reused from an interrupted run" if perf["resumed_shards"] else ""
    if perf.get("discarded_partial"):
        resumed = ("; an interrupted run's partial output was discarded (made from another input, strategy or "
                   "kernel backend)")
    lines.append(f"wrote {out['total']} samples ({', '.join(f'{k} {v}' for k, v in out['samples'].items())}) "
                 f"as {out['format']}{shards} to {out['dir']}{resumed}")
    rate = perf["augmented_images_per_second"]
    lines.append(f"{report['transforms']['augmented_samples']} augmented in {perf['seconds'].get('augment', 0):.2f}s"
                 + (f" ({rate:,.0f} img/s)" if rate else "") + f"; total {perf['total_seconds']:.2f}s; "
                 f"report: {out['dir']}/report.md")
    return "\n".join(lines)


def _stages(report: dict) -> list[str]:
    """The loaded, cleaning and split lines (``run_report.stage_lines``), from the finished report."""
    from augcli.reporting.run_report import cleaning_line, loaded_line, split_line

    counts, clean = report["counts"], report["clean"]
    lines = [loaded_line(sum(counts["loaded"].values()), len(report["dataset"]["classes"]),
                         report["dataset"]["source"], report["skipped"]["by_reason"])]
    cleaning = cleaning_line(clean["removed"], clean["flagged"], clean["by_reason"])
    return lines + ([cleaning] if cleaning else []) + [split_line({k: sum(v.values()) for k, v in counts["splits"].items()})]
