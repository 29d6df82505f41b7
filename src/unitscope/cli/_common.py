"""What every command shares: one-line errors, progress bars, the stage cache."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

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

#: Errors a user can cause (bad names, bad files, bad options): shown as one line.
USER_ERRORS = (ValueError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError, KeyError, RuntimeError, OSError)


class OneLineErrorsGroup(TyperGroup):
    """The root command group: a usage error (bad option value, missing option) is one line.

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


def debug_enabled() -> bool:
    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


def friendly_errors(func: Callable) -> Callable:
    """Turn a user error into one clear line on stderr and exit status 2.

    With ``unitscope --debug ...`` the full traceback is shown instead.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _CLICK_FLOW:
            raise
        except KeyboardInterrupt:
            typer.echo("unitscope: interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130)
        except USER_ERRORS as exc:
            if debug_enabled():
                raise
            message = str(exc) if not isinstance(exc, KeyError) else str(exc.args[0] if exc.args else exc)
            # one line whatever the library (or a third-party exception) put in the text
            typer.echo(f"unitscope: error: {' '.join(message.split())}", err=True)
            raise typer.Exit(2)

    return wrapper


def tqdm_progress(description: str, *, total: int | None = None, unit: str = "it"):
    """A tqdm bar usable as a library ``progress(n_done, n_total)`` callback.

    Returns ``(callback, bar)``; close the bar when done.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True,
               disable=None)

    def callback(done: int, total: int | None = None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return callback, bar


def default_home() -> Path:
    """Where caches and demo results go: ``$UNITSCOPE_HOME`` or ``~/.cache/unitscope``."""
    import os

    env = os.environ.get("UNITSCOPE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "unitscope"


def __getattr__(name: str):
    """``StageCache`` is the library's :class:`unitscope.experiments.resume.Stages`, imported on first
    use: it brings torch, which ``unitscope --help`` should not wait for."""
    if name == "StageCache":
        from unitscope.experiments.resume import Stages

        return Stages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``--layout`` and ``--classes``, the same on every command that takes ``--data``.
LAYOUT_OPTION = typer.Option(
    "auto", "--layout",
    help="How --data is laid out: auto, broden, camvid, ade20k, voc, cityscapes, index or plain (README: pool layouts).")
CLASSES_OPTION = typer.Option(
    None, "--classes",
    help="Class file of an index-mask pool: CSV value,name[,category][,color], or ADE20K's objectInfo150.csv.")


def open_data(data: Path, layout: str, classes: Path | None, *, preprocessing, annotated: bool, **options):
    """Open ``--data`` as its ``--layout`` says, with ``--classes``, and check its masks up front.

    Every mask of an index-mask pool is decoded once here, so a class list
    that does not fit the masks stops the command before any work.
    """
    from unitscope.data.open import open_annotated_pool, open_pool

    opener = open_annotated_pool if annotated else open_pool
    pool = opener(data, kind=layout, classes=classes, preprocessing=preprocessing, **options)
    check = getattr(pool, "check_masks", None)
    if check is not None:
        callback, bar = tqdm_progress("checking masks", total=len(pool), unit="mask")
        try:
            check(progress=callback)
        finally:
            bar.close()
    return pool
