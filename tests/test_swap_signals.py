"""Signals and kills during the final swap (previous output aside, new output in place) and during
the cleanup of an interrupted run: the target always ends up whole, nothing is left beside it.

The test hook ``AUGCLI_TEST_PAUSE=<point>=<beacon>`` makes augcli create the beacon file at that
point and wait while it exists: the tests signal there and then delete the beacon (no sleeps)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import SLOW, fingerprint, invoke, write_strategy

REPO = Path(__file__).resolve().parents[1]
SMALL = "dataset: {source: digits, limit: 40}\naugment: {copies: 2, pipeline: [hflip]}\noutput: {format: png}\n"

def _start(strategy: Path, out: Path, point: str, beacon: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), AUGCLI_TEST_PAUSE=f"{point}={beacon}")
    return subprocess.Popen([sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite",
                             "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def _beside(tmp_path: Path) -> list[str]:
    """What is left beside the output, other than the lock file and the test's own files."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


@pytest.fixture
def outputs(tmp_path):
    """An old output at tmp_path/out (seed 1) and what the new run (seed 0) must produce."""
    strategy = write_strategy(tmp_path / "s.yaml", SMALL)
    assert invoke("run", strategy, "--out", tmp_path / "out", "--seed", "1", "-q").exit_code == 0
    assert invoke("run", strategy, "--out", tmp_path / "expected", "-q").exit_code == 0
    return strategy, fingerprint(tmp_path / "expected")


@pytest.mark.parametrize("signals, code", [((signal.SIGINT,), 130), ((signal.SIGINT, signal.SIGINT), 130),
                                           ((signal.SIGTERM,), 143), ((signal.SIGTERM, signal.SIGINT), 143)])
def test_signals_between_the_renames_leave_the_new_output_whole(tmp_path, outputs, signals, code):
    strategy, expected = outputs
    beacon = tmp_path / "beacon"
    proc = _start(strategy, tmp_path / "out", "swap", beacon)
    _wait_for(beacon, proc)
    assert not (tmp_path / "out").exists()  # the hook holds the swap between its two renames
    for sig in signals:
        proc.send_signal(sig)
    beacon.unlink()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert fingerprint(tmp_path / "out") == expected
    assert _beside(tmp_path) == []


def test_a_kill_between_the_renames_is_finished_by_the_next_command(tmp_path, outputs):
    strategy, expected = outputs
    beacon = tmp_path / "beacon"
    proc = _start(strategy, tmp_path / "out", "swap", beacon)
    _wait_for(beacon, proc)
    proc.kill()
    proc.communicate(timeout=60)
    beacon.unlink()
    assert not (tmp_path / "out").exists() and _beside(tmp_path)  # what SIGKILL leaves: old, new and journal
    res = invoke("run", strategy, "--out", tmp_path / "out")  # the next command finishes the swap first
    assert res.exit_code == 2 and "already exists" in res.output
    assert fingerprint(tmp_path / "out") == expected
    assert _beside(tmp_path) == []


@pytest.mark.parametrize("second, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_during_cleanup_waits_for_it(tmp_path, outputs, second, code):
    previous = fingerprint(tmp_path / "out")
    strategy = write_strategy(tmp_path / "slow.yaml", SLOW)
    beacon = tmp_path / "beacon"
    proc = _start(strategy, tmp_path / "out", "cleanup", beacon)
    _wait_for(tmp_path / ".out.partial" / ".parts", proc)  # the run is augmenting (its shard log exists)
    proc.send_signal(signal.SIGINT)
    _wait_for(beacon, proc)  # the cleanup has started
    proc.send_signal(second)  # the impatient second Ctrl-C
    beacon.unlink()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err  # the deferred signal is delivered once the cleanup is done
    assert "Traceback" not in err
    assert fingerprint(tmp_path / "out") == previous
    assert _beside(tmp_path) == []
