"""``augcli preview``: draw what a strategy does before running it."""

from __future__ import annotations

from pathlib import Path

import click

from augcli.cli import options
from augcli.errors import DataError
from augcli.io.atomic import write_file
from augcli.io.guard import check_file_output, strategy_inputs
from augcli.reporting.preview import PREVIEW_SIGNATURE, per_transform_grid, png_bytes, preview_grid
from augcli.engine.runner import build_pipeline, load_dataset
from augcli.config.strategy import load_strategy


@click.command()
@options.strategy_argument
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="PNG file to write (replaces an earlier augcli preview, never any other file).")
@click.option("--rows", type=click.IntRange(1, 64), default=8, show_default=True, help="Originals to show.")
@click.option("--copies", type=click.IntRange(1, 32), default=8, show_default=True, help="Augmented copies per original.")
@click.option("--per-transform", is_flag=True, help="One row per transform (forced on), then the whole pipeline.")
@options.strategy_inputs
@options.verbosity
def preview(strategy, output, rows, copies, per_transform, input_source, seed, overrides, verbose, quiet):
    """Write a PNG grid: originals from STRATEGY's source beside augmented copies.

    Copy k is the same draw as copy k of `augcli run` with the same seed.
    """
    st = load_strategy(strategy, options.strategy_overrides(overrides, input_source, seed))
    # a picture augcli drew before is replaced; anything else (an input image!) never is
    check_file_output(Path(output), strategy_inputs(st), True, PREVIEW_SIGNATURE, "preview")
    dataset = load_dataset(st, limit=None)
    pipeline = build_pipeline(st, dataset.class_names)
    grid = per_transform_grid(dataset, pipeline, copies) if per_transform else preview_grid(dataset, pipeline, rows, copies)
    try:
        write_file(Path(output), png_bytes(grid))
    except OSError as err:
        raise DataError(f"{output}: cannot write: {err.strerror or err}") from None
    if not quiet:
        click.echo(f"wrote {output} ({grid.width}x{grid.height})")
