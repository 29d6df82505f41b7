"""What a study opens: pools checked up front, networks named for their folders, the null network.

These were the command line's own helpers; a notebook user running the
study's steps gets the same checks and the same folder names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from unitscope.study.progress import Progress, step

__all__ = ["default_home", "open_data", "model_label", "network_name", "random_null"]


def default_home() -> Path:
    """Where caches and demo results go: ``$UNITSCOPE_HOME`` or ``~/.cache/unitscope``."""
    env = os.environ.get("UNITSCOPE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "unitscope"


def open_data(data: Path, layout: str, classes: Path | None, *, preprocessing, annotated: bool,
              progress: Optional[Progress] = None, **options):
    """Open ``data`` as ``layout`` says, with the class list ``classes``, and check its masks up front.

    Every mask of an index-mask pool is decoded once here, so a class list
    that does not fit the masks stops the command before any work.
    """
    from unitscope.data.open import open_annotated_pool, open_pool

    opener = open_annotated_pool if annotated else open_pool
    pool = opener(data, kind=layout, classes=classes, preprocessing=preprocessing, **options)
    check = getattr(pool, "check_masks", None)
    if check is not None:
        with step(progress, "checking masks") as callback:
            check(progress=callback)
    return pool


def model_label(model: str) -> str:
    """A folder-safe name for a model spec: the registry name, else the file's stem and the factory."""
    from unitscope.experiments._io import safe_name
    from unitscope.models.loading import model_kind

    if model_kind(model) == "registry":
        return model
    target, _, factory = model.rpartition(":") if ":" in model else (model, "", "")
    return safe_name(Path(target).stem + (f"-{factory}" if factory else ""))


def network_name(model: str, weights: Optional[Path], name: Optional[str] = None) -> str:
    """The name a dissected network goes by: ``name``, else MODEL-WEIGHTS (MODEL-random without weights)."""
    if name:
        return name
    from unitscope.models.loading import model_kind

    label = model_label(model)
    if weights:
        return f"{label}-{Path(weights).stem}"
    # a registry model without weights is random; a factory's or an archive's need not be
    return f"{label}-random" if model_kind(model) == "registry" else label


def random_null(net, model: str, preprocessing: dict, *, seed: int):
    """The same architecture as ``net`` with random weights drawn from ``seed``: the null of a dissection.

    Parameters
    ----------
    net : nn.Module
        The network with its weights (opened from ``model``).
    model : str
        Its spec (registry name, ``file.py:factory``...).
    preprocessing : dict
        The options it was opened with (``models.opening.preprocessing_options``).
    seed : int
    """
    import torch

    from unitscope.models import model_info
    from unitscope.models.loading import model_kind, reinitialised
    from unitscope.models.opening import open_network
    from unitscope.models.registry import random_like

    if model_kind(model) == "registry":
        # the same architecture as the checkpoint's (its width, input size, classes), random weights
        null = random_like(net, seed=seed)
    else:  # a factory may load trained weights: draw them again
        null = open_network(model, None, preprocessing, native=False, command="dissect", seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            null = reinitialised(null)
    model_info(null).preprocessing = model_info(net).preprocessing  # the same images as the trained one
    return null
