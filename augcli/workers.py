"""Worker processes for batches and shards.

Workers are started from a clean server process (``forkserver``), not forked from this one: a fork
of a process whose other threads hold locks (OpenCV's or BLAS's thread pools, a Dask or joblib
client) can hang the child forever. Each worker receives the job once, at start-up, and keeps it in
``JOB``; tasks then carry only their indices.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

JOB: dict = {}


def _install(job: dict) -> None:
    JOB.clear()
    JOB.update(job)
    JOB["in_worker"] = True
    from augcli.transforms.functional.backend import cv2_or_none, set_backend

    set_backend(job["backend"])
    cv2 = cv2_or_none()
    if cv2 is not None:
        cv2.setNumThreads(1)  # the workers already fill the cores


def ordered_map(function: Callable, tasks: Iterable, job: dict, workers: int) -> Iterator:
    """``function(task)`` for every task in ``workers`` processes, results in task order.

    ``function`` reads the shared, read-only ``job`` from ``workers.JOB``.
    """
    from augcli.transforms.functional.backend import active_backend

    job = dict(job, backend=active_backend())
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_install, initargs=(job,)) as pool:
        yield from pool.map(function, tasks)
