"""The whole study on the built-in world: the pipeline behind ``unitscope demo`` / ``make demo``.

Stages (each skipped when its outputs exist for the same configuration, so
a second run reuses everything and an interrupted one resumes at the stage
it was in):

1. generate the world;                       2. train SceneNet and ObjectNet;
3. dissect both (and a random-weights null), census, segmentation tiles;
4. layer preference (objects vs scenes);     5. minimal images (1b, ground-truth objects; 1a, SLIC);
6. empirical receptive fields;               7. localization and ablation;
8. the HTML report.

``RESULTS/run.json`` records the configuration, versions and per-stage timings.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch

import unitscope
from unitscope.cli._common import StageCache
from unitscope.experiments._io import write_json

__all__ = ["run_demo", "DEMO_LAYERS"]

DEMO_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
PREFERENCE_LAYERS = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7"]


def run_demo(out: Path, *, home: Path, quick: bool = False, progress: Callable[[str], Any] | None = None,
             log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the study on the built-in world and render the report.

    Parameters
    ----------
    out : Path
        Results directory.
    home : Path
        Cache root (world and trained weights), shared between runs.
    quick : bool
        A small world and fewer images (for tests): accuracies are lower.
    progress : callable
        ``progress(description) -> (callback, bar)``, e.g. the CLI's tqdm factory.
    log : callable
        Receives one-line status messages.

    Returns
    -------
    dict
        ``report`` (path of index.html), ``timings``, ``networks`` (accuracies).
    """
    from unitscope.data import BrodenPool, PlainPool
    from unitscope.data.world import generate_world, load_world
    from unitscope.experiments.census import object_census
    from unitscope.experiments.dissect import DissectionResult, dissect, flag_null
    from unitscope.experiments.segmentations import write_unit_segmentations
    from unitscope.models import create_model, model_info
    from unitscope.training import train_network

    from unitscope.report.folder import check_report_folder

    out = Path(out)
    check_report_folder(out / "report", out)  # a report folder with the user's files: refused now, not at the end
    out.mkdir(parents=True, exist_ok=True)
    stages = StageCache(out / ".stages.json", log)
    progress = progress or (lambda name: (None, _NullBar()))

    def bar(name):
        return progress(name)

    started = time.perf_counter()
    # 1. world ----------------------------------------------------------------
    world_sizes = (dict(n_train=600, n_val=150, n_dissect=150, n_object_train=480, n_object_val=96)
                   if quick else {})
    world_dir = home / ("world-quick" if quick else "world")
    t0 = time.perf_counter()
    callback, b = bar("world")
    try:
        paths = generate_world(world_dir, progress=callback, **world_sizes)
    finally:
        b.close()
    stages.timings["world"] = paths.seconds or (time.perf_counter() - t0)
    definition, _ = load_world(world_dir)
    diagnostic = {s.name: list(s.diagnostic) for s in definition.scenes}

    # 2. training -------------------------------------------------------------
    t0 = time.perf_counter()
    train_options = dict(epochs=2) if quick else {}
    trained = {}
    for task in ("scene", "object"):
        callback, b = bar(f"train {task}")
        try:
            net = train_network(world_dir, task=task, cache_dir=home / "cache", progress=callback,
                                **train_options)
        finally:
            b.close()
        trained[net.name] = net
        log(f"{net.name}: held-out top-1 {net.metrics['val_top1']:.1%}"
            f"{' (cached)' if net.metrics.get('cached') else ''}")
    stages.timings["train"] = time.perf_counter() - t0
    networks = {name: net.model for name, net in trained.items()}
    weights = {name: str(net.path) for name, net in trained.items()}
    preprocessing = model_info(networks["scenenet"]).preprocessing
    broden = BrodenPool(paths.broden, preprocessing=preprocessing)
    n_dissect = len(broden)
    base = {"version": unitscope.__version__, "world": str(world_dir), "quick": quick,
            "weights": {k: trained[k].key for k in trained}}

    # 3. dissection, census, segmentations --------------------------------------
    def do_dissect():
        for name, model in networks.items():
            null_model = create_model("mini_alexnet", num_classes=len(model_info(model).class_names),
                                      input_size=preprocessing.input_size,
                                      width=model.conv1.conv.out_channels, seed=1)
            results = {}
            for run_name, run_model in ((name, model), (f"{name}-random", null_model)):
                callback, b = bar(f"dissect {run_name}")
                try:
                    results[run_name] = dissect(run_model, DEMO_LAYERS, broden, network=run_name,
                                                batch_size=50, label_cache=home / "cache" / "labels",
                                                work_dir=out / run_name / ".partial" / "dissect",
                                                progress=callback)
                finally:
                    b.close()
            flag_null(results[name], results[f"{name}-random"])
            for run_name, result in results.items():
                result.save(out / run_name / "dissect")
            object_census(results[f"{name}-random"]).save(out / f"{name}-random" / "dissect")
            object_census(results[name], null=results[f"{name}-random"]).save(out / name / "dissect")
            callback, b = bar(f"segmentations {name}")
            try:
                write_unit_segmentations(model, results[name], broden, out / name / "segmentations",
                                         top=12 if not quick else 6, layers=["conv3", "conv4", "conv5"],
                                         progress=callback)
            finally:
                b.close()

    stages.run("dissect", dict(base, layers=DEMO_LAYERS, n=n_dissect, mask_size="auto", threshold_rule="unitscope",
                               min_support=10), do_dissect)

    # 4. layer preference ------------------------------------------------------
    def do_preference():
        from unitscope.experiments.preference import layer_preference

        limit = 200 if quick else 1000
        objects = PlainPool(paths.objects_val, source="objects", preprocessing=preprocessing)
        scenes = PlainPool(paths.scenes_val, source="scenes", preprocessing=preprocessing)
        pools = [p.subset(range(min(limit, len(p)))) for p in (objects, scenes)]
        callback, b = bar("layer preference")
        try:
            result = layer_preference(networks, PREFERENCE_LAYERS, pools, top=100 if not quick else 40,
                                      progress=callback)
        finally:
            b.close()
        result.save(out / "preference")

    stages.run("preference", dict(base, layers=PREFERENCE_LAYERS), do_preference)

    # 5. minimal images ---------------------------------------------------------
    def do_minimal():
        from unitscope.experiments.minimal_images import minimal_images

        scenes_broden = BrodenPool(paths.broden, preprocessing=preprocessing, label_category="scene")
        model = networks["scenenet"]
        names = model_info(model).class_names
        for kind, options in (("masks", dict(segmentation="masks", categories=("object", "material"),
                                                max_images=40 if quick else 200, diagnostic=diagnostic)),
                              ("superpixels", dict(segmentation="slic", n_segments=30,
                                                    max_images=6 if quick else 24))):
            callback, b = bar(f"minimal images ({kind})")
            try:
                result = minimal_images(model, scenes_broden, class_names=names, progress=callback, **options)
            finally:
                b.close()
            result.save(out / "scenenet" / "minimal" / kind)

    stages.run("minimal", dict(base), do_minimal)

    # 6. receptive fields ---------------------------------------------------------
    def do_rf():
        from unitscope.experiments._io import write_csv
        from unitscope.experiments.empirical_rf import empirical_receptive_fields, summarise_receptive_fields

        pool = broden.subset(range(min(200 if not quick else 60, len(broden))))
        for name, model in networks.items():
            results = []
            for layer in ("pool1", "pool2", "conv3", "conv4", "pool5"):
                callback, b = bar(f"receptive field {name} {layer}")
                try:
                    units = list(range(0, _channels(model, layer), 4 if not quick else 8))
                    # occluder 6 px on a stride-4 grid: the paper's 11 px / stride 3 at 224 px,
                    # scaled to 128 px and thinned so the whole demo stays within its time budget
                    result = empirical_receptive_fields(model, layer, pool, top_k=8 if not quick else 3,
                                                        units=units, stride=4, network=name,
                                                        progress=callback)
                finally:
                    b.close()
                result.save(out / name / "rf" / layer)
                results.append(result)
            write_csv(out / name / "rf" / "summary.csv", summarise_receptive_fields(results))

    stages.run("receptive_fields", dict(base, networks=sorted(networks)), do_rf)

    # 7. localization and ablation ------------------------------------------------
    def do_localize_ablate():
        from unitscope.experiments.ablate import ablate_detectors
        from unitscope.experiments.localize import localize_objects

        scenes_broden = BrodenPool(paths.broden, preprocessing=preprocessing, label_category="scene")
        for name in ("scenenet", "objectnet"):
            model = networks[name]
            result = DissectionResult.load(out / name / "dissect")
            callback, b = bar(f"localize {name}")
            try:
                localize_objects(model, "conv5", scenes_broden, dissection=result,
                                 progress=callback).save(out / name / "localize")
            finally:
                b.close()
        callback, b = bar("ablate scenenet")
        try:
            ablate_detectors(networks["scenenet"], "conv5", scenes_broden,
                             dissection=DissectionResult.load(out / "scenenet" / "dissect"),
                             diagnostic=diagnostic, n_random=3 if quick else 5,
                             progress=callback).save(out / "scenenet" / "ablate")
        finally:
            b.close()

    stages.run("localize_ablate", dict(base), do_localize_ablate)

    # run.json and report ---------------------------------------------------------
    stages.timings["total_before_report"] = time.perf_counter() - started
    run = {
        "config": {"quick": quick, "world": str(world_dir), "home": str(home), "layers": DEMO_LAYERS,
                   "preference_layers": PREFERENCE_LAYERS, "dissect_images": n_dissect},
        "versions": {"unitscope": unitscope.__version__, "torch": torch.__version__,
                     "python": platform.python_version(), "platform": platform.platform()},
        "timings": stages.timings,
        "networks": {name: {"arch": "mini_alexnet", "weights": weights[name], "task": net.task,
                            "val_top1": net.metrics.get("val_top1"),
                            "noobjects_top1": net.metrics.get("noobjects_top1"),
                            "train_seconds": net.metrics.get("train_seconds")}
                     for name, net in trained.items()},
        "world": json.loads(paths.world_json.read_text())["generation"]
        if "generation" in json.loads(paths.world_json.read_text()) else {"root": str(world_dir)},
    }
    write_json(out / "run.json", run)
    t0 = time.perf_counter()
    from unitscope.report import build_report

    report = build_report(out)
    stages.timings["report"] = time.perf_counter() - t0
    run["timings"] = stages.timings
    write_json(out / "run.json", run)
    return {"report": report, "timings": stages.timings, "networks": run["networks"]}


def _channels(model, layer: str) -> int:
    from unitscope.models import layer_info

    return int(layer_info(model, layer).channels)


class _NullBar:
    def close(self) -> None:
        pass
