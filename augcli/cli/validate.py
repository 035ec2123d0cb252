"""``augcli validate``: check a strategy and print it resolved (defaults filled in)."""

from __future__ import annotations

import json

import click

from augcli.cli import options
from augcli.config.strategy import load_strategy


@click.command()
@options.strategy_argument
@options.strategy_inputs
@options.json_output
@options.verbosity
def validate(strategy, overrides, input_source, seed, as_json):
    """Check STRATEGY and print the fully resolved strategy (or the first error, exit 2)."""
    st = load_strategy(strategy, options.strategy_overrides(overrides, input_source, seed))
    if as_json:
        click.echo(json.dumps({"path": st.path, "sha256": st.sha256, "strategy": st.resolved()}, indent=2, default=list))
    elif not options.is_quiet():
        click.echo(f"# {st.path}: valid ({len(st.transforms)} transforms, sha256 {st.sha256[:12]})")
        click.echo(st.to_yaml(resolved=True), nl=False)
