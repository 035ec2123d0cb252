"""Progress on stderr, shown only when stderr is a terminal: a bar with percentage, count, rate and
ETA, redrawn at most every 0.1 s, and the stage lines of a run as the stages end. A line left open
by the bar is closed (``end_line``) before any warning, error or interruption message."""

from __future__ import annotations

import shutil
import sys
import threading
import time

# The bar on the current line (no newline after it yet): its redraw function, or None
_OPEN: dict = {"redraw": None}
_LOCK = threading.Lock()  # the heartbeat thread and the caller both draw
BAR = 20                  # characters of the bar
HEARTBEAT = 0.5           # seconds between redraws while no tick comes (the work after a bar's end)
REDRAW = 0.1              # at most one redraw per this many seconds from ticks


def end_line() -> None:
    """Finish a bar's line, so that the next message starts on a line of its own."""
    with _LOCK:
        if _OPEN["redraw"] is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()
            _OPEN["redraw"] = None


def _draw(line: str) -> None:
    width = shutil.get_terminal_size((100, 20)).columns - 1
    sys.stderr.write(f"\r{line[:width]}\x1b[K")  # \x1b[K: clear what a longer line left
    sys.stderr.flush()


def _heartbeat() -> None:
    """Redraw the open bar every HEARTBEAT seconds: its clock keeps moving between ticks and through
    the work that follows it (writing, cleaning), so a person sees the command is alive."""
    while True:
        time.sleep(HEARTBEAT)
        with _LOCK:
            if _OPEN["redraw"] is not None:
                _draw(_OPEN["redraw"]())


_HEART: list = []


def _start_heartbeat() -> None:
    if not _HEART:
        _HEART.append(threading.Thread(target=_heartbeat, name="augcli-progress", daemon=True))
        _HEART[0].start()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def bar_line(label: str, done: int, total: int, elapsed: float, unit: str) -> str:
    """``label [#####-----]  42% 3,000/7,188 · 1,234 img/s · ETA 0:03`` (elapsed time when done)."""
    share = min(done / total, 1.0) if total else 1.0
    filled = int(share * BAR)
    rate = done / max(elapsed, 1e-9)
    if done >= total:
        when = f"{_clock(elapsed)}"
    elif done and rate > 0:
        when = f"{_clock(elapsed)} · ETA {_clock((total - done) / rate)}"
    else:
        when = f"{_clock(elapsed)} · ETA --:--"
    return (f"{label} [{'#' * filled}{'-' * (BAR - filled)}] {share:4.0%} {done:,}/{total:,} · "
            f"{rate:,.0f} {unit}/s · {when}")


def shown(enabled: bool, force: bool = False) -> bool:
    """Whether progress is drawn: on a terminal unless silenced, anywhere when asked (``--progress``)."""
    return enabled and (force or sys.stderr.isatty())


def make_progress(enabled: bool, unit: str = "img", force: bool = False):
    """Return ``start(label, total, then="") -> tick(n)`` or None when progress should stay silent.
    Once ``total`` is reached the line stays open and counts the time spent on ``then`` (what comes
    next: "writing"), until the next line is printed."""
    if not shown(enabled, force):
        return None

    def start(label: str, total: int, then: str = ""):
        state = {"done": 0, "t0": time.perf_counter(), "last": 0.0, "end": None}

        def line() -> str:
            now = time.perf_counter()
            if state["end"] is None:
                return bar_line(label, state["done"], total, now - state["t0"], unit)
            text = bar_line(label, state["done"], total, state["end"] - state["t0"], unit)
            return f"{text} · {then} {_clock(now - state['end'])}" if then else text

        def tick(n: int):
            state["done"] += n
            now = time.perf_counter()
            if now - state["last"] < REDRAW and state["done"] < total:
                return
            state["last"] = now
            if state["done"] >= total and state["end"] is None:
                state["end"] = now
            with _LOCK:
                _OPEN["redraw"] = line
                _draw(line())
            if state["end"] is not None and not then:  # nothing follows to time: the line is finished
                end_line()
            else:
                _start_heartbeat()

        return tick

    return start


def stage_printer(enabled: bool, force: bool = False):
    """``say(text)``: a stage line on stderr as the stage ends (where progress is shown), or None."""
    if not shown(enabled, force):
        return None

    def say(text: str) -> None:
        end_line()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    return say


def progress_tick(enabled: bool, label: str, total: int, unit: str):
    """A ready ``tick(n)`` for one counter (or None): for commands with a single long loop. The bar
    is drawn at once and its clock moves between ticks, which may be minutes apart (a search repeat)."""
    start = make_progress(enabled, unit)
    if start is None:
        return None
    tick = start(label, total)
    tick(0)
    return tick
