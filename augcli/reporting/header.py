"""The block every report starts with (run, inspect, evaluate, search): which command, which augcli,
which strategy and which dataset. One shape, so one reader serves every report."""

from __future__ import annotations

from augcli import __version__
from augcli.datasets import source_kind as detect_kind
from augcli.errors import DataError
from augcli.reporting.text import cell


def source_kind(strategy) -> str | None:
    """The loader the source went through ("digits", "folder", "npz"); None if it cannot be told."""
    ds = strategy.section("dataset")
    if ds["kind"] != "auto":
        return ds["kind"]
    try:
        return detect_kind(ds["source"])
    except DataError:  # the source went away after loading: the report is still worth writing
        return None


def report_header(command: str, strategy, classes, image_shape, overrides=None) -> dict:
    """``command``, ``augcli_version``, ``strategy`` and ``dataset``.

    ``image_shape`` is what the output holds (H, W, C): a folder's clean view holds thumbnails, so
    callers pass the source's shape. ``overrides`` (the ``--set`` expressions) are recorded by the
    commands that know them; a strategy does not remember its own.
    """
    strategy_block = {"path": strategy.path, "name": strategy.name, "sha256": strategy.sha256, "seed": strategy.seed}
    if overrides is not None:
        strategy_block["overrides"] = list(overrides)
    return {
        "command": command,
        "augcli_version": __version__,
        "strategy": strategy_block,
        "dataset": {"source": strategy.section("dataset")["source"], "kind": source_kind(strategy),
                    "image_shape": [int(v) for v in image_shape], "classes": list(classes)},
    }


def header_lines(report: dict, title: str, command_line: str | None = None) -> list[str]:
    """The Markdown opening of every report: the title, then the command, strategy and dataset."""
    st, ds = report["strategy"], report["dataset"]
    lines = [f"# {title}", ""]
    if command_line:
        lines.append(f"- command: `{command_line}`")
    kind = f" ({ds['kind']})" if ds["kind"] else ""
    return lines + [
        f"- strategy: `{cell(st['path'])}` (sha256 `{st['sha256'][:12]}`), seed {st['seed']}",
        f"- dataset: `{cell(ds['source'])}`{kind}, image shape {tuple(ds['image_shape'])}, {len(ds['classes'])} classes",
    ]
