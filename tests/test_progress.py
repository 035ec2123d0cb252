"""Progress a person can follow: a bar with percentage, count, rate and ETA; ticks per batch, not per
shard; the folder scan included; stage lines before the augmentation; a clean line before messages."""

import re

from augcli.cli import progress as P
from tests.helpers import invoke, write_strategy


def test_bar_line_shows_share_count_rate_and_eta():
    line = P.bar_line("augment", 250, 1000, 2.0, "img")
    assert line == "augment [#####---------------]  25% 250/1,000 · 125 img/s · 0:02 · ETA 0:06"
    assert P.bar_line("augment", 0, 1000, 0.5, "img").endswith("0:00 · ETA --:--")
    assert P.bar_line("scan", 1000, 1000, 75.0, "img").endswith("100% 1,000/1,000 · 13 img/s · 1:15")
    assert P.bar_line("x", 1, 10**6, 1.0, "img").endswith("ETA 277:46:39")


def _bars(stderr: str, label: str) -> list[str]:
    return [part for part in re.split(r"[\r\n]", stderr) if part.startswith(f"{label} [")]


def test_a_one_shard_run_ticks_per_batch_and_says_its_stages_first(tmp_path, monkeypatch):
    """One output file (one shard): the bar still moves batch by batch, and the stage lines come
    before it. Forced with --progress (the test's stderr is no terminal)."""
    monkeypatch.setattr(P, "REDRAW", 0.0)  # every tick drawn: the run takes less than 0.1 s
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits}\naugment: {copies: 2, pipeline: [hflip]}\n"
                                                   "report: {preview: false}\n")
    res = invoke("run", strategy, "--out", tmp_path / "out", "--progress", "--batch-size", 256)
    assert res.exit_code == 0, res.output
    bars = _bars(res.stderr, "augment")
    assert len(bars) == 1 + -(-5391 // 256) and "100% 5,391/5,391" in bars[-1]  # reused shards' 0, then each batch
    assert res.stderr.index("loaded 1797 samples") < res.stderr.index("split: train") < res.stderr.index("augment [")
    assert "loaded 1797" not in res.stdout and res.stdout.startswith("wrote 5391 samples")
    quiet = invoke("run", strategy, "--out", tmp_path / "quiet", "--progress", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""
    plain = invoke("run", strategy, "--out", tmp_path / "plain")  # no terminal, not asked: no bar
    assert "[" not in plain.stderr and plain.stdout.startswith("loaded 1797 samples")


def test_the_folder_scan_shows_progress(tmp_path, photo, monkeypatch):
    monkeypatch.setattr(P, "REDRAW", 0.0)
    from tests.helpers import jpeg_bytes, square, write_tree

    root = write_tree(tmp_path / "imgs", {f"c{i % 2}/{i:03d}.jpg": jpeg_bytes(square(photo, i, 2 * i, 24))
                                          for i in range(200)})
    strategy = write_strategy(tmp_path / "s.yaml", f"dataset: {{source: '{root}'}}\naugment: {{copies: 1}}\n")
    res = invoke("run", strategy, "--out", tmp_path / "out", "--progress")
    assert res.exit_code == 0, res.output
    scans = _bars(res.stderr, "scan")
    assert len(scans) >= 2 and "100% 200/200" in scans[-1] and "200/200" not in scans[0]


def test_a_bar_for_slow_steps_is_drawn_at_once_and_its_clock_moves(capsys, monkeypatch):
    """search ticks once per repeat: the bar shows from the start, redrawn by the heartbeat."""
    import time

    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.setattr(P, "HEARTBEAT", 0.05)
    tick = P.progress_tick(True, "search", 2, "repeats")
    drawn, deadline = 0, time.monotonic() + 5  # a heartbeat started by an earlier test may be mid-sleep
    while drawn < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        drawn += capsys.readouterr().err.count("search [")
    assert drawn >= 3  # the first draw, then the heartbeat's
    tick(2)
    P.end_line()


def test_a_message_after_an_open_bar_starts_on_its_own_line(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    tick = P.make_progress(True)("augment", 10, "writing")
    tick(10)  # done: the line stays open, timing the writing
    P.end_line()
    P.end_line()  # a second call adds nothing
    err = capsys.readouterr().err
    assert err.endswith("· writing 0:00\x1b[K\n") and err.count("\n") == 1
