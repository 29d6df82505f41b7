"""What a study opens: pools checked up front, networks named for their folders, the null network.

These were the command line's own helpers; a notebook user running the
study's steps gets the same checks and the same folder names.  :class:`Inputs`
holds a network and a pool as the commands name them (``--model``,
``--data``, ...) and opens them the way every command does.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from unitscope.study.progress import Progress, step

__all__ = ["Inputs", "PREPROCESSING_OPTIONS", "check_null", "default_home", "label_cache_folder", "open_data",
           "model_label", "network_name", "random_null"]


#: The preprocessing options of :func:`unitscope.models.opening.preprocessing_options`, as text.
PREPROCESSING_OPTIONS = ("preprocess", "mean", "std", "input_size", "resize", "channel_order", "scale")


class Inputs(SimpleNamespace):
    """A network and a pool as the commands name them, and the steps every command takes with them.

    Attributes are the commands' option values: ``model`` (a spec of
    :func:`~unitscope.models.loading.load_model`), ``weights``, ``seed``,
    ``device``, ``data``, ``layout``, ``classes``, ``layers``, ``name`` and the
    :data:`PREPROCESSING_OPTIONS` (text, as typed); those not given take the
    commands' defaults.  ``progress`` draws the bar of the mask check.

    Examples
    --------
    >>> inputs = Inputs(model="mini_alexnet", weights=Path("tiny.pt"), data=Path("broden"))  # doctest: +SKIP
    >>> net = inputs.network("dissect", native=False)                                       # doctest: +SKIP
    >>> pool = inputs.pool(net, annotated=True)                                             # doctest: +SKIP
    """

    weights = layers = name = classes = progress = None
    preprocess = mean = std = input_size = resize = channel_order = scale = None
    seed, device, layout = 0, "cpu", "auto"

    def preprocessing(self) -> dict:
        """The preprocessing options parsed (:func:`~unitscope.models.opening.preprocessing_options`)."""
        from unitscope.models.opening import preprocessing_options

        return preprocessing_options(**{k: getattr(self, k) for k in PREPROCESSING_OPTIONS})

    def network(self, command: str, **options):
        """``model`` with ``weights`` opened with the preprocessing options, on ``device``."""
        from unitscope.models.opening import open_network

        return open_network(self.model, self.weights, self.preprocessing(), command=command, seed=self.seed,
                            **options).to(self.device)

    def pool(self, net, *, annotated: bool, **options):
        """``data`` opened for ``net`` (its masks checked up front, see :func:`open_data`)."""
        from unitscope.models import model_info

        return open_data(self.data, self.layout, self.classes, preprocessing=model_info(net).preprocessing,
                         annotated=annotated, progress=self.progress, **options)

    def chosen_layers(self, net) -> list[str]:
        """``layers``, else the model's default layers; refused when it has none."""
        from unitscope.models import model_info

        layers = self.layers or list(model_info(net).default_layers)
        if not layers:
            raise ValueError(f"give --layers: {self.model} has no default layers")
        return layers

    def networks(self, specs, **options) -> dict:
        """``(name, "MODEL[:WEIGHTS]")`` pairs opened, by name, on ``device`` (see ``models.opening.parse_net``)."""
        from unitscope.models.opening import parse_net

        pre = self.preprocessing()
        opened = (parse_net(n, spec, pre, seed=self.seed, **options) for n, spec in specs)
        return {n: m.to(self.device) for n, m in opened}

    def layers_of(self, networks: dict):
        """``layers`` for every network, else each network's default layers, by name."""
        from unitscope.models import model_info

        return self.layers or {n: model_info(m).default_layers for n, m in networks.items()}

    def folder(self) -> str:
        """``name``, else the model's label: the network's folder under the results directory."""
        return self.name or model_label(self.model)

    def null(self, net):
        """The null of ``net`` (:func:`random_null` with ``seed``), on ``device``."""
        return random_null(net, self.model, self.preprocessing(), seed=self.seed).to(self.device)


def default_home() -> Path:
    """Where caches and demo results go: ``$UNITSCOPE_HOME`` or ``~/.cache/unitscope``."""
    env = os.environ.get("UNITSCOPE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "unitscope"


def label_cache_folder(option: str | None) -> Path | None:
    """Where a dissection keeps decoded masks: ``option`` (``none``: nowhere), else ``$UNITSCOPE_HOME/cache/labels``."""
    if option is None:
        return default_home() / "cache" / "labels"
    return None if option.strip().lower() == "none" else Path(option)


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
    from unitscope.results.layout import safe_name
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


def check_null(model: str, weights: Optional[Path]) -> None:
    """Refuse a null for a registry model without weights: it has random weights already, so it is its own null."""
    from unitscope.models.loading import model_kind

    if weights is None and model_kind(model) == "registry":
        raise ValueError("--null needs --weights: without them the network itself has random weights "
                         "(seeded by --seed), so it is its own null")


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
