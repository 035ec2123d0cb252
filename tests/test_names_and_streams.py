"""Names, text and streams (issue 12): names that are not UTF-8, line breaks JSON leaves raw,
library warnings, FIFOs and devices, oversized files, and a standard output that cannot be written.

Stream cases run ``python -m augcli`` in a subprocess: only a real process has a real stdout, a real
stderr and can hang. Nothing here waits on time: a closed pipe is closed before the child starts.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augcli.io.encoders import manifest_line
from tests.helpers import invoke, write_strategy

REPO = Path(__file__).resolve().parents[1]
STRATEGY = """\
version: 1
seed: 0
dataset: {{source: "{source}", image_size: [12, 12]{extra}}}
clean: {{blank: {{action: "off"}}, noise: {{action: "off"}}, exact_duplicates: "off"}}
split: {{val: 0.0}}
augment: {{copies: 1, pipeline: [{{hflip: {{p: 1}}}}]}}  # p 1: no identical-copies warning
output: {{format: png}}
"""


def _strategy(tmp_path: Path, source: Path, extra: str = "") -> Path:
    return write_strategy(tmp_path / "s.yaml", STRATEGY.format(source=source, extra=extra))


def _image(path, value: int) -> None:
    """A small RGB PNG; ``path`` may be bytes (a name that is not UTF-8)."""
    arr = np.zeros((12, 12, 3), np.uint8)
    arr[:, : 2 + value % 9] = 40 + value * 13 % 200
    Image.fromarray(arr).save(os.fsdecode(path), format="PNG")


def _two_classes(root: Path, per_class: int = 3) -> Path:
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            _image(root / c / f"{i}.png", i + 7 * len(c) + (c == "dog") * 31)
    return root


def _augcli(*args, stdout=subprocess.PIPE, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "augcli", *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          env=env, timeout=timeout)


def _all_text(value):
    """Every string inside a parsed JSON value, keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _all_text(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_text(v)
    elif isinstance(value, str):
        yield value


def _assert_no_lone_surrogate(out: Path) -> None:
    """Every name below ``out`` and every text file in it is strict UTF-8, JSON strings included."""
    for path in out.rglob("*"):
        os.fsencode(path.relative_to(out)).decode("utf-8")  # raises on bytes that are not UTF-8
        if path.suffix in (".json", ".jsonl", ".csv", ".md"):
            text = path.read_bytes().decode("utf-8")
            docs = [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else (
                [json.loads(text)] if path.suffix == ".json" else [])
            for s in (s for d in docs for s in _all_text(d)):
                s.encode("utf-8")  # a "\udcff" escape in JSON decodes to a lone surrogate and fails here


def _skipped(report: dict) -> dict:
    return {f["id"]: f["reason"] for f in report["skipped"]["files"]}


def test_names_that_are_not_utf8_are_skipped_and_reported(tmp_path):
    root = _two_classes(tmp_path / "data")
    raw = os.fsencode(root)
    _image(raw + b"/cat/bad\xff.png", 1)                  # a file name
    os.mkdir(raw + b"/dog/sub\xfe")
    _image(raw + b"/dog/sub\xfe/inner.png", 2)            # a folder on the file's path
    os.mkdir(raw + b"/bird\xfd")
    _image(raw + b"/bird\xfd/0.png", 3)                   # a class folder
    strategy = _strategy(tmp_path, root)
    out = tmp_path / "out"

    res = invoke("run", strategy, "--out", out, "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert _skipped(report) == {"cat/bad\\xff.png": "bad_name", "dog/sub\\xfe/inner.png": "bad_name",
                                "bird\\xfd/": "bad_name"}
    assert report["dataset"]["classes"] == ["cat", "dog"]
    with open(out / "quarantine.csv", encoding="utf-8", newline="") as fh:
        rows = {r["id"]: r["reason"] for r in csv.DictReader(fh) if r["reason"] == "bad_name"}
    assert rows == _skipped(report)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted({m["source"] for m in manifest}) == [f"{c}/{i}.png" for c in ("cat", "dog") for i in range(3)]
    _assert_no_lone_surrogate(out)

    res = invoke("inspect", root, "-o", tmp_path / "inspected", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert _skipped(json.loads(res.stdout)) == _skipped(report)
    _assert_no_lone_surrogate(tmp_path / "inspected")

    res = invoke("preview", strategy, "-o", tmp_path / "pv", "--rows", 2, "--copies", 1, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pv" / "preview.png").stat().st_size > 0

    res = invoke("run", strategy, "--out", tmp_path / "strict", "--strict", "-q")
    assert res.exit_code == 1 and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith("augcli: error: ") and "bad_name" in res.stderr and "\\x" in res.stderr


# every character str.splitlines() breaks a line at
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def test_manifest_lines_hold_one_record_for_any_line_reader(tmp_path):
    root = tmp_path / "data"
    names = {"cls\u2029para": ["a\u2028line.png", "b\x85nel.png"], "plain": ["c\u2029p.png", "d.png"]}
    for i, (cls, files) in enumerate(names.items()):
        (root / cls).mkdir(parents=True)
        for j, name in enumerate(files):
            _image(root / cls / name, 3 * i + j)
    out = tmp_path / "out"
    res = invoke("run", _strategy(tmp_path, root), "--out", out, "-q")
    assert res.exit_code == 0, res.output
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # each line a whole record
    assert len(records) == 2 * 4
    assert {r["source"] for r in records} == {f"{c}/{f}" for c, files in names.items() for f in files}
    assert {r["class"] for r in records} == set(names)
    # and for every break str.splitlines() knows, whatever field it is in
    record = {"source": LINE_BREAKS, "params": {LINE_BREAKS: [LINE_BREAKS]}}
    line = manifest_line(record)
    assert line.splitlines() == [line] and json.loads(line) == record


def _broken_exif_jpeg(path: Path) -> None:
    """A JPEG whose EXIF block announces 5 tags and holds none: Pillow warns "Corrupt EXIF data"."""
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00"
    Image.fromarray(np.full((12, 12, 3), 90, np.uint8)).save(path, format="JPEG", exif=exif)


def test_library_warnings_are_reported_per_file_and_quiet_under_q(tmp_path):
    root = _two_classes(tmp_path / "data")
    _broken_exif_jpeg(root / "cat" / "exif.jpg")
    strategy = _strategy(tmp_path, root)
    out = tmp_path / "out"

    res = _augcli("run", strategy, "--out", out, "-q")
    assert res.returncode == 0 and res.stderr == b"", res.stderr.decode()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    warned = [w for w in report["warnings"] if w["id"] == "cat/exif.jpg"]
    assert [w["reason"] for w in warned] == ["decoder_warning"] and "Corrupt EXIF" in warned[0]["detail"]
    with open(out / "quarantine.csv", encoding="utf-8", newline="") as fh:
        kept = [r for r in csv.DictReader(fh) if r["id"] == "cat/exif.jpg" and r["reason"] == "decoder_warning"]
    assert [r["action"] for r in kept] == ["kept"]
    manifest = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert "cat/exif.jpg" in {json.loads(line)["source"] for line in manifest}

    res = _augcli("inspect", root, "-o", tmp_path / "inspected", "-q")
    assert res.returncode == 0 and res.stderr == b"", res.stderr.decode()
    res = _augcli("run", strategy, "--out", out, "--overwrite")  # without -q too: the report has it, stderr not
    assert res.returncode == 0 and b"Warning" not in res.stderr and b"warnings.warn" not in res.stderr, res.stderr


WARNING_HOOK = """\
import sys, warnings
import augcli.cli.validate as command
real = command.load_strategy
def noisy(*args, **kwargs):
    warnings.warn("a library complains\\nover two lines", UserWarning)
    return real(*args, **kwargs)
command.load_strategy = noisy
from augcli.cli.main import main
sys.argv[0] = "augcli"
main()
"""


def test_other_library_warnings_are_one_line_and_silent_under_q(tmp_path):
    strategy = _strategy(tmp_path, "digits")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-c", WARNING_HOOK, "validate", str(strategy), *a],  # noqa: E731
                                    capture_output=True, env=env, timeout=300)
    quiet = run("-q")
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr.decode()
    loud = run()
    assert loud.returncode == 0, loud.stderr.decode()
    assert loud.stderr.decode() == "augcli: warning: a library complains over two lines\n"


def test_fifos_and_devices_are_skipped_without_being_opened(tmp_path):
    root = _two_classes(tmp_path / "data")
    (root / ".pipes").mkdir()                     # hidden: inside the root but not a class
    os.mkfifo(root / ".pipes" / "fifo")
    (root / "cat" / "linked.png").symlink_to(root / ".pipes" / "fifo")
    os.mkfifo(root / "dog" / "direct.png")
    (root / "dog" / "null.png").symlink_to(os.devnull)   # a device (outside the root: needs follow_symlinks)
    strategy = _strategy(tmp_path, root, ", follow_symlinks: true")
    expected = {"cat/linked.png": "not_a_file", "dog/direct.png": "not_a_file", "dog/null.png": "not_a_file"}

    res = _augcli("run", strategy, "--out", tmp_path / "out", "--json", "-q", timeout=180)  # hung for ever before
    assert res.returncode == 0, res.stderr.decode()
    assert _skipped(json.loads(res.stdout)) == expected
    res = _augcli("inspect", strategy, "-o", tmp_path / "inspected", "--json", "-q", timeout=180)
    assert res.returncode == 0, res.stderr.decode()
    assert _skipped(json.loads(res.stdout)) == expected


def test_a_huge_file_is_skipped_by_its_size_before_it_is_read(tmp_path):
    root = _two_classes(tmp_path / "data")
    with open(root / "cat" / "huge.png", "wb") as fh:
        fh.truncate(3 << 30)  # sparse: 3 GiB of nothing on disk
    res = invoke("run", _strategy(tmp_path, root), "--out", tmp_path / "out", "--json", "-q")
    assert res.exit_code == 0, res.output
    [entry] = json.loads(res.stdout)["skipped"]["files"]
    assert entry["id"] == "cat/huge.png" and entry["reason"] == "too_large"
    assert f"{3 << 30} bytes exceeds the limit" in entry["detail"] and "max_pixels" in entry["detail"]


def _closed_pipe():
    """The write end of a pipe whose read end is already closed: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path, command):
    strategy = _strategy(tmp_path, _two_classes(tmp_path / "data"))
    args = ["--out", tmp_path / "out"] if command == "run" else []
    write = _closed_pipe()
    try:
        res = _augcli(command, strategy, *args, stdout=write)
    finally:
        os.close(write)
    assert res.returncode == 0 and res.stderr == b"", res.stderr.decode()
    if command == "run":
        assert len((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()) == 12


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_costs_only_the_summary(tmp_path):
    strategy = _strategy(tmp_path, _two_classes(tmp_path / "data"))
    with open("/dev/full", "w") as full:
        res = _augcli("run", strategy, "--out", tmp_path / "out", stdout=full)
        product = _augcli("validate", strategy, stdout=full)
    lines = res.stderr.decode().splitlines()
    assert res.returncode == 0 and len(lines) == 1 and lines[0].startswith("augcli: warning: "), lines
    assert "standard output" in lines[0] and "No space left on device" in lines[0]
    assert len((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()) == 12
    assert (tmp_path / "out" / "report.json").exists()
    # validate's stdout is its product: losing it is an error, in one line
    assert product.returncode == 1, product.stderr.decode()
    assert product.stderr.decode() == "augcli: error: cannot write to standard output: No space left on device\n"
