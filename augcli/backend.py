"""Which kernels run: pure NumPy, or OpenCV's compiled ones where they are faster.

``"opencv"`` (the default when OpenCV >= 5 imports) runs warps, flips, blurs, colour-space
conversions, per-sample lookup tables and the float32 noise math through opencv-python-headless,
one C call per image (small gray images share one call); ``"numpy"`` runs everything in NumPy.
The environment variable ``AUGCLI_BACKEND`` picks one at first use and ``set_backend`` changes it;
``active_backend`` says which runs. Each backend is deterministic on its own (the same bytes for
any batch size or worker count); the two may differ by one grey level where OpenCV rounds in
another order (tests/test_backends.py states the bounds), and are identical elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

import numpy as np

from augcli.errors import UsageError

BACKENDS = ("numpy", "opencv")
ENV_VAR = "AUGCLI_BACKEND"

_active: str | None = None
_cv2 = None


def _import_cv2():
    """cv2 if an OpenCV >= 5 imports, else None: 4.x warps in 1/32-pixel fixed point, whose
    results stray too far (up to ~6 grey levels at sharp edges) from the NumPy kernels."""
    global _cv2
    if _cv2 is None:
        with _signals_blocked():
            cv2 = _import_and_start_threads()
        if cv2 is None:
            return None
        _cv2 = cv2
    return _cv2


def _import_and_start_threads():
    """cv2 (None below 5.x or if missing), its worker threads started now: the thread its import
    starts and those of its pool then inherit the caller's blocked SIGINT/SIGTERM, so Ctrl-C and
    SIGTERM always reach the main thread. (Started lazily inside a run, about one SIGINT in 30
    sent as the first kernels ran was lost and the run went on to the end; the import's own
    thread, started unblocked, is the suspect of a SIGTERM lost the same way in a test.)"""
    try:
        import cv2
    except ImportError:
        return None
    if int(cv2.__version__.split(".")[0]) < 5:
        return None
    cv2.GaussianBlur(np.zeros((256, 256), np.uint8), (5, 5), 1.0)  # large enough to run in parallel
    return cv2


@contextlib.contextmanager
def _signals_blocked():
    """SIGINT and SIGTERM blocked in this thread (and every thread it starts) for the block."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _check(name: str, origin: str) -> str:
    if name not in BACKENDS:
        raise UsageError(f"{origin}: expected one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "opencv" and _import_cv2() is None:
        raise UsageError(f"{origin}: backend 'opencv' needs opencv-python-headless >= 5, which is not installed")
    return name


def set_backend(name: str) -> None:
    """Use backend ``name`` ("numpy" or "opencv") from now on; raises UsageError if unavailable."""
    global _active
    _active = _check(str(name).strip().lower(), "backend")


def active_backend() -> str:
    """The backend kernels use now: ``AUGCLI_BACKEND`` if set, else "opencv" when importable, else "numpy"."""
    global _active
    if _active is None:
        chosen = os.environ.get(ENV_VAR, "").strip().lower()
        if chosen:
            _active = _check(chosen, ENV_VAR)
        else:
            _active = "opencv" if _import_cv2() is not None else "numpy"
    return _active


def cv2_or_none():
    """The ``cv2`` module when the OpenCV backend is active, else None (kernels then use NumPy)."""
    return _cv2 if active_backend() == "opencv" else None


# mallopt's parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 24 << 20
KEEP_FREED_HEAP = 256 << 20


def _tune_allocator() -> None:
    """Have the C heap reuse freed memory instead of faulting fresh pages in, once, at import.

    - glibc serves blocks above its mmap threshold (128 KiB at start) with fresh pages from the
      kernel on every call. Batched kernels make many temporaries of 0.1-20 MiB; without a higher
      threshold they page-fault on every call (warps measured 3x slower).
    - glibc gives the heap's free top back to the kernel beyond its trim threshold (48 MiB with
      the threshold above). A worker frees a whole shard's pixels and temporaries (~60-100 MiB of
      photos) after each shard, so every shard was trimmed and faulted in again: 3x the page faults
      of one process running the same shards. The heap now keeps up to KEEP_FREED_HEAP: a process
      holds on to what it used (a 1-worker photo run's peak RSS rose from ~150 to ~190 MiB), and
      ``release_free_memory`` (malloc_trim) still hands it back where a caller asks.

    Without glibc's ``mallopt``, one block above the threshold is allocated and freed instead,
    which raises glibc's threshold to its size and is one short-lived allocation to others.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        block = bytearray(MMAP_THRESHOLD)
        del block
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, KEEP_FREED_HEAP)


_tune_allocator()
