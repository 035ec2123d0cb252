"""Ctrl-C and SIGTERM: the CLI's handlers, a latch no native code can swallow, and critical sections
that the two cannot cut in half.

Moving a finished output into place, or removing a temporary folder, must run to the end once
started: interrupted half-way they leave the target missing, an old copy beside it or thousands of
partial files. Inside ``deferred_signals()`` a SIGINT or SIGTERM is only recorded; it is delivered
again, to the handler that was installed before, as soon as the section ends. A second Ctrl-C (a
common reaction to a slow cleanup) therefore waits for the cleanup instead of interrupting it.

A stop request also latches (``install``, ``raise_if_stopped``): native code can swallow the
exception a handler raised (NumPy clears errors in some C paths, numpy/numpy#20596; ``list()`` of a
string array lost most Ctrl-Cs sent while it ran), and the run would go on to the end. The run's
loops check the latch between tasks, so a stop that was swallowed still stops the run.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopped: list[int] = []  # the stop signals received since ``install``


class Terminated(BaseException):
    """Raised for SIGTERM so that cleanup (temporary folders, locks) runs as for Ctrl-C."""


def install() -> None:
    """The process's handlers: SIGINT raises KeyboardInterrupt, SIGTERM ``Terminated``; both latch."""
    for sig in SIGNALS:
        signal.signal(sig, _on_stop)


def _on_stop(signum, frame):
    _stopped.append(signum)
    raise _exception(signum)


def _exception(signum: int) -> BaseException:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_request() -> BaseException | None:
    """The exception of a stop signal received earlier (SIGTERM first), or None."""
    if not _stopped:
        return None
    return _exception(signal.SIGTERM if signal.SIGTERM in _stopped else _stopped[0])


def raise_if_stopped() -> None:
    """Raise ``stop_request()``, if any: the signal's own exception may have been swallowed."""
    stop = stop_request()
    if stop is not None:
        raise stop


@contextlib.contextmanager
def deferred_signals():
    """Record SIGINT/SIGTERM while the block runs; re-deliver one afterwards (SIGTERM if it came)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread, where every augcli command runs
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None: the handler was installed outside Python; the default is the closest we can restore
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if received:  # SIGTERM wins: pending signals arrive in number order, not in the order they were sent
            signal.raise_signal(signal.SIGTERM if signal.SIGTERM in received else received[0])
