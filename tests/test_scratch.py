"""Scratch folders in TMPDIR: a run killed outright leaves its folders, and the next augcli process
removes them; a live process's folders, and folders that are not augcli's, are never touched."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from augcli.io import scratch
from tests.helpers import square, write_strategy, write_tree

ROOT = Path(__file__).resolve().parents[1]

# Makes a scratch folder with a file in it, prints its path, then waits for a line on stdin
# (``exit``: removes it and ends; ``kill``: SIGKILLs itself, as the out-of-memory killer would).
HOLDER = """
import os, signal, sys
from augcli.io import scratch
path = scratch.make("sources")
(path / "cache.bin").write_bytes(bytes(1000))
print(path, flush=True)
if sys.stdin.readline().strip() == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
scratch.remove(path)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a holder process with TMPDIR = tmp_path; returns (process, its folder)."""
    procs = []

    def start():
        env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
        proc = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        return proc, Path(proc.stdout.readline().strip())

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _tell(proc, word: str) -> None:
    proc.stdin.write(word + "\n")
    proc.stdin.flush()
    proc.wait(timeout=60)


def test_a_killed_processs_folder_is_swept_and_a_live_ones_kept(tmp_path, holder):
    live, live_folder = holder()
    killed, killed_folder = holder()
    _tell(killed, "kill")
    assert killed.returncode == -signal.SIGKILL and (killed_folder / "cache.bin").exists()
    assert scratch.sweep(tmp_path) == [killed_folder.name]
    assert not killed_folder.exists()
    assert (live_folder / "cache.bin").exists()  # its process holds the lock
    _tell(live, "exit")
    assert live.returncode == 0 and not live_folder.exists()  # removed by its own process


def test_folders_that_are_not_augclis_are_never_swept(tmp_path):
    (tmp_path / "augcli-sources-unlocked").mkdir()  # no lock file: another program's, or an older augcli's
    (tmp_path / "augcli-sources-unlocked" / "data").write_text("x")
    (tmp_path / "other-folder").mkdir()
    (tmp_path / "other-folder" / scratch.LOCK).write_text("")
    (tmp_path / "augcli-link").symlink_to(tmp_path / "other-folder")
    assert scratch.sweep(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["augcli-link", "augcli-sources-unlocked", "other-folder"]


def test_a_folder_of_this_process_is_kept_until_removed(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with scratch.folder("jobs") as path:
        assert path.parent == tmp_path and path.name.startswith("augcli-jobs-")
        assert scratch.sweep(tmp_path) == []  # the lock is held by this process's own descriptor
    assert list(tmp_path.iterdir()) == []


def test_a_run_after_a_killed_run_leaves_no_scratch_behind(tmp_path, holder, photo):
    """As a user meets it: an out-of-memory kill left the source cache; the next run cleans it up."""
    killed, old_cache = holder()
    _tell(killed, "kill")
    assert old_cache.exists()
    photos = write_tree(tmp_path / "photos", {f"{cls}/{i}.png": square(photo, 40 * i, 60 * k, 48)
                                              for k, cls in enumerate("ab") for i in range(3)})
    strategy = write_strategy(tmp_path / "s.yaml", f"dataset: {{source: {photos}}}\naugment: {{copies: 1, pipeline: [hflip]}}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(tmp_path / "out"), "-q"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("augcli-")] == []



def test_without_flock_a_folder_is_made_and_never_swept(tmp_path, monkeypatch):
    """Some file systems refuse flock: the run goes on, and its folder is left to its own removal."""
    import fcntl

    def refuse(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(fcntl, "flock", refuse)
    path = scratch.make("sources")
    assert sorted(p.name for p in path.iterdir()) == []  # no lock file under its name, no stray one
    assert scratch.sweep(tmp_path) == [] and path.exists()
    scratch.remove(path)
    assert not path.exists()


def test_a_folder_that_cannot_be_emptied_keeps_its_lock_file(tmp_path, monkeypatch):
    """Removal takes the lock file last: if part of the folder stays (a process still writing into it),
    the lock file stays too, and a later sweep finishes the job."""
    import shutil

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = scratch.make("dask")
    (path / "busy").mkdir()
    (path / "busy" / "spill.bin").write_bytes(bytes(10))
    (path / "done.bin").write_bytes(bytes(10))
    real = shutil.rmtree
    monkeypatch.setattr(scratch.shutil, "rmtree",
                        lambda p, ignore_errors=False: None if Path(p).name == "busy" else real(p, ignore_errors))
    scratch.remove(path)
    assert sorted(p.name for p in path.iterdir()) == [scratch.LOCK, "busy"]
    monkeypatch.setattr(scratch.shutil, "rmtree", real)
    assert scratch.sweep(tmp_path) == [path.name] and not path.exists()
