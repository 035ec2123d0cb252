"""Options shared by several commands, as decorators (one place, one spelling)."""

from __future__ import annotations

import click

VERBOSE_KEY = "augcli.verbose"
QUIET_KEY = "augcli.quiet"  # read by the CLI's warning printer (cli/main.py)


def _set_verbose(ctx: click.Context, param, value):
    if value:
        ctx.meta[VERBOSE_KEY] = True
    return value


def _set_quiet(ctx: click.Context, param, value):
    if value:
        ctx.meta[QUIET_KEY] = True
    return value


def verbosity(f):
    """``-v/--verbose`` (tracebacks, details) and ``-q/--quiet`` (no summary, no progress)."""
    f = click.option("-q", "--quiet", is_flag=True, is_eager=True, callback=_set_quiet,
                     help="Print nothing but errors.")(f)
    f = click.option("-v", "--verbose", is_flag=True, expose_value=True, is_eager=True, callback=_set_verbose,
                     help="Show details and full tracebacks on errors.")(f)
    return f


strategy_argument = click.argument("strategy", type=click.Path(dir_okay=False, path_type=str))

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
