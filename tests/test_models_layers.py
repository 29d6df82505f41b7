"""Per-layer metadata read off the real modules."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from unitscope.models import (
    LayerInfo,
    MiniAlexNet,
    create_model,
    describe_layers,
    layer_info,
    layers_frame,
)


@pytest.fixture(scope="module")
def alexnet():
    return create_model("alexnet")


def test_alexnet_layers(alexnet):
    infos = describe_layers(alexnet, layers=["features.1", "features.2", "features.11", "features.12",
                                             "avgpool", "classifier.2", "classifier.6"])
    assert infos == [
        LayerInfo("features.1", "ReLU", 64, (55, 55), 4, 11, 4, 3),
        LayerInfo("features.2", "MaxPool2d", 64, (27, 27), 8, 19, 8, 7),
        LayerInfo("features.11", "ReLU", 256, (13, 13), 16, 163, 16, 15),
        LayerInfo("features.12", "MaxPool2d", 256, (6, 6), 32, 195, 32, 31),
        LayerInfo("avgpool", "AdaptiveAvgPool2d", 256, (6, 6), 32, 195, 32, 31),
        LayerInfo("classifier.2", "ReLU", 4096, None, None, None, None, None),
        LayerInfo("classifier.6", "Linear", 1000, None, None, None, None, None),
    ]


def test_all_layers_by_default(alexnet):
    infos = describe_layers(alexnet)
    assert [i.name for i in infos] == [n for n, _ in alexnet.named_modules() if n]
    assert infos[0] == LayerInfo("features", "Sequential", 256, (6, 6), 32, 195, 32, 31)


def test_resnet18_layers():
    net = create_model("resnet18", num_classes=10)
    infos = describe_layers(net, layers=["layer1", "layer2", "layer3", "layer4", "fc"], input_size=128)
    assert [(i.channels, i.spatial, i.stride, i.rf_size) for i in infos] == [
        (64, (32, 32), 4, 43), (128, (16, 16), 8, 99), (256, (8, 8), 16, 211),
        (512, (4, 4), 32, 435), (10, None, None, None),
    ]
    assert infos[0].kind == "Sequential"


def test_mini_alexnet_layers_at_its_input_size():
    net = create_model("mini_alexnet", num_classes=4)
    infos = {i.name: i for i in describe_layers(net, layers=net.unitscope_info.default_layers)}
    assert {k: (v.channels, v.spatial, v.stride, v.rf_size) for k, v in infos.items()} == {
        "conv1": (32, (64, 64), 2, 7), "pool1": (32, (32, 32), 4, 11),
        "conv2": (64, (32, 32), 4, 27), "pool2": (64, (16, 16), 8, 35),
        "conv3": (96, (16, 16), 8, 51), "conv4": (96, (16, 16), 8, 67),
        "conv5": (64, (16, 16), 8, 83), "pool5": (64, (8, 8), 16, 99),
        "fc6": (256, None, None, None), "fc7": (256, None, None, None),
    }


def test_layer_info_and_lookup_error(alexnet):
    assert layer_info(alexnet, "features.5") == LayerInfo("features.5", "MaxPool2d", 192, (13, 13), 16, 67, 16, 15)
    with pytest.raises(LookupError, match="close matches: features.1"):
        layer_info(alexnet, "features.1O")
    with pytest.raises(LookupError):
        describe_layers(alexnet, layers=["features.0", "nope"])


def test_layers_frame(alexnet):
    frame = layers_frame(alexnet, layers=["features.0", "classifier.1"])
    assert list(frame.columns) == ["layer", "kind", "channels", "height", "width", "stride",
                                   "rf_size", "rf_stride", "rf_offset", "tokens", "rf_note"]
    assert frame.iloc[0].tolist()[:9] == ["features.0", "Conv2d", 64, 55, 55, 4, 11, 4, 3.0]
    assert frame.loc[0, ["tokens", "rf_note"]].isna().all()
    assert frame.loc[1, "channels"] == 4096
    assert frame.loc[1, ["height", "width", "stride", "rf_size"]].isna().all()
    assert str(frame["rf_size"].dtype) == "Int64"


def test_model_mode_and_hooks_restored():
    net = MiniAlexNet(3, input_size=64).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    describe_layers(net, input_size=64)
    assert net.training
    assert not any(m._forward_hooks for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_input_size_is_a_value_error():
    net = MiniAlexNet(3, input_size=64)
    with pytest.raises(ValueError, match="forward pass of MiniAlexNet on a 32x32 input failed"):
        describe_layers(net, input_size=32)
    assert not any(m._forward_hooks for m in net.modules())


def test_untraceable_model_still_described():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=2)

        def forward(self, x):
            return self.conv(x) if x.sum() >= 0 else x

    (info,) = describe_layers(DataDependent(), input_size=17)
    assert info == LayerInfo("conv", "Conv2d", 5, (8, 8), 2, None, None, None)


def test_plain_torchvision_model_uses_224():
    info = layer_info(torchvision.models.squeezenet1_0(weights=None), "features.12")
    assert (info.channels, info.spatial, info.rf_size) == (512, (13, 13), 155)
