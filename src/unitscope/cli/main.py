"""``unitscope``: the command-line entry point.

Each command parses its arguments, calls one library function that returns
data, and prints a short summary.  Errors are one line (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli._common import RootGroup, log
from unitscope.cli._options import MODEL_HELP, checked, shared
from unitscope.cli.imports import import_app
from unitscope.cli.label import label_app
from unitscope.study import checks
from unitscope.study.progress import step, tqdm_bars

app = typer.Typer(name="unitscope", cls=RootGroup, no_args_is_help=True, add_completion=False,
                  help="Find out how objects are represented inside convolutional networks.",
                  pretty_exceptions_enable=False)
app.add_typer(label_app, name="label")
app.add_typer(import_app, name="import")


@app.callback()
def _root(ctx: typer.Context, debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")):
    ctx.obj = {"debug": debug}


@app.command()
@shared("weights", "seed", "input_size", weights="Checkpoint file to load.")
def layers(o, model: str = typer.Argument(..., help=MODEL_HELP), num_classes: Optional[int] = typer.Option(
        None, "--num-classes", min=1, help="Output classes (inferred from the checkpoint when given).")) -> None:
    """List a model's layers with channels, stride and theoretical receptive field."""
    from unitscope.models import layers_frame, model_info
    from unitscope.models.opening import open_network

    net = open_network(model, o.weights, o.preprocessing(), num_classes=num_classes, native=False, command="layers",
                       seed=o.seed)
    typer.echo(layers_frame(net, input_size=model_info(net).preprocessing.size_hw).to_string(index=False))


@app.command("models")
def models_command() -> None:
    """List the architectures the registry knows."""
    from unitscope.models import list_models

    typer.echo("\n".join(list_models()))


@app.command()
def world(
    out: Path = typer.Option(..., "--out", help="Directory to write the world into."),
    n_scenes: Optional[int] = typer.Option(None, "--n-scenes", min=2,
                                           help="Scene classes of the default world (default 10, at most 12)."),
    n_objects: Optional[int] = typer.Option(None, "--n-objects", min=1,
                                            help="Object classes of the default world (default 24, at most 29)."),
    preset: Optional[str] = typer.Option(None, "--preset",
                                         help="A named larger world instead: 'study' (34 scenes, 92 objects)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (same seed, same bytes)."),
    size: int = typer.Option(128, "--size", help="Image side in pixels (a multiple of 16, 32 to 1024)."),
    n_train: Optional[int] = typer.Option(None, "--n-train", min=1,
                                          help="Scene-centric training images (default 5,000, balanced over scenes)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing world."),
) -> None:
    """Generate the built-in synthetic world (scene- and object-centric datasets, Broden export)."""
    from unitscope.data.world import generate_world

    if preset is not None and (n_scenes is not None or n_objects is not None):
        raise ValueError(f"--preset {preset} sets the scene and object classes; leave out --n-scenes and --n-objects")
    counts = {k: v for k, v in (("n_scenes", n_scenes), ("n_objects", n_objects), ("n_train", n_train))
              if v is not None}
    with step(tqdm_bars(unit="img"), "world") as callback:
        paths = generate_world(out, **counts, preset=preset, seed=seed, size=size, overwrite=overwrite,
                               progress=callback)
    typer.echo(f"world written to {paths.root}")


@app.command()
def train(
    world_dir: Path = typer.Option(..., "--world", help="World directory made by `unitscope world`."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache directory for weights (default $UNITSCOPE_HOME/cache)."),
    task: Optional[str] = typer.Option(None, "--task", help="scene, object or both (default both; or use --objective)."),
    objective: Optional[str] = typer.Option(None, "--objective", help="Comma-separated training objectives: scene, object, multilabel, multitask, rotation, jigsaw, shuffled, colorization, or all."),
    snapshots: bool = typer.Option(False, "--snapshots", help="Also save the network at log-spaced steps (1, 2, 4, ... and the last) into its cache entry's snapshots/."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of initialisation, shuffling, augmentation and pretext labels."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads while training (default: all)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train again even when cached; discards an interrupted run's state."),
) -> None:
    """Train networks on the world under one or more objectives, cached by configuration.

    Without --task or --objective: SceneNet (scenes) and ObjectNet (objects).
    An interrupted run continues where it stopped when the same command runs again.
    """
    from unitscope.study import default_home
    from unitscope.training import OBJECTIVES, train_objectives

    if task is not None and objective is not None:
        raise ValueError("give --task or --objective, not both")
    if objective is not None:
        names = list(OBJECTIVES) if objective == "all" else [o.strip() for o in objective.split(",") if o.strip()]
    else:
        names = {"both": ["scene", "object"], "scene": ["scene"], "object": ["object"]}.get(task or "both")
        if names is None:
            raise ValueError(f"--task must be scene, object or both, not {task!r}")
    trained = train_objectives(world_dir, names, cache_dir=cache or default_home() / "cache",
                               progress=tqdm_bars(unit="step"), snapshots=snapshots, seed=seed,
                               num_threads=threads, retrain=retrain)
    for net in trained.values():
        m = net.metrics
        shots = f"; {len(net.snapshots)} snapshots" if net.snapshots else ""
        chance = f" (chance {m['chance']:.1%})" if "chance" in m else ""
        typer.echo(f"{net.name}: top-1 {m['val_top1']:.1%} on held-out images{chance}, "
                   f"trained in {m['train_seconds']:.0f} s{' (cached)' if m.get('cached') else ''}{shots} -> {net.path}")


@app.command()
@shared("model", "data", "out", "weights", "layers", "name", "batch_size", "device", "resume", "seed", "preprocessing",
        data="Annotated pool: a Broden directory or images + masks folders.",
        out="Results directory; writes OUT/NAME/dissect/.",
        layers="Comma-separated spatial layer names (default: the model's).",
        name="Network name in the tables and folder under --out (default MODEL-WEIGHTS).",
        device="cpu, cuda, cuda:1 ... (under torchrun: each rank's local GPU).",
        seed="Seed of the random weights: the network's without --weights, the null's with --null.")
def dissect(
    o,
    quantile: float = typer.Option(0.005, "--quantile", callback=checked(checks.float_range(0, 1, low_open=True, high_open=True)), help="Top quantile that sets each unit's threshold, in (0, 1)."),
    threshold_rule: str = typer.Option("unitscope", "--threshold-rule", "--convention", help="unitscope (strict > on the streaming quantile), netdissect (Network Dissection's interpolated quantile, strict >, exact) or inclusive (the old >=, for comparisons)."),
    min_support: int = typer.Option(10, "--min-support", help="Images a concept needs in the pool to be used as a label."),
    iou_threshold: float = typer.Option(0.04, "--iou-threshold", callback=checked(checks.float_range(0, 1, high_open=True)), help="IoU above which a unit is a detector, in [0, 1)."),
    top_k: int = typer.Option(60, "--top-k", min=1, help="Top images per unit (precision, tables)."),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes."),
    mask_size: Optional[int] = typer.Option(None, "--mask-size", min=0, help="Subsample masks to this longest side (default: half the input size, as Network Dissection; 0: native resolution)."),
    label_cache: Optional[str] = typer.Option(None, "--label-cache", help="Folder keeping the pool's decoded masks for later dissections (default $UNITSCOPE_HOME/cache/labels; 'none': decode for this run only)."),
    segmentations: int = typer.Option(0, "--segmentations", min=0, help="Write the top-N segmentation images of each unit (for labeling and the report)."),
    null: bool = typer.Option(False, "--null", help="Also dissect the same architecture with random weights (NAME-random) as a null (needs --weights)."),
    activation_cache: str = typer.Option("auto", "--activation-cache", callback=checked(checks.choice("auto", "disk", "float16", "recompute")), help="auto (float32 on disk within --cache-budget-gb, else recompute), disk (float32), float16 (half the disk; IoUs move in the 4th digit) or recompute (pass 2 runs the network again, no disk)."),
    cache_budget_gb: float = typer.Option(20.0, "--cache-budget-gb", min=0, help="Disk budget of the activation cache under --activation-cache auto, in GB."),
) -> None:
    """Network dissection: label every unit of the layers by IoU with concept masks.

    Writes OUT/NAME/dissect/ (units.csv/json, layers.csv, census_*.csv).  Run
    it again with the same arguments after an interruption to resume; under
    `torchrun --nproc_per_node N` the pool is sharded across processes.
    """
    from unitscope.experiments import _distributed as D
    from unitscope.experiments._thresholds import check_min_support, check_threshold_rule
    from unitscope.study import dissect_study, network_name
    from unitscope.study.inputs import check_null, label_cache_folder

    check_threshold_rule(threshold_rule), check_min_support(min_support)  # before any work
    if null:
        check_null(o.model, o.weights)
    record = o.record("dissect")
    with D.process_group(o.device) as o.device:
        net = o.network("dissect", native=False)
        network = network_name(o.model, o.weights, o.name)
        done = dissect_study(
            net, o.chosen_layers(net), o.pool(net, annotated=True), network=network, out=o.out, record=record,
            segmentations=segmentations, null_model=o.null(net) if null else None, progress=tqdm_bars(unit="batch"),
            quantile=quantile, threshold_rule=threshold_rule, min_support=min_support, iou_threshold=iou_threshold,
            top_k=top_k, batch_size=o.batch_size, num_workers=workers, checkpoint_every=o.checkpoint_every,
            mask_size="auto" if mask_size is None else (mask_size or None), restart=o.restart,
            label_cache=label_cache_folder(label_cache), activation_cache=activation_cache,
            cache_budget_gb=cache_budget_gb, log=typer.echo)  # (stdout: a refusal stays stderr's one line)
        if D.rank_and_world()[0] == 0:
            for row in done.result.layer_summary().itertuples():
                typer.echo(f"{network} {row.layer}: {row.detectors}/{row.units} detectors, "
                           f"{row.unique_concepts} concepts, {row.unique_objects} objects")
            for warning in done.warnings:
                typer.echo(f"unitscope: warning: {warning}", err=True)
            typer.echo(f"results in {done.folder}")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Results directory (default $UNITSCOPE_HOME/demo)."),
    quick: bool = typer.Option(False, "--quick", help="A small world and fewer images (for tests)."),
) -> None:
    """The whole study on the built-in world: world, SceneNet/ObjectNet, every experiment, the report."""
    from unitscope.study import StudyConfig, default_home, run_study

    home = default_home()
    results = run_study(StudyConfig(out or home / ("demo-quick" if quick else "demo"), home, quick=quick),
                        progress=tqdm_bars(), log=log)
    for name, net in results.run.networks.items():
        typer.echo(f"{name}: held-out top-1 {net['val_top1']:.1%}")
    timings = results.run.timings
    typer.echo("stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    typer.echo(f"report: {os.path.abspath(results.root / 'report' / 'index.html')}")
    typer.echo(f"total: {sum(v for k, v in timings.items() if k != 'total_before_report'):.0f} s")


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results directory (made by demo or the experiment commands)."),
    out: Optional[Path] = typer.Option(None, "--out", help="The report's own folder (default RESULTS/report): a previous report there is replaced whole; a folder with other files is refused."),
    title: Optional[str] = typer.Option(None, "--title"),
    network: Optional[List[str]] = typer.Option(None, "--network", help="Networks to show, in order (default: all found)."),
    copy_images: bool = typer.Option(False, "--copy-images", help="Copy images into the report so the folder can be moved."),
) -> None:
    """Render the HTML report from saved results (computes nothing)."""
    from unitscope.report import build_report

    path = build_report(results, out=out, title=title, networks=network or None, copy_images=copy_images)
    typer.echo(f"report: {path}")


from unitscope.cli.convert import register as _register_convert  # noqa: E402
from unitscope.cli.emergence import register as _register_emergence  # noqa: E402
from unitscope.cli.experiments import register as _register_experiments  # noqa: E402
from unitscope.cli.objectives import register as _register_objectives  # noqa: E402

_register_experiments(app)
_register_convert(app)
_register_emergence(app)
_register_objectives(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
