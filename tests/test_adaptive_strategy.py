"""The strategy's ``adaptive:`` section: validation, the Python API and ``evaluate --online``."""

import json

import numpy as np
import pytest

from augcli.adaptive import AdaptivePipeline
from augcli.config.strategy import strategy_from_text
from tests.helpers import TINY_DIGITS as TINY, invoke, write_strategy


RISE = TINY + "adaptive: {enabled: true, metric: confidence, target: 0.0, step: 0.2, p_init: 0.0, p_max: 0.6}\n"
FALL = TINY + "adaptive: {enabled: true, metric: gap, target: 1.0, step: 0.3, p_init: 1.0}\n"


def test_section_defaults_off_and_keeps_the_hash():
    plain = strategy_from_text(TINY, "s.yaml")
    assert plain.section("adaptive")["enabled"] is False
    # a strategy without the section keeps the hash it had before the section existed
    assert plain.sha256 == strategy_from_text(TINY + "adaptive: {enabled: false}\n", "s.yaml").sha256
    assert plain.sha256 != strategy_from_text(RISE, "s.yaml").sha256
    assert AdaptivePipeline.from_strategy(plain).p == 1.0  # off: the pipeline runs at full strength
    on = AdaptivePipeline.from_strategy(strategy_from_text(RISE, "s.yaml"))
    assert (on.p, on.controller.metric, on.controller.p_max, on.controller.step) == (0.0, "confidence", 0.6, 0.2)


@pytest.mark.parametrize("section, line, fragment", [
    ("adaptive:\n  enabled: true\n  metric: loss\n", 10, "adaptive.metric: expected one of"),
    ("adaptive:\n  stepp: 0.1\n", 9, "adaptive.stepp: unknown key 'stepp' (did you mean 'step'?)"),
    ("adaptive:\n  val_fraction: 0.9\n", 9, "adaptive.val_fraction: expected a number in [0.05, 0.5]"),
    ("adaptive:\n  p_max: 0.5\n  p_init: 0.8\n", 10, "adaptive.p_init: must not exceed p_max (0.5), got 0.8"),
])
def test_bad_section_exits_2_with_file_line(tmp_path, section, line, fragment):
    path = write_strategy(tmp_path / "bad.yaml", TINY + section)
    res = invoke("validate", path)
    assert res.exit_code == 2, res.output
    assert f"bad.yaml:{line}: " in res.output and fragment in res.output, res.output


def _online(strategy, out, *extra):
    res = invoke("evaluate", strategy, "--out", out, "--limit", 200, "--train-fraction", 0.3, "--repeats", 2,
                 "--online", "--epochs", 4, "--json", *extra)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    report.pop("performance"), report.pop("output")
    return report


def test_evaluate_online_adapts_p_deterministically(tmp_path):
    rise = write_strategy(tmp_path / "rise.yaml", RISE)
    report = _online(rise, tmp_path / "a")
    assert report == _online(rise, tmp_path / "b", "--jobs", 2)
    assert report["protocol"]["adaptive"]["applied"] is True
    row = report["results"][0]
    # confidence is at least 1/K > 0 = target, so every update raises p by step until p_max
    for trace in row["adaptive"]["trajectories"]:
        assert trace["p"] == pytest.approx([0.2, 0.4, 0.6, 0.6])
    assert row["adaptive"]["final_p"]["values"] == pytest.approx([0.6, 0.6])
    # the confidence measure needs no held-out part: the online arm trains on the whole split
    assert row["adaptive"]["n_val"] == 0 and row["adaptive"]["n_fit"] == row["n_train"]
    md = (tmp_path / "a" / "evaluate.md").read_text()
    assert "## Adaptive strength of the online arm" in md and "| 0.60 ± 0.00 | 0.60, 0.60 |" in md
    fall = _online(write_strategy(tmp_path / "fall.yaml", FALL), tmp_path / "c")
    held_out = fall["results"][0]["adaptive"]
    assert held_out["n_val"] > 0 and held_out["n_fit"] + held_out["n_val"] == row["n_train"]  # gap: val split
    for trace in held_out["trajectories"]:  # a gap below 1: p falls to 0
        assert trace["p"] == pytest.approx([0.7, 0.4, 0.1, 0.0])
        assert all(t - v < 1.0 for t, v in zip(trace["train"], trace["val"]))
    assert fall["results"][0]["arms"]["original"] == row["arms"]["original"]  # other arms unchanged
    assert fall["results"][0]["arms"]["offline"] == row["arms"]["offline"]


def test_disabled_section_leaves_evaluate_unchanged(tmp_path):
    plain = _online(write_strategy(tmp_path / "plain.yaml", TINY), tmp_path / "a")
    off = _online(write_strategy(tmp_path / "off.yaml", TINY + "adaptive: {target: 0.3, p_init: 0.5}\n"),
                  tmp_path / "b")
    assert "adaptive" not in plain["protocol"] and "adaptive" not in off["protocol"]
    assert plain["results"] == off["results"] and "adaptive" not in plain["results"][0]
    assert np.isfinite(plain["results"][0]["arms"]["online"]["accuracy"]["mean"])
