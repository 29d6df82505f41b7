"""Training networks on the synthetic world: SceneNet, ObjectNet and the other objectives.

Every network is ``mini_alexnet``; SceneNet learns the scene classes from
the scene-centric images, ObjectNet the object classes from the
object-centric ones (the Places-CNN / ImageNet-CNN pair of the paper, in
miniature), and the other objectives of
:mod:`~unitscope.training.objectives` (object presence, scene + objects,
rotation, jigsaw, shuffled labels) differ from SceneNet only in their last
layer and loss.  Training runs on the CPU from an in-memory uint8 tensor,
with AdamW, a one-cycle learning-rate schedule, horizontal flips and small
random zooms (:mod:`~unitscope.training.loop`).

Results are cached under ``cache_dir`` keyed by the whole configuration:
the world's ``world.json`` hash, the objective, every hyper-parameter and
the code version.  A second call with the same configuration loads the
weights instead of training; a corrupt entry raises
:class:`~unitscope.training.cache.CacheCorruptError`.  An interrupted run
continues from its last saved state (:mod:`~unitscope.training.resume`);
with ``snapshots=True`` the network is also saved at log-spaced steps
(:mod:`~unitscope.training.snapshots`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

import unitscope
from unitscope._files import one_line
from unitscope.data.world.export import WorldPaths, load_world, world_fingerprint
from unitscope.models import (
    ModelInfo,
    Preprocessing,
    attach_info,
    create_model,
    model_info,
    save_checkpoint,
)
from unitscope.models.info import IMAGENET_MEAN, IMAGENET_STD

from .cache import CacheCorruptError, config_key, entry_dir, read_entry, write_entry
from .data import load_image_folder
from .evaluate import classifier_metrics, objective_metrics
from .loop import LoopSettings, optimise, schedule
from .objectives import get_objective, jigsaw_permutations
from .presence import scene_presence
from .resume import PartialTraining, partial_dir
from .snapshots import MANIFEST, Snapshot, log_spaced_steps, read_snapshots, snapshot_file, write_manifest

__all__ = [
    "TRAINING_VERSION",
    "TASKS",
    "DEFAULT_OPTIONS",
    "TrainedNetwork",
    "training_config",
    "train_network",
    "train_reference_networks",
]

#: Bump when the training procedure changes (invalidates every cache entry).
TRAINING_VERSION = 1

#: task -> (network name, world sub-folder): the two reference networks.
TASKS = {"scene": ("scenenet", "scenes"), "object": ("objectnet", "objects")}

_SCENE_DEFAULTS = {"epochs": 14, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "width": 16,
                   "label_smoothing": 0.05, "max_zoom": 1.0}

#: Defaults per objective; see :func:`train_network`.  Every objective on
#: the scene images has SceneNet's budget (epochs, batch size); ``jigsaw``
#: adds its number of ``permutations`` and ``tile_gap`` (share of a cell
#: left empty around each tile).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "scene": dict(_SCENE_DEFAULTS),
    "object": {"epochs": 8, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "width": 16,
               "label_smoothing": 0.05, "max_zoom": 1.0},
    "multilabel": dict(_SCENE_DEFAULTS, label_smoothing=0.0),
    "multitask": dict(_SCENE_DEFAULTS),
    "rotation": dict(_SCENE_DEFAULTS),
    "jigsaw": dict(_SCENE_DEFAULTS, permutations=30, tile_gap=0.15),
    "shuffled": dict(_SCENE_DEFAULTS),
    "colorization": dict(_SCENE_DEFAULTS, label_smoothing=0.0),
}


@dataclass
class TrainedNetwork:
    """A trained (or cached) network.

    Attributes
    ----------
    name : str
        ``"scenenet"``, ``"objectnet"``, ``"rotationnet"``... (the objective + ``net``).
    task : str
        The objective (``"scene"``, ``"object"``, ``"rotation"``...).
    model : nn.Module
        In eval mode, with its :class:`~unitscope.models.info.ModelInfo`
        (``class_names``: the head's outputs, pretext classes for a
        self-supervised objective).
    path : Path
        The checkpoint file (``create_model(None, weights=path)`` rebuilds it).
    metrics : dict
        ``val_top1`` (held-out top-1 of the head), ``val_top1_resize_crop``,
        ``noobjects_top1`` (scene task), ``chance``, ``per_class_top1``,
        ``train_seconds``, ``total_seconds``, ``history``...; presence
        heads add ``val_f1``; ``cached`` is true when loaded from the cache.
    key : str
        The configuration hash.
    config : dict
    snapshots : list of Snapshot
        The saved steps when trained with ``snapshots=True`` (else empty).
    """

    name: str
    task: str
    model: nn.Module
    path: Path
    metrics: dict[str, Any]
    key: str
    config: dict[str, Any] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)

    @property
    def cached(self) -> bool:
        return bool(self.metrics.get("cached"))

    @property
    def objective(self) -> str:
        return self.task


def _objective_name(task: str | None, objective: str | None) -> str:
    if task is not None and objective is not None and task != objective:
        raise ValueError(f"give the objective once: task={task!r} and objective={objective!r} differ")
    name = objective or task or "scene"
    get_objective(name)
    return name


def _options(objective: str, given: dict[str, Any]) -> dict[str, Any]:
    defaults = DEFAULT_OPTIONS[objective]
    unknown = sorted(k for k, v in given.items() if v is not None and k not in defaults and k != "steps")
    if unknown:
        raise ValueError(f"unknown training option(s) {', '.join(unknown)} for objective {objective!r}; "
                         f"known: {', '.join(sorted(defaults) + ['steps'])}")
    opts = dict(defaults)
    for k, v in given.items():
        if v is not None:
            opts[k] = v
    if int(opts["epochs"]) < 1 or int(opts["batch_size"]) < 1 or int(opts["width"]) < 1:
        raise ValueError(f"epochs, batch_size and width must be positive, got {opts}")
    if not float(opts["lr"]) > 0:
        raise ValueError(f"lr must be positive, got {opts['lr']}")
    if float(opts["max_zoom"]) < 1:
        raise ValueError(f"max_zoom must be >= 1, got {opts['max_zoom']}")
    out = {
        "epochs": int(opts["epochs"]), "batch_size": int(opts["batch_size"]), "lr": float(opts["lr"]),
        "weight_decay": float(opts["weight_decay"]), "width": int(opts["width"]),
        "label_smoothing": float(opts["label_smoothing"]), "max_zoom": float(opts["max_zoom"]),
    }
    if opts.get("steps") is not None:  # only then: the keys of runs without it stay as they were
        if int(opts["steps"]) < 1:
            raise ValueError(f"steps must be positive, got {opts['steps']}")
        out["steps"] = int(opts["steps"])
    if objective == "jigsaw":
        if int(opts["permutations"]) < 2:
            raise ValueError(f"permutations must be at least 2, got {opts['permutations']}")
        if not 0 <= float(opts["tile_gap"]) < 1:
            raise ValueError(f"tile_gap must be in [0, 1), got {opts['tile_gap']}")
        out.update(permutations=int(opts["permutations"]), tile_gap=float(opts["tile_gap"]))
    return out


def training_config(world_dir: str | Path, *, task: str | None = None, objective: str | None = None,
                    seed: int = 0, **options) -> dict[str, Any]:
    """The full configuration a cache key is computed from.

    Holds the world's fingerprint (hash of ``world.json``), the objective
    (as ``task``; the objectives other than scene and object also as
    ``objective``), the seed, every hyper-parameter (defaults filled in),
    the architecture and the code versions.
    """
    name = _objective_name(task, objective)
    opts = _options(name, options)
    config = {
        "world": world_fingerprint(world_dir),
        "task": name,
        "arch": get_objective(name).arch,
        "seed": int(seed),
        **opts,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "training_version": TRAINING_VERSION,
        "unitscope_version": unitscope.__version__,
    }
    if name not in TASKS:  # scene and object keep the keys they had before objectives existed
        config["objective"] = name
    return config


def _load_cached(folder: Path, name: str, task: str, key: str, config: dict) -> TrainedNetwork:
    metrics = read_entry(folder, key)
    try:
        model = create_model(config["arch"], weights=folder / "model.pt")
        snapshots = read_snapshots(folder / "snapshots") if (folder / "snapshots" / MANIFEST).is_file() else []
    except (ValueError, RuntimeError, OSError, EOFError) as exc:
        raise CacheCorruptError(
            f"cached network at {folder} is corrupt ({one_line(exc)}); delete {folder} to train again"
        ) from None
    model.eval()
    metrics = dict(metrics, cached=True)
    return TrainedNetwork(name, task, model, folder / "model.pt", metrics, key, config, snapshots)


def train_network(
    world_dir: str | Path,
    *,
    objective: str | None = None,
    task: str | None = None,
    cache_dir: str | Path,
    seed: int = 0,
    num_threads: int | None = None,
    retrain: bool = False,
    snapshots: bool = False,
    progress: Callable[..., Any] | None = None,
    **options,
) -> TrainedNetwork:
    """Train a network on a world under one objective, or load it from the cache.

    The weights are cached under the key of :func:`training_config` (the
    world's fingerprint, the objective and every option): the same call
    again loads them instead of training.  An interrupted run (Ctrl-C, a
    kill) is continued by the same call, from its last saved state.

    Parameters
    ----------
    world_dir : str or Path
        A directory written by :func:`~unitscope.data.world.generate_world`.
    objective : str, optional
        One of :data:`~unitscope.training.objectives.OBJECTIVES` (default
        ``'scene'``).
    task : {'scene', 'object'}, optional
        The same as ``objective`` (its older name).
    cache_dir : str or Path
        Where trained weights are kept (``<cache_dir>/networks/``).
    seed : int, optional
        Seeds initialisation, shuffling, augmentation and pretext labels.
    num_threads : int, optional
        Torch CPU threads while training (default: all CPUs); restored after.
    retrain : bool, optional
        Train even when a cache entry exists, and replace it; discards a
        partial run's state.
    snapshots : bool, optional
        Also save the network at :func:`~unitscope.training.snapshots.log_spaced_steps`
        into ``<entry>/snapshots/``.  A cached entry without snapshots is
        trained again (to the same weights) to make them.
    progress : callable, optional
        Called as ``progress(step, total_steps)``.
    **options
        ``epochs, batch_size, lr, weight_decay, width, label_smoothing,
        max_zoom``; ``steps`` (optimizer steps, replacing ``epochs``);
        ``permutations, tile_gap`` (jigsaw).  Defaults per objective in
        :data:`DEFAULT_OPTIONS` (``width`` is MiniAlexNet's ``conv1``
        channels; ``max_zoom`` the largest random zoom-in, 1 for none).

    Returns
    -------
    TrainedNetwork

    Raises
    ------
    FileNotFoundError
        If the world or one of its datasets is missing.
    ValueError
        On bad options, or a partial run saved under another configuration.
    CacheCorruptError
        If the cache entry for this configuration exists but is unreadable.
    """
    name_of = _objective_name(task, objective)
    spec = get_objective(name_of)
    name = spec.network
    config = training_config(world_dir, objective=name_of, seed=seed, **options)
    key = config_key(config)
    folder = entry_dir(cache_dir, name, key)
    if folder.exists() and not retrain:
        cached = _load_cached(folder, name, name_of, key, config)
        if cached.snapshots or not snapshots:
            return cached

    started = time.perf_counter()
    defn, doc = load_world(world_dir)
    paths = WorldPaths.of(world_dir)
    class_names = spec.class_names(defn.scene_names, defn.object_names,
                                   permutations=config.get("permutations", 0))
    data_classes = defn.scene_names if spec.dataset == "scene" else defn.object_names
    size = int(doc.get("generation", {}).get("size", 128))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(num_threads or os.cpu_count() or 1))
    try:
        train = load_image_folder(paths.dataset(spec.dataset, "train"), data_classes)
        val = load_image_folder(paths.dataset(spec.dataset, "val"), data_classes)
        presence = val_presence = None
        if spec.needs_presence:
            presence = scene_presence(world_dir, "train", train.paths, train.images, cache_dir=cache_dir)
            val_presence = scene_presence(world_dir, "val", val.paths, val.images, cache_dir=cache_dir)
        load_seconds = time.perf_counter() - started

        torch.manual_seed(config["seed"])
        gen = torch.Generator().manual_seed(config["seed"])
        model = create_model(config["arch"], num_classes=len(class_names), class_names=class_names,
                             input_size=size, width=config["width"])
        preprocessing = Preprocessing(input_size=size, mean=tuple(config["mean"]), std=tuple(config["std"]))
        info = ModelInfo(arch=config["arch"], preprocessing=preprocessing, class_names=list(class_names),
                         default_layers=list(model_info(model).default_layers), weights=str(folder / "model.pt"))
        attach_info(model, info)
        model = model.to(memory_format=torch.channels_last)
        model.train()
        gap = 0
        permutations = None
        if spec.kind == "jigsaw":
            permutations = jigsaw_permutations(config["permutations"], seed=config["seed"])
            gap = int(round((size // 3) * config["tile_gap"]))
        _, _, total_steps = schedule(len(train), batch_size=config["batch_size"], epochs=config["epochs"],
                                     steps=config.get("steps"))
        steps = log_spaced_steps(total_steps) if snapshots else []
        settings = LoopSettings(epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
                                weight_decay=config["weight_decay"], label_smoothing=config["label_smoothing"],
                                max_zoom=config["max_zoom"], mean=preprocessing.mean, std=preprocessing.std,
                                steps=config.get("steps"), permutations=permutations, gap=gap,
                                snapshot_steps=steps)
        partial = PartialTraining(partial_dir(cache_dir, name, key), dict(config, snapshots=bool(snapshots)),
                                  restart=retrain)
        save_snapshot = _snapshot_writer(model, partial.snapshots, info, size, config) if snapshots else None
        targets = spec.image_targets(train.labels, presence, seed=config["seed"])
        t_train = time.perf_counter()
        history = optimise(model, spec, train.images, targets, settings, gen, partial=partial,
                           save_snapshot=save_snapshot, progress=progress)
        train_seconds = time.perf_counter() - t_train
        model.eval()

        t_eval = time.perf_counter()
        if name_of in TASKS:
            metrics = classifier_metrics(model, val, class_names, paths=paths if name_of == "scene" else None)
        else:
            metrics = objective_metrics(model, spec, val, val_presence, settings, seed=config["seed"],
                                        train=train if name_of == "shuffled" else None, train_targets=targets)
        metrics = {"network": name, "task": name_of, "key": key, **metrics,
                   "n_train": len(train), "n_val": len(val), "steps": total_steps,
                   "threads": torch.get_num_threads(), "history": history}
        del train
        metrics["eval_seconds"] = time.perf_counter() - t_eval
        metrics["load_seconds"] = load_seconds
        metrics["train_seconds"] = train_seconds
        metrics["total_seconds"] = time.perf_counter() - started
        if snapshots:
            write_manifest(partial.snapshots, steps=steps, total_steps=total_steps, network=name, training=config)
    finally:
        torch.set_num_threads(previous_threads)

    model = model.to(memory_format=torch.contiguous_format)
    write_entry(folder, metrics=metrics, config=config,
                save_model=lambda p: save_checkpoint(model, p, extra={"training": config, "val_top1": metrics["val_top1"]}),
                folders={"snapshots": partial.snapshots} if snapshots else None)
    partial.clear()
    # The network handed back is the one read from the cache, exactly as a later run reads it
    # (weights and metadata, e.g. where its preprocessing came from): a first run and a cached
    # rerun of the same command then write the same bytes.
    model = create_model(config["arch"], weights=folder / "model.pt").eval()
    return TrainedNetwork(name, name_of, model, folder / "model.pt", dict(metrics, cached=False), key, config,
                          read_snapshots(folder / "snapshots") if snapshots else [])


def _snapshot_writer(model: nn.Module, into: Path, info: ModelInfo, size: int, config: dict[str, Any]) -> Callable[[int], None]:
    """``save(step)``: the training model's weights as an ordinary checkpoint ``into/step-*.pt``.

    The weights go through a second model of the same shape (built with a
    fixed seed, so the global generator is untouched), so the training
    model and its memory layout are never modified.
    """
    holder: dict[str, nn.Module] = {}

    def save(step: int) -> None:
        if "model" not in holder:
            shell = create_model(info.arch, num_classes=len(info.class_names), class_names=info.class_names,
                                 input_size=size, width=config["width"], seed=0)
            attach_info(shell, info)
            holder["model"] = shell
        shell = holder["model"]
        shell.load_state_dict(model.state_dict())
        save_checkpoint(shell, into / snapshot_file(step), extra={"training": config, "step": int(step)})

    return save
def scene_steps(world_dir: str | Path, **options) -> int:
    """Optimizer steps of the scene objective's training on a world (SceneNet's budget by default).

    Every objective on the scene images takes this many by default; pass
    ``steps=scene_steps(world)`` to give ``object`` (whose data set and
    default epochs differ) the same budget.  ``options``: ``epochs``,
    ``batch_size`` as for :func:`train_network`.
    """
    opts = _options("scene", options)
    _, doc = load_world(world_dir)
    n_train = int(doc.get("statistics", {}).get("scene_images", {}).get("train", 0))
    if n_train < 1:
        raise ValueError(f"{world_dir}/world.json does not say how many scene training images it holds")
    return schedule(n_train, batch_size=opts["batch_size"], epochs=opts["epochs"], steps=opts.get("steps"))[2]


def train_reference_networks(world_dir: str | Path, *, cache_dir: str | Path,
                             progress: Callable[..., Any] | None = None,
                             **options) -> dict[str, TrainedNetwork]:
    """Train (or load) both reference networks: ``{'scenenet': ..., 'objectnet': ...}``.

    ``options`` are passed to :func:`train_network` for both tasks (for
    example ``seed=1`` or ``num_threads=2``).
    """
    out = {}
    for task in ("scene", "object"):
        trained = train_network(world_dir, task=task, cache_dir=cache_dir, progress=progress, **options)
        out[trained.name] = trained
    return out


def train_objectives(world_dir: str | Path, objectives: Sequence[str], *, cache_dir: str | Path,
                     progress: Callable[[str], Any] | None = None, **options) -> dict[str, TrainedNetwork]:
    """Train (or load) one network per objective, in order: ``{network name: TrainedNetwork}``.

    Parameters
    ----------
    world_dir : str or Path
    objectives : sequence of str
        Names from :data:`~unitscope.training.objectives.OBJECTIVES`; all
        are checked before the first one trains.
    cache_dir : str or Path
    progress : callable, optional
        A factory ``progress(description) -> (callback(done, total), bar)``
        (as ``unitscope.study.progress.tqdm_bars()``): one bar per network,
        ``train <objective>``, closed when its training ends.
    **options
        Passed to :func:`train_network` (``snapshots``, ``seed``, ``epochs``...).
    """
    names = list(dict.fromkeys(objectives))
    if not names:
        raise ValueError("no objective to train")
    for name in names:
        get_objective(name)
    out = {}
    for name in names:
        callback, bar = progress(f"train {name}") if progress is not None else (None, None)
        try:
            trained = train_network(world_dir, objective=name, cache_dir=cache_dir, progress=callback, **options)
        finally:
            if bar is not None:
                bar.close()
        out[trained.name] = trained
    return out
