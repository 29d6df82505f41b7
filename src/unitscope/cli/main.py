"""``unitscope``: the command-line entry point.

Each command parses its arguments, calls one library function that returns
data, and prints a short summary.  Errors are one line (``--debug`` shows
the traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli import _options as O
from unitscope.cli._common import (CLASSES_OPTION, LAYOUT_OPTION, OneLineErrorsGroup, default_home, friendly_errors,
                                   open_data, tqdm_progress)
from unitscope.cli._validate import SEED_HELP, device_option, float_range, layer_list, name_option
from unitscope.cli.label import label_app

app = typer.Typer(
    name="unitscope",
    cls=OneLineErrorsGroup,
    help="Find out how objects are represented inside convolutional networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(label_app, name="label")


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    ctx.obj = {"debug": debug}


@app.command()
@friendly_errors
def layers(
    model: str = typer.Argument(..., help=O.MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint file to load."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1, help="Output classes (inferred from the checkpoint when given)."),
    seed: int = typer.Option(0, "--seed", min=0, help=SEED_HELP),
    input_size: Optional[str] = O.INPUT_SIZE,
) -> None:
    """List a model's layers with channels, stride and theoretical receptive field."""
    from unitscope.models import layers_frame, model_info

    net = O.open_network(model, weights, O.preprocessing_options(input_size=input_size),
                         num_classes=num_classes, native=False, command="layers", seed=seed)
    frame = layers_frame(net, input_size=model_info(net).preprocessing.size_hw)
    typer.echo(frame.to_string(index=False))


@app.command("models")
@friendly_errors
def models_command() -> None:
    """List the architectures the registry knows."""
    from unitscope.models import list_models

    for name in list_models():
        typer.echo(name)


@app.command()
@friendly_errors
def world(
    out: Path = typer.Option(..., "--out", help="Directory to write the world into."),
    n_scenes: int = typer.Option(10, "--n-scenes", min=2, help="Scene classes."),
    n_objects: int = typer.Option(24, "--n-objects", min=1, help="Object classes."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (same seed, same bytes)."),
    size: int = typer.Option(128, "--size", help="Image side in pixels (a multiple of 16, 32 to 1024)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing world."),
) -> None:
    """Generate the built-in synthetic world (scene- and object-centric datasets, Broden export)."""
    from unitscope.data.world import generate_world

    callback, bar = tqdm_progress("world", unit="img")
    try:
        paths = generate_world(out, n_scenes=n_scenes, n_objects=n_objects, seed=seed, size=size,
                               overwrite=overwrite, progress=callback)
    finally:
        bar.close()
    typer.echo(f"world written to {paths.root}")


@app.command()
@friendly_errors
def train(
    world_dir: Path = typer.Option(..., "--world", help="World directory made by `unitscope world`."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache directory for weights (default $UNITSCOPE_HOME/cache)."),
    task: str = typer.Option("both", "--task", help="scene, object or both."),
) -> None:
    """Train SceneNet (scenes) and ObjectNet (objects) on the world, cached by configuration."""
    from unitscope.training import train_network

    cache_dir = cache or default_home() / "cache"
    tasks = {"both": ["scene", "object"], "scene": ["scene"], "object": ["object"]}.get(task)
    if tasks is None:
        raise ValueError(f"--task must be scene, object or both, not {task!r}")
    for one in tasks:
        callback, bar = tqdm_progress(f"train {one}", unit="step")
        try:
            trained = train_network(world_dir, task=one, cache_dir=cache_dir, progress=callback)
        finally:
            bar.close()
        m = trained.metrics
        typer.echo(
            f"{trained.name}: top-1 {m['val_top1']:.1%} on held-out images, "
            f"trained in {m['train_seconds']:.0f} s{' (cached)' if m.get('cached') else ''} -> {trained.path}"
        )


def _network_name(model: str, weights: Optional[Path], name: Optional[str]) -> str:
    if name:
        return name
    from unitscope.models.loading import model_kind

    label = O.model_label(model)
    if weights:
        return f"{label}-{weights.stem}"
    # a registry model without weights is random; a factory's or an archive's need not be
    return f"{label}-random" if model_kind(model) == "registry" else label


@app.command()
@friendly_errors
def dissect(
    model: str = typer.Option(..., "--model", help=O.MODEL_HELP),
    data: Path = typer.Option(..., "--data", help="Annotated pool: a Broden directory or images + masks folders."),
    layout: str = LAYOUT_OPTION,
    classes: Optional[Path] = CLASSES_OPTION,
    out: Path = typer.Option(..., "--out", help="Results directory; writes OUT/NAME/dissect/."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint file (random weights without it)."),
    layers_: Optional[str] = typer.Option(None, "--layers", callback=layer_list, help="Comma-separated spatial layer names (default: the model's)."),
    name: Optional[str] = typer.Option(None, "--name", callback=name_option, help="Network name in the tables and folder under --out (default MODEL-WEIGHTS)."),
    quantile: float = typer.Option(0.005, "--quantile", callback=float_range(0, 1, low_open=True, high_open=True), help="Top quantile that sets each unit's threshold, in (0, 1)."),
    threshold_rule: str = typer.Option("unitscope", "--threshold-rule", "--convention", help="unitscope (strict > on the streaming quantile), netdissect (Network Dissection's interpolated quantile, strict >, exact) or inclusive (the old >=, for comparisons)."),
    min_support: int = typer.Option(10, "--min-support", help="Images a concept needs in the pool to be used as a label."),
    iou_threshold: float = typer.Option(0.04, "--iou-threshold", callback=float_range(0, 1, high_open=True), help="IoU above which a unit is a detector, in [0, 1)."),
    top_k: int = typer.Option(60, "--top-k", min=1, help="Top images per unit (precision, tables)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes."),
    mask_size: Optional[int] = typer.Option(None, "--mask-size", min=0, help="Subsample masks to this longest side (default: half the input size, as Network Dissection; 0: native resolution)."),
    device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ... (under torchrun: each rank's local GPU)."),
    checkpoint_every: int = typer.Option(20, "--checkpoint-every", min=1, help="Batches between checkpoints."),
    restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
    label_cache: Optional[str] = typer.Option(None, "--label-cache", help="Folder keeping the pool's decoded masks for later dissections (default $UNITSCOPE_HOME/cache/labels; 'none': decode for this run only)."),
    segmentations: int = typer.Option(0, "--segmentations", min=0, help="Write the top-N segmentation images of each unit (for labeling and the report)."),
    null: bool = typer.Option(False, "--null", help="Also dissect the same architecture with random weights (NAME-random) as a null (needs --weights)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random weights: the network's without --weights, the null's with --null."),
    preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
    input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
    channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
) -> None:
    """Network dissection: label every unit of the layers by IoU with concept masks.

    Writes OUT/NAME/dissect/ (units.csv/json, layers.csv, census_*.csv).  Run
    it again with the same arguments after an interruption to resume; under
    `torchrun --nproc_per_node N` the pool is sharded across processes.
    """
    import torch

    from unitscope.cli._run_record import RunRecord
    from unitscope.experiments import _distributed as D
    from unitscope.experiments.dissect import dissect as run_dissect
    from unitscope.experiments._thresholds import check_min_support, check_threshold_rule
    from unitscope.models import model_info
    from unitscope.models.loading import model_kind

    check_threshold_rule(threshold_rule), check_min_support(min_support)  # before any work
    if null and weights is None and model_kind(model) == "registry":
        raise ValueError("--null needs --weights: without them the network itself has random weights "
                         "(seeded by --seed), so it is its own null")
    record = RunRecord("dissect")
    pre_options = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                          resize=resize, channel_order=channel_order, scale=scale)
    distributed = D.init_from_environment()
    rank, world = D.rank_and_world()
    if distributed and device.startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    net = O.open_network(model, weights, pre_options, native=False, command="dissect", seed=seed).to(device)
    info = model_info(net)
    chosen_layers = layers_ or list(info.default_layers)
    if not chosen_layers:
        raise ValueError(f"give --layers: {model} has no default layers")
    pool = open_data(data, layout, classes, preprocessing=info.preprocessing, annotated=True)
    network = _network_name(model, weights, name)
    target = out / network / "dissect"
    if segmentations:  # refuse foreign tiles now, not after the whole dissection
        from unitscope.experiments.segmentations import check_tile_folders

        check_tile_folders(out / network / "segmentations", chosen_layers)
    runs = [(network, net)]
    if null:
        from unitscope.models.loading import reinitialised
        from unitscope.models.registry import random_like

        if model_kind(model) == "registry":
            # the same architecture as the checkpoint's (its width, input size, classes), random weights
            random_net = random_like(net, seed=seed)
        else:  # a factory may load trained weights: draw them again
            random_net = O.open_network(model, None, pre_options, native=False, command="dissect", seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random_net = reinitialised(random_net)
        random_net = random_net.to(device)
        model_info(random_net).preprocessing = info.preprocessing  # the same images as the trained one
        runs.append((f"{network}-random", random_net))
    if label_cache is None:
        labels_folder = default_home() / "cache" / "labels"
    else:
        labels_folder = None if label_cache.strip().lower() == "none" else Path(label_cache)
    results = {}
    for run_name, run_net in runs:
        callback, bar = tqdm_progress(f"dissect {run_name}", unit="batch")
        if rank != 0:
            bar.disable = True
        try:
            with record.stage(f"dissect {run_name}"):
                results[run_name] = run_dissect(
                    run_net, chosen_layers, pool, network=run_name, quantile=quantile,
                    threshold_rule=threshold_rule, min_support=min_support,
                    iou_threshold=iou_threshold, top_k=top_k, batch_size=batch_size,
                    num_workers=workers, mask_size="auto" if mask_size is None else (mask_size or None),
                    work_dir=out / run_name / ".partial" / "dissect",
                    checkpoint_every=checkpoint_every, restart=restart, progress=callback,
                    label_cache=labels_folder)
            record.network(run_name, run_net, pool)
        finally:
            bar.close()
    result = results[network]
    if rank == 0:
        from unitscope.experiments.census import object_census
        from unitscope.experiments.dissect import flag_null

        null_result = results.get(f"{network}-random")
        with record.stage("save"):
            if null_result is not None:
                flag_null(result, null_result)
                null_result.save(out / null_result.network / "dissect")
                object_census(null_result).save(out / null_result.network / "dissect")
            result.save(target)
            object_census(result, null=null_result).save(target)
        if segmentations:
            from unitscope.experiments.segmentations import write_unit_segmentations

            with record.stage("segmentations"):
                write_unit_segmentations(net, result, pool, out / network / "segmentations", top=segmentations)
        record.write(target)
        summary = result.layer_summary()
        for row in summary.itertuples():
            typer.echo(f"{network} {row.layer}: {row.detectors}/{row.units} detectors, "
                       f"{row.unique_concepts} concepts, {row.unique_objects} objects")
        for warning in dict.fromkeys(w if r is result else f"{r.network}: {w}" for r in results.values()
                                     for w in r.warnings if r is result or w not in result.warnings):
            typer.echo(f"unitscope: warning: {warning}", err=True)
        typer.echo(f"results in {target}")
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()


@app.command()
@friendly_errors
def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Results directory (default $UNITSCOPE_HOME/demo)."),
    quick: bool = typer.Option(False, "--quick", help="A small world and fewer images (for tests)."),
) -> None:
    """The whole study on the built-in world: world, SceneNet/ObjectNet, every experiment, the report."""
    from unitscope.cli.demo import run_demo

    home = default_home()
    target = out or home / ("demo-quick" if quick else "demo")
    bars = lambda name: tqdm_progress(name)  # noqa: E731
    summary = run_demo(target, home=home, quick=quick, progress=bars,
                       log=lambda line: typer.echo(line, err=True))
    for name, net in summary["networks"].items():
        typer.echo(f"{name}: held-out top-1 {net['val_top1']:.1%}")
    total = sum(v for k, v in summary["timings"].items() if k != "total_before_report")
    typer.echo("stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in summary["timings"].items()))
    typer.echo(f"report: {summary['report']}")
    typer.echo(f"total: {total:.0f} s")


@app.command()
@friendly_errors
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
from unitscope.cli.experiments import register as _register_experiments  # noqa: E402

_register_experiments(app)
_register_convert(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
