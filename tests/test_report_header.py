"""Every report (run, inspect, evaluate, search) opens with one header: the same keys in the same
order, the same values for the same strategy, and the same Markdown lines."""

import json

import pytest

import augcli
from augcli import RunOptions, evaluate, run, search
from augcli.config.strategy import strategy_from_text
from augcli.evaluation.api import Settings as EvalSettings
from augcli.policy_search.api import Settings as SearchSettings
from augcli.reporting.header import report_header
from augcli.reporting.inspection import inspect, write_inspection
from tests.helpers import TINY_DIGITS
from tests.test_layout import import_graph

STRATEGY = TINY_DIGITS

HEADER = ["command", "augcli_version", "strategy", "dataset"]
DATASET = ["source", "kind", "image_shape", "classes"]


def _reports(tmp_path) -> dict[str, tuple[dict, str]]:
    """command -> (its JSON report as written, its Markdown report)."""
    st = strategy_from_text(STRATEGY, str(tmp_path / "tiny.yaml"))
    run(st, RunOptions(out=str(tmp_path / "run"), limit=300))
    report, records, datasets = inspect(st, limit=300)
    write_inspection(tmp_path / "inspect", report, records, datasets, overwrite=False)
    evaluate(st, EvalSettings(models=("knn",), fractions=(0.3,), repeats=2), out=str(tmp_path / "evaluate"), limit=300)
    search(st, SearchSettings(method="grid", model="knn", budget=2, folds=2, fraction=0.3, repeats=1),
           report=str(tmp_path / "search"), limit=300)
    names = {"run": "report", "inspect": "inspect", "evaluate": "evaluate", "search": "search"}
    return {cmd: (json.loads((tmp_path / cmd / f"{name}.json").read_text(encoding="utf-8")),
                  (tmp_path / cmd / f"{name}.md").read_text(encoding="utf-8"))
            for cmd, name in names.items()}


def test_every_report_opens_with_the_same_header(tmp_path):
    reports = _reports(tmp_path)
    strategy = {"path": str(tmp_path / "tiny.yaml"), "name": "tiny", "seed": 3}
    dataset = {"source": "digits", "kind": "digits", "image_shape": [8, 8, 1], "classes": [str(d) for d in range(10)]}
    for command, (report, _) in reports.items():
        assert list(report)[:4] == HEADER, command
        assert report["command"] == command and report["augcli_version"] == augcli.__version__
        assert {k: report["strategy"][k] for k in strategy} == strategy, command
        assert list(report["dataset"])[:4] == DATASET, command
        assert {k: report["dataset"][k] for k in DATASET} == dataset, command
    assert len({r["strategy"]["sha256"] for r, _ in reports.values()}) == 1
    # the commands that take --set record it; run and inspect are not told
    assert reports["evaluate"][0]["strategy"]["overrides"] == reports["search"][0]["strategy"]["overrides"] == []
    # Markdown: one title line per command, then the same strategy and dataset lines everywhere
    openings = {cmd: [line for line in md.splitlines()[:6] if line.startswith(("- strategy:", "- dataset:"))]
                for cmd, (_, md) in reports.items()}
    assert openings["run"] == ["- strategy: `" + strategy["path"] + "` (sha256 `"
                               + reports["run"][0]["strategy"]["sha256"][:12] + "`), seed 3",
                               "- dataset: `digits` (digits), image shape (8, 8, 1), 10 classes"]
    assert all(lines == openings["run"] for lines in openings.values()), openings
    for command in ("evaluate", "search"):  # both say how to reproduce them, in the same place
        assert reports[command][1].splitlines()[2].startswith(f"- command: `augcli {command} ")


@pytest.mark.parametrize("source, kind, expected", [
    ("digits", "auto", "digits"),
    ("{tmp}/d.npz", "auto", "npz"),
    ("{tmp}/folder", "auto", "folder"),
    ("{tmp}/named", "npz", "npz"),      # an explicit kind is taken as it is
    ("{tmp}/gone", "auto", None),       # the source went away after loading: the report is still written
])
def test_the_header_names_the_loader(tmp_path, source, kind, expected):
    (tmp_path / "folder").mkdir()
    text = f"dataset: {{source: '{source.format(tmp=tmp_path)}', kind: {kind}}}\n"
    header = report_header("run", strategy_from_text(text, "s.yaml"), ["a", "b"], (4, 4, 1))
    assert header["dataset"]["kind"] == expected
    assert header["dataset"]["image_shape"] == [4, 4, 1] and header["dataset"]["classes"] == ["a", "b"]


def test_only_evaluation_imports_evaluation_report():
    # search and the CLI take their text helpers from reporting.text, and evaluate's summaries from
    # evaluation.summary: evaluation/report.py renders evaluate's outputs and nothing else's
    readers = sorted(m for m, edges in import_graph().items() if "augcli.evaluation.report" in edges)
    assert readers and all(m.startswith("augcli.evaluation.") for m in readers), readers
