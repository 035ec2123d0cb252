"""The ``augcli`` command group. Library errors become one-line messages with documented exit
codes here, at the edge; tracebacks only with ``--verbose``."""

from __future__ import annotations

import sys
import traceback

import click

from augcli import __version__
from augcli.cli.options import VERBOSE_KEY
from augcli.errors import EXIT_DATA, AugcliError


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that cleanup (temporary folders, locks) runs as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


class AugcliGroup(click.Group):
    def main(self, *args, **kwargs):
        """Click's usage errors as one line too (Click prints usage, hint and error on three)."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
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
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AugcliError as err:
            self._fail(ctx, str(err), err.exit_code)
        except KeyboardInterrupt:
            click.echo("augcli: interrupted", err=True)
            ctx.exit(130)
        except Terminated:
            click.echo("augcli: terminated", err=True)
            ctx.exit(143)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except MemoryError:
            self._fail(ctx, "out of memory; try a smaller --batch-size or dataset.limit", EXIT_DATA)
        except Exception as err:  # anything else is a bug or an environment problem: say which, briefly
            self._fail(ctx, f"internal error: {type(err).__name__}: {err}", EXIT_DATA)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int):
        if ctx.meta.get(VERBOSE_KEY):
            traceback.print_exc(file=sys.stderr)
        elif message.startswith("internal error"):
            message += " (run with --verbose for the traceback)"
        click.echo(f"augcli: error: {_one_line(message)}", err=True)
        ctx.exit(code)


def _one_line(message: str) -> str:
    """Control characters (a newline in a crafted key or file name) shown escaped: errors stay one line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)


@click.group(cls=AugcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="augcli")
def cli():
    """Clean, split and augment image-classification datasets from one YAML strategy."""


def _register():
    from augcli.cli import evaluate, inspect, preview, run, search, transforms, validate

    cli.add_command(run.run)
    cli.add_command(preview.preview)
    cli.add_command(validate.validate)
    cli.add_command(transforms.transforms)
    cli.add_command(inspect.inspect)
    cli.add_command(evaluate.evaluate)
    cli.add_command(search.search)


_register()


def main():
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    cli(prog_name="augcli")
