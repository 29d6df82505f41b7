"""Held-out accuracy of a classifier on in-memory images or an ImageFolder tree."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unitscope.models.info import model_info

from .data import load_image_folder, normalize

__all__ = ["predict", "top1_accuracy", "evaluate_image_folder", "resize_center_crop"]


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
