"""Budgets before work (issue 12): small inputs that ask for gigabytes are refused up front with one
line naming the cap, and small or odd data is said plainly instead of ending in an internal error.

Cases that used to run out of memory run ``python -m augcli`` in a subprocess under an address-space
limit (RLIMIT_AS) and a timeout, so that neither a regression nor the code before the fix can take
the machine's memory or hang the suite.
"""

import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import invoke, write_strategy

ROOT = Path(__file__).resolve().parents[1]
AS_LIMIT = 3 << 30  # enough to import augcli and its libraries, far below what the cases ask for

DIGITS = """\
version: 1
seed: 0
dataset: {source: digits, limit: 60}
augment: {copies: 1, pipeline: [hflip]}
report: {preview: false}
"""

# 10^6 `hflip` transforms through nested `sequence`s, in 330 bytes of YAML
_LEVEL = "{{sequence: [{0}]}}"
BOMB = ", ".join(["&a " + _LEVEL.format(", ".join(["hflip"] * 10))]
                 + [f"&{c} " + _LEVEL.format(", ".join([f"*{p}"] * 10)) for p, c in zip("abcde", "bcdef")])
BOMB = f"[{{sequence: [{BOMB}]}}]"


def _augcli(*args, cwd, env=None, timeout=60):
    """``augcli ARGS`` in a child limited to AS_LIMIT of address space; (exit code, stderr lines)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    full_env = {k: v for k, v in os.environ.items() if k != "AUGCLI_MEMORY_BUDGET"}  # the machine's budget
    full_env.update(PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **(env or {}))
    res = subprocess.run([sys.executable, "-m", "augcli", *map(str, args)], cwd=cwd, env=full_env,
                         capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return res.returncode, res.stderr.splitlines()


def _one_error(lines, *parts):
    assert len(lines) == 1 and lines[0].startswith("augcli: error: "), lines
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


# --- the strategy and its overrides ----------------------------------------------------------------

def test_set_alias_bomb_is_refused_before_it_expands(tmp_path):
    """Before: 48 s and ~1 GB building 10^6 transforms (the same text in a file was refused)."""
    write_strategy(tmp_path / "s.yaml", DIGITS)
    code, err = _augcli("validate", "s.yaml", "--set", f"augment.pipeline={BOMB}", cwd=tmp_path, timeout=30)
    assert code == 2
    _one_error(err, "--set augment.pipeline=", "100,000 values", "MAX_NODES")


def test_set_recursive_alias_is_refused(tmp_path):
    write_strategy(tmp_path / "s.yaml", DIGITS)
    res = invoke("validate", tmp_path / "s.yaml", "--set", "augment.pipeline=&a [hflip, *a]")
    assert res.exit_code == 2
    _one_error(res.output.splitlines(), "--set augment.pipeline=&a [hflip, *a]", "recursive")


def test_set_values_with_aliases_below_the_cap_still_work(tmp_path):
    write_strategy(tmp_path / "s.yaml", DIGITS)
    res = invoke("validate", tmp_path / "s.yaml", "--set", "augment.pipeline=[&r {rotate: {degrees: 5}}, *r]")
    assert res.exit_code == 0, res.output
    assert res.output.count("- rotate:") == 2 and res.output.count("degrees: [-5.0, 5.0]") == 2  # entries in full


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_strategy_path_that_is_not_a_regular_file_is_refused_unread(tmp_path, kind):
    """Before: /dev/zero was read until memory ran out, a FIFO hung for a writer."""
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "s.yaml"
        os.mkfifo(path)
    code, err = _augcli("validate", path, cwd=tmp_path, timeout=30)
    assert code == 2
    _one_error(err, f"{path}: not a regular file")


def test_a_huge_strategy_file_is_refused_by_size(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(DIGITS + "#" * (2 << 20) + "\n", encoding="utf-8")
    res = invoke("validate", path)
    assert res.exit_code == 2
    _one_error(res.output.splitlines(), "s.yaml: ", "1,048,576 bytes", "MAX_FILE_BYTES")


# --- .npz sources ----------------------------------------------------------------------------------

def _npz_strategy(tmp_path, name, extra=""):
    return write_strategy(tmp_path / "s.yaml", f"version: 1\nseed: 0\ndataset: {{source: {tmp_path / name}{extra}}}\n"
                                               "augment: {copies: 1, pipeline: [hflip]}\nreport: {preview: false}\n")


def _images(n=20):
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("limit", [[], ["--limit", "5"]])
def test_an_npz_that_inflates_beyond_the_budget_is_refused_before_reading(tmp_path, monkeypatch, limit):
    """Before: read whole (``--limit`` applied after), whatever it inflated to. 16 MiB of zeros
    deflate to ~16 KiB; the budget is set to 4 MiB so the case costs no real memory."""
    np.savez_compressed(tmp_path / "bomb.npz", images=np.zeros((1024, 128, 128), np.uint8),
                        labels=np.zeros(1024, np.int64))
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    _npz_strategy(tmp_path, "bomb.npz")
    monkeypatch.setenv("AUGCLI_MEMORY_BUDGET", "4M")
    res = invoke("run", tmp_path / "s.yaml", "--out", tmp_path / "out", *limit)
    assert res.exit_code == 1
    _one_error(res.output.splitlines(), "bomb.npz: ", "'images' (1024, 128, 128) uint8 16.0 MiB",
               "above the budget of 4.0 MiB (set by AUGCLI_MEMORY_BUDGET)")
    assert not (tmp_path / "out").exists()


def _npy_header(shape, descr="|u1") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode() + b" "
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def test_an_npz_header_declaring_terabytes_is_refused_by_the_machine_budget(tmp_path):
    """A crafted member: its header declares 10^12 pixels, its body is 1 KiB."""
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as zf:
        zf.writestr("images.npy", _npy_header((1_000_000, 1000, 1000)) + bytes(1024))
        zf.writestr("labels.npy", _npy_header((1_000_000,), "<i8") + bytes(1024))
    _npz_strategy(tmp_path, "lie.npz")
    code, err = _augcli("run", "s.yaml", "--out", "out", cwd=tmp_path)
    assert code == 1
    _one_error(err, "lie.npz: ", "(1000000, 1000, 1000) uint8", "half the available memory; AUGCLI_MEMORY_BUDGET")
    assert not (tmp_path / "out").exists()


def test_a_label_of_a_billion_without_class_names_is_a_data_error(tmp_path):
    """Before: a billion class names were built, out of memory."""
    np.savez(tmp_path / "d.npz", images=_images(), labels=np.where(np.arange(20) % 2, 10**9, 0))
    _npz_strategy(tmp_path, "d.npz")
    code, err = _augcli("run", "s.yaml", "--out", "out", cwd=tmp_path)
    assert code == 1
    _one_error(err, "d.npz: key 'labels' numbers 1,000,000,001 classes", "add a 'class_names' array")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, expected", [
    ("uint64_label", "key 'labels' holds the label 9223372036854775813"),
    ("zero_height", "key 'images' holds images of 0x8 pixels"),
    ("bad_utf8_ids", "key 'ids' holds ids that are not UTF-8 text (entry 3: b'\\xff\\xfe')"),
    ("bad_utf8_class_names", "key 'class_names' holds class names that are not UTF-8 text (entry 1: b'\\xc3')"),
])
def test_odd_npz_contents_are_data_errors_naming_file_and_key(tmp_path, case, expected):
    """Before: exit 2 blaming the strategy (uint64 label, zero height) or an internal error (UTF-8)."""
    labels, images, extra = np.arange(20) % 2, _images(), {}
    if case == "uint64_label":
        labels = np.where(labels == 1, 2**63 + 5, 0).astype(np.uint64)
    elif case == "zero_height":
        images = np.zeros((20, 0, 8), np.uint8)
    elif case == "bad_utf8_ids":
        extra["ids"] = np.array([b"\xff\xfe" if i == 3 else b"s%d" % i for i in range(20)])
    else:
        extra["class_names"] = np.array([b"cat", b"\xc3"])
    np.savez(tmp_path / "d.npz", images=images, labels=labels, **extra)
    _npz_strategy(tmp_path, "d.npz")
    res = invoke("run", tmp_path / "s.yaml", "--out", tmp_path / "out")
    assert res.exit_code == 1, res.output
    _one_error(res.output.splitlines(), "d.npz: " + expected)
    assert not (tmp_path / "out").exists()


# --- planned output --------------------------------------------------------------------------------

@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_balance_target_beyond_memory_is_refused_before_planning(tmp_path, dry_run):
    """Before: out of memory building the plan of 10^9 samples (10 classes x 10^8)."""
    write_strategy(tmp_path / "s.yaml", DIGITS)
    code, err = _augcli("run", "s.yaml", "--out", "out", "--set", "augment.balance.target=100000000", *dry_run,
                        cwd=tmp_path)
    assert code == 2
    _one_error(err, "s.yaml: the plan of 1,000,000,000 output samples", "above the budget of",
               "lower augment.copies or augment.balance.target")
    assert not (tmp_path / "out").exists()


def test_a_balance_target_beyond_int64_is_a_strategy_error(tmp_path):
    huge = "pipeline: [hflip], balance: {target: 10000000000000000000000}}"
    write_strategy(tmp_path / "s.yaml", DIGITS.replace("pipeline: [hflip]}", huge))
    code, err = _augcli("run", "s.yaml", "--out", "out", cwd=tmp_path)
    assert code == 2
    _one_error(err, "s.yaml:4: augment.balance.target: expected {max} or an integer in [1, 1000000000]")


def test_a_plan_within_the_budget_still_runs(tmp_path, monkeypatch):
    write_strategy(tmp_path / "s.yaml", DIGITS)
    monkeypatch.setenv("AUGCLI_MEMORY_BUDGET", "64M")
    res = invoke("run", tmp_path / "s.yaml", "--out", tmp_path / "out", "--set", "augment.balance.target=50", "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "train.npz").exists()


def test_a_malformed_memory_budget_is_a_usage_error(tmp_path, monkeypatch):
    write_strategy(tmp_path / "s.yaml", DIGITS)
    monkeypatch.setenv("AUGCLI_MEMORY_BUDGET", "lots")
    res = invoke("run", tmp_path / "s.yaml", "--out", tmp_path / "out")
    assert res.exit_code == 2
    _one_error(res.output.splitlines(), "AUGCLI_MEMORY_BUDGET='lots': expected a size in bytes")


# --- data too small for evaluate / search ----------------------------------------------------------

def _tiny_folder(root: Path, per_class: int = 3) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_evaluate_on_a_tiny_folder_says_the_data_is_too_small(tmp_path):
    """Before: internal error (knn's n_neighbors=3 > the 2 training images)."""
    _tiny_folder(tmp_path / "tiny")
    write_strategy(tmp_path / "s.yaml", f"version: 1\nseed: 0\ndataset: {{source: {tmp_path / 'tiny'}}}\n"
                                        "augment: {copies: 1, pipeline: [hflip]}\n")
    res = invoke("evaluate", tmp_path / "s.yaml", "-o", tmp_path / "ev", "--repeats", "2")
    assert res.exit_code == 1, res.output
    _one_error(res.output.splitlines(), "tiny: too few samples for evaluate", "trains on at most 1 image(s) per class",
               "the 2 classes hold 3 images", "at least 31 images in each of 2 classes")
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("limit, per_class", [(30, 1), (400, 4)])
def test_search_on_too_few_samples_says_so(tmp_path, limit, per_class):
    """Before: internal error up to --limit 400 (4 training digits per class at --train-fraction 0.1:
    the 5-fold final choice had a fold with nothing to validate on); 500 runs."""
    write_strategy(tmp_path / "s.yaml", DIGITS)
    res = invoke("search", tmp_path / "s.yaml", "--limit", limit, "--repeats", "1", "--budget", "1",
                 "-o", tmp_path / "se")
    assert res.exit_code == 1, res.output
    _one_error(res.output.splitlines(), "digits: too few samples for search",
               f"trains on at most {per_class} image(s) per class", "5-fold cross-validation needs 5 per class",
               "at least 46 images in each of 10 classes")
    assert not (tmp_path / "se").exists()


def test_the_search_threshold_is_where_the_protocol_starts_to_work():
    from augcli.datasets import load_digits
    from augcli.evaluation.protocol import require_samples, train_count
    from augcli.errors import DataError

    assert [train_count(n, 0.1) for n in (40, 45, 46, 50)] == [4, 4, 5, 5]
    digits = load_digits()
    require_samples(digits.subset(np.arange(500)), 0.1, 5, 2, "search", "")  # ~50 per class: fine
    with pytest.raises(DataError):
        require_samples(digits.subset(np.arange(400)), 0.1, 5, 2, "search", "")
