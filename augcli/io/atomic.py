"""Atomic output folders: everything is written into a temporary folder beside the target and
renamed into place at the end, so an interrupted run leaves the previous output intact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from augcli.errors import DataError, UsageError


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse (exit 2) before any work if the output exists and ``overwrite`` is not given."""
    if target.exists() and not overwrite:
        raise UsageError(f"{target}: output already exists; pass --overwrite to replace it")
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: exists and is not a folder")


def _lock(target: Path):
    """An exclusive lock on ``.<name>.lock`` beside the target: a second run on the same output
    refuses at once instead of interleaving its files with ours."""
    import fcntl

    handle = open(target.parent / f".{target.name}.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"{target}: another augcli run is writing this output; try again when it has finished") from None
    return handle


class AtomicFolder:
    """``with AtomicFolder(target, overwrite) as tmp:`` write into ``tmp``; on success it becomes ``target``."""

    def __init__(self, target: str | Path, overwrite: bool = False):
        self.target = Path(target)
        self.overwrite = overwrite
        self.tmp = self.target.parent / f".{self.target.name}.tmp-{os.getpid()}"

    def __enter__(self) -> Path:
        check_target(self.target, self.overwrite)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.target)
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir()
        except OSError as err:
            raise DataError(f"{self.target.parent}: cannot create the output folder: {err.strerror}") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._finish(exc_type, exc)
        finally:
            self._lock.close()  # closing the descriptor releases the lock

    def _finish(self, exc_type, exc) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                # full disk, quota, unwritable target: a data error with the reason, not a traceback
                raise DataError(f"{self.target}: cannot write the output: {exc.strerror or exc}") from None
            return False
        old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        try:
            if self.target.exists():
                os.replace(self.target, old)
            os.replace(self.tmp, self.target)
        except OSError as err:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if old.exists() and not self.target.exists():
                os.replace(old, self.target)
            raise DataError(f"{self.target}: cannot move the finished output into place: {err.strerror}") from None
        shutil.rmtree(old, ignore_errors=True)
        return False
