"""``unitscope label ...``: the human labeling app, from the command line.

Each command parses its arguments, calls one library function of
:mod:`unitscope.label` and prints one line. Bad input is reported as one
``unitscope: error: ...`` line with exit code 2 (``OneLineErrorsGroup``).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli._common import OneLineErrorsGroup

__all__ = ["label_app"]

label_app = typer.Typer(name="label", help="Human labels for units: a local web app (the paper's crowd task).",
                        cls=OneLineErrorsGroup, no_args_is_help=True, add_completion=False)

ResultsOption = typer.Option(..., "--results", "-r", help="Results directory (holds <network>/dissect/units.csv).")
DbOption = typer.Option(None, "--db", help="Labeling database (default: RESULTS/labels.sqlite).")


@label_app.command("serve")
def serve_command(
    results_dir: Path = typer.Argument(..., help="Results directory to label."),
    db: Optional[Path] = DbOption,
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Confirm a --host other than loopback: tokens and answers then travel unencrypted (plain HTTP)."),
    k: int = typer.Option(3, "--k", help="Annotations per unit, each by a different annotator."),
    n_images: int = typer.Option(60, "--images", help="Top segmentations shown per unit."),
    network: List[str] = typer.Option([], "--network", help="Label only this network (repeatable)."),
    layer: List[str] = typer.Option([], "--layer", help="Label only this layer (repeatable)."),
) -> None:
    """Serve the labeling app for RESULTS_DIR until interrupted."""
    from unitscope.label import serve

    serve(results_dir, host=host, port=port, allow_remote=allow_remote, announce=typer.echo, db=db, k=k,
          n_images=n_images, networks=network or None, layers=layer or None)


@label_app.command("add-annotator")
def add_annotator_command(name: str = typer.Argument(..., help="Annotator name."), results: Path = ResultsOption,
                          db: Optional[Path] = DbOption, replace_token: bool = typer.Option(
                              False, "--replace-token", help="Issue a new token for an existing annotator.")) -> None:
    """Create an annotator and print their token (shown only once)."""
    from unitscope.label import add_annotator

    token = add_annotator(results, name, db=db, replace_token=replace_token)
    typer.echo(f"token for {name} (shown once, store it now): {token}")


@label_app.command("export")
def export_command(out: Path = typer.Argument(..., help="Output file, .csv or .json."), results: Path = ResultsOption,
                   db: Optional[Path] = DbOption) -> None:
    """Write every answer to a CSV or JSON file (spreadsheet formulas in CSV cells are neutralised)."""
    from unitscope.label import export_answers, open_store

    count = export_answers(open_store(results, db, existing=True), out)
    typer.echo(f"exported {count} answers to {out}")


@label_app.command("import")
def import_command(source: Path = typer.Argument(..., help="A file written by `unitscope label export`."),
                   results: Path = ResultsOption, db: Optional[Path] = DbOption) -> None:
    """Add the answers of an export file to the database, checked as the app checks answers."""
    from unitscope.label import load_catalog, open_store, read_answers

    answers = read_answers(source, catalog=load_catalog(results, n_images=None))  # checked before the database opens
    counts = open_store(results, db).insert_answers(answers)
    typer.echo(f"imported {counts.added} answers from {source} "
               f"({counts.unchanged} already present, {counts.conflicting} conflicting kept as stored)")


@label_app.command("results")
def results_command(results: Path = ResultsOption, db: Optional[Path] = DbOption) -> None:
    """Write human labels per unit and layer, and their comparison with the automatic ones."""
    from unitscope.label import write_human_results

    written = write_human_results(results, db=db)
    if written:
        typer.echo(f"wrote human labels for {len(written)} network(s): " + ", ".join(str(p) for p in written))
    else:
        typer.echo("no answers yet; nothing written")


if __name__ == "__main__":  # pragma: no cover
    label_app()
