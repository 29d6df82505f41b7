"""Empirical receptive fields (SPEC section 4): known answers, crop == naive, unit segmentations."""

from __future__ import annotations

import json
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from toys import UnlabelledTensorPool, hook_count
from unitscope.experiments import (
    EmpiricalRFResult,
    RFWindow,
    UnitSegmentationsResult,
    default_occluder,
    empirical_receptive_fields,
    rf_size,
    summarise_receptive_fields,
    unit_segmentations,
)
from unitscope.models.rf_window import as_window, theoretical_window
from unitscope.models.mini_alexnet import MiniAlexNet
from unitscope.report.pictures import unit_strip

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def two_positive_convs() -> nn.Sequential:
    """Two 3x3 convolutions with all-one weights, no bias, no nonlinearity: RF 5, stride 1, start -2."""
    net = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 1, 3, padding=1, bias=False),
        conv2=nn.Conv2d(1, 1, 3, padding=1, bias=False),
    ))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    return net


def peaked_image(size: int = 16, centre: tuple[int, int] = (8, 8)) -> torch.Tensor:
    image = torch.full((3, size, size), 2.0)
    image[:, centre[0], centre[1]] = 3.0
    return image


def test_default_occluder_scales_the_papers_11_and_3():
    assert default_occluder(224) == (11, 3)
    assert default_occluder(128) == (6, 2)
    assert default_occluder(448) == (22, 6)
    assert default_occluder(8) == (1, 1)


def test_rf_size_is_the_side_of_the_square_of_equal_area():
    averaged = np.zeros((9, 9))
    averaged[2:5, 3:7] = 1.0  # 12 pixels at the peak
    assert rf_size(averaged) == math.sqrt(12)
    averaged[0, 0] = 0.5  # exactly half the peak: not above it
    assert rf_size(averaged) == math.sqrt(12)
    averaged[4, 4] = 4.0  # a new peak: only it is above 2
    assert rf_size(averaged) == 1.0
    assert math.isnan(rf_size(np.zeros((5, 5))))


def test_theoretical_window_matches_the_mini_alexnet_docstring():
    # (was chain_window, the run-order fold that duplicated models.receptive_field; same numbers)
    net = MiniAlexNet(3, width=4, input_size=64)
    sizes = {layer: theoretical_window(net, layer, input_shape=(64, 64)).size
             for layer in ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]}
    assert sizes == {"conv1": 7, "pool1": 11, "conv2": 27, "pool2": 35, "conv3": 51, "conv4": 67,
                     "conv5": 83, "pool5": 99}
    assert theoretical_window(net, "pool5", input_shape=(64, 64)) == RFWindow(99, 16, -49)


def test_as_window_reads_the_models_receptive_field_convention():
    class Field:  # unitscope.models.ReceptiveField: offset = centre of unit 0's window
        size, stride, offset = 27, 4, 0.0
    assert as_window(Field()) == RFWindow(27, 4, -13)
    assert as_window((5, 1, -2)) == RFWindow(5, 1, -2)
    with pytest.raises(ValueError, match="size, stride"):
        as_window(object())


def test_empirical_rf_of_two_positive_convs_is_their_analytic_support():
    """Known answer: with all-one 3x3 kernels, occluding pixel (y, x) changes the unit at the
    centre by tri(dy) * tri(dx) * sum_c (image - noise), tri = [1, 2, 3, 2, 1]: exactly the
    5x5 support, with exactly these values."""
    net = two_positive_convs()
    data = UnlabelledTensorPool(peaked_image().unsqueeze(0))
    result = empirical_receptive_fields(net, "conv2", data, top_k=1, occluder=1, stride=1,
                                        rf=(5, 1, -2), **IDENTITY)
    assert result.locations[0, 0].tolist() == [8, 8]
    r = result.radius
    assert r == 2 + 1 + 1
    support = result.maps[0] > 0
    expected_support = np.zeros_like(support)
    expected_support[r - 2:r + 3, r - 2:r + 3] = True
    assert (support == expected_support).all()
    # the exact values, from the documented noise: uniform [0, 1], one patch per grid position
    noise = torch.rand((16 * 16, 1, 1, 3), generator=torch.Generator().manual_seed(0)).view(16, 16, 3)
    image = peaked_image().permute(1, 2, 0)
    tri = [1, 2, 3, 2, 1]
    expected = np.zeros_like(result.maps[0], dtype=np.float64)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            y, x = 8 + dy, 8 + dx
            change = tri[dy + 2] * tri[dx + 2] * float((image[y, x] - noise[y, x]).sum())
            expected[r + dy, r + dx] = change
    np.testing.assert_allclose(result.maps[0], expected, rtol=1e-5)
    assert result.theoretical == RFWindow(5, 1, -2)
    # 25 touching positions + 1 unoccluded reference, against 256 full-image copies
    assert result.stats["copies"] == 26
    assert result.stats["copies_naive"] == 257


def test_default_theoretical_rf_comes_from_the_architecture():
    net = two_positive_convs()
    data = UnlabelledTensorPool(peaked_image().unsqueeze(0))
    result = empirical_receptive_fields(net, "conv2", data, top_k=1, occluder=1, stride=1, **IDENTITY)
    assert result.theoretical == RFWindow(5, 1, -2)
    assert result.summary()["theoretical_size"].tolist() == [5]


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2", "pool2", "conv4", "pool5"])
def test_rf_crop_equals_full_image_occlusion(layer):
    """The RF-cropped sweep gives the naive sweep's maps (float tolerance) with fewer pixels."""
    torch.manual_seed(3)
    net = MiniAlexNet(4, width=4, input_size=32)
    images = torch.randn(4, 3, 32, 32)
    images[1, :, :5, :5] += 4.0  # maxima at the border too
    images[2, :, -5:, -5:] += 4.0
    data = UnlabelledTensorPool(images)
    options = dict(top_k=2, occluder=4, stride=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    crop = empirical_receptive_fields(net, layer, data, crop=True, **options)
    naive = empirical_receptive_fields(net, layer, data, crop=False, **options)
    assert (crop.top_ids == naive.top_ids).all()
    assert (crop.locations == naive.locations).all()
    scale = float(np.abs(naive.maps).max())
    assert scale > 0
    np.testing.assert_allclose(crop.maps, naive.maps, atol=1e-5 * scale, rtol=1e-4)
    np.testing.assert_allclose(crop.sizes, naive.sizes)
    assert naive.stats["pixels"] == naive.stats["pixels_naive"]
    assert crop.stats["pixels"] <= naive.stats["pixels"]
    if crop.theoretical.size <= 11:
        assert crop.stats["pixels"] < naive.stats["pixels"] / 2
    assert naive.stats["copies"] == naive.stats["copies_naive"]


def test_locations_at_the_border_use_the_networks_own_padding():
    """A max in the corner: the window leaves the image, the crop keeps the border."""
    net = two_positive_convs()
    image = torch.zeros((1, 3, 12, 12))
    image[0, :, 0, 0] = 9.0  # conv2 ties at (0, 0) and (1, 1): the first maximum is taken
    data = UnlabelledTensorPool(image)
    crop = empirical_receptive_fields(net, "conv2", data, top_k=1, occluder=2, stride=1, **IDENTITY)
    naive = empirical_receptive_fields(net, "conv2", data, top_k=1, occluder=2, stride=1, crop=False,
                                       **IDENTITY)
    assert crop.locations[0, 0].tolist() == [0, 0]
    np.testing.assert_allclose(crop.maps, naive.maps, rtol=1e-6)


def test_a_wrong_theoretical_rf_is_caught_by_the_check():
    torch.manual_seed(0)
    net = MiniAlexNet(4, width=4, input_size=48)
    data = UnlabelledTensorPool(torch.randn(2, 3, 48, 48))
    with pytest.raises(RuntimeError, match="does not reproduce the full forward"):
        empirical_receptive_fields(net, "conv2", data, top_k=1, rf=(7, 4, -3), occluder=5, stride=3)
    assert hook_count(net) == 0


def test_one_set_of_occlusions_serves_every_unit_of_an_image():
    torch.manual_seed(0)
    net = MiniAlexNet(4, width=4, input_size=32)
    data = UnlabelledTensorPool(torch.randn(3, 3, 32, 32))
    naive = empirical_receptive_fields(net, "conv3", data, top_k=3, occluder=4, stride=2, crop=False)
    # every unit has all three images in its top 3, yet each image is swept once
    assert naive.stats["images"] == 3
    assert naive.stats["copies"] == 3 * (1 + 15 * 15)
    assert (naive.top_ids >= 0).all() and naive.top_ids.shape == (12, 3)


def test_units_option_and_result_tables(tmp_path):
    torch.manual_seed(0)
    net = MiniAlexNet(4, width=4, input_size=32)
    data = UnlabelledTensorPool(torch.randn(4, 3, 32, 32))
    result = empirical_receptive_fields(net, "conv2", data, units=[5, 1], top_k=2, network="toy")
    assert result.units.tolist() == [5, 1]
    frame = result.to_frame()
    assert frame["unit"].tolist() == [5, 1]
    assert frame["n_images"].tolist() == [2, 2]
    assert (frame["theoretical_size"] == 27).all()
    summary = summarise_receptive_fields([result])
    assert summary.loc[0, "n_units"] == 2 and summary.loc[0, "network"] == "toy"
    assert summary.loc[0, "rf_mean"] == pytest.approx(float(np.nanmean(result.sizes)))
    result.save(tmp_path)
    for name in ["units.csv", "layer.csv", "maps.npz", "rf.json"]:
        assert (tmp_path / name).is_file(), name
    # no pictures in the result: rf.json names the units whose maps (in maps.npz) the report draws
    assert json.loads((tmp_path / "rf.json").read_text())["pictures"] == [5, 1]
    loaded = EmpiricalRFResult.load(tmp_path)
    np.testing.assert_array_equal(loaded.maps, result.maps)
    assert loaded.theoretical == result.theoretical and loaded.layer == "conv2"
    assert loaded.to_frame().equals(result.to_frame())


def test_bad_input_raises_clear_errors():
    net = MiniAlexNet(4, width=4, input_size=32)
    data = UnlabelledTensorPool(torch.randn(2, 3, 32, 32))
    with pytest.raises(LookupError, match="conv9"):
        empirical_receptive_fields(net, "conv9", data)
    with pytest.raises(ValueError, match="empty"):
        empirical_receptive_fields(net, "conv2", UnlabelledTensorPool(torch.zeros(0, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        empirical_receptive_fields(net, "fc6", data)
    with pytest.raises(ValueError, match="out of range"):
        empirical_receptive_fields(net, "conv2", data, units=[99])
    with pytest.raises(ValueError, match="top_k"):
        empirical_receptive_fields(net, "conv2", data, top_k=0)
    assert hook_count(net) == 0


def test_model_mode_is_restored():
    net = MiniAlexNet(4, width=4, input_size=32)
    net.train()
    empirical_receptive_fields(net, "conv1", UnlabelledTensorPool(torch.randn(1, 3, 32, 32)), top_k=1)
    assert all(m.training for m in net.modules())


def test_unit_segmentations_mask_the_active_region(tmp_path):
    """A 1x1 conv that copies channel 0: the mask is where the image is bright."""
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 1, 1, bias=False)))
    with torch.no_grad():
        net.conv.weight.zero_()
        net.conv.weight[0, 0] = 1.0
    images = torch.zeros(3, 3, 8, 8)
    images[0, :, 2:4, 2:6] = 1.0  # 8 bright pixels, max 1
    images[1, :, 0:2, 0:2] = 0.8
    images[2, :, 5, 5] = 0.3
    data = UnlabelledTensorPool(images)
    result = unit_segmentations(net, "conv", data, units=[0], top=2, threshold=0.5, dim=0.0, **IDENTITY)
    table = result.table
    assert table["index"].tolist() == [0, 1]
    assert table["activation"].tolist() == pytest.approx([1.0, 0.8])
    assert table["mask_fraction"].tolist() == [8 / 64, 4 / 64]
    tile = unit_strip(result.strip(0), dim=result.dim)  # the result holds arrays; the report draws the strip
    assert tile.shape == (8, 8 * 2 + 2, 3)
    assert (tile[2:4, 2:6] == 255).all() and tile[:2, :8].sum() == 0
    result.save(tmp_path)
    loaded = UnitSegmentationsResult.load(tmp_path)
    assert (unit_strip(loaded.strip(0), dim=loaded.dim) == tile).all()
    assert loaded.table.equals(result.table)


def test_unit_segmentations_with_the_empirical_rf():
    net = two_positive_convs()
    data = UnlabelledTensorPool(peaked_image().unsqueeze(0))
    rf = empirical_receptive_fields(net, "conv2", data, top_k=1, occluder=1, stride=1, rf=(5, 1, -2),
                                    **IDENTITY)
    result = unit_segmentations(net, "conv2", data, units=[0], top=1, mask="rf", rf=rf, **IDENTITY)
    region = rf.maps[0] > rf.maps[0].max() / 2
    assert result.table["mask_fraction"].tolist() == [region.sum() / 256]
    with pytest.raises(ValueError, match="needs rf"):
        unit_segmentations(net, "conv2", data, units=[0], mask="rf")


@pytest.mark.slow
def test_real_network_crop_reproduces_the_full_pass(realdata):
    """SqueezeNet's fire modules (branches, concatenation): the RF crop is checked against the full
    forward pass for every crop (check=True raises otherwise), and equals the naive sweep."""
    from unitscope.data.pools import PlainPool
    from unitscope.models import create_model, model_info

    net = create_model("squeezenet1_0", weights=realdata / "models" / "squeezenet1_0_imagenet.pth")
    pool = PlainPool(realdata / "imagenet_samples", source="objects",
                     preprocessing=model_info(net).preprocessing).subset(range(2))
    options = dict(units=[0, 7], top_k=1, occluder=11, stride=20)
    crop = empirical_receptive_fields(net, "features.4", pool, **options)
    naive = empirical_receptive_fields(net, "features.4", pool, crop=False, **options)
    assert crop.theoretical.size < 224
    np.testing.assert_allclose(crop.maps, naive.maps, atol=1e-4 * float(np.abs(naive.maps).max()))
    assert crop.stats["pixels"] < naive.stats["pixels"]
