"""Theoretical receptive fields: known answers for real architectures, and an empirical check.

Sources of the expected numbers
-------------------------------
- AlexNet (conv1 11 ... pool5 195): Zhou et al., "Object Detectors Emerge in
  Deep Scene CNNs", ICLR 2015, Table 1 (theoretical sizes), and Araujo, Norris,
  Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill
  2019 (alexnet_v2: 195).
- VGG16 (conv5_3 196, pool5 212): Araujo et al., Distill 2019 (vgg_16: 212 at
  pool5); conv5_3 = 212 - 16 (pool5's 2x2 kernel adds 1 x stride 16).
- Inception v3 (1311): Araujo et al., Distill 2019 (inception_v3: 1311).
- ResNet18 / ResNet50 (torchvision layout): derived by hand below with the
  recurrence of Araujo et al. (size += (k - 1) * stride_so_far).
- mini_alexnet: unitscope's own architecture, derived by hand in
  ``unitscope/models/mini_alexnet.py``.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from unitscope.models import (
    MiniAlexNet,
    ReceptiveField,
    receptive_field,
    theoretical_receptive_fields,
)


@pytest.fixture(scope="module")
def alexnet_rfs():
    return theoretical_receptive_fields(torchvision.models.alexnet(weights=None))


@pytest.mark.parametrize(
    "layer, size, stride, offset",
    [
        ("features.0", 11, 4, 3), ("features.1", 11, 4, 3),     # conv1 (and its ReLU)
        ("features.2", 19, 8, 7),                               # pool1
        ("features.3", 51, 8, 7), ("features.4", 51, 8, 7),     # conv2
        ("features.5", 67, 16, 15),                             # pool2
        ("features.6", 99, 16, 15), ("features.7", 99, 16, 15),  # conv3
        ("features.8", 131, 16, 15), ("features.9", 131, 16, 15),  # conv4
        ("features.10", 163, 16, 15), ("features.11", 163, 16, 15),  # conv5
        ("features.12", 195, 32, 31), ("features", 195, 32, 31),  # pool5
        ("avgpool", 195, 32, 31),  # adaptive pooling to 6x6 of a 6x6 map is the identity
    ],
)
def test_alexnet(alexnet_rfs, layer, size, stride, offset):
    rf = alexnet_rfs[layer]
    assert (rf.size, rf.stride, rf.offset) == (size, stride, offset)
    assert rf.size_hw == (size, size) and rf.stride_hw == (stride, stride)


def test_alexnet_fully_connected_layers_are_global(alexnet_rfs):
    for layer in ("classifier", "classifier.1", "classifier.2", "classifier.5", "classifier.6"):
        assert alexnet_rfs[layer].is_global
        assert alexnet_rfs[layer].size is None and alexnet_rfs[layer].stride is None


def test_vgg16():
    # The RF does not depend on the input size; 64 px keeps the test fast.
    rfs = theoretical_receptive_fields(
        torchvision.models.vgg16(weights=None, init_weights=False), input_size=64
    )
    # conv1_1, conv1_2, pool1, conv2_2, pool2, conv3_3, pool3, conv4_3, pool4, conv5_3, pool5
    expected = {
        "features.0": 3, "features.2": 5, "features.4": 6, "features.7": 14, "features.9": 16,
        "features.14": 40, "features.16": 44, "features.21": 92, "features.23": 100,
        "features.28": 196, "features.29": 196, "features.30": 212,
    }
    assert {k: rfs[k].size for k in expected} == expected
    assert (rfs["features.28"].stride, rfs["features.30"].stride) == (16, 32)
    # pool1 (2x2, stride 2) after two 3x3 convs: first window covers pixels -2..3
    assert rfs["features.4"].offset == 0.5
    assert rfs["features.4"].start_hw == (-2, -2)


def test_resnet18():
    # conv1 7x7/2 p3: 7 (stride 2); maxpool 3x3/2: 7 + 2*2 = 11 (stride 4);
    # layer1: four 3x3 convs at stride 4: 11 + 4*2*4 = 43;
    # layer2: 3x3/2 at stride 4 (+8, stride 8), three 3x3 at stride 8 (+48): 99;
    # layer3: +2*8, stride 16, then +3*2*16: 211;  layer4: +2*16, stride 32, +3*2*32: 435.
    # The 1x1 shortcut windows lie inside the main branch's (same centre).
    rfs = theoretical_receptive_fields(torchvision.models.resnet18(weights=None), input_size=64)
    got = {k: (rfs[k].size, rfs[k].stride, rfs[k].offset)
           for k in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")}
    assert got == {
        "conv1": (7, 2, 0), "maxpool": (11, 4, 0), "layer1": (43, 4, 0),
        "layer2": (99, 8, 0), "layer3": (211, 16, 0), "layer4": (435, 32, 0),
    }
    assert rfs["layer2.0.downsample"].size == 43 + 0  # 1x1 conv adds nothing
    assert rfs["layer1.0.relu"].size == 27  # shared ReLU: its last call, after the addition
    assert rfs["avgpool"].is_global and rfs["fc"].is_global


def test_resnet50():
    # torchvision's v1.5 bottleneck (stride in the 3x3): one 3x3 per block.
    # maxpool 11 (stride 4); layer1 3 blocks: 11 + 3*2*4 = 35; layer2: 35 + 2*4 = 43
    # (stride 8) + 3*2*8 = 91; layer3: 91 + 2*8 = 107 (stride 16) + 5*2*16 = 267;
    # layer4: 267 + 2*16 = 299 (stride 32) + 2*2*32 = 427.
    rfs = theoretical_receptive_fields(torchvision.models.resnet50(weights=None), input_size=64)
    assert [rfs[f"layer{i}"].size for i in range(1, 5)] == [35, 91, 267, 427]
    assert [rfs[f"layer{i}"].stride for i in range(1, 5)] == [4, 8, 16, 32]


def test_inception_v3_matches_distill():
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    rf = receptive_field(net, "Mixed_7c", input_size=96)
    assert (rf.size, rf.stride) == (1311, 32)


def test_mini_alexnet():
    rfs = theoretical_receptive_fields(MiniAlexNet(10), input_size=128)
    sizes = {k: rfs[k].size for k in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")}
    assert sizes == {"conv1": 7, "pool1": 11, "conv2": 27, "pool2": 35,
                     "conv3": 51, "conv4": 67, "conv5": 83, "pool5": 99}
    assert [rfs[k].stride for k in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool5")] == [
        2, 4, 4, 8, 8, 16]
    assert rfs["conv1.conv"] == rfs["conv1.relu"] == rfs["conv1"]
    assert rfs["fc6"].is_global and rfs["classifier"].is_global


def test_every_torchvision_layer_of_squeezenet_and_mobilenet_is_known():
    for net in (torchvision.models.squeezenet1_0(weights=None),
                torchvision.models.mobilenet_v2(weights=None)):
        rfs = theoretical_receptive_fields(net, input_size=64)
        called = [n for n, m in net.named_modules() if n]
        assert set(called) == set(rfs)
    net = torchvision.models.squeezenet1_0(weights=None)
    assert receptive_field(net, "features.12", input_size=64).size == 155


# --------------------------------------------------------------------------
# Empirical check: in a linear network with positive weights, the gradient of
# one output unit with respect to the input is non-zero exactly on the input
# pixels the unit depends on, i.e. on its receptive field clipped to the image.


def _positive(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.uniform_(module.weight, 0.1, 1.0)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net.eval()


def _empirical_window(
    net: nn.Module, size: int, row: int, col: int, *, solid: bool = True
) -> tuple[int, int, int, int]:
    """Bounding box (top, left, bottom, right) of the pixels one output unit depends on."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    net(x)[0, 0, row, col].backward()
    nonzero = x.grad[0, 0] != 0
    rows = nonzero.any(1).nonzero().flatten()
    cols = nonzero.any(0).nonzero().flatten()
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    if solid:  # no holes: every pixel of the bounding box is reached
        assert int(nonzero.sum()) == (box[2] - box[0]) * (box[3] - box[1])
    return box


def _chain() -> nn.Module:
    # size/stride/start: 3/1/-1 -> 7/2/-3 -> 11/4/-5 -> 27/4/-5 (dilation 2) -> 31/8/-5
    return _positive(nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.Conv2d(2, 2, 5, stride=2, padding=2),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(2, 2, 3, dilation=2),
        nn.AvgPool2d(2),
    ))


def test_chain_known_answer():
    rf = theoretical_receptive_fields(_chain(), input_size=64)["4"]
    assert (rf.size, rf.stride, rf.offset, rf.start_hw) == (31, 8, 10, (-5, -5))
    assert rf.box(2, 3) == (11, 19, 42, 50)
    assert rf.box(0, 0, clip_to=(64, 64)) == (0, 0, 26, 26)


@pytest.mark.parametrize("row, col", [(2, 3), (0, 0), (5, 5), (0, 4)])
def test_chain_matches_gradient(row, col):
    net = _chain()
    rf = theoretical_receptive_fields(net, input_size=64)["4"]
    assert _empirical_window(net, 64, row, col) == rf.box(row, col, clip_to=(64, 64))


class _Branches(nn.Module):
    """A residual addition of two branches whose windows are not nested, then a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.main = nn.Sequential(nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, padding=1))
        self.shortcut = nn.Sequential(nn.ZeroPad2d((0, 4, 0, 4)), nn.Conv2d(2, 2, 5, stride=2))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.head = nn.Conv2d(4, 1, 3)

    def forward(self, x):
        x = self.stem(x)
        y = self.main(x) + self.shortcut(x)
        return self.head(torch.cat([y, self.pool(x)], dim=1))


def test_branches_known_answer():
    rfs = theoretical_receptive_fields(_positive(_Branches()), input_size=32)
    # stem: pixels [-1, 1]; main: 3x3/2 p1 -> [-2, 2] (stride 2), 3x3 p1 -> [-4, 4];
    # shortcut: pad 0 in front, 5x5/2 -> [-1, 5]; pool: 3x3/2 p1 -> [-2, 2].
    assert (rfs["main"].size, rfs["main"].start_hw) == (9, (-4, -4))
    assert (rfs["shortcut"].size, rfs["shortcut"].start_hw) == (7, (-1, -1))
    assert (rfs["pool"].size, rfs["pool"].start_hw) == (5, (-2, -2))
    # head: union of [-4, 4] and [-1, 5] is [-4, 5] (10 px), then 3x3 at stride 2
    assert (rfs["head"].size, rfs["head"].stride, rfs["head"].start_hw) == (14, 2, (-4, -4))


@pytest.mark.parametrize("row, col", [(3, 4), (0, 0), (13, 13)])
def test_branches_match_gradient(row, col):
    net = _positive(_Branches())
    rf = theoretical_receptive_fields(net, input_size=32)["head"]
    # The union of two offset squares is not a rectangle (its corners are
    # missing); the RF is its bounding box.
    empirical = _empirical_window(net, 32, row, col, solid=False)
    assert empirical == rf.box(row, col, clip_to=(32, 32))


# --------------------------------------------------------------------------


def test_unmodelled_op_makes_rf_unknown():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2), nn.Conv2d(4, 4, 3))
    rfs = theoretical_receptive_fields(net, input_size=16)
    assert rfs["0"].size == 3
    assert "1" not in rfs and "2" not in rfs
    with pytest.raises(ValueError, match="Upsample"):
        receptive_field(net, "2", input_size=16)


def test_squeeze_and_excitation_gates_make_later_layers_global():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1), nn.Sigmoid())
            self.after = nn.Conv2d(4, 4, 3)

        def forward(self, x):
            x = self.conv(x)
            return self.after(x * self.gate(x))

    rfs = theoretical_receptive_fields(SE(), input_size=16)
    assert rfs["conv"].size == 3
    assert rfs["gate"].is_global and rfs["after"].is_global


def test_channels_last_linear_is_pointwise():
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 5)
            self.mix = nn.Linear(4, 4)
            self.fc = nn.Linear(4 * 12 * 12, 2)

        def forward(self, x):
            y = self.mix(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return self.fc(y.flatten(1))

    rfs = theoretical_receptive_fields(ChannelsLast(), input_size=16)
    assert rfs["mix"].size == 5
    assert rfs["fc"].is_global


def test_unknown_layer_lookup_error():
    with pytest.raises(LookupError, match="features.12"):
        receptive_field(torchvision.models.alexnet(weights=None), "features.121")


def test_model_left_unchanged():
    net = MiniAlexNet(5).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    theoretical_receptive_fields(net, input_size=128)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks for m in net.modules())


def test_untraceable_model_is_a_value_error():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.conv(x)
            return x

    with pytest.raises(ValueError, match="cannot trace"):
        theoretical_receptive_fields(DataDependent(), input_size=8)


def test_global_receptive_field_has_no_box():
    rf = ReceptiveField(size=None, stride=None, offset=None)
    assert rf.is_global and rf.start_hw is None
    with pytest.raises(ValueError, match="whole input"):
        rf.box(0, 0)
    assert ReceptiveField(size=11, stride=4, offset=3).to_dict() == {"size": 11, "stride": 4, "offset": 3}
