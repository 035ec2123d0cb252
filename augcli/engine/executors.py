"""Run a run's jobs (the folder scan's chunks, then the shard jobs): in this process, in worker
processes, or on a Dask cluster.

An ``Engine`` is opened once per run, so the scan and the shards use the same Dask cluster. Every
way of running hands results back in task order, and the jobs are pure, so the output bytes do not
depend on which one ran or how many workers it had.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterable, Iterator

from augcli.backend import active_backend, cv2_or_none, set_backend
from augcli.engine.shards import ProgressLog, ShardResult, ShardSpec, run_shard
from augcli.errors import UsageError
from augcli.io import scratch
from augcli.io.formats import Format
from augcli.io.signals import raise_if_stopped

ENGINES = ("local", "dask")
DASK_HINT = 'the dask engine needs the optional extra: pip install "augcli[dask]"'
TASK_PREFIX = "augcli"  # Dask task keys: augcli-<job name>-<token>-<index> (the scheduler groups by "augcli-scan")


def _one_thread() -> None:
    """OpenCV on one thread in this process. On photo-sized images its thread pool costs more in
    hand-offs than it gains: 2,000 photos through the ImageNet-style job ran 3 % faster on one
    thread, on 6 % less CPU. Parallelism comes from ``--workers`` instead."""
    cv2 = cv2_or_none()
    if cv2 is not None:
        cv2.setNumThreads(1)


class Engine:
    """Where jobs run: ``local`` (this process, or ``workers`` processes) or ``dask`` (a cluster at
    ``scheduler``/``scheduler_file``, or a local one of ``workers`` processes, started on first use)."""

    def __init__(self, engine: str = "local", workers: int = 1, scheduler: str | None = None,
                 scheduler_file: str | None = None):
        self.engine, self.workers = engine, workers
        self.scheduler, self.scheduler_file = scheduler, scheduler_file
        self._client = self._cluster = self._scratch = self._pool = None
        if engine == "local" and workers > 1:
            # function-level: the worker pool (multiprocessing, concurrent.futures) costs ~12 ms of
            # import time, paid otherwise by every command, validate and transforms included
            from augcli.engine.workers import WorkerPool

            self._pool = WorkerPool(workers)  # started now: it starts while this process works
        elif engine == "local":
            _one_thread()  # one worker, one core: what the pool's workers do too

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, kind, *exc) -> bool:
        self.close(kill=kind is not None)  # an error or interrupt: stop the workers' jobs now
        return False

    def map(self, function: Callable, tasks: Iterable, job, name: str = "job") -> Iterator:
        """``function(task, job)`` for every task, results in task order. Closing the iterator early
        stops the work still queued."""
        tasks = list(tasks)
        if self.engine == "dask":
            results = self._dask_map(function, tasks, job, name)
        elif self._pool is not None and len(tasks) > 1:
            results = self._pool.map(function, tasks, job)
        else:
            results = (function(task, job) for task in tasks)
        return _until_stopped(results)

    def submit(self, function: Callable, task, job, name: str = "job"):
        """Start ``function(task, job)`` now, beside whatever runs next; returns a handle whose
        ``result()`` waits for it. Without workers it runs when ``result()`` is called."""
        if self.engine == "dask":
            return self._connect().submit(_on_worker, function, active_backend(), task, job,
                                          key=f"{TASK_PREFIX}-{name}-{uuid.uuid4().hex}")
        if self._pool is not None:
            return self._pool.submit(function, task, job)
        return _Deferred(lambda: function(task, job))

    def _dask_map(self, function, tasks, job, name):
        client = self._connect()
        shared = client.scatter([job], broadcast=True)[0]
        token = uuid.uuid4().hex
        backend = active_backend()  # workers are fresh processes: give them the caller's kernels
        futures = [client.submit(_on_worker, function, backend, task, shared, key=f"{TASK_PREFIX}-{name}-{token}-{i}")
                   for i, task in enumerate(tasks)]
        done = 0
        try:
            for future in futures:
                result = future.result()
                done += 1
                yield result
        finally:
            # an error or an interrupt: stop the cluster now, before the caller deletes the output (a
            # caller that stops reading at the last result, as zip does, leaves nothing running)
            if done < len(futures):
                self.close()

    def _connect(self):
        if self._client is not None:
            return self._client
        try:  # an optional extra: imported only when asked for
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UsageError(DASK_HINT) from None
        if self.scheduler_file:
            self._client = Client(scheduler_file=self.scheduler_file)
        elif self.scheduler:
            self._client = Client(self.scheduler)
        else:
            # A local cluster's scratch and spill files (default: dask-scratch-space in $TMPDIR, left
            # there for good) go in a temporary folder of the run's own, removed when the engine closes.
            self._scratch = str(scratch.make("dask"))
            with dask.config.set({"temporary-directory": self._scratch}):
                self._cluster = LocalCluster(n_workers=max(self.workers, 1), threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=40, local_directory=self._scratch)
            self._client = Client(self._cluster)
        return self._client

    def close(self, kill: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(kill)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        if self._scratch is not None:
            scratch.remove(self._scratch)
        self._client = self._cluster = self._scratch = self._pool = None


def _until_stopped(results: Iterator) -> Iterator:
    """``results``, checking before each one for a Ctrl-C or SIGTERM that native code swallowed
    while the last one was made; closing this closes ``results`` (which stops their workers)."""
    with closing(results):
        for result in results:
            yield result
            raise_if_stopped()


class _Deferred:
    """A task of an engine without workers: run by the first ``result()``."""

    def __init__(self, call: Callable):
        self._call = call

    def result(self):
        return self._call()


def _on_worker(function: Callable, backend: str, task, job):
    set_backend(backend)
    return function(task, job)


def shard_job(spec: ShardSpec, job: dict) -> ShardResult:
    """One shard job where a pool or a cluster runs it (its batches here: the parallelism is across shards)."""
    return run_shard(spec, job["source"], job["pipeline"], job["writer"], job["folder"], job["batch_size"])


def execute(specs: list[ShardSpec], source, pipeline, writer: Format, folder: Path, *, batch_size: int = 256,
            engine: Engine | None = None, progress: Callable[[int], None] | None = None
            ) -> tuple[list[ShardResult], int]:
    """Run every shard not already finished in ``folder`` on ``engine`` (default: here), writing with
    ``writer``; returns (results in order, shards reused)."""
    engine = engine or Engine()
    log = ProgressLog(folder)
    results: list[ShardResult | None] = [log.done(s.name) for s in specs]
    reused = sum(r is not None for r in results)
    pending = [i for i, r in enumerate(results) if r is None]
    todo = [specs[i] for i in pending]
    tick = progress or (lambda n: None)
    tick(sum(r.outputs for r in results if r is not None))  # reused shards count as done
    here = engine.engine == "local" and (engine.workers == 1 or len(todo) <= 1)
    if here:
        # one shard (or one worker): the shard's batches go to the engine's workers, if any, and the
        # progress ticks with every batch
        batches = lambda function, chunks, job: engine.map(function, chunks, job, "batch")  # noqa: E731
        stream = (run_shard(s, source, pipeline, writer, folder, batch_size, batches, tick) for s in todo)
    else:
        job = dict(source=source, pipeline=pipeline, writer=writer, folder=Path(folder).resolve(), batch_size=batch_size)
        stream = engine.map(shard_job, todo, job, "shard")
    try:
        for i, result in zip(pending, stream):
            log.record(result)
            results[i] = result
            if not here:  # (run here, the shard ticked per batch)
                tick(result.outputs)
    finally:  # on an interrupt or error: stop the workers now, before the caller deletes ``folder``
        stream.close()
    return results, reused
