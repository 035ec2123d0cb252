"""Error types whose class decides the exit code (part of the CLI interface)."""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_GATE = 3


class AugcliError(Exception):
    """Base of every error augcli reports as one line; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_DATA


class UsageError(AugcliError):
    """Bad command-line use or a bad strategy value (exit 2)."""

    exit_code = EXIT_USAGE


class StrategyError(UsageError):
    """A strategy file problem; the message already carries ``file:line: path:``. A file with
    several mistakes gives one message per mistake in ``messages`` (``str`` is the first)."""

    def __init__(self, message: str, messages: list[str] | None = None):
        super().__init__(message)
        self.messages = messages or [message]

    def __reduce__(self):
        return type(self), (str(self), self.messages)


class DataError(AugcliError):
    """The data could not be read or processed (exit 1)."""

    exit_code = EXIT_DATA


class SchemaError(ValueError):
    """A value does not fit its schema; ``path`` locates it inside the strategy (a tuple of keys)."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = tuple(path)
        self.message = message

    def __reduce__(self):
        # worker processes send exceptions back pickled; the default would call __init__(message)
        return type(self), (self.path, self.message)

    @property
    def each(self) -> list:
        """The separate mistakes this error stands for (itself, or those of ``SchemaErrors``)."""
        return [self]


class SchemaErrors(SchemaError):
    """Several independent mistakes found in one pass; reads as the first one where one is expected."""

    def __init__(self, errors: list):
        super().__init__(errors[0].path, errors[0].message)
        self.errors = [e for err in errors for e in err.each]

    def __reduce__(self):
        return type(self), (self.errors,)

    @property
    def each(self) -> list:
        return self.errors


def format_path(path: tuple) -> str:
    """``('augment', 'pipeline', 2, 'rotate')`` -> ``augment.pipeline[2].rotate``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text or text != text.strip():  # a blank key would vanish from the message: quote it
                text = repr(text)
            out += ("." if out else "") + text
    return out


class GateError(AugcliError):
    """A quality gate failed, e.g. ``evaluate --fail-if-worse`` (exit 3)."""

    exit_code = EXIT_GATE


def exception_text(exc: BaseException) -> str:
    """An exception's message on one line (a decoder's multi-line text), or its type when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__


def resolved_from(path) -> str:
    """For messages about a path that is not there: where a relative path was looked up (the
    current folder, which a Makefile or CI job may not have where the user thinks)."""
    return "" if os.path.isabs(os.fspath(path)) else f" (relative to the current folder {os.getcwd()})"
