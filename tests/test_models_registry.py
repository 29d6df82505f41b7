"""The model registry: every architecture builds, runs and carries its metadata."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unitscope.hooks import resolve_layer
from unitscope.models import (
    MINI_ALEXNET_LAYERS,
    ModelInfo,
    ModelSpec,
    Preprocessing,
    create_model,
    imagenet_class_names,
    layer_labels,
    list_models,
    model_info,
    model_spec,
    register_model,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def test_list_models():
    names = list_models()
    assert names == sorted(names)
    for required in ("alexnet", "vgg16", "resnet18", "resnet50", "squeezenet1_0",
                     "mobilenet_v2", "mini_alexnet"):
        assert required in names
    assert list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    # networks built for their input size (MiniAlexNet's fc6, ViT's position embedding) are built at 64 px
    small = model_spec(name).size_kwarg is not None
    with torch.device("meta"):  # shapes only, no weight initialisation: instant
        net = create_model(name, num_classes=7, input_size=64 if small else None)
    heavy = sum(p.numel() for p in net.parameters()) > 26_000_000
    if heavy:  # VGG, AlexNet, ResNet-101/152, DenseNet-161: shapes checked on the meta device
        assert net(torch.empty(2, 3, 64, 64, device="meta")).shape == (2, 7)
    else:
        net = create_model(name, num_classes=7, input_size=64 if small else None)
    info = model_info(net)
    assert isinstance(info, ModelInfo)
    assert info.arch == name
    assert info.weights == "random"
    assert info.class_names == [f"class_{i}" for i in range(7)]
    assert info.preprocessing == Preprocessing(64 if small else 224, IMAGENET_MEAN, IMAGENET_STD)
    assert not net.training
    assert info.default_layers
    for layer in info.default_layers:
        resolve_layer(net, layer)
    for layer in layer_labels(net):
        resolve_layer(net, layer)
    if heavy:
        return
    # A small batch at a reduced size (the networks pool adaptively).
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    # a dense head (colourisation) gives a class per conv5 position (stride 8)
    assert out.shape == ((2, 7, 8, 8) if name == "mini_alexnet_dense" else (2, 7))
    assert torch.isfinite(out).all()


def test_default_layers():
    assert model_info(create_model("alexnet")).default_layers == [
        "features.1", "features.2", "features.4", "features.5", "features.7",
        "features.9", "features.11", "features.12", "classifier.2", "classifier.5",
    ]
    assert model_info(create_model("squeezenet1_0")).default_layers == [
        "features.7", "features.10", "features.12"]
    assert model_info(create_model("resnet18")).default_layers == [
        "layer1", "layer2", "layer3", "layer4"]
    mini = create_model("mini_alexnet", num_classes=3)
    assert model_info(mini).default_layers == MINI_ALEXNET_LAYERS


def test_vgg16_default_layers_and_labels():
    spec = model_spec("vgg16")
    assert spec.default_layers == (
        "features.3", "features.8", "features.15", "features.22", "features.29", "features.30",
        "classifier.1", "classifier.4",
    )
    labels = spec.layer_labels
    assert (labels["features.29"], labels["features.30"], labels["features.28"]) == (
        "conv5_3", "pool5", "conv5_3 (pre-ReLU)")
    bn = model_spec("vgg16_bn").layer_labels
    assert (bn["features.42"], bn["features.43"]) == ("conv5_3", "pool5")


def test_alexnet_layer_labels_follow_the_paper():
    labels = layer_labels(create_model("alexnet"))
    assert [labels[k] for k in ("features.1", "features.2", "features.4", "features.5",
                                 "features.7", "features.9", "features.11", "features.12",
                                 "classifier.2", "classifier.5")] == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7"]
    assert layer_labels(nn.Linear(2, 2)) == {}


def test_unknown_architecture_suggests_close_matches():
    with pytest.raises(LookupError, match="resnet18") as info:
        create_model("resnet-18")
    assert "did you mean" in str(info.value)
    with pytest.raises(LookupError, match="alexnet"):
        create_model("alexnett")


def test_num_classes_and_class_names():
    net = create_model("resnet18")
    assert net.fc.out_features == 1000
    assert model_info(net).class_names[:2] == ["class_0", "class_1"]
    net = create_model("resnet18", class_names=["cat", "dog", "emu"])
    assert net.fc.out_features == 3
    assert model_info(net).class_names == ["cat", "dog", "emu"]
    net = create_model("squeezenet1_0", class_names="imagenet")
    assert model_info(net).class_names[:3] == ["tench", "goldfish", "great white shark"]
    assert len(imagenet_class_names()) == 1000
    with pytest.raises(ValueError, match="2 class names given for 3 classes"):
        create_model("resnet18", num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="'imagenet'"):
        create_model("resnet18", class_names="places")
    with pytest.raises(ValueError, match="positive int"):
        create_model("resnet18", num_classes=0)


def test_mini_alexnet_needs_num_classes():
    with pytest.raises(ValueError, match="needs num_classes"):
        create_model("mini_alexnet")
    net = create_model("mini_alexnet", class_names=["a", "b"], width=8)
    assert net.classifier.out_features == 2
    assert net.conv1.conv.out_channels == 8
    assert model_info(net).preprocessing.input_size == 128


def test_builder_kwargs_are_passed_and_checked():
    net = create_model("alexnet", num_classes=4, dropout=0.1)
    assert net.classifier[0].p == 0.1
    with pytest.raises(ValueError, match="bad arguments for alexnet"):
        create_model("alexnet", no_such_option=1)


def test_register_model():
    spec = ModelSpec(
        name="_tiny_test_net",
        builder=lambda num_classes: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(num_classes)),
        default_layers=("0",), input_size=32, num_classes=2,
    )
    register_model(spec)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_model(spec)
        net = create_model("_tiny_test_net")
        assert model_info(net).preprocessing.input_size == 32
        assert model_info(net).default_layers == ["0"]
        register_model(spec, overwrite=True)
    finally:
        from unitscope.models import registry

        registry._REGISTRY.pop("_tiny_test_net", None)
    assert "_tiny_test_net" not in list_models()
