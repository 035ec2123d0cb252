"""Options shared by several commands, as decorators (one place, one spelling, one help text)."""

from __future__ import annotations

import click

from augcli.cli.progress import end_line

VERBOSE_KEY = "augcli.verbose"
QUIET_KEY = "augcli.quiet"  # read by the CLI's warning printer (cli/main.py) and by ``is_quiet``


def _set_verbose(ctx: click.Context, param, value):
    if value:
        ctx.meta[VERBOSE_KEY] = True


def _set_quiet(ctx: click.Context, param, value):
    if value:
        ctx.meta[QUIET_KEY] = True


def verbosity(f):
    """``-v/--verbose`` (tracebacks, details) and ``-q/--quiet`` (no summary, no progress). Neither
    reaches the command function: they live in ``ctx.meta``, shared with the group that prints errors."""
    f = click.option("-q", "--quiet", is_flag=True, is_eager=True, expose_value=False, callback=_set_quiet,
                     help="Print nothing but errors.")(f)
    f = click.option("-v", "--verbose", is_flag=True, is_eager=True, expose_value=False, callback=_set_verbose,
                     help="Show details and full tracebacks on errors.")(f)
    return f


def is_quiet() -> bool:
    """Whether ``-q`` was given to the running command (False outside a command)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(QUIET_KEY))


def warn(text: str) -> None:
    """One ``augcli: warning:`` line on stderr, none under ``-q``."""
    if not is_quiet():
        end_line()
        click.echo(f"augcli: warning: {text}", err=True)


def deprecated(old: str, new: str) -> None:
    warn(f"{old} is deprecated and will be removed in the next release; use {new}")


strategy_argument = click.argument("strategy", type=click.Path(dir_okay=False, path_type=str))


class FolderPath(click.Path):
    """A folder (an existing file is refused, as by ``click.Path(file_okay=False)``). A value ending in
    one of ``legacy`` is an old single-file spelling: it passes unchecked for the command to handle."""

    def __init__(self, legacy: tuple[str, ...] = ()):
        super().__init__(file_okay=False, path_type=str)
        self.legacy = legacy

    def convert(self, value, param, ctx):
        if has_suffix(value, self.legacy):
            return str(value)
        return super().convert(value, param, ctx)


def has_suffix(value, suffixes: tuple[str, ...]) -> bool:
    return value is not None and bool(suffixes) and str(value).lower().endswith(suffixes)


OUT_HELP = "Output folder (default: {default})."


def out_folder(default: str, legacy: tuple[str, ...] = ()):
    """``-o/--out FOLDER``: every writing command's output folder; only ``default`` differs.
    ``legacy``: file suffixes an older release took here (see ``FolderPath``)."""
    return click.option("-o", "--out", "out", type=FolderPath(legacy), metavar="FOLDER",
                        help=OUT_HELP.format(default=default))


overrides = click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE",
    help="Override one strategy value, e.g. --set augment.copies=3 (validated like the file; repeatable).",
)
input_source = click.option(
    "--input", "input_source", metavar="SOURCE",
    help="Run on another source: 'digits', an image folder or an .npz file (kind inferred).",
)
seed = click.option("--seed", type=click.IntRange(0), help="Override the strategy's root seed.")
json_output = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def strategy_overrides(overrides_: tuple, input_source_: str | None, seed_: int | None, extra: tuple = ()) -> list[str]:
    """Fold the convenience options into ``--set`` expressions, validated the same way."""
    out = list(overrides_)
    if input_source_:
        out += [f"dataset.source={_quote(input_source_)}", "dataset.kind=auto"]
    if seed_ is not None:
        out.append(f"seed={seed_}")
    return out + list(extra)


def _quote(text: str) -> str:
    # a YAML double-quoted scalar, so paths with ':' or '#' survive the override parser
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def strategy_inputs(f):
    """``--input``, ``--seed`` and ``--set``: the same strategy on another source, seed or value."""
    return input_source(seed(overrides(f)))


overwrite = click.option(
    "--overwrite", is_flag=True,
    help="Replace an existing output that augcli made (atomically); anything else is never replaced.",
)
limit = click.option("--limit", type=click.IntRange(1), help="Use only the first N samples.")
