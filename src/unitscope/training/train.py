"""Training the reference networks on the synthetic world: SceneNet and ObjectNet.

Both are ``mini_alexnet``; SceneNet learns the scene classes from the
scene-centric images, ObjectNet the object classes from the object-centric
ones (the Places-CNN / ImageNet-CNN pair of the paper, in miniature).
Training runs on the CPU from an in-memory uint8 tensor, with AdamW, a
one-cycle learning-rate schedule, horizontal flips and small random zooms
(so the network is at home both with whole images and with the
resize-and-centre-crop view that plain pools give it).

Results are cached under ``cache_dir`` keyed by the whole configuration:
the world's ``world.json`` hash, every hyper-parameter and the code
version.  A second call with the same configuration loads the weights
instead of training; a corrupt entry raises
:class:`~unitscope.training.cache.CacheCorruptError`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

import unitscope
from unitscope._files import one_line
from unitscope.data.world.export import WorldPaths, load_world, world_fingerprint
from unitscope.models import (
    MINI_ALEXNET_LAYERS,
    ModelInfo,
    Preprocessing,
    attach_info,
    create_model,
    save_checkpoint,
)
from unitscope.models.info import IMAGENET_MEAN, IMAGENET_STD

from .cache import CacheCorruptError, config_key, entry_dir, read_entry, write_entry
from .data import load_image_folder, normalize
from .evaluate import predict

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

#: task -> (network name, world sub-folder)
TASKS = {"scene": ("scenenet", "scenes"), "object": ("objectnet", "objects")}

#: Defaults per task; see :func:`train_network`.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "scene": {"epochs": 14, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "width": 16,
              "label_smoothing": 0.05, "max_zoom": 1.0},
    "object": {"epochs": 8, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "width": 16,
               "label_smoothing": 0.05, "max_zoom": 1.0},
}


@dataclass
class TrainedNetwork:
    """A trained (or cached) reference network.

    Attributes
    ----------
    name : str
        ``"scenenet"`` or ``"objectnet"``.
    task : str
        ``"scene"`` or ``"object"``.
    model : nn.Module
        In eval mode, with its :class:`~unitscope.models.info.ModelInfo`.
    path : Path
        The checkpoint file (``create_model(None, weights=path)`` rebuilds it).
    metrics : dict
        ``val_top1`` (held-out top-1), ``val_top1_resize_crop``,
        ``noobjects_top1`` (scene task), ``chance``, ``per_class_top1``,
        ``train_seconds``, ``total_seconds``, ``history``...; ``cached`` is
        true when loaded from the cache.
    key : str
        The configuration hash.
    config : dict
    """

    name: str
    task: str
    model: nn.Module
    path: Path
    metrics: dict[str, Any]
    key: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def cached(self) -> bool:
        return bool(self.metrics.get("cached"))


def _options(task: str, given: dict[str, Any]) -> dict[str, Any]:
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    opts = dict(DEFAULT_OPTIONS[task])
    for k, v in given.items():
        if v is not None:
            opts[k] = v
    if int(opts["epochs"]) < 1 or int(opts["batch_size"]) < 1 or int(opts["width"]) < 1:
        raise ValueError(f"epochs, batch_size and width must be positive, got {opts}")
    if not float(opts["lr"]) > 0:
        raise ValueError(f"lr must be positive, got {opts['lr']}")
    if float(opts["max_zoom"]) < 1:
        raise ValueError(f"max_zoom must be >= 1, got {opts['max_zoom']}")
    return {
        "epochs": int(opts["epochs"]), "batch_size": int(opts["batch_size"]), "lr": float(opts["lr"]),
        "weight_decay": float(opts["weight_decay"]), "width": int(opts["width"]),
        "label_smoothing": float(opts["label_smoothing"]), "max_zoom": float(opts["max_zoom"]),
    }


def training_config(world_dir: str | Path, *, task: str = "scene", seed: int = 0, **options) -> dict[str, Any]:
    """The full configuration a cache key is computed from.

    Holds the world's fingerprint (hash of ``world.json``), the task, the
    seed, every hyper-parameter (defaults filled in), the architecture and
    the code versions.
    """
    opts = _options(task, options)
    return {
        "world": world_fingerprint(world_dir),
        "task": task,
        "arch": "mini_alexnet",
        "seed": int(seed),
        **opts,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "training_version": TRAINING_VERSION,
        "unitscope_version": unitscope.__version__,
    }


def _augment(x: torch.Tensor, gen: torch.Generator, max_zoom: float) -> torch.Tensor:
    """Random horizontal flips and zoom-ins (random crop of 1/zoom of the side, resized back)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if max_zoom > 1:
        scale = 1.0 / (1.0 + torch.rand(n, generator=gen) * (max_zoom - 1.0))
        room = 1.0 - scale
        tx = (torch.rand(n, generator=gen) * 2 - 1) * room
        ty = (torch.rand(n, generator=gen) * 2 - 1) * room
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = scale, scale
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x.contiguous(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


def _load_cached(folder: Path, name: str, task: str, key: str, config: dict) -> TrainedNetwork:
    metrics = read_entry(folder, key)
    try:
        model = create_model("mini_alexnet", weights=folder / "model.pt")
    except (ValueError, RuntimeError, OSError, EOFError) as exc:
        raise CacheCorruptError(
            f"cached network at {folder} is corrupt ({one_line(exc)}); delete {folder} to train again"
        ) from None
    model.eval()
    metrics = dict(metrics, cached=True)
    return TrainedNetwork(name, task, model, folder / "model.pt", metrics, key, config)


def train_network(
    world_dir: str | Path,
    *,
    task: str = "scene",
    cache_dir: str | Path,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    width: int | None = None,
    label_smoothing: float | None = None,
    max_zoom: float | None = None,
    seed: int = 0,
    num_threads: int | None = None,
    retrain: bool = False,
    progress: Callable[..., Any] | None = None,
) -> TrainedNetwork:
    """Train SceneNet (``task='scene'``) or ObjectNet (``task='object'``) on a world, or load it.

    The weights are cached under the key of :func:`training_config` (the
    world's fingerprint, the task and every option): the same call again
    loads them instead of training.

    Parameters
    ----------
    world_dir : str or Path
        A directory written by :func:`~unitscope.data.world.generate_world`.
    task : {'scene', 'object'}, optional
    cache_dir : str or Path
        Where trained weights are kept (``<cache_dir>/networks/``).
    epochs, batch_size, lr, weight_decay, width, label_smoothing, max_zoom : optional
        Hyper-parameters; defaults per task in :data:`DEFAULT_OPTIONS`
        (``width`` is MiniAlexNet's ``conv1`` channels; ``max_zoom`` the
        largest random zoom-in of the augmentation, 1 for none).
    seed : int, optional
        Seeds initialisation, shuffling and augmentation.
    num_threads : int, optional
        Torch CPU threads while training (default: all CPUs); restored after.
    retrain : bool, optional
        Train even when a cache entry exists, and replace it.
    progress : callable, optional
        Called as ``progress(step, total_steps)``.

    Returns
    -------
    TrainedNetwork

    Raises
    ------
    FileNotFoundError
        If the world or one of its datasets is missing.
    ValueError
        On bad options.
    CacheCorruptError
        If the cache entry for this configuration exists but is unreadable.
    """
    name = TASKS.get(task, (None, None))[0]
    config = training_config(world_dir, task=task, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay, width=width, label_smoothing=label_smoothing,
                             max_zoom=max_zoom)
    key = config_key(config)
    folder = entry_dir(cache_dir, name, key)
    if folder.exists() and not retrain:
        return _load_cached(folder, name, task, key, config)

    started = time.perf_counter()
    defn, doc = load_world(world_dir)
    paths = WorldPaths.of(world_dir)
    class_names = defn.scene_names if task == "scene" else defn.object_names
    size = int(doc.get("generation", {}).get("size", 128))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(num_threads or os.cpu_count() or 1))
    try:
        train = load_image_folder(paths.dataset(task, "train"), class_names)
        val = load_image_folder(paths.dataset(task, "val"), class_names)
        load_seconds = time.perf_counter() - started

        torch.manual_seed(config["seed"])
        gen = torch.Generator().manual_seed(config["seed"])
        model = create_model("mini_alexnet", num_classes=len(class_names), class_names=class_names,
                             input_size=size, width=config["width"])
        preprocessing = Preprocessing(input_size=size, mean=tuple(config["mean"]), std=tuple(config["std"]))
        attach_info(model, ModelInfo(arch="mini_alexnet", preprocessing=preprocessing,
                                     class_names=list(class_names), default_layers=list(MINI_ALEXNET_LAYERS),
                                     weights=str(folder / "model.pt")))
        model = model.to(memory_format=torch.channels_last)
        model.train()
        bs = min(config["batch_size"], len(train))
        steps_per_epoch = len(train) // bs
        total_steps = steps_per_epoch * config["epochs"]
        opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["lr"], total_steps=total_steps,
                                                    pct_start=0.25)
        history = []
        step = 0
        if progress is not None:
            progress(0, total_steps)
        t_train = time.perf_counter()
        for epoch in range(config["epochs"]):
            t_epoch = time.perf_counter()
            order = torch.randperm(len(train), generator=gen)
            running, seen = 0.0, 0
            for k in range(steps_per_epoch):
                idx = order[k * bs:(k + 1) * bs]
                x = _augment(normalize(train.images[idx], preprocessing.mean, preprocessing.std), gen,
                             config["max_zoom"])
                loss = F.cross_entropy(model(x), train.labels[idx], label_smoothing=config["label_smoothing"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running += loss.item() * len(idx)
                seen += len(idx)
                step += 1
                if progress is not None:
                    progress(step, total_steps)
            history.append({"epoch": epoch + 1, "loss": running / max(seen, 1),
                            "seconds": time.perf_counter() - t_epoch})
        train_seconds = time.perf_counter() - t_train
        model.eval()

        t_eval = time.perf_counter()
        pred = predict(model, val.images)
        correct = (pred == val.labels)
        per_class = {
            c: float(correct[val.labels == k].float().mean()) if bool((val.labels == k).any()) else None
            for k, c in enumerate(class_names)
        }
        crop_top1 = float((predict(model, val.images, resize_crop=True) == val.labels).float().mean())
        metrics: dict[str, Any] = {
            "network": name,
            "task": task,
            "key": key,
            "val_top1": float(correct.float().mean()),
            "val_top1_resize_crop": crop_top1,
            "chance": 1.0 / len(class_names),
            "per_class_top1": per_class,
            "n_train": len(train),
            "n_val": len(val),
            "steps": total_steps,
            "threads": torch.get_num_threads(),
            "history": history,
        }
        del train
        if task == "scene" and paths.scenes_noobjects_val.is_dir():
            control = load_image_folder(paths.scenes_noobjects_val, class_names)
            metrics["noobjects_top1"] = float((predict(model, control.images) == control.labels).float().mean())
        metrics["eval_seconds"] = time.perf_counter() - t_eval
        metrics["load_seconds"] = load_seconds
        metrics["train_seconds"] = train_seconds
        metrics["total_seconds"] = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous_threads)

    model = model.to(memory_format=torch.contiguous_format)
    write_entry(folder, metrics=metrics, config=config,
                save_model=lambda p: save_checkpoint(model, p, extra={"training": config, "val_top1": metrics["val_top1"]}))
    # The network handed back is the one read from the cache, exactly as a later run reads it
    # (weights and metadata, e.g. where its preprocessing came from): a first run and a cached
    # rerun of the same command then write the same bytes.
    model = create_model("mini_alexnet", weights=folder / "model.pt").eval()
    metrics = dict(metrics, cached=False)
    return TrainedNetwork(name, task, model, folder / "model.pt", metrics, key, config)


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
