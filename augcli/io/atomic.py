"""Atomic output folders: everything is written into a temporary folder beside the target and
renamed into place at the end, so an interrupted run leaves the previous output intact.

Beside a target ``NAME`` augcli uses only hidden names of its own (``aside``): ``.NAME.lock``
(held while a command writes NAME), ``.NAME.tmp-PID`` / ``.NAME.partial`` (the output being
written), ``.NAME.old-PID`` (the previous output during the swap) and ``.NAME.swap`` (the swap's
journal). The swap runs with signals deferred (``signals.deferred_signals``); if the process is
killed outright during it, the next command on NAME finishes it from the journal (``recover``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from augcli.errors import DataError, UsageError
from augcli.io.guard import MARKER, check_separate, is_augcli_folder, write_marker
from augcli.io.signals import deferred_signals, stop_request

NAME_MAX = 255      # bytes in one file name on Linux, macOS and Windows file systems
SUFFIX_ROOM = 16    # longest suffix ("tmp-4194304" is 11): shortened stems leave room for any of them
_STALE = re.compile(r"(tmp|old)-\d+")  # what a killed process of ours can leave beside NAME
PAUSE_HOOK = "AUGCLI_TEST_PAUSE"  # tests only: "swap=BEACON" or "cleanup=BEACON"; waits while BEACON exists


def aside(target: Path, suffix: str) -> Path:
    """``.NAME.suffix`` beside ``target``; a NAME too long for that is cut and tagged with its hash,
    the same way for every suffix (so the names of one target share their prefix)."""
    name = f".{target.name}.{suffix}"
    if len(os.fsencode(f".{target.name}.")) + SUFFIX_ROOM <= NAME_MAX:
        return target.parent / name
    digest = hashlib.sha256(os.fsencode(target.name)).hexdigest()[:16]
    stem = target.name
    while len(os.fsencode(f".{stem}~{digest}.")) + SUFFIX_ROOM > NAME_MAX:
        stem = stem[:-1]
    return target.parent / f".{stem}~{digest}.{suffix}"


def check_target(target: Path, overwrite: bool, inputs=()) -> None:
    """Refuse (exit 2) before any work: an output over an input, an existing output without
    ``overwrite``, anything but a folder augcli made with it. Finishes an interrupted swap first."""
    target = Path(target)
    check_separate(target, inputs)
    if _leftovers(target):
        with _Lock(target):
            recover(target)
    problem = target_problem(target, overwrite)
    if problem:
        raise UsageError(problem)


def target_problem(target: Path, overwrite: bool) -> str | None:
    """Why a command could not write the folder ``target`` (None: it could), touching nothing:
    ``check_target``'s checks after the input guard, for ``--dry-run`` to report."""
    target = Path(target)
    if os.path.islink(target):
        return f"{target}: is a symbolic link; give the folder it points to as the output"
    if not target.exists():
        return None
    if not target.is_dir():
        return f"{target}: exists and is not a folder"
    if not overwrite:
        return f"{target}: output already exists; pass --overwrite to replace it"
    if not is_augcli_folder(target):
        return (f"{target}: exists and was not made by augcli (no {MARKER} file in it); --overwrite only "
                "replaces augcli's own outputs: remove it yourself or choose another output folder")
    return None


class _Lock:
    """An exclusive lock on ``.NAME.lock``: a second command on the same output refuses at once
    instead of interleaving its files with ours. Opened without following a planted symlink and
    without truncating: the lock never writes anywhere but its own regular file."""

    def __init__(self, target: Path):
        self.target = target
        self.path = aside(target, "lock")
        self.fd: int | None = None

    def __enter__(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UsageError(f"{self.path}: the lock file is a symbolic link; augcli opens no file through a "
                                 "link it did not make: remove it") from None
            raise DataError(f"{self.path.parent}: cannot create the lock file: {err.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UsageError(f"{self.path}: the lock file is not a regular file: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"{self.target}: another augcli run is writing this output; try again when it has "
                             "finished") from None
        self.fd = fd
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def _remove(path: Path) -> None:
    """Remove a folder of ours (never through a symlink: rmtree refuses those)."""
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def recover(target: Path) -> None:
    """Under the target's lock: finish a swap a killed process left half done, remove stale
    temporary folders. Only ``.NAME.partial`` (a resumable output) is kept."""
    journal = aside(target, "swap")
    with deferred_signals():
        if journal.is_file() and not journal.is_symlink():
            try:
                names = json.loads(journal.read_text(encoding="utf-8"))
                new, old = target.parent / names["new"], target.parent / names["old"]
            except (OSError, ValueError, KeyError, TypeError):
                new = old = None
            if new is not None:
                _finish_swap(target, new, old)
            journal.unlink(missing_ok=True)
        for entry, kind in _stale(target):
            if entry.is_symlink() or not entry.is_dir():
                continue
            if kind == "old" and not os.path.lexists(target):
                os.replace(entry.path, target)  # a swap of an older augcli, killed between its renames
            else:
                _remove(Path(entry.path))


def _stale(target: Path) -> list:
    """(entry, "tmp" | "old") for each temporary folder name a killed process of ours can leave beside ``target``."""
    prefix = aside(target, "").name
    try:
        with os.scandir(target.parent) as entries:
            found = [(e, _STALE.fullmatch(e.name[len(prefix):])) for e in entries if e.name.startswith(prefix)]
    except OSError:
        return []
    return [(e, m[1]) for e, m in found if m is not None]


def _leftovers(target: Path) -> bool:
    """Whether a killed process left a swap journal or temporary folders beside ``target``."""
    return os.path.lexists(aside(target, "swap")) or bool(_stale(target))


def _finish_swap(target: Path, new: Path, old: Path) -> None:
    """Bring the journal's swap to its end: ``new`` in place as ``target``, ``old`` gone."""
    if new.is_dir() and not new.is_symlink():
        if os.path.lexists(target) and not os.path.lexists(old):
            os.replace(target, old)
        if not os.path.lexists(target):
            os.replace(new, target)
    _remove(old)
    _remove(new)


def _pause(point: str) -> None:
    """Test hook: at ``point`` (between the swap's renames, or before removing a failed output),
    create the beacon file and wait while it exists (at most 60 s), so a test can signal there."""
    where, _, beacon = os.environ.get(PAUSE_HOOK, "").partition("=")
    if where != point or not beacon:
        return
    Path(beacon).write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + 60
    while os.path.exists(beacon) and time.monotonic() < deadline:
        time.sleep(0.02)


class AtomicFolder:
    """``with AtomicFolder(target, overwrite) as tmp:`` write into ``tmp``; on success it becomes ``target``.

    ``inputs`` are the paths the command reads: the target may not equal, contain or lie inside any
    of them. With a ``state`` (what the output depends on, e.g. the strategy hash and format), the
    temporary folder is ``.<name>.partial`` and survives a crash (or an interrupt when
    ``keep_partial``): a later run with the same state finds it again and can skip the work already
    done in it. A partial folder from a different state is discarded.
    """

    STATE = ".state.json"

    def __init__(self, target: str | Path, overwrite: bool = False, state: dict | None = None, keep_partial: bool = False,
                 inputs=()):
        self.target = Path(target)
        self.overwrite = overwrite
        self.state = state
        self.keep_partial = keep_partial
        self.inputs = list(inputs)
        self.tmp = aside(self.target, "partial" if state is not None else f"tmp-{os.getpid()}")
        self.resumed = False
        self.discarded = False  # a partial output was there, made from another state
        self._lock: _Lock | None = None

    def __enter__(self) -> Path:
        check_target(self.target, self.overwrite, self.inputs)
        try:
            with deferred_signals():
                self._set_up()
        except BaseException as exc:  # __exit__ will not run: clean up here what the set-up made
            try:
                with deferred_signals():
                    if self._lock is not None and self._lock.fd is not None and not self.keep_partial:
                        _remove(self.tmp)  # ours only while we hold the lock
            finally:
                self._lock_release()
            if isinstance(exc, OSError):
                raise DataError(f"{self.target.parent}: cannot create the output folder: {exc.strerror}") from None
            raise
        return self.tmp

    def _set_up(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _Lock(self.target).__enter__()
        recover(self.target)
        if os.path.islink(self.tmp) or (os.path.lexists(self.tmp) and not self.tmp.is_dir()):
            raise UsageError(f"{self.tmp}: expected augcli's temporary folder here, found something else: remove it")
        self.resumed = self.state is not None and self._same_state()
        if self.tmp.exists() and not self.resumed:
            self.discarded = self.state is not None
            _remove(self.tmp)
        self.tmp.mkdir(exist_ok=True)
        write_marker(self.tmp)
        if self.state is not None:
            (self.tmp / self.STATE).write_text(json.dumps(self.state, sort_keys=True), encoding="utf-8")

    def _same_state(self) -> bool:
        try:
            return json.loads((self.tmp / self.STATE).read_text(encoding="utf-8")) == json.loads(json.dumps(self.state, sort_keys=True))
        except (OSError, ValueError):
            return False

    def _lock_release(self):
        if self._lock is not None:
            self._lock.release()

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            with deferred_signals():  # a second Ctrl-C waits for the cleanup or the swap to end
                stop = stop_request() if exc_type is None else None
                if stop is not None:  # a stop whose exception was swallowed: cleaned up, never published
                    self._finish(type(stop), stop)
                    raise stop
                return self._finish(exc_type, exc)
        finally:
            self._lock_release()

    def _finish(self, exc_type, exc) -> bool:
        if exc_type is not None:
            _pause("cleanup")
            if not self.keep_partial:
                _remove(self.tmp)
            if isinstance(exc, OSError):
                # full disk, quota, unwritable target: a data error with the reason, not a traceback
                raise DataError(f"{self.target}: cannot write the output: {exc.strerror or exc}") from None
            return False
        (self.tmp / self.STATE).unlink(missing_ok=True)
        try:
            self._swap()
        except OSError as err:
            _remove(self.tmp)
            raise DataError(f"{self.target}: cannot move the finished output into place: {err.strerror}") from None
        return False

    def _swap(self) -> None:
        """Previous output aside, new output in place, previous removed; a journal first, so a
        process killed in between leaves enough for ``recover`` to finish the job."""
        old, journal = aside(self.target, f"old-{os.getpid()}"), aside(self.target, "swap")
        scratch = aside(self.target, "swap-new")
        scratch.write_text(json.dumps({"new": self.tmp.name, "old": old.name}), encoding="utf-8")
        os.replace(scratch, journal)
        try:
            if os.path.lexists(self.target):
                os.replace(self.target, old)
            _pause("swap")
            os.replace(self.tmp, self.target)
        except OSError:
            if os.path.lexists(old) and not os.path.lexists(self.target):
                os.replace(old, self.target)
            journal.unlink(missing_ok=True)
            raise
        _remove(old)
        journal.unlink(missing_ok=True)


def write_file(path: Path, data: bytes) -> None:
    """Write one file atomically: a temporary file beside it, renamed over it (signals deferred, so
    an interrupt leaves the old file or the new one, never half of one and never the temporary)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with deferred_signals():
        fd, tmp = tempfile.mkstemp(prefix=aside(path, "").name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
