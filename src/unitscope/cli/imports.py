"""``unitscope import ...``: published results of real networks as an ordinary results directory."""

from __future__ import annotations

from pathlib import Path

import typer

from unitscope.cli._common import OneLineErrorsGroup
from unitscope.study.progress import step, tqdm_bars

__all__ = ["import_app"]

import_app = typer.Typer(name="import", cls=OneLineErrorsGroup, no_args_is_help=True, add_completion=False,
                         help="Import published per-unit results (the paper's crowd labels, Network Dissection's "
                              "tables) into a results directory, for the census and the report.")

NetworkOption = typer.Option(..., "--network", help="The network's name in the results (RESULTS/NAME).")
OutOption = typer.Option(..., "--out", help="Results directory to import into (made when missing).")


@import_app.command("iclr15")
def iclr15_command(file: Path = typer.Argument(..., help="unitAnnotation_<network>.mat of the ICLR 2015 release."),
                   network: str = NetworkOption, out: Path = OutOption) -> None:
    """The crowd's three annotations per unit as human labels (RESULTS/NAME/human)."""
    from unitscope.published import import_iclr15

    typer.echo(f"imported {file} as {_one_file('import iclr15', import_iclr15, file, network=network, out=out)}")


@import_app.command("netdissect")
def netdissect_command(file: Path = typer.Argument(..., help="A released Network Dissection unit table (*.csv)."),
                       network: str = NetworkOption, out: Path = OutOption,
                       layer: str = typer.Option(..., "--layer", help="The dissected layer's name (e.g. conv5).")) -> None:
    """A unit table as a dissection with its census (RESULTS/NAME/dissect)."""
    from unitscope.published import import_netdissect

    typer.echo(f"imported {file} as "
               f"{_one_file('import netdissect', import_netdissect, file, network=network, layer=layer, out=out)}")


def _one_file(description: str, importer, file: Path, **options) -> Path:
    """``importer(file, **options)`` under a one-file bar, as every long command has one (issue 15).

    An import reads one table, in about a second: the bar (or, off a
    terminal, the line) only says that it ran, and when.
    """
    with step(tqdm_bars(unit="file"), description) as callback:
        callback(0, 1)
        folder = importer(file, **options)
        callback(1, 1)
    return folder
