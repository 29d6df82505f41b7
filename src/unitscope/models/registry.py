"""A registry of network architectures: ``create_model("alexnet", weights=path)``.

In the manner of timm: each architecture is registered under a name with
what unitscope needs to know about it (its default layers, the
preprocessing its weights expect, which parameter holds the classifier, the
conventional names of its layers), and :func:`create_model` builds it with
random weights or from a local checkpoint file.  Nothing is ever
downloaded: torchvision builders are always called with ``weights=None``.

Every model made here carries a :class:`~unitscope.models.info.ModelInfo`
(``model.unitscope_info``; read it with :func:`model_info`).

Examples
--------
>>> net = create_model("resnet18", num_classes=10)
>>> model_info(net).default_layers
['layer1', 'layer2', 'layer3', 'layer4']
>>> "alexnet" in list_models()
True
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
import torchvision
from torch import nn

from unitscope.models.checkpoint import load_state_dict, plain_key, read_checkpoint
from unitscope.models.info import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelInfo,
    Preprocessing,
    attach_info,
    model_info,
)
from unitscope.models.preprocessing import FIELDS

__all__ = [
    "ModelSpec",
    "register_model",
    "create_model",
    "random_like",
    "list_models",
    "model_spec",
    "layer_labels",
    "imagenet_class_names",
]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture.

    Attributes
    ----------
    name : str
        Registry name.
    builder : callable
        ``builder(num_classes=N, **kwargs) -> nn.Module`` with random weights.
    default_layers : tuple of str
        Dotted names of the layers studied by default.
    classifier_key : str or None
        State-dict key of the classifier weight, whose first dim is the
        number of classes (to infer ``num_classes`` from a checkpoint).
    input_size : int
        Default input side in pixels.
    mean, std : tuple of float
        Default normalisation.
    num_classes : int or None
        Default number of classes; None means it must be given or inferred.
    layer_labels : mapping
        Conventional names of layers (``"features.11" -> "conv5"``).
    infer_kwargs : callable or None
        ``infer_kwargs(state_dict) -> dict`` of builder arguments that a
        checkpoint determines (e.g. ``width`` of ``mini_alexnet``).
    size_kwarg : str or None
        Builder argument that receives ``input_size`` (for networks whose
        shape depends on it); None when the network accepts any size.
    description : str
    """

    name: str
    builder: Callable[..., nn.Module]
    default_layers: tuple[str, ...] = ()
    classifier_key: str | None = None
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int | None = 1000
    layer_labels: Mapping[str, str] = field(default_factory=dict)
    infer_kwargs: Callable[[Mapping[str, torch.Tensor]], dict] | None = None
    size_kwarg: str | None = None
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Add an architecture to the registry.

    Parameters
    ----------
    spec : ModelSpec
    overwrite : bool, keyword-only
        Replace an architecture of the same name (otherwise an error).

    Returns
    -------
    ModelSpec
        ``spec``.

    Raises
    ------
    ValueError
        If the name is taken and ``overwrite`` is False.
    """
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a model called {spec.name!r} is already registered (pass overwrite=True)"
        )
    _REGISTRY[spec.name] = spec
    return spec


def list_models(pattern: str | None = None) -> list[str]:
    """Registered architecture names, sorted; ``pattern`` filters with wildcards (``"resnet*"``)."""
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``.

    Raises
    ------
    LookupError
        For an unknown name; the message lists close matches.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LookupError(
        f"unknown architecture {name!r}{hint} (known: {', '.join(list_models())})"
    )


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, in class-index order (from torchvision, no download)."""
    return list(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def layer_labels(model: nn.Module) -> dict[str, str]:
    """Conventional names of a registry model's layers (``{"features.11": "conv5", ...}``).

    Empty for architectures without such names (ResNet's ``layer4`` needs none)
    and for models not made by the registry.
    """
    spec = _REGISTRY.get(model_info(model).arch)
    return dict(spec.layer_labels) if spec else {}


# --------------------------------------------------------------------------


def _generic_names(n: int) -> list[str]:
    return [f"class_{i}" for i in range(n)]


def _model_preprocessing(spec: ModelSpec, saved: dict, input_size, built_size) -> Preprocessing:
    """Registry defaults, overridden by the checkpoint's values, then by ``input_size``; sources recorded."""
    registry = Preprocessing(input_size=built_size or spec.input_size, mean=spec.mean, std=spec.std,
                             sources={k: "registry" for k in FIELDS})
    values = {k: getattr(registry, k) for k in FIELDS}
    sources = dict(registry.sources)
    if saved:
        from_checkpoint = Preprocessing.from_dict(saved, source="checkpoint")
        for key in FIELDS:
            if saved.get(key) is not None:
                values[key], sources[key] = getattr(from_checkpoint, key), "checkpoint"
    if input_size is not None:
        values["input_size"], sources["input_size"] = input_size, "argument"
    return Preprocessing(**values, sources=sources)


def create_model(
    name: str | None,
    *,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | str | None = None,
    input_size: int | None = None,
    allow_pickle: bool = False,
    seed: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered architecture, with random weights or from a checkpoint file.

    Parameters
    ----------
    name : str or None
        Registry name (see :func:`list_models`).  None: the architecture
        recorded in the checkpoint's metadata (files written by
        :func:`~unitscope.models.checkpoint.save_checkpoint`).
    weights : str or path-like, keyword-only
        Local checkpoint file (any layout
        :func:`~unitscope.models.checkpoint.load_checkpoint` accepts).
        None: random weights.  Nothing is ever downloaded.
    num_classes : int, keyword-only
        Number of outputs.  Default: from the checkpoint's metadata, else
        the shape of its classifier weight (a Places365 AlexNet gives 365),
        else ``len(class_names)``, else the architecture's default (1000 for
        torchvision networks; ``mini_alexnet`` has none and needs one of
        these).
    class_names : sequence of str or "imagenet", keyword-only
        One name per class; ``"imagenet"`` for the ImageNet-1k names.
        Default: from the checkpoint's metadata, else ``class_0``,
        ``class_1``, ...
    input_size : int, (int, int) or "native", keyword-only
        Input size, recorded in the model's preprocessing (and, for
        ``mini_alexnet``, given to the constructor).  Default: from the
        checkpoint's metadata, else the architecture's (224; 128 for
        ``mini_alexnet``).  The rest of the preprocessing comes from the
        checkpoint's ``unitscope`` section when it has one, else from the
        registry (see :mod:`unitscope.models.preprocessing`).
    allow_pickle : bool, keyword-only
        Allow checkpoints that store pickled objects (trusted files only).
    seed : int, keyword-only
        Seed of the random initialisation: the same seed gives the same
        weights, byte for byte, and the global random generator is left as
        it was.  Recorded in ``model_info(model).seed`` for random weights.
        None (default): draw from the global generator, as torch does.
    **kwargs
        Passed to the architecture's builder (e.g. ``width=`` for
        ``mini_alexnet``, ``dropout=`` for ``alexnet``).

    Returns
    -------
    nn.Module
        In eval mode, on the CPU, with ``model.unitscope_info`` set.

    Raises
    ------
    LookupError
        For an unknown architecture (with close matches).
    FileNotFoundError
        If ``weights`` does not exist.
    ValueError
        For inconsistent arguments (``seed`` not a non-negative integer), a
        corrupt checkpoint, or one that does not fit the architecture
        (missing/unexpected keys are listed).

    Examples
    --------
    >>> net = create_model("mini_alexnet", num_classes=10)
    >>> model_info(net).preprocessing.input_size
    128
    >>> net = create_model("alexnet", weights="alexnet_places365.pth.tar")   # doctest: +SKIP
    >>> len(model_info(net).class_names)                                     # doctest: +SKIP
    365
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    state_dict, metadata = (None, {})
    if weights is not None:
        state_dict, metadata = read_checkpoint(weights, allow_pickle=allow_pickle)
    if name is None:
        name = metadata.get("arch")
        if not name:
            raise ValueError(
                "create_model needs an architecture name"
                + (f": checkpoint {weights} does not record one" if weights is not None else "")
            )
    spec = model_spec(name)
    saved_arch = metadata.get("arch")
    if saved_arch and saved_arch != spec.name:
        raise ValueError(
            f"checkpoint {weights} was saved from a {saved_arch!r}, not a {spec.name!r}"
        )

    if isinstance(class_names, str):
        if class_names != "imagenet":
            raise ValueError(
                f"class_names must be a sequence of names or 'imagenet', got the string {class_names!r}"
            )
        class_names = imagenet_class_names()
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if not class_names:
            raise ValueError("class_names is empty")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")

    inferred = None
    if state_dict is not None and spec.classifier_key:
        for key, value in state_dict.items():
            if key == spec.classifier_key or plain_key(key) == spec.classifier_key:
                inferred = int(value.shape[0])
                break
    if num_classes is None:
        num_classes = (
            metadata.get("num_classes") or inferred
            or (len(class_names) if class_names else None) or spec.num_classes
        )
    if num_classes is None:
        raise ValueError(f"{spec.name} needs num_classes (or class_names, or a checkpoint)")
    if class_names is None:
        saved = metadata.get("class_names")
        if saved and len(saved) == num_classes:
            class_names = [str(c) for c in saved]
        else:
            class_names = _generic_names(num_classes)
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")

    build_kwargs = {}
    if state_dict is not None and spec.infer_kwargs is not None:
        build_kwargs.update(spec.infer_kwargs(state_dict))
    preprocessing = _model_preprocessing(spec, metadata.get("preprocessing") or {}, input_size,
                                         build_kwargs.get(spec.size_kwarg) if spec.size_kwarg else None)
    if spec.size_kwarg:
        if preprocessing.size_hw is None or preprocessing.size_hw[0] != preprocessing.size_hw[1]:
            raise ValueError(f"{spec.name} needs a square input size, got {preprocessing.input_size!r}")
        build_kwargs[spec.size_kwarg] = preprocessing.size_hw[0]
    build_kwargs.update(kwargs)
    try:
        model = _build(spec, num_classes, build_kwargs, seed)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {spec.name}: {exc}") from exc
    if state_dict is not None:
        load_state_dict(model, state_dict, source=f"checkpoint {weights}")
    default_layers = list(metadata.get("default_layers") or spec.default_layers)
    attach_info(model, ModelInfo(
        arch=spec.name,
        preprocessing=preprocessing,
        class_names=class_names,
        default_layers=default_layers,
        weights=os.fspath(weights) if weights is not None else "random",
        seed=seed if weights is None else None,
    ))
    # what random_like needs to build the same architecture again (a checkpoint can set the width)
    model._unitscope_build = (spec.name, num_classes, dict(build_kwargs))
    return model.eval()


def random_like(model: nn.Module, *, seed: int) -> nn.Module:
    """The same architecture as ``model`` (made by :func:`create_model`), with seeded random weights.

    The null of a trained network: same layers, widths, input size, classes
    and preprocessing, none of the training.

    Parameters
    ----------
    model : nn.Module
        Made by :func:`create_model` (random or from a checkpoint).
    seed : int, keyword-only
        Seed of the random initialisation (see :func:`create_model`).

    Raises
    ------
    ValueError
        If ``model`` was not made by :func:`create_model`.
    """
    build = getattr(model, "_unitscope_build", None)
    if build is None:
        raise ValueError(f"random_like needs a model made by create_model, not a {type(model).__name__}")
    name, num_classes, build_kwargs = build
    info = model_info(model)
    twin = create_model(name, num_classes=num_classes, class_names=info.class_names, seed=seed, **build_kwargs)
    # the twin reads the same pool as the model: same preprocessing, same default layers
    attach_info(twin, ModelInfo(arch=info.arch, preprocessing=info.preprocessing, class_names=info.class_names,
                                default_layers=list(info.default_layers), weights="random", seed=seed))
    return twin


def _build(spec: ModelSpec, num_classes: int, build_kwargs: dict, seed: int | None) -> nn.Module:
    """Run the builder; with a seed, on a private copy of the generators (callers' draws stay as they were)."""
    if seed is None:
        return spec.builder(num_classes=num_classes, **build_kwargs)
    # fork_rng restores the CPU (and CUDA) generator states on exit; builders initialise on the CPU
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.builder(num_classes=num_classes, **build_kwargs)


# The architectures unitscope ships with (models/architectures.py) register themselves here; at the
# end, where ModelSpec and register_model exist for them to import.
from unitscope.models import architectures as _architectures  # noqa: E402,F401
