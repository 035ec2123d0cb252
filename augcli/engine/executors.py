"""Run shard jobs: in this process, in worker processes, or on a Dask cluster.

Every executor runs the same pure ``shards.run_shard`` and hands results back in shard order, so
the output bytes do not depend on which one ran or how many workers it had.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from augcli.backend import active_backend
from augcli.engine.shards import ProgressLog, ShardResult, ShardSpec, run_shard
from augcli.errors import UsageError
from augcli.io.formats import Format

ENGINES = ("local", "dask")
DASK_HINT = 'the dask engine needs the optional extra: pip install "augcli[dask]"'
SCRATCH = ".dask-scratch"


def _run_in_worker(spec: ShardSpec) -> ShardResult:
    # runs in a pool worker, where the module is loaded already (at the top it would cost every command
    # the pool's import time, see _forked)
    from augcli.engine import workers

    j = workers.JOB
    return run_shard(spec, j["source"], j["pipeline"], j["writer"], j["folder"], j["batch_size"], 1)


def execute(specs: list[ShardSpec], source, pipeline, writer: Format, folder: Path, *, batch_size: int = 256,
            workers: int = 1, engine: str = "local", scheduler: str | None = None, scheduler_file: str | None = None,
            progress: Callable[[int], None] | None = None) -> tuple[list[ShardResult], int]:
    """Run every shard not already finished in ``folder``, writing with ``writer``; returns (results in
    order, shards reused)."""
    log = ProgressLog(folder)
    results: list[ShardResult | None] = [log.done(s.name) for s in specs]
    reused = sum(r is not None for r in results)
    pending = [i for i, r in enumerate(results) if r is None]
    todo = [specs[i] for i in pending]
    if engine == "dask":
        stream = _dask(todo, source, pipeline, writer, folder, batch_size, workers, scheduler, scheduler_file)
    elif workers > 1 and len(todo) > 1:
        stream = _forked(todo, source, pipeline, writer, folder, batch_size, workers)
    else:  # one shard (or one worker): parallelism, if any, goes inside the shard, over batches
        stream = (run_shard(s, source, pipeline, writer, folder, batch_size, workers) for s in todo)
    try:
        for i, result in zip(pending, stream):
            log.record(result)
            results[i] = result
            if progress:
                progress(result.outputs)
    finally:  # on an interrupt or error: stop the workers now, before the caller deletes ``folder``
        stream.close()
    return results, reused


def _forked(todo, source, pipeline, writer, folder, batch_size, workers):
    # function-level: the worker pool (multiprocessing, concurrent.futures) costs ~12 ms of import
    # time, paid otherwise by every command, validate and transforms included
    from augcli.engine.workers import ordered_map

    job = dict(source=source, pipeline=pipeline, writer=writer, folder=folder, batch_size=batch_size)
    yield from ordered_map(_run_in_worker, todo, job, workers)


def _dask(todo, source, pipeline, writer, folder, batch_size, workers, scheduler, scheduler_file):
    try:  # an optional extra: imported only when asked for
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(DASK_HINT) from None
    # A local cluster's scratch and spill files (default: dask-scratch-space in $TMPDIR) go in the
    # output's temporary folder, under a name removed before the output is moved into place.
    scratch = Path(folder) / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)  # left by a killed run that is being resumed
    if scheduler or scheduler_file:
        client = Client(scheduler, scheduler_file=scheduler_file) if scheduler_file else Client(scheduler)
        cluster = None
    else:
        with dask.config.set({"temporary-directory": str(scratch)}):
            cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40, local_directory=str(scratch))
        client = Client(cluster)
    try:
        shared = client.scatter([source, pipeline, writer], broadcast=True)
        backend = active_backend()  # workers are fresh processes: give them the caller's kernels
        futures = [client.submit(run_shard, spec, shared[0], shared[1], shared[2], Path(folder).resolve(), batch_size,
                                 1, backend, pure=False) for spec in todo]
        for future in futures:
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
