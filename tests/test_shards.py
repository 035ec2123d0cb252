"""Shards: identical bytes for any workers / engine, WebDataset tars, resume after a crash."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import fingerprint, invoke, write_strategy

STRATEGY = """\
seed: 9
dataset: {source: digits}
split: {val: 0.2}
augment:
  copies: 3
  pipeline:
    - affine: {degrees: 10, translate: 0.1}
    - gaussian_noise: {p: 0.5}
    - mixup: {p: 0.3}
"""


def run(tmp_path, name, *extra):
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY)
    out = tmp_path / name
    res = invoke("run", strategy, "--out", out, "--shard-size", 700, "-q", *extra)
    assert res.exit_code == 0, res.output
    return out


def test_shards_are_identical_for_any_workers_and_batch_size(tmp_path):
    base = fingerprint(run(tmp_path, "w1"))
    assert sum(name.startswith("train-") for name in base) > 5
    assert fingerprint(run(tmp_path, "w2", "--workers", 2)) == base
    assert fingerprint(run(tmp_path, "b7", "--batch-size", 7, "--workers", 2)) == base


def test_dask_engine_gives_the_local_bytes(tmp_path):
    pytest.importorskip("dask.distributed")
    base = fingerprint(run(tmp_path, "local"))
    assert fingerprint(run(tmp_path, "dask", "--engine", "dask", "--workers", 2)) == base


def test_missing_dask_extra_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if not installed
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY)
    res = invoke("run", strategy, "--out", tmp_path / "o", "--engine", "dask", "--limit", 50)
    assert res.exit_code == 2 and 'pip install "augcli[dask]"' in res.output
    assert not (tmp_path / "o").exists()


def test_webdataset_tar_shards(tmp_path):
    out = run(tmp_path, "tar", "--format", "tar", "--limit", 200)
    tars = sorted(out.glob("train-*.tar"))
    assert tars
    with tarfile.open(tars[0]) as tar:
        names = tar.getnames()
        assert names[:3] == ["train-00000_000000.png", "train-00000_000000.cls", "train-00000_000000.json"]
        meta = json.loads(tar.extractfile(names[2]).read())
        assert meta["copy"] == 0 and "soft_label" in meta
        assert all(m.mtime == 0 for m in tar.getmembers())
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["file"] == "train-00000.tar#train-00000_000000"


def test_interrupted_run_with_resume_skips_finished_shards(tmp_path, monkeypatch):
    import augcli.engine.executors as executors

    fresh = fingerprint(run(tmp_path, "fresh"))
    calls = {"n": 0}
    real = executors.run_shard

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "run_shard", flaky)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY)
    out = tmp_path / "resumed"
    res = invoke("run", strategy, "--out", out, "--shard-size", 700, "--resume")
    assert res.exit_code == 130
    assert not out.exists() and (tmp_path / ".resumed.partial").is_dir()
    monkeypatch.setattr(executors, "run_shard", real)
    res = invoke("run", strategy, "--out", out, "--shard-size", 700, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["performance"]["resumed_shards"] == 3
    assert fingerprint(out) == fresh
    assert not (tmp_path / ".resumed.partial").exists()


def test_interrupt_without_resume_leaves_no_partial(tmp_path, monkeypatch):
    import augcli.engine.executors as executors

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(executors, "run_shard", boom)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY)
    res = invoke("run", strategy, "--out", tmp_path / "o", "--shard-size", 700)
    assert res.exit_code == 130
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")and not p.name.endswith(".lock")]


def test_killed_run_resumes(tmp_path):
    """SIGKILL mid-run (no cleanup possible), then the same command finishes the remaining shards."""
    slow = STRATEGY.replace("copies: 3", "copies: 40")
    strategy = write_strategy(tmp_path / "slow.yaml", slow)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--shard-size", "2000", "--json"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    parts = tmp_path / ".out.partial" / ".parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = proc.returncode, len(list(parts.glob("*.json")))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["performance"]["resumed_shards"] >= 2, done
    data = np.load(out / "train-00000.npz")
    assert 2000 - 41 < data["images"].shape[0] <= 2000  # whole sources per shard, 41 outputs each
    assert not (tmp_path / ".out.partial").exists()
