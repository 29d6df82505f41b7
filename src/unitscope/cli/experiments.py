"""Commands of the paper's experiments: preference, minimal, rf, localize, ablate.

Each parses its options, opens the networks and pools, calls one library
function and saves its typed result under ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from unitscope.cli import _options as O
from unitscope.cli._common import CLASSES_OPTION, LAYOUT_OPTION, friendly_errors, open_data, tqdm_progress
from unitscope.cli._validate import (
    SEED_HELP,
    choice,
    device_option,
    layer_list,
    name_option,
    pattern_option,
    spec_list,
    unit_list,
)

__all__ = ["register"]


def parse_net(name: str, rest: str, preprocessing: dict | None = None, *, batch_size: int | None = None,
              seed: int = 0):
    """``NAME=MODEL[:WEIGHTS]`` (already split at ``=``) -> (name, model).

    MODEL may be ``file.py:factory`` or ``pkg.mod:factory``; random weights
    (no WEIGHTS) are seeded by ``seed``.
    """
    parts = rest.split(":")
    # registry names have no dot: a dotted first part is a file.py or package.module with its factory
    if "." in parts[0] and not parts[0].endswith(".pt2") and len(parts) > 1:
        arch, weights = ":".join(parts[:2]), ":".join(parts[2:])
    else:
        arch, weights = parts[0], ":".join(parts[1:])
    return name, O.open_network(arch or None, Path(weights) if weights else None, preprocessing or {},
                                batch_size=batch_size, command="preference", seed=seed)


def _run_with_bar(name, func, **kwargs):
    callback, bar = tqdm_progress(name)
    try:
        return func(progress=callback, **kwargs)
    finally:
        bar.close()


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def preference(
        net: List[str] = typer.Option(..., "--net", callback=spec_list("NAME=ARCH[:WEIGHTS]"), help="NAME=ARCH[:WEIGHTS]; repeat for networks side by side (distinct names)."),
        pool: List[str] = typer.Option(..., "--pool", callback=spec_list("SOURCE=DIR"), help="SOURCE=DIR; repeat (e.g. objects=... scenes=...), one folder per source."),
        out: Path = typer.Option(..., "--out", help="Writes OUT/preference/."),
        layers: Optional[str] = typer.Option(None, "--layers", callback=layer_list, help="Comma-separated layers (default: each model's)."),
        top: int = typer.Option(100, "--top", min=1, help="Top images kept per layer."),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ..."),
        checkpoint_every: int = typer.Option(20, "--checkpoint-every", min=1, help="Batches between checkpoints."),
        restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
        seed: int = typer.Option(0, "--seed", min=0, help=SEED_HELP),
        preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
        input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
        channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
    ) -> None:
        """Which images each layer prefers: the source mix of its top images (pre-experiment).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.cli._run_record import RunRecord
        from unitscope.data.open import open_pool
        from unitscope.experiments.preference import layer_preference
        from unitscope.models import model_info

        record = RunRecord("preference")
        pre_options = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                              resize=resize, channel_order=channel_order, scale=scale)
        models = {n: m.to(device) for n, m in (parse_net(n, spec, pre_options, batch_size=batch_size, seed=seed)
                                               for n, spec in net)}
        layer_map = layers or {n: model_info(m).default_layers for n, m in models.items()}
        # Each network sees the images prepared its own way: one scoring pass per preprocessing.
        groups: dict = {}
        for n, m in models.items():
            groups.setdefault(model_info(m).preprocessing, []).append(n)
        result = None
        for number, (pre, names) in enumerate(groups.items()):
            pools = [open_pool(Path(folder), kind="plain", source=source, preprocessing=pre)
                     for source, folder in pool]
            with record.stage(f"score {', '.join(names)}"):
                part = _run_with_bar(
                    "layer preference", layer_preference, models={n: models[n] for n in names},
                    layers=layer_map if isinstance(layer_map, list) else {n: layer_map[n] for n in names},
                    pools=pools, top=top, batch_size=batch_size, checkpoint_every=checkpoint_every,
                    work_dir=out / ".partial" / ("preference" if len(groups) == 1 else f"preference-{number}"),
                    restart=restart)
            for n in names:
                record.network(n, models[n], pools[0])
            result = part if result is None else result.merge(part)
        result.save(out / "preference")
        record.write(out / "preference")
        typer.echo(result.to_frame().to_string(index=False))
        typer.echo(f"results in {out / 'preference'}")

    @app.command()
    @friendly_errors
    def minimal(
        model: str = typer.Option(..., "--model", help=O.MODEL_HELP),
        data: Path = typer.Option(..., "--data", help="Plain pool (ImageFolder) or annotated pool."),
        layout: str = LAYOUT_OPTION,
        classes: Optional[Path] = CLASSES_OPTION,
        out: Path = typer.Option(..., "--out", help="Writes OUT/NAME/minimal/."),
        weights: Optional[Path] = typer.Option(None, "--weights"),
        name: Optional[str] = typer.Option(None, "--name", callback=name_option, help="Folder under --out (default MODEL)."),
        segmentation: str = typer.Option("slic", "--segmentation", callback=choice("slic", "masks"), help="slic (1a) or masks (1b, ground-truth objects)."),
        n_segments: int = typer.Option(50, "--segments", min=1, help="SLIC segments per image."),
        fill: str = typer.Option("mean", "--fill", callback=choice("mean", "blur", "gray"), help="mean, blur or gray."),
        max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Stop after this many images (default: all)."),
        label_category: Optional[str] = typer.Option(None, "--label-category", help="Annotated pool: category giving the class (e.g. scene)."),
        label_pattern: Optional[str] = typer.Option(None, "--label-pattern", callback=pattern_option, help="Plain pool: regex whose first group in a file name is the class index."),
        batch_size: int = typer.Option(64, "--batch-size", min=1),
        chunk: int = typer.Option(50, "--chunk", min=1, help="Images per saved chunk (the unit of resumption)."),
        device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ..."),
        restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
        seed: int = typer.Option(0, "--seed", min=0, help=SEED_HELP),
        preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
        input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
        channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
    ) -> None:
        """Minimal image representations: remove segments while the class stays correct (Exp. 1).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.cli._run_record import RunRecord
        from unitscope.experiments.minimal_images import minimal_images
        from unitscope.models import model_info

        record = RunRecord("minimal")
        pre = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                      resize=resize, channel_order=channel_order, scale=scale)
        net = O.open_network(model, weights, pre, batch_size=batch_size, command="minimal", seed=seed).to(device)
        options = {"label_category": label_category} if label_category else {}
        if label_pattern:
            options["label_pattern"] = label_pattern
        pool = open_data(data, layout, classes, preprocessing=model_info(net).preprocessing, annotated=False,
                         **options)
        network = name or O.model_label(model)
        kind = "masks" if segmentation == "masks" else "superpixels"
        target = out / network / "minimal" / kind
        with record.stage("search"):
            result = _run_with_bar("minimal images", minimal_images, model=net, data=pool,
                                   segmentation=segmentation, n_segments=n_segments, fill=fill,
                                   max_images=max_images, batch_size=batch_size, chunk=chunk,
                                   work_dir=out / network / ".partial" / f"minimal-{kind}", restart=restart,
                                   log=lambda line: typer.echo(line, err=True))
        result.save(target)
        record.network(network, net, pool)
        record.write(target)
        typer.echo(f"results in {target}")

    @app.command()
    @friendly_errors
    def rf(
        model: str = typer.Option(..., "--model", help=O.MODEL_HELP),
        data: Path = typer.Option(..., "--data"),
        layout: str = LAYOUT_OPTION,
        classes: Optional[Path] = CLASSES_OPTION,
        out: Path = typer.Option(..., "--out", help="Writes OUT/NAME/rf/<layer>/."),
        weights: Optional[Path] = typer.Option(None, "--weights"),
        name: Optional[str] = typer.Option(None, "--name", callback=name_option, help="Folder under --out (default MODEL)."),
        layers: Optional[str] = typer.Option(None, "--layers", callback=layer_list, help="Comma-separated spatial layers (default: the model's)."),
        top_k: int = typer.Option(20, "--top-k", min=1, help="Top images per unit."),
        units: Optional[str] = typer.Option(None, "--units", callback=unit_list, help="Comma-separated unit indices (default all)."),
        max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Use the first N images of the pool (default: all)."),
        batch_size: int = typer.Option(64, "--batch-size", min=1),
        device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ..."),
        restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
        seed: int = typer.Option(0, "--seed", min=0, help=SEED_HELP),
        preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
        input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
        channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
    ) -> None:
        """Empirical receptive fields by occlusion, beside the theoretical ones (Exp. 2).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.experiments._common import check_spatial_layers
        from unitscope.experiments._io import write_csv
        from unitscope.experiments.empirical_rf import (
            TIMING_STATS,
            empirical_receptive_fields,
            summarise_receptive_fields,
        )
        from unitscope.models import model_info

        from unitscope.cli._run_record import RunRecord

        record = RunRecord("rf")
        pre = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                      resize=resize, channel_order=channel_order, scale=scale)
        net = O.open_network(model, weights, pre, native=False, command="rf", seed=seed).to(device)
        pool = open_data(data, layout, classes, preprocessing=model_info(net).preprocessing, annotated=False)
        if max_images:
            pool = pool.subset(range(min(max_images, len(pool))))
        layer_names = layers or list(model_info(net).default_layers)
        if not layer_names:
            raise ValueError(f"give --layers: {model} has no default layers")
        # every layer and unit is checked before the first layer's results are written
        shapes = check_spatial_layers(net, layer_names, pool, purpose="a receptive field")
        fewest = min(shapes.items(), key=lambda item: item[1][0])
        if units and max(units) >= fewest[1][0]:
            raise ValueError(f"--units {max(units)} is out of range for layer {fewest[0]!r} with "
                             f"{fewest[1][0]} units (0 to {fewest[1][0] - 1})")
        network = name or O.model_label(model)
        results = _run_with_bar("receptive fields", empirical_receptive_fields, model=net, layer=layer_names,
                                data=pool, top_k=top_k, units=units, network=network, batch_size=batch_size,
                                work_dir=out / network / ".partial" / "rf", restart=restart,
                                log=lambda line: typer.echo(line, err=True))
        for result in results:
            times = {stat: result.stats[stat] for stat in TIMING_STATS if stat in result.stats}
            if times:  # wall times go to run.json, not to the results (a resumed layer has none)
                record.add_time(result.layer, sum(times.values()))
            for stat, seconds in times.items():
                record.add_time(f"{result.layer} {stat[:-2]}", seconds)
            result.save(out / network / "rf" / result.layer)
        summary = summarise_receptive_fields(results)
        write_csv(out / network / "rf" / "summary.csv", summary)
        record.network(network, net, pool)
        record.write(out / network / "rf")
        typer.echo(summary.to_string(index=False))

    @app.command()
    @friendly_errors
    def localize(
        model: str = typer.Option(..., "--model", help=O.MODEL_HELP),
        data: Path = typer.Option(..., "--data", help="Annotated pool."),
        layout: str = LAYOUT_OPTION,
        classes: Optional[Path] = CLASSES_OPTION,
        dissection: Path = typer.Option(..., "--dissection", help="A dissection result folder (OUT/NAME/dissect)."),
        out: Path = typer.Option(..., "--out", help="Writes OUT/NAME/localize/."),
        layer: str = typer.Option(..., "--layer", help="A dissected spatial layer."),
        weights: Optional[Path] = typer.Option(None, "--weights"),
        name: Optional[str] = typer.Option(None, "--name", callback=name_option, help="Folder under --out (default MODEL)."),
        label_category: Optional[str] = typer.Option(None, "--label-category"),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ..."),
        checkpoint_every: int = typer.Option(20, "--checkpoint-every", min=1, help="Batches between checkpoints."),
        restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
        seed: int = typer.Option(0, "--seed", min=0, help=SEED_HELP),
        preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
        input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
        channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
    ) -> None:
        """Units as object localizers: masks, boxes and the pointing game (Exp. 5).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.experiments.dissect import DissectionResult
        from unitscope.experiments.localize import localize_objects
        from unitscope.models import model_info

        from unitscope.cli._run_record import RunRecord

        record = RunRecord("localize")
        pre = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                      resize=resize, channel_order=channel_order, scale=scale)
        net = O.open_network(model, weights, pre, native=False, command="localize", seed=seed).to(device)
        options = {"label_category": label_category} if label_category else {}
        pool = open_data(data, layout, classes, preprocessing=model_info(net).preprocessing, annotated=True,
                         **options)
        with record.stage("localize"):
            result = _run_with_bar("localize", localize_objects, model=net, layer=layer, data=pool,
                                   dissection=DissectionResult.load(dissection), batch_size=batch_size,
                                   work_dir=out / (name or O.model_label(model)) / ".partial" / "localize",
                                   checkpoint_every=checkpoint_every, restart=restart)
        target = out / (name or O.model_label(model)) / "localize"
        result.save(target)
        record.network(name or O.model_label(model), net, pool)
        record.write(target)
        typer.echo(f"results in {target}")

    @app.command()
    @friendly_errors
    def ablate(
        model: str = typer.Option(..., "--model", help=O.MODEL_HELP),
        data: Path = typer.Option(..., "--data", help="Annotated pool with class labels."),
        layout: str = LAYOUT_OPTION,
        classes: Optional[Path] = CLASSES_OPTION,
        dissection: Path = typer.Option(..., "--dissection", help="A dissection result folder."),
        out: Path = typer.Option(..., "--out", help="Writes OUT/NAME/ablate/."),
        layer: str = typer.Option(..., "--layer", help="A dissected spatial layer."),
        weights: Optional[Path] = typer.Option(None, "--weights"),
        name: Optional[str] = typer.Option(None, "--name", callback=name_option, help="Folder under --out (default MODEL)."),
        label_category: str = typer.Option("scene", "--label-category"),
        n_random: int = typer.Option(5, "--random", min=0, help="Random-unit draws per object."),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        device: str = typer.Option("cpu", "--device", callback=device_option, help="cpu, cuda, cuda:1 ..."),
        checkpoint_every: int = typer.Option(20, "--checkpoint-every", min=1, help="Batches between checkpoints."),
        restart: bool = typer.Option(False, "--restart", help="Discard a partial run instead of resuming it."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random weights (without --weights) and of the random-unit draws."),
        preprocess: Optional[str] = O.PREPROCESS, mean: Optional[str] = O.MEAN, std: Optional[str] = O.STD,
        input_size: Optional[str] = O.INPUT_SIZE, resize: Optional[str] = O.RESIZE,
        channel_order: Optional[str] = O.CHANNEL_ORDER, scale: Optional[str] = O.SCALE,
    ) -> None:
        """Switch off the detectors of each object and measure each class's accuracy drop.

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.experiments.ablate import ablate_detectors
        from unitscope.experiments.dissect import DissectionResult
        from unitscope.models import model_info

        from unitscope.cli._run_record import RunRecord

        record = RunRecord("ablate")
        pre = O.preprocessing_options(preprocess=preprocess, mean=mean, std=std, input_size=input_size,
                                      resize=resize, channel_order=channel_order, scale=scale)
        net = O.open_network(model, weights, pre, batch_size=batch_size, command="ablate", seed=seed).to(device)
        pool = open_data(data, layout, classes, preprocessing=model_info(net).preprocessing, annotated=True,
                         label_category=label_category)
        with record.stage("ablate"):
            result = _run_with_bar("ablate", ablate_detectors, model=net, layer=layer, data=pool,
                                   dissection=DissectionResult.load(dissection), n_random=n_random, seed=seed,
                                   batch_size=batch_size,
                                   work_dir=out / (name or O.model_label(model)) / ".partial" / "ablate",
                                   checkpoint_every=checkpoint_every, restart=restart)
        target = out / (name or O.model_label(model)) / "ablate"
        result.save(target)
        record.network(name or O.model_label(model), net, pool)
        record.write(target)
        typer.echo(f"results in {target}")
