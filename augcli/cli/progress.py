"""A small progress line on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


def make_progress(enabled: bool):
    """Return ``start(label, total) -> tick(n)`` or None when progress should stay silent."""
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
            rate = state["done"] / max(now - state["t0"], 1e-9)
            end = "\n" if state["done"] >= total else ""
            sys.stderr.write(f"\r{label}: {state['done']}/{total} ({rate:,.0f} img/s){end}")
            sys.stderr.flush()

        return tick

    return start
