"""What every command shares: one-line errors, status lines."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

try:  # typer >= 0.26 carries its own copy of click; older typer uses click itself
    from typer._click import exceptions as click_exceptions
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions
    from click import get_current_context

#: Exceptions that already carry their exit status (``--help``, usage errors, ``typer.Exit``).
_CLICK_FLOW = tuple({typer.Exit, typer.Abort, click_exceptions.ClickException,
                     getattr(click_exceptions, "Exit", typer.Exit),
                     getattr(click_exceptions, "Abort", typer.Abort)})

#: Errors a user can cause (bad names, bad options; OSError: missing files, existing folders, permissions...):
#: shown as one line.
USER_ERRORS = (ValueError, LookupError, RuntimeError, OSError)


class OneLineErrorsGroup(TyperGroup):
    """A command group whose commands' user errors are one clear line on stderr, exit status 2.

    An interruption says how to resume (exit status 130); with ``unitscope
    --debug ...`` the full traceback is shown instead.  Every command of the
    group gets this, so none can forget it.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _CLICK_FLOW:
            raise
        except KeyboardInterrupt:
            typer.echo("unitscope: interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130)
        except USER_ERRORS as exc:
            root = ctx.find_root()
            if root.obj and root.obj.get("debug"):
                raise
            message = str(exc) if not isinstance(exc, KeyError) else str(exc.args[0] if exc.args else exc)
            # one line whatever the library (or a third-party exception) put in the text
            typer.echo(f"unitscope: error: {' '.join(message.split())}", err=True)
            raise typer.Exit(2)


class RootGroup(OneLineErrorsGroup):
    """The root command group: a usage error (bad option value, missing option) is one line too.

    Click's default shows a usage block, a hint and the error over several
    lines; scripts and users grep for one ``unitscope: error: ...`` line, the
    same shape as the errors that commands raise themselves.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click_exceptions.ClickException as exc:
            message = " ".join(exc.format_message().split())
            typer.echo(f"unitscope: error: {message}", err=True)
            sys.exit(exc.exit_code)
        except (typer.Abort, getattr(click_exceptions, "Abort", typer.Abort)):
            typer.echo("unitscope: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def log(line: str) -> None:
    """A status line of the library (``log=``), on stderr."""
    typer.echo(line, err=True)
