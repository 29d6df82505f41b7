"""Incremental inference (unitscope.models.incremental): the recomputed rectangles equal the full forward.

Every supported layer type on its own and in chains, random seeded weights, occluders at every
position of a grid that runs past the borders; and the fallback (a branch, a pooling it does not
support, a functional step) refused with its reason, the RF sweep then running the full forward.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toys import UnlabelledTensorPool
from unitscope.experiments import empirical_receptive_fields
from unitscope.hooks import Trace
from unitscope.models.incremental import IncrementalChain
from unitscope.models.mini_alexnet import MiniAlexNet

SIZE, OCCLUDER = 23, 4  # odd on purpose: strides and ceil modes meet the border


def seq(*modules) -> nn.Sequential:
    return nn.Sequential(OrderedDict((f"m{k}", m) for k, m in enumerate(modules)))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels)
    norm.running_mean.uniform_(-0.5, 0.5)
    norm.running_var.uniform_(0.5, 2.0)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.2, 0.2)
    return norm


NETWORKS = {
    "conv": lambda: seq(nn.Conv2d(3, 5, 3)),
    "conv padded": lambda: seq(nn.Conv2d(3, 5, 5, padding=2)),
    "conv stride 2": lambda: seq(nn.Conv2d(3, 5, 4, stride=2, padding=1)),
    "conv same": lambda: seq(nn.Conv2d(3, 5, 4, padding="same")),
    "conv dilated": lambda: seq(nn.Conv2d(3, 5, 3, padding=2, dilation=2)),
    "conv groups": lambda: seq(nn.Conv2d(3, 6, 3, padding=1, groups=3)),
    "conv rectangular": lambda: seq(nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2))),
    "max pool": lambda: seq(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3, stride=2, padding=1)),
    "max pool ceil": lambda: seq(nn.Conv2d(3, 4, 1), nn.MaxPool2d(2, ceil_mode=True)),
    "max pool dilated": lambda: seq(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3, stride=1, dilation=2)),
    "avg pool": lambda: seq(nn.Conv2d(3, 4, 1), nn.AvgPool2d(3, stride=2, padding=1)),
    "avg pool no pad": lambda: seq(nn.AvgPool2d(2, count_include_pad=False)),
    "relu": lambda: seq(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True)),
    "activations": lambda: seq(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.1), nn.Conv2d(4, 4, 3), nn.GELU(),
                               nn.Conv2d(4, 4, 1), nn.PReLU(4), nn.Tanh(), nn.Hardswish()),
    "batch norm": lambda: seq(nn.Conv2d(3, 4, 3, padding=1), batch_norm(4), nn.ReLU()),
    "local response norm": lambda: seq(nn.Conv2d(3, 6, 3, padding=1), nn.LocalResponseNorm(3)),
    "dropout and identity": lambda: seq(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.Identity(), nn.Dropout2d(0.5)),
    "nested chain": lambda: seq(seq(nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(inplace=True)),
                                nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                                seq(nn.Conv2d(6, 8, 3, padding=1), batch_norm(8), nn.ReLU()),
                                nn.LocalResponseNorm(2), nn.Conv2d(8, 4, 3, padding=1, dilation=1, groups=2),
                                nn.AvgPool2d(2)),
}


def occluded(image: torch.Tensor, positions, patches: torch.Tensor) -> torch.Tensor:
    """Copies of ``image`` (1, 3, H, W) with patch k at positions[k] (corner, may run past the border)."""
    batch = image.repeat(len(positions), 1, 1, 1)
    for k, (y, x) in enumerate(positions):
        y0, y1, x0, x1 = max(y, 0), min(y + OCCLUDER, SIZE), max(x, 0), min(x + OCCLUDER, SIZE)
        batch[k, :, y0:y1, x0:x1] = patches[k, :, y0 - y:y1 - y, x0 - x:x1 - x]
    return batch


def compare(net: nn.Module, layer: str, *, targets=None) -> float:
    """Largest difference between the chain's reading and the full forward, relative to the peak."""
    torch.manual_seed(1)
    image = torch.randn(1, 3, SIZE, SIZE)
    positions = [(y, x) for y in range(-OCCLUDER + 1, SIZE, 3) for x in range(-OCCLUDER + 1, SIZE, 2)]
    patches = torch.randn(len(positions), 3, OCCLUDER, OCCLUDER)
    batch = occluded(image, positions, patches)
    with torch.inference_mode():
        chain, why_not = IncrementalChain.of(net, layer, image)
        assert chain is not None, why_not
        with Trace(net, layer, stop=True) as trace:
            net(batch)
        full = trace.output
        h, w = full.shape[-2:]
        targets = targets or [(i, j) for i in range(h) for j in range(w)]
        prepared = chain.prepare(image, targets=targets)
        changed = np.asarray([(y, y + OCCLUDER, x, x + OCCLUDER) for y, x in positions])
        changed[::7] = 0  # some unoccluded copies (their rectangle empty)
        batch[::7] = image
        full[::7] = prepared.output[0]
        # one batch, two entries of ``prepared``: the copies are split between them
        which = np.arange(len(positions)) % 2
        values, origin = chain.run([prepared, prepared], which, batch, changed)
    ti, tj = (torch.as_tensor(t)[None, :] for t in zip(*targets))  # (1, T)
    ri, rj = ti - torch.as_tensor(origin[:, :1]), tj - torch.as_tensor(origin[:, 1:])  # (B, T)
    vh, vw = values.shape[-2:]
    inside = ((ri >= 0) & (ri < vh) & (rj >= 0) & (rj < vw))[:, None, :]  # (B, 1, T)
    copies = torch.arange(len(positions))[:, None]
    got = values[copies, :, ri.clamp(0, vh - 1), rj.clamp(0, vw - 1)].permute(0, 2, 1)  # (B, C, T)
    got = torch.where(inside, got, prepared.output[0][:, ti[0], tj[0]][None])
    worst = float((got - full[:, :, ti[0], tj[0]]).abs().max())
    # read(): every channel of every copy at every target, the last step computed at those alone
    b, c, t = (a.flatten() for a in torch.meshgrid(torch.arange(len(positions)), torch.arange(full.shape[1]),
                                                    torch.arange(ti.shape[1]), indexing="ij"))
    with torch.inference_mode():
        read = chain.read([prepared, prepared], which, batch, changed, b, c, ti[0][t], tj[0][t])
    worst = max(worst, float((read - full[b, c, ti[0][t], tj[0][t]]).abs().max()))
    return worst / float(full.abs().max())


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_incremental_path_equals_the_full_forward_on_every_supported_layer(name):
    torch.manual_seed(0)
    net = NETWORKS[name]().eval()
    last = list(dict(net.named_children()))[-1]
    assert compare(net, last) <= 1e-5


def test_reading_one_position_recomputes_less_and_is_still_exact():
    torch.manual_seed(0)
    net = NETWORKS["nested chain"]().eval()
    assert compare(net, "m5", targets=[(1, 2)]) <= 1e-5


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2", "pool2", "conv4", "conv5", "pool5"])
def test_mini_alexnet_layers_are_exact(layer):
    global SIZE
    torch.manual_seed(0)
    net = MiniAlexNet(3, width=4, input_size=48).eval()
    SIZE, saved = 48, SIZE
    try:
        assert compare(net, layer) <= 1e-5
    finally:
        SIZE = saved


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


class Functional(nn.Module):
    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.conv1, self.conv2, self.in_place = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), in_place

    def forward(self, x):
        x = self.conv1(x)
        x = x.mul_(2) if self.in_place else F.relu(x)  # a step that is no module
        return self.conv2(x)


@pytest.mark.parametrize("net, layer, reason", [
    (seq(Residual(), nn.Conv2d(3, 2, 1)), "m1", "not a chain of modules up to 'm1' ('m1', a Conv2d, does not"),
    (seq(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(4), nn.Conv2d(4, 2, 1)), "m2",
     "AdaptiveAvgPool2d is not a layer incremental inference supports"),
    (seq(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4)), "m1", "GroupNorm is not a layer"),
    (seq(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2, ceil_mode=True)), "m1", "AvgPool2d with ceil_mode"),
    (seq(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")), "m0", "padding_mode='reflect'"),
    (Functional(in_place=False), "conv2", "not a chain of modules"),
    (Functional(in_place=True), "conv2", "do not give the output of 'conv2' (forward has a step"),
])
def test_what_is_not_exact_is_refused_with_its_reason(net, layer, reason):
    chain, why_not = IncrementalChain.of(net.eval(), layer, torch.randn(1, 3, SIZE, SIZE))
    assert chain is None and reason in why_not


def rf_runs(net, layer, **options):
    coarse = torch.rand((3, 3, 6, 6), generator=torch.Generator().manual_seed(1))
    data = UnlabelledTensorPool(F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False))
    options = dict(top_k=2, occluder=4, stride=2, mean=(0.0,) * 3, std=(1.0,) * 3, **options)
    lines = []
    fast = empirical_receptive_fields(net, layer, data, log=lines.append, **options)
    slow = empirical_receptive_fields(net, layer, data, incremental=False, **options)
    return fast, slow, lines


@pytest.mark.parametrize("mode", ["exact", "adaptive"])
def test_the_rf_sweep_with_incremental_inference_gives_the_full_forward_maps(mode):
    torch.manual_seed(0)
    net = MiniAlexNet(3, width=4, input_size=32).eval()
    fast, slow, lines = rf_runs(net, "conv4", units=[0, 1, 2, 5], mode=mode)
    assert fast.stats["incremental"] is True and "incremental" not in slow.stats
    assert lines[1] == "conv4: incremental inference (each copy recomputes only what its occluder reaches)"
    assert fast.stats["copies"] == slow.stats["copies"]
    for a, b in zip(fast.maps, slow.maps):
        assert np.abs(a - b).max() <= 1e-5 * max(float(b.max()), 1e-12)


def test_a_network_it_cannot_run_takes_the_full_forward_and_says_why():
    torch.manual_seed(0)
    net = seq(Residual(), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1)).eval()
    fast, slow, lines = rf_runs(net, "m2")
    assert fast.stats["incremental"] is False and "not a chain of modules" in fast.stats["incremental_not"]
    assert "every copy through the whole network (no incremental inference: the network is not a chain" in lines[1]
    np.testing.assert_array_equal(fast.maps, slow.maps)
    with pytest.raises(ValueError, match="incremental inference cannot run layer 'm2': the network is not a chain"):
        empirical_receptive_fields(net, "m2", UnlabelledTensorPool(torch.rand(1, 3, 16, 16)), incremental=True)
