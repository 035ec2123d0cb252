"""Text and JSON helpers every command's report uses: numbers as percentages, intervals, table
cells, reproducing command lines, and JSON that has no NaN."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np


def cell(value) -> str:
    """Table-safe text: pipes and newlines in names cannot break the table."""
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def pct(x, digits: int = 1) -> str:
    """A fraction as a percentage, "-" when unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}"


def pp(x) -> str:
    """A difference of fractions as signed percentage points, "-" when unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}"


def p_text(x) -> str:
    """A p-value: three decimals, scientific below 0.001, "-" when unknown."""
    return "-" if x is None or not math.isfinite(x) else (f"{x:.1e}" if x < 1e-3 else f"{x:.3f}")


def mean_ci_text(s: dict) -> str:
    """"92.3 ± 0.8": a mean_ci summary in percent with the CI half-width."""
    lo, hi = s["ci"]
    if lo is None or not math.isfinite(lo):
        return pct(s["mean"])
    return f"{pct(s['mean'])} ± {100 * (hi - lo) / 2:.1f}"


def diff_text(s: dict) -> str:
    """"+0.62 [+0.21, +1.03]": a paired difference and its CI in percentage points."""
    return f"{pp(s['mean'])} [{pp(s['ci'][0])}, {pp(s['ci'][1])}]"


def finish_command(args: list[str], report: dict) -> str:
    """``args`` plus the options every command shares (``--limit``, ``--set``), shell-quoted."""
    limit = report["protocol"]["limit"]
    args = args + (["--limit", str(limit)] if limit else [])
    for expr in report["strategy"]["overrides"]:
        args += ["--set", expr]
    return shlex.join(args)


def clean_json(value):
    """NaN/inf -> None and floats rounded to 6 places, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def json_text(report: dict) -> str:
    """The report as written to disk: indented, one trailing newline."""
    return json.dumps(report, indent=2) + "\n"


def write_json(path, report: dict) -> None:
    """``report`` through ``clean_json`` into ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json_text(clean_json(report)))
