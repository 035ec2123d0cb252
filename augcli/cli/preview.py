"""``augcli preview``: draw what a strategy does before running it."""

from __future__ import annotations

from pathlib import Path

import click

from augcli.cli import options
from augcli.errors import DataError
from augcli.io.atomic import AtomicFolder, check_target, write_file
from augcli.io.guard import check_file_output, strategy_inputs
from augcli.reporting.preview import PREVIEW_SIGNATURE, per_transform_grid, png_bytes, preview_grid
from augcli.engine.stages import build_pipeline, load_dataset
from augcli.config.strategy import load_strategy


PICTURE = "preview.png"
LEGACY_SUFFIXES = (".png",)  # an -o value ending so is the old single-file spelling


@click.command()
@options.strategy_argument
@options.out_folder("data/out/preview/<strategy name>", legacy=LEGACY_SUFFIXES)
@click.option("--output", "legacy_file", type=click.Path(dir_okay=False, path_type=str), hidden=True,
              help="Deprecated: one PNG file; use -o/--out FOLDER.")
@click.option("--rows", type=click.IntRange(1, 64), default=8, show_default=True, help="Originals to show.")
@click.option("--copies", type=click.IntRange(1, 32), default=8, show_default=True, help="Augmented copies per original.")
@click.option("--per-transform", is_flag=True, help="One row per transform (forced on), then the whole pipeline.")
@options.overwrite
@options.strategy_inputs
@options.verbosity
def preview(strategy, out, legacy_file, rows, copies, per_transform, overwrite, input_source, seed, overrides):
    """Write preview.png: originals from STRATEGY's source beside augmented copies.

    Copy k is the same draw as copy k of `augcli run` with the same seed.
    """
    st = load_strategy(strategy, options.strategy_overrides(overrides, input_source, seed))
    inputs = strategy_inputs(st)
    picture = _legacy_picture(out, legacy_file)
    folder = None if picture else Path(out) if out else Path("data") / "out" / "preview" / st.name
    if folder is not None:
        check_target(folder, overwrite, inputs)  # before any work, as for every output folder
    else:
        # a picture augcli drew before is replaced; anything else (an input image!) never is
        check_file_output(picture, inputs, True, PREVIEW_SIGNATURE, "preview")
    grid = _draw(st, rows, copies, per_transform)
    data = png_bytes(grid)
    written = _write_folder(folder, data, overwrite, inputs) if folder is not None else _write_picture(picture, data)
    if not options.is_quiet():
        click.echo(f"wrote {written} ({grid.width}x{grid.height})")


def _legacy_picture(out: str | None, legacy_file: str | None) -> Path | None:
    """The single PNG file of the deprecated spellings (``--output FILE``, ``-o FILE.png``), or None."""
    if legacy_file:
        options.deprecated(f"--output {legacy_file}", "-o/--out FOLDER (it gets preview.png)")
        if out:
            raise click.UsageError(f"--output {legacy_file} and -o/--out {out} both name the output; give -o only")
        return Path(legacy_file)
    if options.has_suffix(out, LEGACY_SUFFIXES):
        options.deprecated(f"-o/--out {out} (a .png file)", "-o/--out FOLDER (it gets preview.png)")
        return Path(out)
    return None


def _draw(st, rows: int, copies: int, per_transform: bool):
    dataset = load_dataset(st, limit=None)
    pipeline = build_pipeline(st, dataset.class_names)
    return per_transform_grid(dataset, pipeline, copies) if per_transform else preview_grid(dataset, pipeline, rows, copies)


def _write_folder(folder: Path, data: bytes, overwrite: bool, inputs) -> Path:
    """``folder``/preview.png, made like every augcli output folder (atomically, with its marker)."""
    with AtomicFolder(folder, overwrite, inputs=inputs) as tmp:
        (tmp / PICTURE).write_bytes(data)
    return folder / PICTURE


def _write_picture(path: Path, data: bytes) -> Path:
    try:
        write_file(path, data)
    except OSError as err:
        raise DataError(f"{path}: cannot write: {err.strerror or err}") from None
    return path
