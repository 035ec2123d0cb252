"""Atomic output folders: everything is written into a temporary folder beside the target and
renamed into place at the end, so an interrupted run leaves the previous output intact."""

from __future__ import annotations

import json
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
    """``with AtomicFolder(target, overwrite) as tmp:`` write into ``tmp``; on success it becomes ``target``.

    With a ``state`` (what the output depends on, e.g. the strategy hash and format), the temporary
    folder is ``.<name>.partial`` and survives a crash (or an interrupt when ``keep_partial``): a later
    run with the same state finds it again and can skip the work already done in it. A partial folder
    from a different state is discarded.
    """

    STATE = ".state.json"

    def __init__(self, target: str | Path, overwrite: bool = False, state: dict | None = None, keep_partial: bool = False):
        self.target = Path(target)
        self.overwrite = overwrite
        self.state = state
        self.keep_partial = keep_partial
        name = f".{self.target.name}.partial" if state is not None else f".{self.target.name}.tmp-{os.getpid()}"
        self.tmp = self.target.parent / name
        self.resumed = False

    def __enter__(self) -> Path:
        check_target(self.target, self.overwrite)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.target)
            self.resumed = self.state is not None and self._same_state()
            if self.tmp.exists() and not self.resumed:
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(exist_ok=True)
            if self.state is not None:
                (self.tmp / self.STATE).write_text(json.dumps(self.state, sort_keys=True), encoding="utf-8")
        except OSError as err:
            self._lock_release()
            raise DataError(f"{self.target.parent}: cannot create the output folder: {err.strerror}") from None
        return self.tmp

    def _same_state(self) -> bool:
        try:
            return json.loads((self.tmp / self.STATE).read_text(encoding="utf-8")) == json.loads(json.dumps(self.state, sort_keys=True))
        except (OSError, ValueError):
            return False

    def _lock_release(self):
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._finish(exc_type, exc)
        finally:
            self._lock_release()  # closing the descriptor releases the lock

    def _finish(self, exc_type, exc) -> bool:
        if exc_type is not None:
            if not self.keep_partial:
                shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                # full disk, quota, unwritable target: a data error with the reason, not a traceback
                raise DataError(f"{self.target}: cannot write the output: {exc.strerror or exc}") from None
            return False
        (self.tmp / self.STATE).unlink(missing_ok=True)
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
