"""Shared test utilities: invoke the CLI and fingerprint output folders."""

import hashlib
from pathlib import Path

from click.testing import CliRunner

from augcli.cli.main import cli

# A run long enough to be signalled or killed mid-way (about 20 s on one core): 1797 x 401 elastic samples.
SLOW = """\
dataset: {source: digits}
augment:
  copies: 400
  pipeline:
    - elastic: {alpha: 2, sigma: 1.2}
    - gaussian_blur: {}
"""

# report.json/report.md hold timings; every other output file must be byte-identical across runs.
VOLATILE = {"report.json", "report.md"}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every non-volatile file below ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in VOLATILE
    }


def write_strategy(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
