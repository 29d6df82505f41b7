"""What a network carries besides its weights: preprocessing, class names, layers of interest."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

__all__ = ["Preprocessing", "ModelInfo", "model_info", "attach_info"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a network.

    Attributes
    ----------
    input_size : int
        Side of the square input, in pixels (plain pools resize and
        centre-crop to it; annotated pools resize the whole image to it so
        that masks stay aligned).
    mean, std : tuple of float
        Per-channel normalisation of RGB values in ``[0, 1]``.
    """

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std)}


@dataclass
class ModelInfo:
    """Metadata that travels with a model made by the registry.

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
    224 px, no class names, no default layers).
    """
    info = getattr(model, "unitscope_info", None)
    if isinstance(info, ModelInfo):
        return info
    return ModelInfo(arch=type(model).__name__)
