"""Networks: a registry of architectures, checkpoints, per-layer metadata and receptive fields.

- :func:`create_model` / :func:`list_models`: build a registered architecture
  (torchvision's or the toy ``mini_alexnet``) with random weights or from a
  local checkpoint file; every model carries a :class:`ModelInfo`.
- :func:`load_model`: that, or your own ``file.py:factory``,
  ``package.module:factory`` or ``torch.export`` archive.
- :class:`Preprocessing`, :data:`PRESETS`, :func:`resolve_preprocessing`:
  how images are prepared for a network, and where each value came from.
- :func:`load_checkpoint` / :func:`save_checkpoint`: weights in the layouts
  found in the wild, and unitscope's own (weights + metadata).
- :func:`describe_layers` / :func:`layer_info`: channels, spatial size,
  stride and theoretical receptive field of each layer.
- :func:`theoretical_receptive_fields` / :func:`receptive_field`: computed from
  the architecture, for any network torch.fx can trace;
  :class:`RFWindow` / :func:`theoretical_window`: the same as the square
  window of input pixels a unit sees (what occlusion and crops use).
"""

from unitscope.models.checkpoint import (
    load_checkpoint,
    load_state_dict,
    read_checkpoint,
    save_checkpoint,
)
from unitscope.models.info import ModelInfo, Preprocessing, attach_info, model_info
from unitscope.models.preprocessing import PRESETS, preset, resolve_preprocessing
from unitscope.models.layers import LayerInfo, describe_layers, layer_info, layers_frame
from unitscope.models.mini_alexnet import MINI_ALEXNET_LAYERS, MiniAlexNet
from unitscope.models.receptive_field import (
    ReceptiveField,
    receptive_field,
    theoretical_receptive_fields,
)
from unitscope.models.rf_window import RFWindow, as_window, theoretical_window, whole_image_window
from unitscope.models.registry import (
    ModelSpec,
    create_model,
    imagenet_class_names,
    layer_labels,
    list_models,
    model_spec,
    register_model,
)
from unitscope.models.loading import load_model

__all__ = [
    "ModelInfo", "Preprocessing", "attach_info", "model_info",
    "PRESETS", "preset", "resolve_preprocessing", "load_model",
    "ModelSpec", "create_model", "list_models", "model_spec", "register_model",
    "layer_labels", "imagenet_class_names",
    "read_checkpoint", "load_checkpoint", "load_state_dict", "save_checkpoint",
    "LayerInfo", "describe_layers", "layer_info", "layers_frame",
    "ReceptiveField", "theoretical_receptive_fields", "receptive_field",
    "RFWindow", "as_window", "theoretical_window", "whole_image_window",
    "MiniAlexNet", "MINI_ALEXNET_LAYERS",
]
