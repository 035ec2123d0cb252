"""Critical sections that Ctrl-C and SIGTERM cannot cut in half.

Moving a finished output into place, or removing a temporary folder, must run to the end once
started: interrupted half-way they leave the target missing, an old copy beside it or thousands of
partial files. Inside ``deferred_signals()`` a SIGINT or SIGTERM is only recorded; it is delivered
again, to the handler that was installed before, as soon as the section ends. A second Ctrl-C (a
common reaction to a slow cleanup) therefore waits for the cleanup instead of interrupting it.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
