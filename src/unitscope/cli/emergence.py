"""``unitscope emergence``: how detectors emerge during training (every snapshot of a run dissected).

Parses its options, opens the first snapshot to open the pool for it, and
calls :func:`unitscope.study.emergence_study`, which checks every snapshot
before any work, dissects each (a bar per snapshot) and the random-weights
null, and saves ``OUT/emergence/NAME/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli._common import log
from unitscope.cli._options import checked, shared
from unitscope.study import checks
from unitscope.study.progress import tqdm_bars

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    @shared("data", "out", "layers", "name", "batch_size", "device", "resume", "seed", "preprocessing",
            data="Annotated pool (Broden directory or images + masks) every snapshot is dissected over.",
            out="Results directory; writes OUT/emergence/NAME/.",
            name="The run's folder under OUT/emergence (default: the snapshot folder's name, else the architecture).",
            seed="Seed of the null's random weights.")
    def emergence(
        o,
        snapshots: Optional[Path] = typer.Option(None, "--snapshots", help="Snapshot folder written by training (its snapshots.json)."),
        checkpoint: Optional[List[str]] = typer.Option(None, "--checkpoint", callback=checked(checks.step_checkpoints), help="STEP=PATH: one snapshot's checkpoint; repeat (instead of --snapshots)."),
        iou_threshold: float = typer.Option(0.04, "--iou-threshold", callback=checked(checks.float_range(0, 1, high_open=True)), help="IoU above which a unit is a detector, in [0, 1)."),
        threshold_rule: str = typer.Option("unitscope", "--threshold-rule", callback=checked(checks.choice("unitscope", "netdissect", "inclusive")), help="unitscope, netdissect or inclusive (see `unitscope dissect --help`)."),
        label_cache: Optional[str] = typer.Option(None, "--label-cache", help="Folder keeping the pool's decoded masks (default $UNITSCOPE_HOME/cache/labels; 'none': the run's own, removed at the end)."),
        null: bool = typer.Option(True, "--null/--no-null", help="Also dissect the architecture with random weights (the reference row)."),
    ) -> None:
        """How detectors emerge during training: dissect every snapshot of a run over one pool.

        Per layer and snapshot: detectors, unique objects, object share and how
        many detectors keep their label to the next and to the last snapshot.
        Run it again with the same arguments after an interruption to resume;
        an identical second run reads the saved result.
        """
        from unitscope.experiments.emergence import open_snapshot, snapshot_entries
        from unitscope.models import model_info
        from unitscope.results.layout import safe_name
        from unitscope.study import emergence_study
        from unitscope.study.inputs import label_cache_folder

        if (snapshots is None) == (not checkpoint):
            raise ValueError("give either --snapshots DIR or --checkpoint STEP=PATH (repeated), not both or neither")
        entries = snapshot_entries(snapshots if snapshots is not None else checkpoint)
        first = open_snapshot(entries[0], o.preprocessing()).to(o.device)
        name = o.name or (safe_name(snapshots.resolve().name) if snapshots is not None else model_info(first).arch)
        cache = label_cache_folder(label_cache)
        result = emergence_study(
            entries, o.layers, o.pool(first, annotated=True), network=name, out=o.out, null=null, seed=o.seed,
            preprocessing=o.preprocessing(), device=o.device, label_cache=cache, restart=o.restart,
            progress=tqdm_bars(unit="batch"), log=log, record=o.record("emergence"), batch_size=o.batch_size,
            checkpoint_every=o.checkpoint_every, iou_threshold=iou_threshold, threshold_rule=threshold_rule)
        typer.echo(result.to_frame().to_string(index=False))
        typer.echo(f"results in {o.out / 'emergence' / name}")
