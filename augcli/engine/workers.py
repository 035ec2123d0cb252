"""Worker processes for a run's folder scan, shards and batches (one ``WorkerPool`` per run).

Workers are started from a clean server process (``forkserver``), not forked from this one: a fork
of a process whose other threads hold locks (OpenCV's or BLAS's thread pools, a Dask or joblib
client) can hang the child forever. Each worker loads a map's job once, on its first task of that
map, and keeps it in ``JOB``; tasks then carry only their indices.

Workers never outlive the run: the forkserver and every worker it forks ask the kernel for SIGKILL
when their parent exits (``kill -9`` included; a watchdog thread where that is not available), and
an interrupt or error in the caller kills the workers at once instead of waiting for their jobs.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

from augcli.backend import active_backend, cv2_or_none, set_backend
from augcli.io import scratch

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
    worker it forks to the server, so that killing the caller ends the whole tree; then import
    what the workers' jobs need."""
    parent = os.environ.pop(_PARENT_ENV, None)
    if parent is None:
        return
    die_with_parent(int(parent))
    server = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(server))
    from augcli.transforms.registry import transform_modules

    for name in (*_WORKER_MODULES, *transform_modules()):  # see _WORKER_MODULES
        importlib.import_module(name)


# What the jobs import when a worker unpickles them (the scan's decoders, the shard job: kernels,
# formats, encoders; and every transform): ~0.15 s a worker, paid again by each pool. The forkserver
# imports them once and every worker forked from it starts with them. Not OpenCV: its import starts
# a thread, and a worker forked from a server with that thread hung in ``cv2.setNumThreads``.
_WORKER_MODULES = ("augcli.datasets.source", "augcli.engine.executors")

_guard_forkserver()


def start_server():
    """The forkserver context, its server started here with the guard preloaded (spawn elsewhere).
    Called when a run's engine opens: the server's imports then overlap the caller's first stage."""
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


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes from the forkserver, each installing the caller's kernel backend when
    it starts."""
    ctx = start_server()
    parent = os.getpid() if ctx.get_start_method() == "spawn" else None
    job = {"backend": active_backend(), "parent": parent}
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_install, initargs=(job,))


class WorkerPool:
    """``workers`` processes that run every job map of one run (the folder scan, then the shards):
    started once, when the run's engine opens, so that their start overlaps the caller's own
    start and no second pool is started for the shards (each start cost ~0.2-0.3 s of wall time).

    A map's ``(function, job)`` is pickled once into a file of the pool's scratch folder; its tasks
    name the file, and each worker loads it on the first task of that map it gets."""

    def __init__(self, workers: int):
        self._scratch = str(scratch.make("jobs"))
        self._pool = _process_pool(workers)
        # Start the processes now, not on the first map, from a thread: each start waits for the
        # forkserver to finish its imports (~0.3 s), time this thread spends listing the folder.
        self._starter = threading.Thread(target=self._start, args=(workers,), daemon=True)
        self._starter.start()

    def _start(self, workers: int) -> None:
        try:
            for _ in range(workers):
                self._pool.submit(os.getpid)
        except RuntimeError:  # closed before its start: nothing to start
            pass

    def _job_file(self, function: Callable, job) -> str:
        path = os.path.join(self._scratch, f"{uuid.uuid4().hex}.pickle")
        with open(path, "wb") as fh:
            pickle.dump({"function": function, "job": job}, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def submit(self, function: Callable, task, job) -> Future:
        """``function(task, job)`` queued now, before any later map's tasks; its future."""
        path = self._job_file(function, job)
        future = self._pool.submit(_call, (path, task))
        # its one task has run (missing_ok: the scratch folder is gone if the pool was closed first)
        future.add_done_callback(lambda _: Path(path).unlink(missing_ok=True))
        return future

    def map(self, function: Callable, tasks: Iterable, job) -> Iterator:
        """``function(task, job)`` for every task, results in task order. Closing the iterator
        early, or an exception (KeyboardInterrupt included) while it waits, kills the workers."""
        path = self._job_file(function, job)
        # Futures of its own, not ``Executor.map``'s: on an interrupt, that map cancels the queued
        # futures from this thread while the pool's manager thread, seeing the killed workers, fails
        # the same futures, and CPython 3.11 then prints an InvalidStateError traceback. Here only
        # the manager thread (``_stop``'s shutdown) touches them.
        futures = [self._pool.submit(_call, (path, task)) for task in tasks]
        done = 0
        try:
            for future in futures:
                result = future.result()
                done += 1
                yield result
        except BaseException:  # GeneratorExit too: nobody will read the remaining results
            if done < len(futures):  # (a caller that stops at the last one leaves nothing running)
                self.close(kill=True)
            raise
        os.unlink(path)  # every task has run: no worker reads the job again

    def close(self, kill: bool = False) -> None:
        self._starter.join()
        if kill:
            _stop(self._pool)
        else:
            self._pool.shutdown(wait=True)
        scratch.remove(self._scratch)


def _call(item):
    path, task = item
    if JOB.get("path") != path:  # this worker's first task of a new map
        with open(path, "rb") as fh:
            loaded = pickle.load(fh)
        JOB.update(loaded, path=path)
    return JOB["function"](task, JOB["job"])
