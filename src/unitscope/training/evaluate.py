"""Held-out accuracy of a classifier on in-memory images or an ImageFolder tree, and of every objective."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unitscope.models.info import model_info

from .data import load_image_folder, normalize

__all__ = ["predict", "top1_accuracy", "evaluate_image_folder", "resize_center_crop", "classifier_metrics",
           "objective_metrics"]


def resize_center_crop(x: torch.Tensor, size: int, ratio: float = 256 / 224) -> torch.Tensor:
    """The classic evaluation geometry on a batch: resize to ``round(size * ratio)``, crop ``size``.

    Matches what a plain pool's default transform does to a square image
    (up to PIL's and torch's bilinear kernels), so accuracy under it tells
    how the network fares when read through such a pool.
    """
    short = round(size * ratio)
    y = F.interpolate(x, size=(short, short), mode="bilinear", align_corners=False)
    off = (short - size) // 2
    return y[:, :, off:off + size, off:off + size]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256,
            resize_crop: bool = False) -> torch.Tensor:
    """Predicted class of each uint8 image ``(N, 3, H, W)``, using the model's preprocessing."""
    pre = model_info(model).preprocessing
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            x = normalize(images[start:start + batch_size], pre.mean, pre.std)
            if resize_crop:
                x = resize_center_crop(x, pre.input_size).contiguous(memory_format=torch.channels_last)
            out.append(model(x).argmax(1))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def top1_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **kwargs) -> float:
    """Fraction of images whose top-1 prediction equals the label."""
    if images.shape[0] == 0:
        raise ValueError("no images to evaluate")
    return float((predict(model, images, **kwargs) == labels).float().mean())


def evaluate_image_folder(model: nn.Module, root: str | Path, *,
                          class_names: Sequence[str] | None = None, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on an ImageFolder tree.

    Parameters
    ----------
    model : nn.Module
        Its :class:`~unitscope.models.info.ModelInfo` gives the
        preprocessing and, by default, the class names (folder names).
    root : str or Path
    class_names : sequence of str, optional
        Overrides the model's class names (label = position).

    Returns
    -------
    float
    """
    names = list(class_names) if class_names is not None else list(model_info(model).class_names)
    data = load_image_folder(root, names or None)
    return top1_accuracy(model, data.images, data.labels, batch_size=batch_size)


def classifier_metrics(model: nn.Module, val, class_names: Sequence[str], *, paths=None) -> dict:
    """Held-out scores of a scene or object classifier on ``val`` (:class:`InMemoryImages`).

    ``val_top1``, ``val_top1_resize_crop``, ``chance``, ``per_class_top1``;
    with the world's ``paths``, also ``noobjects_top1`` on the
    objects-removed scenes.
    """
    pred = predict(model, val.images)
    correct = (pred == val.labels)
    per_class = {
        c: float(correct[val.labels == k].float().mean()) if bool((val.labels == k).any()) else None
        for k, c in enumerate(class_names)
    }
    crop_top1 = float((predict(model, val.images, resize_crop=True) == val.labels).float().mean())
    out = {"val_top1": float(correct.float().mean()), "val_top1_resize_crop": crop_top1,
           "chance": 1.0 / len(class_names), "per_class_top1": per_class}
    if paths is not None and paths.scenes_noobjects_val.is_dir():
        control = load_image_folder(paths.scenes_noobjects_val, class_names)
        out["noobjects_top1"] = float((predict(model, control.images) == control.labels).float().mean())
    return out


@torch.no_grad()
def objective_metrics(model: nn.Module, objective, val, val_presence, settings, *, seed: int,
                      train=None, train_targets=None, batch_size: int = 256) -> dict:
    """Held-out scores of a network trained under ``objective`` (see :meth:`Objective.scores`).

    Pretext labels of the held-out images are drawn from a generator seeded
    by ``seed`` (the same draw every time).  The shuffled-label control is
    scored on the true labels (``val_top1``: what it learnt of scenes) and
    on the training images' shuffled labels (``train_top1``: what it
    memorised).
    """
    gen = torch.Generator().manual_seed(int(seed) + 1)
    names = model_info(model).class_names
    targets = objective.image_targets(val.labels, val_presence, seed=seed)
    if objective.name == "shuffled":
        targets = val.labels
    out = _scores(model, objective, val.images, targets, settings, gen, batch_size)
    if objective.kind in ("class", "rotation", "jigsaw", "colorization"):
        out["chance"] = 1.0 / len(names)
    if objective.kind == "colorization":  # most cells are greyish: the baseline is the commonest class
        _, classes = objective.batch(normalize(val.images, settings.mean, settings.std), None, gen,
                                     mean=settings.mean, std=settings.std)
        out["majority_top1"] = float(torch.bincount(classes.flatten()).max()) / classes.numel()
    if train is not None:
        out["train_top1"] = _scores(model, objective, train.images, train_targets, settings, gen,
                                    batch_size)["val_top1"]
    return out


def _scores(model, objective, images, targets, settings, gen, batch_size) -> dict:
    was_training = model.training
    model.eval()
    outputs, rows = [], []
    try:
        for start in range(0, images.shape[0], batch_size):
            part = slice(start, start + batch_size)
            x = normalize(images[part], settings.mean, settings.std)
            batch_targets = {k: v[part] for k, v in targets.items()} if isinstance(targets, dict) else targets[part]
            x, y = objective.batch(x, batch_targets, gen, permutations=settings.permutations, gap=settings.gap,
                                   mean=settings.mean, std=settings.std)
            outputs.append(model(x))
            rows.append(y)
    finally:
        model.train(was_training)
    if isinstance(rows[0], dict):
        joined = {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
    else:
        joined = torch.cat(rows)
    return objective.scores(torch.cat(outputs), joined)
