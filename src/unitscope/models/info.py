"""What a network carries besides its weights: preprocessing, class names, layers of interest."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from unitscope.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing  # noqa: F401

__all__ = ["Preprocessing", "ModelInfo", "model_info", "attach_info"]


@dataclass
class ModelInfo:
    """Metadata that travels with a model made by the registry.

    Attached as ``model.unitscope_info`` (:func:`attach_info`); read it with
    :func:`model_info`.

    Attributes
    ----------
    arch : str
        Registry name of the architecture (``"alexnet"``, ``"mini_alexnet"``).
    preprocessing : Preprocessing
    class_names : list of str
        One name per output class (``class_0`` ... when unknown).
    default_layers : list of str
        Dotted names of the layers studied by default.
    weights : str or None
        Where the weights came from (a file path, ``"random"``).
    seed : int or None
        Seed of the random initialisation that gave these weights (None when
        they came from a file, or were drawn from the global generator).
    """

    arch: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    class_names: list[str] = field(default_factory=list)
    default_layers: list[str] = field(default_factory=list)
    weights: str | None = None
    seed: int | None = None


def attach_info(model: nn.Module, info: ModelInfo) -> nn.Module:
    """Attach ``info`` to ``model`` (as ``model.unitscope_info``) and return the model."""
    model.unitscope_info = info
    return model


def model_info(model: nn.Module) -> ModelInfo:
    """Return the :class:`ModelInfo` of a model.

    Models not made by the registry get a default (ImageNet preprocessing at
    224 px, every value's source ``"default"``, no class names, no default
    layers).
    """
    info = getattr(model, "unitscope_info", None)
    if isinstance(info, ModelInfo):
        return info
    from unitscope.models.preprocessing import FIELDS

    return ModelInfo(arch=type(model).__name__,
                     preprocessing=Preprocessing(sources={k: "default" for k in FIELDS}))
