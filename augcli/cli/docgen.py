"""Reference docs generated from the code, so they cannot drift: the strategy schema, the CLI's
``--help`` texts and the transform catalogue.

    python -m augcli.cli.docgen        # rewrites docs/strategy.md, docs/cli.md, docs/transforms.md
"""

from __future__ import annotations

from pathlib import Path

import click

from augcli.cli.main import cli, commands
from augcli.config.schema import ListOf, Mapping
from augcli.config.strategy import SCHEMA
from augcli.transforms import catalogue


def _rows(fields: dict, prefix: str) -> list[str]:
    out = []
    for name, spec in fields.items():
        path = f"{prefix}{name}"
        if isinstance(spec, Mapping):
            out.append(f"| `{path}` | section | | | {spec.doc} |")
            out += _rows(spec.fields, path + ".")
        elif isinstance(spec, ListOf) and isinstance(spec.item, Mapping):
            out.append(f"| `{path}` | list | | `[]` | {spec.doc} |")
            out += _rows(spec.item.fields, path + "[].")
        else:
            out.append(f"| `{path}` | {spec.type_name()} | {spec.range_text()} | `{spec.default_text()}` | {spec.doc} |")
    return out


def render_strategy() -> str:
    lines = ["# Strategy reference", "",
             "Generated from `augcli/config/sections.py` by `python -m augcli.cli.docgen`; do not edit by hand.", "",
             "A strategy is one YAML mapping. Every key below is optional unless its default says",
             "`required`; `augcli validate STRATEGY` prints the strategy with every default filled in.",
             "Relative paths are resolved from the current working directory.", "",
             "| key | type | range | default | meaning |", "|---|---|---|---|---|"]
    lines += _rows(SCHEMA, "")
    lines += ["", "Each `augment.pipeline` entry is a transform name (`hflip`) or a one-key mapping",
              "`{name: {parameter: value}}`; containers (`sequence`, `one_of`, `some_of`) take a list of",
              "entries. Ranges accept one number `v` (meaning `[-v, v]`, or `[1 - v, 1 + v]` for factors)",
              "or a pair `[a, b]`. See [transforms.md](transforms.md) for every transform's parameters.", "",
              "YAML 1.1 reads an unquoted `off` or `no` as false and `on` or `yes` as true: where a choice",
              "includes `off` (or `on`), false (true) means that value, so `action: off` needs no quotes.", ""]
    return "\n".join(lines)


def render_cli() -> str:
    lines = ["# CLI reference", "", "Generated from the commands' `--help` by `python -m augcli.cli.docgen`.", ""]
    # a fixed width, so the text does not depend on the terminal that generates it
    # (and the group's own context settings, e.g. -h, as the real command line has them)
    width = {"terminal_width": 100, "max_content_width": 100, **cli.context_settings}
    ctx = click.Context(cli, info_name="augcli", **width)
    lines += ["## augcli", "", "```", cli.get_help(ctx), "```", ""]
    for name, cmd in commands().items():
        sub = click.Context(cmd, info_name=f"augcli {name}", parent=ctx, **width)
        lines += [f"## augcli {name}", "", "```", cmd.get_help(sub), "```", ""]
    return "\n".join(lines)


DOCS = {"strategy.md": render_strategy, "cli.md": render_cli, "transforms.md": catalogue.render_markdown}


def main(folder: str | Path = "docs") -> None:
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    for name, render in DOCS.items():
        (folder / name).write_text(render(), encoding="utf-8")
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
