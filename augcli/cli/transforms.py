"""``augcli transforms [NAME]``: the catalogue, straight from the registry."""

from __future__ import annotations

import json

import click

from augcli.transforms import catalogue
from augcli.cli import options
from augcli.errors import UsageError
from augcli.config.schema import did_you_mean
from augcli.transforms.registry import load_all


@click.command()
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print the whole catalogue as Markdown (docs/transforms.md).")
@options.json_output
@options.verbosity
def transforms(name, markdown, as_json):
    """List the available transforms, or describe transform NAME (parameters, ranges, defaults)."""
    reg = load_all()
    if name and name not in reg:
        raise UsageError(f"unknown transform {name!r}{did_you_mean(name, list(reg))}; run `augcli transforms` for the list")
    if markdown:
        click.echo(catalogue.render_markdown(), nl=False)
    elif as_json:
        names = [name] if name else list(reg)
        click.echo(json.dumps({n: {"summary": reg[n].summary, "parameters": catalogue.parameters(n)} for n in names}, indent=2))
    elif name:
        click.echo(catalogue.describe(name))
    else:
        rows = catalogue.summary_table()
        width = max(len(n) for n, _ in rows)
        for n, summary in rows:
            click.echo(f"{n:<{width}}  {summary}")
        click.echo(f"\n{len(rows)} transforms; `augcli transforms NAME` shows one in detail.")
