"""Outputs never touch inputs.

Every command that writes checks, before any work, that its output does not equal, contain or lie
inside any of its inputs (the dataset source, the strategy file, an ``--input`` file), and that it
is not the current folder or one of its parents (a folder cannot be renamed away from under the
process standing in it). Paths are compared by (device, inode) of the path and its parents after
resolving symlinks, so ``a/../b``, symlinked folders and bind mounts cannot slip past a string
comparison.

``--overwrite`` only ever replaces what augcli made: an output folder carries ``MARKER``; single
files are recognised by their content (see ``made_by_augcli``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from augcli.errors import UsageError

MARKER = ".augcli-output"
MARKER_TEXT = '{"made_by": "augcli", "marker": 1}\n'


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _chain(path: Path) -> list[tuple[Path, tuple[int, int]]]:
    """The nearest existing form of ``path`` and each of its parents, as (path, identity)."""
    real = Path(os.path.realpath(path))
    out = []
    for p in (real, *real.parents):
        ident = _identity(p)
        if ident is not None:
            out.append((p, ident))
    return out


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def relation(output: Path, inputs: Iterable[Path]) -> tuple[str, Path] | None:
    """How ``output`` overlaps an input: ("is", p), ("contains", p), ("is inside", p), or None."""
    out_chain = _chain(output)
    out_ident = _identity(os.path.realpath(output)) if _exists(output) else None
    for raw in inputs:
        given = Path(raw)
        if not _exists(given):
            continue
        in_ident = _identity(os.path.realpath(given))
        if out_ident is not None and out_ident == in_ident:
            return "is", given
        if out_ident is not None and out_ident in {i for _, i in _chain(given)[1:]}:
            return "contains", given
        if in_ident in {i for _, i in out_chain[(1 if out_ident is not None else 0):]}:
            return "is inside", given
    return None


def check_separate(output: Path, inputs: Iterable[Path], what: str = "output") -> None:
    """Refuse (exit 2) an ``output`` that equals, contains or lies inside an input, or the current folder."""
    inputs = [Path(p) for p in inputs if p]
    found = relation(output, inputs)
    if found is not None:
        how, given = found
        raise UsageError(f"{output}: the {what} {how} the input {given}; augcli never writes over or into its "
                         f"inputs: choose a place outside it")
    cwd = Path.cwd()
    if _exists(output) and relation(output, [cwd]) in (("is", cwd), ("contains", cwd)):
        raise UsageError(f"{output}: the {what} is the current folder or one of its parents; choose a new folder "
                         "for it")


def strategy_inputs(strategy) -> list[Path]:
    """The files and folders a strategy reads: its own file and its dataset source (not 'digits')."""
    paths = []
    if strategy.path and _exists(Path(strategy.path)):
        paths.append(Path(strategy.path))
    source = strategy.section("dataset")["source"]
    if source and source != "digits":
        paths.append(Path(source))
    return paths


def is_augcli_folder(folder: Path) -> bool:
    """True when ``folder`` is empty or carries augcli's marker (so replacing it loses nothing foreign)."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries]
    except OSError:
        return False
    if not names:
        return True
    marker = folder / MARKER
    return marker.is_file() and not marker.is_symlink()


def write_marker(folder: Path) -> None:
    (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


def made_by_augcli(path: Path, signature: bytes, window: int = 4096) -> bool:
    """True when the file at ``path`` holds ``signature`` in its first ``window`` bytes (a file augcli wrote)."""
    try:
        with open(path, "rb") as fh:
            return signature in fh.read(window)
    except OSError:
        return False


def check_file_output(path: Path, inputs: Iterable[Path], overwrite: bool, signature: bytes, what: str) -> None:
    """The checks for a single-file output (preview PNG, tuned strategy): never an input, never inside
    one; an existing file is replaced only with ``overwrite`` and only if augcli wrote it."""
    check_separate(path, inputs, what)
    if not _exists(path):
        return
    if os.path.isdir(path) or not os.path.isfile(path):
        raise UsageError(f"{path}: exists and is not a regular file; choose another {what} path")
    if not overwrite:
        raise UsageError(f"{path}: output already exists; pass --overwrite to replace it")
    if not made_by_augcli(path, signature):
        raise UsageError(f"{path}: exists and was not written by augcli; augcli replaces only files it made: "
                         f"remove it yourself or choose another {what} path")
