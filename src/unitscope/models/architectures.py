"""The architectures the registry ships with: torchvision's classification networks and ``mini_alexnet``.

Each is a :class:`~unitscope.models.registry.ModelSpec` (its builder, default
layers, classifier key and the conventional names of its layers, such as
AlexNet's ``conv5`` for ``features.11``), registered when
:mod:`unitscope.models.registry` is imported.  Builders call torchvision
with ``weights=None``: nothing is downloaded.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
import torchvision
from torch import nn

from unitscope.models.mini_alexnet import MINI_ALEXNET_LAYERS, MiniAlexNet, MiniAlexNetDense
from unitscope.models.registry import ModelSpec, register_model

__all__: list[str] = []


def _torchvision(name: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, **kwargs) -> nn.Module:
        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)

    build.__name__ = f"build_{name}"
    return build


_ALEXNET_LABELS = {
    "features.0": "conv1 (pre-ReLU)", "features.1": "conv1", "features.2": "pool1",
    "features.3": "conv2 (pre-ReLU)", "features.4": "conv2", "features.5": "pool2",
    "features.6": "conv3 (pre-ReLU)", "features.7": "conv3",
    "features.8": "conv4 (pre-ReLU)", "features.9": "conv4",
    "features.10": "conv5 (pre-ReLU)", "features.11": "conv5", "features.12": "pool5",
    "classifier.1": "fc6 (pre-ReLU)", "classifier.2": "fc6",
    "classifier.4": "fc7 (pre-ReLU)", "classifier.5": "fc7", "classifier.6": "fc8",
}


def _vgg_labels(cfg: Sequence, *, batch_norm: bool = False) -> dict[str, str]:
    """``conv{block}_{i}`` (post-ReLU) and ``pool{block}`` names of a VGG ``features`` stack."""
    labels, index, block, conv = {}, 0, 1, 0
    for item in cfg:
        if item == "M":
            labels[f"features.{index}"] = f"pool{block}"
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            relu = index + (2 if batch_norm else 1)
            labels[f"features.{index}"] = f"conv{block}_{conv} (pre-ReLU)"
            labels[f"features.{relu}"] = f"conv{block}_{conv}"
            index = relu + 1
    labels.update({"classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"})
    return labels


def _vgg_default_layers(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The last convolution of each block, pool5, fc6 and fc7."""
    last_conv: dict[str, str] = {}
    pool5 = None
    for name, label in labels.items():
        if label.startswith("conv") and "pre-ReLU" not in label:
            last_conv[label.split("_")[0]] = name
        if label == "pool5":
            pool5 = name
    return tuple(last_conv.values()) + (pool5, "classifier.1", "classifier.4")


_VGG_CFG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}

_SQUEEZENET_LABELS = {
    "squeezenet1_0": {
        "features.1": "conv1", "features.2": "pool1", "features.3": "fire2", "features.4": "fire3",
        "features.5": "fire4", "features.6": "pool4", "features.7": "fire5", "features.8": "fire6",
        "features.9": "fire7", "features.10": "fire8", "features.11": "pool8", "features.12": "fire9",
        "classifier.2": "conv10",
    },
    "squeezenet1_1": {
        "features.1": "conv1", "features.2": "pool1", "features.3": "fire2", "features.4": "fire3",
        "features.5": "pool3", "features.6": "fire4", "features.7": "fire5", "features.8": "pool5",
        "features.9": "fire6", "features.10": "fire7", "features.11": "fire8", "features.12": "fire9",
        "classifier.2": "conv10",
    },
}


def _mini_alexnet_kwargs(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """``width`` and ``input_size`` of a MiniAlexNet, read off its weight shapes."""
    try:
        width = int(state_dict["conv1.conv.weight"].shape[0])
        fc6_in = int(state_dict["fc6.fc.weight"].shape[1])
    except KeyError:
        return {}
    side = math.isqrt(max(fc6_in // (2 * width), 0))
    if side * side * 2 * width != fc6_in:
        return {"width": width}
    return {"width": width, "input_size": 16 * side}


def _build_mini_alexnet(num_classes: int, **kwargs) -> nn.Module:
    return MiniAlexNet(num_classes, **kwargs)


def _build_mini_alexnet_dense(num_classes: int, **kwargs) -> nn.Module:
    return MiniAlexNetDense(num_classes, **kwargs)


def _register_defaults() -> None:
    register_model(ModelSpec(
        name="alexnet", builder=_torchvision("alexnet"),
        default_layers=(
            "features.1", "features.2", "features.4", "features.5", "features.7",
            "features.9", "features.11", "features.12", "classifier.2", "classifier.5",
        ),
        classifier_key="classifier.6.weight", layer_labels=_ALEXNET_LABELS,
        description="AlexNet (torchvision layout; the Places365 release loads into it)",
    ))
    for name, cfg in _VGG_CFG.items():
        for bn in (False, True):
            labels = _vgg_labels(torchvision.models.vgg.cfgs[cfg], batch_norm=bn)
            full = name + ("_bn" if bn else "")
            register_model(ModelSpec(
                name=full, builder=_torchvision(full), default_layers=_vgg_default_layers(labels),
                classifier_key="classifier.6.weight", layer_labels=labels,
                description=f"VGG-{name[3:]}{' with batch norm' if bn else ''}",
            ))
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        register_model(ModelSpec(
            name=name, builder=_torchvision(name),
            default_layers=("layer1", "layer2", "layer3", "layer4"), classifier_key="fc.weight",
            description=f"ResNet-{name[6:]} (torchvision v1.5: stride in the 3x3 convolution)",
        ))
    register_model(ModelSpec(
        name="squeezenet1_0", builder=_torchvision("squeezenet1_0"),
        default_layers=("features.7", "features.10", "features.12"),
        classifier_key="classifier.1.weight", layer_labels=_SQUEEZENET_LABELS["squeezenet1_0"],
        description="SqueezeNet 1.0",
    ))
    register_model(ModelSpec(
        name="squeezenet1_1", builder=_torchvision("squeezenet1_1"),
        default_layers=("features.7", "features.11", "features.12"),
        classifier_key="classifier.1.weight", layer_labels=_SQUEEZENET_LABELS["squeezenet1_1"],
        description="SqueezeNet 1.1",
    ))
    register_model(ModelSpec(
        name="mobilenet_v2", builder=_torchvision("mobilenet_v2"),
        default_layers=("features.3", "features.6", "features.13", "features.17", "features.18"),
        classifier_key="classifier.1.weight", description="MobileNet V2",
    ))
    for name in ("densenet121", "densenet161"):
        register_model(ModelSpec(
            name=name, builder=_torchvision(name),
            default_layers=(
                "features.transition1", "features.transition2", "features.transition3",
                "features.norm5",
            ),
            classifier_key="classifier.weight",
            description=f"DenseNet-{name[8:]} (the Places365 release loads into densenet161)",
        ))
    register_model(ModelSpec(
        # Transformer blocks output token grids (N, 1 + 14*14, 768) that are read as 14x14 maps
        # (unitscope.hooks.spatial_map); units after the first attention see the whole image.
        name="vit_b_16", builder=_torchvision("vit_b_16"),
        default_layers=tuple(f"encoder.layers.encoder_layer_{i}" for i in (2, 5, 8, 11)),
        classifier_key="heads.head.weight", size_kwarg="image_size",
        layer_labels={"conv_proj": "patch embedding",
                      **{f"encoder.layers.encoder_layer_{i}": f"block{i + 1}" for i in range(12)}},
        description="ViT-B/16 (torchvision layout; 16 px patches and a class token)",
    ))
    register_model(ModelSpec(
        name="mini_alexnet", builder=_build_mini_alexnet,
        default_layers=tuple(MINI_ALEXNET_LAYERS), classifier_key="classifier.weight",
        input_size=128, num_classes=None, infer_kwargs=_mini_alexnet_kwargs, size_kwarg="input_size",
        layer_labels={name: name for name in MINI_ALEXNET_LAYERS},
        description="AlexNet in miniature for the synthetic world (128 px)",
    ))
    register_model(ModelSpec(
        name="mini_alexnet_dense", builder=_build_mini_alexnet_dense,
        default_layers=("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5"),
        classifier_key="classifier.weight",
        input_size=128, num_classes=None, infer_kwargs=_mini_alexnet_kwargs, size_kwarg="input_size",
        layer_labels={name: name for name in MINI_ALEXNET_LAYERS},
        description="mini_alexnet with a 1x1-convolution head on conv5 (dense pretext tasks: colourisation)",
    ))


_register_defaults()
