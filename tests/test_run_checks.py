"""``run``'s strategy checks come before any work and carry file:line; anything else raised inside
the run is an internal error (exit 1), never a strategy error. ``RunOptions`` is not changed by a run."""

import dataclasses

import numpy as np
import pytest

from augcli.config.strategy import load_strategy
from augcli.engine.runner import RunOptions, run
from augcli.transforms import REGISTRY
from tests.helpers import fingerprint, invoke, write_strategy

RESIZING = """\
dataset: {{source: digits, limit: 60}}
augment:
  copies: {copies}
  keep_originals: {keep}
  pipeline:
    - hflip
    - resize: {{size: 6}}
"""


def test_a_size_change_with_originals_kept_is_refused_at_its_line(tmp_path):
    strategy = write_strategy(tmp_path / "s.yaml", RESIZING.format(copies=2, keep="true"))
    for extra in ((), ("--dry-run",)):  # the dry run says so too: the check needs no output work
        res = invoke("run", strategy, "--out", tmp_path / "out", *extra)
        assert res.exit_code == 2, res.output
        assert f"{strategy}:7: augment.pipeline[1]: resize changes the image size 8x8 -> 6x6" in res.output
        assert "keep_originals" in res.output and "internal error" not in res.output
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and not p.name.endswith(".lock")]


@pytest.mark.parametrize("copies, keep", [(2, "false"), (0, "true")], ids=["originals_dropped", "no_copies"])
def test_a_size_change_without_a_conflict_runs(tmp_path, copies, keep):
    strategy = write_strategy(tmp_path / "s.yaml", RESIZING.format(copies=copies, keep=keep))
    res = invoke("run", strategy, "--out", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    train = np.load(tmp_path / "out" / "train.npz")["images"]
    assert train.shape[1:3] == ((6, 6) if copies else (8, 8))


def test_an_internal_value_error_is_exit_1_not_a_strategy_error(tmp_path, monkeypatch):
    def broken_kernel(self, images, params):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(REGISTRY["hflip"], "apply", broken_kernel)
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 40}\n"
                                                   "augment: {copies: 1, pipeline: [{hflip: {p: 1}}]}\n")
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "internal error: ValueError: operands could not be broadcast" in res.output
    assert str(strategy) not in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()
    verbose = invoke("run", strategy, "--out", tmp_path / "out", "-v")
    assert verbose.exit_code == 1 and "Traceback" in verbose.output and "broken_kernel" in verbose.output


def test_run_options_are_immutable_and_the_report_carries_what_run_resolved(tmp_path):
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 40}\n"
                                                   "augment: {copies: 1, pipeline: [hflip]}\n")
    options = RunOptions(out=str(tmp_path / "out"))
    before = dataclasses.asdict(options)
    report = run(load_strategy(strategy), options)
    assert dataclasses.asdict(options) == before  # batch size resolved in run(), not written back
    performance = report["performance"]
    assert performance["batch_size"] == 1024 and performance["resumed_shards"] == 0  # 8x8x1: the 1024 cap
    assert performance["discarded_partial"] is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.batch_size = 7


def test_png_names_agree_across_shards_in_worker_processes(tmp_path):
    """The PNG tree's file names are made once, before the shards run, and shipped to the workers."""
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 120}\n"
                                                   "augment: {copies: 2, pipeline: [hflip, mixup]}\n"
                                                   "output: {format: png}\n")
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        res = invoke("run", strategy, "--out", out, "--shard-size", 50, "--workers", workers, "-q")
        assert res.exit_code == 0, res.output
        outputs.append(fingerprint(out))
    assert outputs[0] == outputs[1]
    assert sum(name.endswith(".png") for name in outputs[0]) > 100
