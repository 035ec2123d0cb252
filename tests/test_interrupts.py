"""Interrupts, concurrent runs and unwritable targets leave no partial output and exit cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from augcli.errors import UsageError
from augcli.io.atomic import AtomicFolder
from tests.helpers import SLOW, fingerprint, invoke, write_strategy


def _start(tmp_path, out):
    strategy = write_strategy(tmp_path / "slow.yaml", SLOW)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen([sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite",
                             "--batch-size", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _wait_for_work(proc, out: Path, seconds=60.0):
    """Wait until the run is writing (its partial output exists): no fixed sleeps on a busy machine."""
    deadline = time.time() + seconds
    while not (out.parent / f".{out.name}.partial" / ".parts").exists():  # the shard log: augmenting
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the run never started writing"
        time.sleep(0.02)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_keeps_previous_output_and_leaves_no_temp(tmp_path, sig, code):
    out = tmp_path / "out"
    previous = write_strategy(tmp_path / "small.yaml", "dataset: {source: digits, limit: 20}\naugment: {copies: 1, pipeline: [hflip]}\n")
    assert invoke("run", previous, "--out", out).exit_code == 0
    before = fingerprint(out)
    proc = _start(tmp_path, out)
    _wait_for_work(proc, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert fingerprint(out) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_second_writer_on_the_same_output_is_refused(tmp_path):
    target = tmp_path / "out"
    with AtomicFolder(target, overwrite=True):
        with pytest.raises(UsageError, match="another augcli run"):
            with AtomicFolder(target, overwrite=True):
                pass
    with AtomicFolder(target, overwrite=True):  # the lock is released afterwards
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_target_is_a_data_error(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 10}\n")
        res = invoke("run", strategy, "--out", parent / "out")
        assert res.exit_code == 1 and "cannot" in res.output
    finally:
        parent.chmod(0o700)


def test_full_disk_is_a_data_error(tmp_path, monkeypatch):
    """A write failing with ENOSPC mid-run: exit 1, one line, no temporary folder left."""
    import errno

    import augcli.io.formats as formats

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(formats, "write_npz", full)
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 10}\n")
    res = invoke("run", strategy, "--out", tmp_path / "out")
    assert res.exit_code == 1 and "No space left on device" in res.output
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_output_under_a_file_is_a_data_error(tmp_path):
    """Works as root too: the parent of --out is a regular file, so nothing can be created there."""
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits, limit: 10}\n")
    res = invoke("run", strategy, "--out", blocker / "out")
    assert res.exit_code == 1 and "cannot create the output folder" in res.output and "Traceback" not in res.output


# A fresh interpreter: which threads exist after numpy and after OpenCV, and their blocked signals.
_THREAD_MASKS = """
import os, sys
def masks():
    return {t: int(open(f"/proc/self/task/{t}/status").read().split("SigBlk:")[1].split()[0], 16)
            for t in os.listdir("/proc/self/task")}
import numpy
before = masks()
from augcli.backend import cv2_or_none
if cv2_or_none() is None:
    sys.exit(3)
after = masks()
started = [after[t] for t in after if t not in before]
print(len(started), all(m & (1 << 1) and m & (1 << 14) for m in started), masks()[str(os.getpid())])
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread signal masks from Linux /proc")
def test_opencv_threads_never_take_sigint_or_sigterm():
    """Every thread OpenCV starts (its import's own and its pool's) has SIGINT (bit 1) and SIGTERM
    (bit 14) blocked, so the kernel hands them to a Python thread; the main thread keeps neither blocked."""
    res = subprocess.run([sys.executable, "-c", _THREAD_MASKS], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    if res.returncode == 3:
        pytest.skip("needs opencv-python-headless >= 5")
    started, all_blocked, main_mask = res.stdout.split()
    assert int(started) >= 1 and all_blocked == "True", res.stdout
    assert int(main_mask) & ((1 << 1) | (1 << 14)) == 0


@pytest.fixture
def stop_handlers():
    """augcli's stop handlers installed in this process (as ``augcli.cli.main.main`` does), and
    pytest's handlers and an empty latch restored afterwards."""
    from augcli.io import signals

    previous = {sig: signal.getsignal(sig) for sig in signals.SIGNALS}
    signals.install()
    yield signals
    signals._stopped.clear()
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _swallowed(sig=signal.SIGINT):
    """A stop signal whose exception native code swallowed, as NumPy does in some C paths."""
    try:
        signal.raise_signal(sig)
    except BaseException:
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_a_swallowed_ctrl_c_still_stops_the_next_task(stop_handlers, workers):
    import operator

    from augcli.engine.executors import Engine

    with Engine(workers=workers) as engine:
        results = engine.map(operator.add, [1, 2, 3], 10)
        assert next(results) == 11
        _swallowed()
        with pytest.raises(KeyboardInterrupt):
            next(results)


def test_a_swallowed_sigterm_keeps_the_output_unpublished(stop_handlers, tmp_path):
    target = tmp_path / "out"
    with pytest.raises(stop_handlers.Terminated):
        with AtomicFolder(target) as tmp:
            (tmp / "a.txt").write_text("half of an output")
            _swallowed(signal.SIGTERM)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


HASH_UNDER_CTRL_C = """
import signal, threading, time
import numpy as np
from augcli.rng import hash_ids

armed = False  # the handler raises only around hash_ids (never at the loop's own back-jump)
raised_in = 0


def on_sigint(signum, frame):
    global raised_in
    if armed:
        raised_in += 1
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)
ids = np.array([f"digits:{i}" for i in range(2000)])
main = threading.main_thread().ident


def send():
    time.sleep(0.3)
    for _ in range(250):
        time.sleep(0.008)
        signal.pthread_kill(main, signal.SIGINT)


sender = threading.Thread(target=send)
sender.start()
calls = caught = 0
while sender.is_alive():
    try:
        armed = True
        hash_ids(ids)
        armed = False
        calls += 1
    except KeyboardInterrupt:
        armed = False
        caught += 1
print(calls, raised_in, caught)
"""


def test_ids_are_hashed_without_losing_a_ctrl_c():
    """Iterating a NumPy string array swallowed ~13 % of the Ctrl-Cs that arrived meanwhile (the run
    then went on to the end); ``hash_ids`` must let every one through. Signals sent 250 times to the
    main thread of a process that hashes ids in a loop."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    res = subprocess.run([sys.executable, "-c", HASH_UNDER_CTRL_C], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    calls, raised, caught = map(int, res.stdout.split())
    assert caught == raised  # each KeyboardInterrupt the handler raised reached the caller
    assert raised >= 150 and calls > 0  # the signals did arrive while it hashed
