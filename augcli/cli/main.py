"""The ``augcli`` command group. Library errors become one-line messages with documented exit
codes here, at the edge; tracebacks only with ``--verbose``. Library warnings are printed as one
line each (none under ``-q``). A standard output that cannot be written is not the command's
failure: a reader that stopped reading (``| head``) ends the command quietly with exit 0, and a full
disk only costs the summary of a command whose output is already written (a warning, exit 0)."""

from __future__ import annotations

import io
import os
import sys
import traceback
import warnings

import importlib

import click

from augcli import __version__
from augcli.cli.options import QUIET_KEY, VERBOSE_KEY, warn
from augcli.cli.progress import end_line
from augcli.errors import EXIT_DATA, AugcliError
from augcli.io import signals
from augcli.io.signals import Terminated

# Commands whose standard output is the product itself, not a summary of files already written.
STDOUT_PRODUCTS = ("validate", "transforms")


class StdoutFailed(BaseException):
    """Writing standard output failed. A BaseException, so that no ``except Exception`` on the way
    mistakes it for a failure of the command's own work; ``command`` is set on the way out."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error
        self.command = None


class _StdoutRaw(io.RawIOBase):
    """File descriptor 1 as a raw stream whose write errors are told apart from every other I/O error."""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return os.isatty(1)

    def write(self, data) -> int:
        try:
            return os.write(1, data)
        except OSError as err:
            raise StdoutFailed(err) from None


def _guard_stdout() -> None:
    """Route ``sys.stdout`` through ``_StdoutRaw`` (same encoding and buffering as before)."""
    old = sys.stdout
    try:
        if old.fileno() != 1:
            return
    except (AttributeError, OSError, ValueError):  # not a file (embedded use): leave it alone
        return
    old.flush()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_StdoutRaw()), encoding=old.encoding, errors=old.errors,
                                  line_buffering=old.line_buffering)


# Click >= 8.2 raises this usage error for a group run with no arguments; its message is the help
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


# Each command's module, imported only when that command runs (or help lists them all): a command
# pays for its own imports only, and ``run --workers N`` starts its workers' server before its own.
COMMANDS = {name: f"augcli.cli.{name}" for name in
            ("evaluate", "inspect", "preview", "run", "search", "transforms", "validate")}


class AugcliGroup(click.Group):
    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return getattr(importlib.import_module(COMMANDS[name]), name)

    def main(self, *args, **kwargs):
        """Click's usage errors as one line too (Click prints usage, hint and error on three)."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except _NO_ARGS_IS_HELP as err:  # bare `augcli`: the help, as `augcli --help` prints it
            click.echo(err.ctx.get_help())
            sys.exit(0)
        except click.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
            click.echo(f"augcli: error: {_one_line(err.format_message())}{where}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"augcli: error: {_one_line(err.format_message())}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("augcli: aborted", err=True)
            sys.exit(1)
        except StdoutFailed as failed:
            sys.exit(_stdout_failed(failed))
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warning_printer(ctx)
                return super().invoke(ctx)
        except StdoutFailed as failed:
            failed.command = ctx.invoked_subcommand
            raise
        except AugcliError as err:
            self._fail(ctx, getattr(err, "messages", None) or str(err), err.exit_code)
        except KeyboardInterrupt:
            end_line()
            click.echo("augcli: interrupted", err=True)
            ctx.exit(130)
        except Terminated:
            end_line()
            click.echo("augcli: terminated", err=True)
            ctx.exit(143)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except MemoryError:
            self._fail(ctx, "out of memory; try a smaller --batch-size or dataset.limit", EXIT_DATA)
        except Exception as err:  # anything else is a bug or an environment problem: say which, briefly
            self._fail(ctx, f"internal error: {type(err).__name__}: {err}", EXIT_DATA)

    @staticmethod
    def _fail(ctx: click.Context, message: str | list[str], code: int):
        """One line per message (a strategy with several mistakes has one each), then exit ``code``."""
        messages = [message] if isinstance(message, str) else list(message)
        if ctx.meta.get(VERBOSE_KEY):
            traceback.print_exc(file=sys.stderr)
        elif messages[0].startswith("internal error"):
            messages[0] += " (run with --verbose for the traceback)"
        end_line()
        for line in messages:
            click.echo(f"augcli: error: {_one_line(line)}", err=True)
        ctx.exit(code)


def _warning_printer(ctx: click.Context):
    """``warnings.showwarning`` for a command: one line on stderr, nothing under ``-q``. (Warnings
    raised while decoding an input file never get here: loading reports them with that file.)"""

    def show(message, category, filename, lineno, file=None, line=None):
        if not ctx.meta.get(QUIET_KEY):
            warn(_one_line(" ".join(str(message).split())))

    return show


def _stdout_failed(failed: StdoutFailed) -> int:
    """The exit code, and at most one line on stderr, when standard output could not be written."""
    # What is still buffered would fail again when the interpreter exits; let it go to /dev/null.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    if isinstance(failed.error, BrokenPipeError):
        return 0  # the reader chose to stop reading (``| head``): not an error
    reason = failed.error.strerror or str(failed.error)
    if failed.command in STDOUT_PRODUCTS or failed.command is None:
        click.echo(f"augcli: error: cannot write to standard output: {reason}", err=True)
        return EXIT_DATA
    click.echo(f"augcli: warning: cannot write the summary to standard output ({reason}); "
               f"the command itself completed", err=True)
    return 0


def _one_line(message: str) -> str:
    """Control characters (a newline in a crafted key or file name) shown escaped: errors stay one line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)


@click.group(cls=AugcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augcli")
def cli():
    """Clean, split and augment image-classification datasets from one YAML strategy."""


def commands() -> dict[str, click.Command]:
    """Every command by name (each module imported)."""
    return {name: cli.get_command(None, name) for name in cli.list_commands(None)}


def main():
    signals.install()
    _guard_stdout()
    cli(prog_name="augcli")
