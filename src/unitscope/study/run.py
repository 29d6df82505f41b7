"""The whole study on the built-in world: :func:`run_study`, behind ``unitscope demo`` / ``make demo``.

Stages (each skipped when its outputs exist for the same configuration, so
a second run reuses everything and an interrupted one resumes at the stage
it was in):

1. generate the world;                       2. train SceneNet and ObjectNet;
3. dissect both (and a random-weights null), census, segmentation tiles;
4. layer preference (objects vs scenes);     5. minimal images (1b, ground-truth objects; 1a, SLIC);
6. empirical receptive fields;               7. localization and ablation;
8. the HTML report.

``RESULTS/run.json`` records the configuration, versions and per-stage timings.

Examples
--------
>>> from unitscope.study import StudyConfig, run_study
>>> results = run_study(StudyConfig(out="results", home="cache", quick=True))  # doctest: +SKIP
>>> results.run.timings  # doctest: +SKIP
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

import unitscope
from unitscope.experiments.resume import Stages
from unitscope.results.run import RunMetadata
from unitscope.study.dissect import dissect_study
from unitscope.study.progress import Progress, step

__all__ = ["StudyConfig", "run_study", "DEMO_LAYERS", "PREFERENCE_LAYERS"]

DEMO_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
PREFERENCE_LAYERS = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7"]


@dataclass(frozen=True)
class StudyConfig:
    """What :func:`run_study` is asked.

    ``out`` is the results directory; ``home`` the cache root shared between runs (the world and the
    trained weights); ``quick`` asks for a small world and fewer images (for tests: accuracies are lower).
    """

    out: Path
    home: Path
    quick: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "home", Path(self.home))


def run_study(config: StudyConfig, *, progress: Optional[Progress] = None,
              log: Callable[[str], None] = lambda s: None):
    """Run the study on the built-in world and render the report.

    Parameters
    ----------
    config : StudyConfig
    progress : callable, optional
        ``progress(description) -> (callback, bar)``, e.g. the CLI's tqdm factory
        (:mod:`unitscope.study.progress`).
    log : callable
        Receives one-line status messages (``"dissect: cached"``, ``"dissect: 41 s"``).

    Returns
    -------
    ResultSet
        The results directory as the report reads it; ``.run`` is ``run.json``
        (``timings``: seconds per stage, 0 for a stage reused from an earlier run;
        ``networks``: accuracies).

    Raises
    ------
    FileExistsError
        Before any work, if ``out/report`` holds files that are not a report.
    ValueError
        If ``out/.stages.json`` is damaged (it names the file).
    """
    from unitscope.report.folder import check_report_folder
    from unitscope.results import load_results

    out = config.out
    check_report_folder(out / "report", out)  # a report folder with the user's files: refused now, not at the end
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out / ".stages.json", log)
    started = time.perf_counter()
    study = _prepare(config, stages, progress, log)
    base = {"version": unitscope.__version__, "world": str(study.world_dir), "quick": config.quick,
            "weights": {k: study.trained[k].key for k in study.trained}}
    for name, extra, stage in (
            ("dissect", dict(layers=DEMO_LAYERS, n=len(study.broden), mask_size="auto",
                             threshold_rule="unitscope", min_support=10), _dissect),
            ("preference", dict(layers=PREFERENCE_LAYERS), _preference),
            ("minimal", {}, _minimal),
            ("receptive_fields", dict(networks=sorted(study.networks)), _receptive_fields),
            ("localize_ablate", {}, _localize_ablate)):
        stages.run(name, dict(base, **extra), lambda stage=stage: stage(study))
    stages.timings["total_before_report"] = time.perf_counter() - started
    run = _run_record(study, stages.timings)
    run.save(out)
    t0 = time.perf_counter()
    from unitscope.report import build_report

    build_report(out)
    stages.timings["report"] = time.perf_counter() - t0
    run.timings = stages.timings
    run.save(out)
    return load_results(out)


@dataclass
class _Study:
    """What the stages share: the world, the trained networks, the dissection pool."""

    config: StudyConfig
    progress: Optional[Progress]
    paths: object  # WorldPaths
    world_dir: Path
    diagnostic: dict
    trained: dict
    networks: dict
    preprocessing: object
    broden: object

    @property
    def out(self) -> Path:
        return self.config.out

    @property
    def quick(self) -> bool:
        return self.config.quick

    def scenes_pool(self):
        from unitscope.data import BrodenPool

        return BrodenPool(self.paths.broden, preprocessing=self.preprocessing, label_category="scene")


def _prepare(config: StudyConfig, stages: Stages, progress: Optional[Progress], log) -> _Study:
    """Stages 1 and 2: the world and the two trained networks (each cached by its own configuration)."""
    from unitscope.data import BrodenPool
    from unitscope.data.world import generate_world, load_world
    from unitscope.models import model_info
    from unitscope.training import train_network

    home, quick = config.home, config.quick
    world_sizes = (dict(n_train=600, n_val=150, n_dissect=150, n_object_train=480, n_object_val=96)
                   if quick else {})
    world_dir = home / ("world-quick" if quick else "world")
    t0 = time.perf_counter()
    with step(progress, "world") as callback:
        paths = generate_world(world_dir, progress=callback, **world_sizes)
    stages.timings["world"] = paths.seconds or (time.perf_counter() - t0)
    definition, _ = load_world(world_dir)
    diagnostic = {s.name: list(s.diagnostic) for s in definition.scenes}

    t0 = time.perf_counter()
    train_options = dict(epochs=2) if quick else {}
    trained = {}
    for task in ("scene", "object"):
        with step(progress, f"train {task}") as callback:
            net = train_network(world_dir, task=task, cache_dir=home / "cache", progress=callback,
                                **train_options)
        trained[net.name] = net
        log(f"{net.name}: held-out top-1 {net.metrics['val_top1']:.1%}"
            f"{' (cached)' if net.metrics.get('cached') else ''}")
    stages.timings["train"] = time.perf_counter() - t0
    networks = {name: net.model for name, net in trained.items()}
    preprocessing = model_info(networks["scenenet"]).preprocessing
    broden = BrodenPool(paths.broden, preprocessing=preprocessing)
    return _Study(config, progress, paths, world_dir, diagnostic, trained, networks, preprocessing, broden)


def _dissect(study: _Study) -> None:
    """Stage 3: each network and its null dissected, censused, the top tiles of conv3-conv5 written."""
    from unitscope.models import create_model, model_info

    for name, model in study.networks.items():
        null_model = create_model("mini_alexnet", num_classes=len(model_info(model).class_names),
                                  input_size=study.preprocessing.input_size,
                                  width=model.conv1.conv.out_channels, seed=1)
        dissect_study(model, DEMO_LAYERS, study.broden, network=name, out=study.out, null_model=null_model,
                      segmentations=12 if not study.quick else 6, segmentation_layers=["conv3", "conv4", "conv5"],
                      progress=study.progress, batch_size=50, label_cache=study.config.home / "cache" / "labels")


def _preference(study: _Study) -> None:
    """Stage 4: objects against scenes, the top images of each layer of both networks."""
    from unitscope.data import PlainPool
    from unitscope.experiments.preference import layer_preference

    limit = 200 if study.quick else 1000
    objects = PlainPool(study.paths.objects_val, source="objects", preprocessing=study.preprocessing)
    scenes = PlainPool(study.paths.scenes_val, source="scenes", preprocessing=study.preprocessing)
    pools = [p.subset(range(min(limit, len(p)))) for p in (objects, scenes)]
    with step(study.progress, "layer preference") as callback:
        result = layer_preference(study.networks, PREFERENCE_LAYERS, pools, top=100 if not study.quick else 40,
                                  progress=callback)
    result.save(study.out / "preference")


def _minimal(study: _Study) -> None:
    """Stage 5: SceneNet's minimal images, by ground-truth objects (1b) and by superpixels (1a)."""
    from unitscope.experiments.minimal_images import minimal_images
    from unitscope.models import model_info

    scenes_broden = study.scenes_pool()
    model = study.networks["scenenet"]
    names = model_info(model).class_names
    for kind, options in (("masks", dict(segmentation="masks", categories=("object", "material"),
                                            max_images=40 if study.quick else 200, diagnostic=study.diagnostic)),
                          ("superpixels", dict(segmentation="slic", n_segments=30,
                                                max_images=6 if study.quick else 24))):
        with step(study.progress, f"minimal images ({kind})") as callback:
            result = minimal_images(model, scenes_broden, class_names=names, progress=callback, **options)
        result.save(study.out / "scenenet" / "minimal" / kind)


def _receptive_fields(study: _Study) -> None:
    """Stage 6: empirical receptive fields of every fourth (quick: eighth) unit of five layers."""
    from unitscope.experiments.empirical_rf import empirical_receptive_fields
    from unitscope.results.receptive_fields import save_receptive_field_summary
    from unitscope.models import layer_info

    pool = study.broden.subset(range(min(200 if not study.quick else 60, len(study.broden))))
    for name, model in study.networks.items():
        results = []
        for layer in ("pool1", "pool2", "conv3", "conv4", "pool5"):
            with step(study.progress, f"receptive field {name} {layer}") as callback:
                units = list(range(0, int(layer_info(model, layer).channels), 4 if not study.quick else 8))
                # occluder 6 px on a stride-4 grid: the paper's 11 px / stride 3 at 224 px,
                # scaled to 128 px and thinned so the whole demo stays within its time budget;
                # every copy through the whole network, so the demo's maps keep their bytes
                # (incremental inference agrees only to rounding)
                result = empirical_receptive_fields(model, layer, pool, top_k=8 if not study.quick else 3,
                                                    units=units, stride=4, network=name, progress=callback,
                                                    incremental=False)
            result.save(study.out / name / "rf" / layer)
            results.append(result)
        save_receptive_field_summary(study.out / name / "rf", results)


def _localize_ablate(study: _Study) -> None:
    """Stage 7: conv5's detectors as object localizers (both networks); SceneNet's ablated."""
    from unitscope.experiments.ablate import ablate_detectors
    from unitscope.experiments.dissect import DissectionResult
    from unitscope.experiments.localize import localize_objects

    scenes_broden = study.scenes_pool()
    for name in ("scenenet", "objectnet"):
        result = DissectionResult.load(study.out / name / "dissect")
        with step(study.progress, f"localize {name}") as callback:
            localize_objects(study.networks[name], "conv5", scenes_broden, dissection=result,
                             progress=callback).save(study.out / name / "localize")
    with step(study.progress, "ablate scenenet") as callback:
        ablate_detectors(study.networks["scenenet"], "conv5", scenes_broden,
                         dissection=DissectionResult.load(study.out / "scenenet" / "dissect"),
                         diagnostic=study.diagnostic, n_random=3 if study.quick else 5,
                         progress=callback).save(study.out / "scenenet" / "ablate")


def _run_record(study: _Study, timings: dict) -> RunMetadata:
    """``RESULTS/run.json``: the configuration, versions, timings, networks and the world's generation."""
    config = study.config
    world = json.loads(study.paths.world_json.read_text())
    return RunMetadata(
        config={"quick": config.quick, "world": str(study.world_dir), "home": str(config.home),
                "layers": DEMO_LAYERS, "preference_layers": PREFERENCE_LAYERS,
                "dissect_images": len(study.broden)},
        versions={"unitscope": unitscope.__version__, "torch": torch.__version__,
                  "python": platform.python_version(), "platform": platform.platform()},
        timings=timings,
        networks={name: {"arch": "mini_alexnet", "weights": str(net.path), "task": net.task,
                         "val_top1": net.metrics.get("val_top1"),
                         "noobjects_top1": net.metrics.get("noobjects_top1"),
                         "train_seconds": net.metrics.get("train_seconds")}
                  for name, net in study.trained.items()},
        world=world["generation"] if "generation" in world else {"root": str(study.world_dir)},
    )
