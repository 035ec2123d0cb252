"""Scratch folders in the system's temporary folder (TMPDIR) that no killed run leaves behind.

A run removes its scratch folders (the source cache, the worker pool's job files, a local Dask
cluster's spill space) when it ends, on an error or a Ctrl-C too. A process killed outright
(SIGKILL, the kernel's out-of-memory killer) cannot, and a source cache holds every decoded image
of the input. So each folder holds a lock file that its process keeps locked (``flock``) until it
removes the folder: the kernel drops the lock when the process dies, however it dies. The first
scratch folder a process makes removes those of augcli's that nobody holds any more (the
caller's user's only). A folder without the lock file (another program's, or an older augcli's) is
never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "augcli-"
LOCK = ".owner"     # the lock file; it gets this name only once it is locked (see ``make``)

_held: dict[str, int] = {}  # folder -> descriptor of its locked file, for the process's life
_swept = False


def make(kind: str) -> Path:
    """A new folder ``augcli-<kind>-XXXXXXXX`` in TMPDIR, locked by this process."""
    global _swept
    if not _swept:
        _swept = True
        sweep()
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-"))
    fd, name = tempfile.mkstemp(prefix=".lock-", dir=path)
    if _lock(fd, wait=True):
        os.replace(name, path / LOCK)  # a sweep that sees the name finds it locked
        _held[str(path)] = fd
    else:  # no flock here (Windows, some network file systems): a folder without the name is never swept
        os.close(fd)
        os.unlink(name)
    return path


def remove(path: str | Path) -> None:
    """Remove a folder ``make`` made, then drop its lock."""
    _empty_then_remove(Path(path))
    fd = _held.pop(str(path), None)
    if fd is not None:
        os.close(fd)


def _empty_then_remove(path: Path) -> None:
    """Remove ``path``, its lock file last: a folder that cannot be emptied (a process still writing
    into it) keeps its lock file, and a later sweep finds it."""
    try:
        entries = [e for e in os.scandir(path) if e.name != LOCK]
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        if not [name for name in os.listdir(path) if name != LOCK]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path / LOCK)
            os.rmdir(path)


@contextlib.contextmanager
def folder(kind: str):
    """``make(kind)`` for the block, removed after it."""
    path = make(kind)
    try:
        yield path
    finally:
        remove(path)


def sweep(root: str | Path | None = None) -> list[str]:
    """Remove the scratch folders in ``root`` (default TMPDIR) whose process is gone; their names."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        if _remove_if_orphaned(entry):
            removed.append(entry.name)
    return removed


def _remove_if_orphaned(entry: os.DirEntry) -> bool:
    """Remove ``entry`` if it is a scratch folder of this user whose lock nobody holds."""
    try:
        if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
            return False
        fd = os.open(os.path.join(entry.path, LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # no lock file: not a folder of ours
        return False
    try:
        if not _lock(fd, wait=False):
            return False  # its process is alive
        _empty_then_remove(Path(entry.path))
        return True
    finally:
        os.close(fd)


def _lock(fd: int, wait: bool) -> bool:
    """flock ``fd``: False if another process holds it, or if this system cannot lock it."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except (ImportError, OSError):  # held (BlockingIOError), or no flock: Windows, some network file systems
        return False
    return True
