"""Worker processes for batches and shards.

Workers are started from a clean server process (``forkserver``), not forked from this one: a fork
of a process whose other threads hold locks (OpenCV's or BLAS's thread pools, a Dask or joblib
client) can hang the child forever. Each worker receives the job once, at start-up, and keeps it in
``JOB``; tasks then carry only their indices.

Workers never outlive the run: the forkserver and every worker it forks ask the kernel for SIGKILL
when their parent exits (``kill -9`` included; a watchdog thread where that is not available), and
an interrupt or error in the caller kills the workers at once instead of waiting for their jobs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

from augcli.backend import active_backend, cv2_or_none, set_backend

JOB: dict = {}

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# The caller's pid for the forkserver it starts, which has no other way to learn it (popped at once).
_PARENT_ENV = "AUGCLI_FORKSERVER_PARENT"


def _parent_death_signal() -> bool:
    """Linux: have the kernel send SIGKILL to this process when its parent exits, however it exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is re-parented (to init or a subreaper)
        time.sleep(0.5)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the process that started it) ends."""
    if not _parent_death_signal():
        threading.Thread(target=_watch, args=(parent,), name="augcli-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the guard was in place: no signal will come
        os._exit(1)


def _guard_forkserver() -> None:
    """On import in the forkserver (a preload module): tie the server to the caller, and every
    worker it forks to the server, so that killing the caller ends the whole tree."""
    parent = os.environ.pop(_PARENT_ENV, None)
    if parent is None:
        return
    die_with_parent(int(parent))
    server = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(server))


_guard_forkserver()


def _context():
    """The forkserver context, its server started here with the guard preloaded (spawn elsewhere)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver  # only where the platform has it

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])
    # Started from this thread: Linux sends the parent-death signal when the *thread* that started
    # the server exits, so it must be one that lives as long as the pools (the caller's).
    os.environ[_PARENT_ENV] = str(os.getpid())
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(_PARENT_ENV, None)
    return ctx


def joblib_parallel(jobs: int):
    """joblib's ``Parallel`` (generator of results) for ``evaluate``/``search --jobs`` whose loky
    workers die with this process (left alone they outlive a ``kill -9`` and idle for 5 minutes)."""
    # function-level: joblib is heavy and only evaluate/search --jobs need it
    from joblib import Parallel
    from joblib.parallel import LokyBackend

    backend = LokyBackend(initializer=die_with_parent, initargs=(os.getpid(),))
    return Parallel(n_jobs=jobs, return_as="generator", backend=backend)


def _install(job: dict) -> None:
    if job.get("parent"):  # spawned by the caller itself (no forkserver to do it at fork time)
        die_with_parent(job["parent"])
    JOB.clear()
    JOB.update(job)
    JOB["in_worker"] = True
    set_backend(job["backend"])
    cv2 = cv2_or_none()
    if cv2 is not None:
        cv2.setNumThreads(1)  # the workers already fill the cores


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and kill the workers now. ``shutdown(wait=True)`` would let running
    jobs finish, still writing into a folder that the caller is about to delete."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if kill is not None:
        kill()
    else:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def ordered_map(function: Callable, tasks: Iterable, job: dict, workers: int) -> Iterator:
    """``function(task)`` for every task in ``workers`` processes, results in task order.

    ``function`` reads the shared, read-only ``job`` from ``workers.JOB``. Closing the iterator
    early, or an exception (KeyboardInterrupt included) while it waits, kills the workers.
    """
    ctx = _context()
    parent = os.getpid() if ctx.get_start_method() == "spawn" else None
    job = dict(job, backend=active_backend(), parent=parent)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_install, initargs=(job,))
    try:
        yield from pool.map(function, tasks)
    except BaseException:  # GeneratorExit too: nobody will read the remaining results
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _call(task):
    return JOB["function"](task, JOB["job"])


def job_map(function: Callable, tasks: Iterable, job: dict, workers: int) -> Iterator:
    """``function(task, job)`` for every task in ``workers`` processes, results in task order; the
    function and its ``job`` reach each worker once (see ``ordered_map``)."""
    yield from ordered_map(_call, tasks, {"function": function, "job": job}, workers)
