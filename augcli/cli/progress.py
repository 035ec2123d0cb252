"""A small progress line on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


def make_progress(enabled: bool, unit: str = "img"):
    """Return ``start(label, total) -> tick(n)`` or None when progress should stay silent.

    The line shows done/total and the rate in ``unit`` per second (images, tasks, repeats).
    """
    if not enabled or not sys.stderr.isatty():
        return None

    def start(label: str, total: int):
        state = {"done": 0, "t0": time.perf_counter(), "last": 0.0}

        def tick(n: int):
            state["done"] += n
            now = time.perf_counter()
            if now - state["last"] < 0.1 and state["done"] < total:
                return
            state["last"] = now
            elapsed = max(now - state["t0"], 1e-9)
            rate = state["done"] / elapsed
            end = "\n" if state["done"] >= total else ""
            sys.stderr.write(f"\r{label}: {state['done']}/{total} ({rate:,.1f} {unit}/s, {elapsed:.0f} s){end}")
            sys.stderr.flush()

        return tick

    return start


def progress_tick(enabled: bool, label: str, total: int, unit: str):
    """A ready ``tick(n)`` for one counter (or None): for commands with a single long loop."""
    start = make_progress(enabled, unit)
    return start(label, total) if start else None
