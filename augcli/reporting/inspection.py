"""``augcli inspect``: every cleaning check, read-only. Nothing is dropped: findings are reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from augcli.clean import stage
from augcli.config.strategy import Strategy, strategy_from_text
from augcli.engine.stages import open_source, split_clean, write_findings
from augcli.io.atomic import AtomicFolder
from augcli.reporting import run_report as reporting
from augcli.reporting.markdown import render_inspection
from augcli.reporting.text import json_text

# A source given without a strategy is inspected with every check on.
_ALL_CHECKS = {
    "blank": "flag", "noise": "flag", "near_duplicates": "flag", "outliers": "flag", "label_errors": "flag",
}


def strategy_for_source(source: str, overrides=()) -> Strategy:
    """A minimal strategy that inspects ``source`` with every check enabled (as flags)."""
    text = json.dumps({"dataset": {"source": source}, "clean": {k: {"action": v} for k, v in _ALL_CHECKS.items()}})
    st = strategy_from_text(text, "<inspect>", overrides)
    st.path = source
    return st


def flag_only(config: dict) -> dict:
    """The strategy's clean settings with every enabled action turned into "flag"."""
    out = copy.deepcopy(config)
    for key, value in out.items():
        if isinstance(value, dict) and value.get("action") not in (None, "off"):
            value["action"] = "flag"
        elif value in ("drop",):
            out[key] = "flag"
    return out


def inspect(strategy: Strategy, limit: int | None = None, strict: bool = False) -> tuple[dict, list[dict], list]:
    """Run the checks; returns (report, findings, datasets the findings refer to)."""
    timer = reporting.Timer()
    with timer("load"):  # folders stream: the checks see thumbnails and full-resolution pixel keys
        source, loaded, keys = open_source(strategy, strict=strict, limit=limit)
    config = flag_only(strategy.section("clean"))
    with timer("clean"):
        cleaned, records = stage.clean(loaded, config, strategy.seed, keys)
    with timer("split"):
        splits, leaks = split_clean(strategy, cleaned, config)
    records += leaks
    report = reporting.common_report("inspect", strategy, loaded, cleaned, records, splits, source.image_shape)
    report["performance"] = {"seconds": {k: round(v, 4) for k, v in timer.stages.items()},
                             "total_seconds": round(timer.total(), 4)}
    return report, records, [loaded]


def write_inspection(target: Path, report: dict, records: list[dict], datasets: list, overwrite: bool,
                     inputs=()) -> list[str]:
    """inspect.json, inspect.md, quarantine.csv and (if anything was found) clean.png, atomically."""
    with AtomicFolder(target, overwrite, inputs=inputs) as tmp:
        files = ["inspect.json", "inspect.md"] + write_findings(tmp, stage.load_findings(datasets[0]) + records, datasets)
        report["output"] = {"dir": str(target), "files": files}
        (tmp / "inspect.md").write_text(render_inspection(report), encoding="utf-8")
        (tmp / "inspect.json").write_text(json_text(report), encoding="utf-8")
    return files
