"""Library-side refusals (notebook users call the experiments directly): layers, options, mismatches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from toys import BrightToyPool
from unitscope.experiments._common import check_labels, check_spatial_layers, spatial_size
from unitscope.experiments.ablate import ablate_detectors
from unitscope.experiments.dissect import dissect
from unitscope.experiments.localize import check_dissected_network, localize_objects


class Net(nn.Module):
    """conv (N, 4, 8, 8) -> pool (N, 4, 1, 1) -> flat (N, 4) -> head (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.flat(self.pool(self.conv(x))))


def test_spatial_size_is_the_one_definition_of_a_map():
    assert spatial_size(torch.zeros(2, 3, 5, 7)) == (5, 7)
    assert spatial_size(torch.zeros(2, 3)) is None
    assert spatial_size(torch.zeros(2, 49, 3)) == (7, 7)  # a token grid of 7x7 patches
    assert spatial_size(torch.zeros(2, 50, 3)) == (7, 7)  # ... after a class token
    assert spatial_size(torch.zeros(2, 1, 1, 1)) is None  # one position is not a map
    assert spatial_size((torch.zeros(1, 1, 2, 2),)) is None


def test_check_spatial_layers_returns_shapes_and_refuses_the_rest():
    net = Net()
    assert check_spatial_layers(net, ["conv"], input_size=8) == {"conv": (4, 8, 8)}
    with pytest.raises(ValueError, match=r"layer 'pool' outputs \(1, 4, 1, 1\): a 1x1 map .*not a spatial map.* "
                                         r"spatial layers of this network: conv$"):
        check_spatial_layers(net, ["conv", "pool"], input_size=8)
    with pytest.raises(ValueError, match=r"layer 'flat' outputs \(1, 4\)"):
        check_spatial_layers(net, ["flat"], input_size=8)
    assert all(not m._forward_hooks for m in net.modules())


def test_the_probe_is_the_pool_s_first_image():
    net = Net()
    pool = [(torch.zeros(3, 6, 5), {"index": 0})]
    assert check_spatial_layers(net, ["conv"], pool) == {"conv": (4, 6, 5)}


def test_labels_out_of_range_are_refused():
    class Pool(list):
        labels = [0, 1, 4, -1]

    check_labels(Pool(), 5)
    check_labels(Pool(), None)  # size unknown: nothing to check against
    with pytest.raises(ValueError, match=r"class index 4, out of range for a model with 3 classes \(0 to 2\)"):
        check_labels(Pool(), 3)


def test_library_refuses_nonsense_thresholds_and_other_networks():
    torch.manual_seed(0)
    net, other = Net(), Net()
    pool = BrightToyPool()
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\), got nan"):
        dissect(net, "conv", pool, iou_threshold=float("nan"))
    with pytest.raises(ValueError, match="not a spatial map"):
        dissect(net, "pool", pool)
    with pytest.raises(ValueError, match="layers are named more than once: conv"):
        dissect(net, ["conv", "conv"], pool)
    dissection = dissect(net, "conv", pool, batch_size=3, network="mine", quantile=0.1)
    assert check_dissected_network(net, dissection) == dissection.config["weights"]
    for run in (localize_objects, ablate_detectors):
        with pytest.raises(ValueError, match=r"the dissection of 'mine' was made from other weights"):
            run(other, "conv", pool, dissection=dissection)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\), got -1"):
        localize_objects(net, "conv", pool, dissection=dissection, iou_threshold=-1)
