"""Worker processes never outlive the run, and no run leaves files outside its output folder.

- ``kill -9`` of the main process: the forkserver, the workers and the resource tracker are gone
  within 5 s (the kernel's parent-death signal, not a clean-up the killed process cannot run).
- An interrupt (SIGINT, SIGTERM) or an error in the main process kills the workers before the
  temporary output folder is deleted, instead of waiting for their running jobs.
- The Dask engine keeps its scratch space inside the output's temporary folder and removes it.

The interrupt and error cases use ``HangOnMarked``, a transform that blocks forever inside a
worker on chosen images: a run that waits for its workers would hang, and each worker announces
itself in a beacon file first, so the tests synchronise on files, never on sleeps.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from augcli.io import scratch
from augcli.transforms.base import Transform
from tests.helpers import SLOW, invoke, write_strategy

ROOT = Path(__file__).resolve().parents[1]

HANGING = """\
dataset: {source: %s}
clean:
  exact_duplicates: flag
  blank: {action: flag}
  near_duplicates: {action: flag}
  leakage: {action: flag}
split: {val: 0}
augment: {copies: 1, pipeline: [hang_on_marked]}
report: {preview: false}
output: {shuffle: false}  # the first shard must hold the unmarked rows 0-3
"""


class HangOnMarked(Transform):
    """Test only: inside a worker process, blocks forever on a batch holding a marked image (top-left
    pixel 255), after writing the worker's pid into ``beacons/`` of its working folder (workers take
    the caller's; not the environment, which they inherit from the forkserver). The identity elsewhere."""

    name = "hang_on_marked"
    summary = "test only"

    def apply(self, images, params):
        from augcli.engine import workers

        if workers.JOB.get("in_worker") and (images[:, 0, 0] == 255).any():
            Path("beacons", str(os.getpid())).touch()
            threading.Event().wait()
        return images


def register_hang():
    """Make ``hang_on_marked`` usable in strategies (workers only unpickle the class, by its name)."""
    from augcli.transforms import registry

    registry.load_all()
    registry.register(HangOnMarked.name)(HangOnMarked)


@pytest.fixture
def hang(monkeypatch):
    """The transform registered for this test only (the catalogue tests iterate the registry)."""
    from augcli.transforms import registry

    registry.load_all()  # every module registered first: what registers into the copy is lost at teardown
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    monkeypatch.setattr(registry, "_sequence", dict(registry._sequence))
    register_hang()


def marked_npz(path: Path, unmarked: int, n: int = 200) -> Path:
    """Digits as uint8, rows ``unmarked`` and beyond marked (digits' top-left pixel is always 0)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:n] * 16).clip(0, 255).astype(np.uint8)
    images[unmarked:, 0, 0] = 255
    ids = np.array([f"s{i:04d}" for i in range(n)])
    np.savez(path, images=images, labels=digits.target[:n], ids=ids)
    return path


# --- processes ----------------------------------------------------------------------------------

def _stat(pid: int):
    """(parent pid, state, start time) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """Every process whose parent chain leads to ``root``: pid -> (depth, start time)."""
    children: dict[int, list[int]] = {}
    starts = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found, todo = {}, [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        for child in children.get(pid, []):
            found[child] = (depth + 1, starts[child])
            todo.append((child, depth + 1))
    return found


def alive(procs: dict[int, tuple[int, str]]) -> list[int]:
    """Those still running: same pid and start time (not re-used), and not a zombie."""
    out = []
    for pid, (_, start) in procs.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            out.append(pid)
    return out


def wait_until_gone(procs, seconds=5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_for(condition, proc, what: str, seconds=180.0):
    """Poll a beacon; fail (not hang) if the run ends or never gets there."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc is None or proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.05)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def workers_started(proc, n=2) -> bool:
    """At least ``n`` worker processes: not a resource tracker, not the forkserver (its forked workers
    share its command line one level below it)."""
    def worker(pid, depth):
        cmd = _cmdline(pid)
        return "resource_tracker" not in cmd and not (depth == 1 and "forkserver" in cmd)

    return sum(worker(pid, depth) for pid, (depth, _) in descendants(proc.pid).items()) >= n


def start(tmp_path, args, *, hang=False, tmpdir=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    (tmp_path / "beacons").mkdir(exist_ok=True)
    code = ("from tests.test_orphans import register_hang; register_hang(); " if hang else "") + \
        "from augcli.cli.main import main; main()"
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, cwd=tmp_path,
                                stdout=out, stderr=err)


def temporaries(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir()
                  if p.name.startswith(".out.") and not p.name.endswith(".lock"))


# --- kill -9 --------------------------------------------------------------------------------------

KILLED = {
    "shards": ["run", "slow.yaml", "--out", "out", "--workers", "2", "--batch-size", "64", "--shard-size", "2000"],
    "batches": ["run", "slow.yaml", "--out", "out", "--workers", "2", "--batch-size", "64"],
    "dask": ["run", "slow.yaml", "--out", "out", "--workers", "2", "--shard-size", "2000", "--engine", "dask"],
    "evaluate": ["evaluate", "slow.yaml", "-o", "out", "--jobs", "2", "--model", "logreg", "--repeats", "4"],
    "search": ["search", "slow.yaml", "-o", "out", "--jobs", "2", "--model", "logreg", "--repeats", "2"],
}


@pytest.mark.parametrize("command", list(KILLED))
def test_kill_9_of_the_main_process_ends_every_worker(tmp_path, command):
    """The issue's case: ``kill -9`` during ``--workers 2`` left the forkserver, both workers and the
    resource tracker running for good. Shards go to workers (``shards``), or the batches of a single
    shard do (``batches``); Dask's workers, and joblib's for ``evaluate``/``search --jobs``, too."""
    if command == "dask":
        pytest.importorskip("dask.distributed")
    write_strategy(tmp_path / "slow.yaml", SLOW)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = start(tmp_path, [*KILLED[command], "-q"], tmpdir=tmpdir)
    tree = {}
    try:
        wait_for(lambda: workers_started(proc), proc, "two worker processes")
        tree = descendants(proc.pid)
        assert len(tree) >= 3, tree  # two workers and a resource tracker (and the forkserver, if any)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_until_gone(tree) == [], "processes of the killed run still alive after 5 s"
        # its scratch folders stay, unlocked: the next augcli process removes them
        left = sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(scratch.PREFIX))
        assert left or command in ("evaluate", "search")  # a run's pool or cluster has one
        assert sorted(scratch.sweep(tmpdir)) == left
        assert not [p for p in tmpdir.iterdir() if p.name.startswith(scratch.PREFIX)]
    finally:
        kill_all(alive(tree))
        kill_all([proc.pid])


# --- interrupts and errors in the main process -------------------------------------------------

@pytest.mark.parametrize("layout", ["shards", "batches"])
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_main_process_stops_busy_workers(tmp_path, sig, code, layout):
    """SIGINT / SIGTERM to the main process only (not its group): the workers are killed rather than
    waited for (here they would never finish), the exit is 130 / 143, nothing is left."""
    source = marked_npz(tmp_path / "marked.npz", unmarked=0)
    strategy = write_strategy(tmp_path / "s.yaml", HANGING % source)
    extra = ["--shard-size", 8] if layout == "shards" else []
    proc = start(tmp_path, ["run", strategy, "--out", tmp_path / "out", "--workers", 2, "--batch-size", 8, *extra],
                 hang=True)
    tree = {}
    try:
        wait_for(lambda: len(list((tmp_path / "beacons").iterdir())) >= 2, proc, "two busy workers")
        tree = descendants(proc.pid)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the run waited for its workers instead of stopping them")
        err = (tmp_path / "stderr").read_text()
        assert proc.returncode == code, err
        assert "Traceback" not in err
        assert not (tmp_path / "out").exists()
        assert temporaries(tmp_path) == []
        assert wait_until_gone(tree) == []
    finally:
        kill_all(alive(tree))
        kill_all([proc.pid])


@pytest.mark.parametrize("layout", ["shards", "batches"])
def test_an_error_in_the_main_process_stops_the_workers_before_the_cleanup(tmp_path, monkeypatch, hang, layout):
    """A failure in the main process's own loop while workers are busy: the workers are dead before
    the temporary output folder is deleted (a worker still writing into it raced with the deletion,
    "Directory not empty"), and the run fails with one line."""
    import shutil

    import augcli.engine.augment as engine
    import augcli.engine.shards as shards

    beacons = tmp_path / "beacons"
    beacons.mkdir()
    monkeypatch.chdir(tmp_path)
    source = marked_npz(tmp_path / "marked.npz", unmarked=4)  # the first shard / batch: 4 rows, 8 outputs
    strategy = write_strategy(tmp_path / "s.yaml", HANGING % source)
    pids = lambda: [int(p.name) for p in beacons.iterdir()]  # noqa: E731

    def fail_once_both_workers_hang(*args, **kwargs):
        wait_for(lambda: len(pids()) >= 2, None, "two busy workers")
        raise RuntimeError("failure in the main process")

    if layout == "shards":
        monkeypatch.setattr(shards.ProgressLog, "record", fail_once_both_workers_hang)
        extra = ["--shard-size", 8]
    else:
        monkeypatch.setattr(engine, "add_counts", fail_once_both_workers_hang)
        extra = []
    at_cleanup = []
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path).name.startswith(".out."):
            at_cleanup.append([pid for pid in pids() if _stat(pid) is not None and _stat(pid)[1] != "Z"])
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    watchdog = threading.Timer(60, lambda: kill_all(pids()))  # a run that waits for them would hang
    watchdog.start()
    try:
        res = invoke("run", strategy, "--out", tmp_path / "out", "--workers", 2, "--batch-size", 8, *extra)
    finally:
        hung = not watchdog.is_alive()
        watchdog.cancel()
        kill_all(pids())
    assert not hung, "the run waited for its workers instead of stopping them"
    assert res.exit_code == 1 and "failure in the main process" in res.output, res.output
    assert at_cleanup and at_cleanup[0] == [], f"workers alive while the temporary folder was deleted: {at_cleanup}"
    assert not (tmp_path / "out").exists() and temporaries(tmp_path) == []


# --- Dask scratch space ----------------------------------------------------------------------------

def tree_of(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_dask_engine_writes_nothing_outside_the_output(tmp_path):
    """A LocalCluster writes ``dask-scratch-space`` (locks, spill) into $TMPDIR by default; it must
    live inside the run's temporary folder and be gone from the finished output."""
    pytest.importorskip("dask.distributed")
    cwd, tmpdir = tmp_path / "cwd", tmp_path / "tmpdir"
    cwd.mkdir()
    tmpdir.mkdir()
    write_strategy(cwd / "s.yaml", "dataset: {source: digits, limit: 200}\naugment: {copies: 2, pipeline: [hflip]}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmpdir))

    def run(out, *extra):
        res = subprocess.run([sys.executable, "-m", "augcli", "run", "s.yaml", "--out", str(out), "--shard-size", "200",
                              "-q", *map(str, extra)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr

    run(tmp_path / "local")
    before = (tree_of(cwd), tree_of(tmpdir))
    run(tmp_path / "dask", "--engine", "dask", "--workers", 2)
    assert (tree_of(cwd), tree_of(tmpdir)) == before
    assert tree_of(tmp_path / "dask") == tree_of(tmp_path / "local")
