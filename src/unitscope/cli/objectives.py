"""``unitscope objectives``: which training objectives make object detectors emerge."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli._common import log
from unitscope.results.layout import OBJECTIVES_CSV, objectives_dir
from unitscope.study.progress import tqdm_bars

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    def objectives(
        out: Path = typer.Option(..., "--out", help="Results directory: OUT/<network>/dissect per objective, "
                                                    "OUT/objectives/objectives.csv|json."),
        preset: Optional[str] = typer.Option(None, "--preset", help="A named world, generated once into "
                                                                     "HOME/world-<preset>: 'study'."),
        world: Optional[Path] = typer.Option(None, "--world", help="A world made by `unitscope world` "
                                                                   "(instead of --preset)."),
        objective: Optional[List[str]] = typer.Option(None, "--objective", help="An objective to train; repeat "
                                                                                "(default: all)."),
        layers: Optional[str] = typer.Option(None, "--layers", help="Comma-separated layers to dissect "
                                                                    "(default conv1..conv5)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs, the same for "
                                                                          "every objective (default: the "
                                                                          "training package's)."),
        width: Optional[int] = typer.Option(None, "--width", min=1, help="Network width (conv1 channels)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Training seed (same seed, same weights)."),
        home: Optional[Path] = typer.Option(None, "--home", help="Cache root: trained weights, decoded masks, "
                                                                 "preset worlds (default $UNITSCOPE_HOME)."),
        restart: bool = typer.Option(False, "--restart", help="Redo every stage (trained weights stay "
                                                              "cached)."),
    ) -> None:
        """Train the same network under each objective, dissect each beside a random-weights null, compare.

        Run it again with the same arguments after an interruption: finished
        objectives are kept, the rest are done.
        """
        from unitscope.study import default_home, objectives_study
        from unitscope.study.objectives import OBJECTIVE_LAYERS

        chosen_layers = [s.strip() for s in layers.split(",") if s.strip()] if layers is not None else None
        if layers is not None and not chosen_layers:
            raise ValueError("--layers is empty; give comma-separated layer names, e.g. conv3,conv5")
        result = objectives_study(world, preset=preset, out=out, home=home or default_home(),
                                  objectives=objective or None, layers=chosen_layers or OBJECTIVE_LAYERS,
                                  progress=tqdm_bars(), log=log, restart=restart, epochs=epochs, width=width,
                                  seed=seed)
        best = result.best_layers().set_index("objective")
        for name in result.objectives:
            run, row = result.runs.get(name, {}), best.loc[name]
            accuracy = run.get("accuracy")
            typer.echo(f"{name} ({row.network}): {int(row.unique_objects)} unique objects, "
                       f"{int(row.object_detectors)} object detectors at {row.layer}"
                       + (f"; held-out accuracy {accuracy:.1%}" if accuracy is not None else "")
                       + (f"; trained {run['train_seconds']:.0f} s" if run.get("train_seconds") else "")
                       + (f", dissected {run['dissect_seconds']:.0f} s" if run.get("dissect_seconds") else ""))
        typer.echo(f"table: {objectives_dir(out) / OBJECTIVES_CSV}")
