"""Decoded annotations are kept in a label cache and reused by later dissections of the same pool."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from toys import make_broden
from unitscope.data import BrodenPool
from unitscope.experiments.dissect import dissect
from unitscope.models import create_model, model_info

dissect_module = importlib.import_module("unitscope.experiments.dissect")


@pytest.fixture()
def setup(tmp_path):
    broden = make_broden(tmp_path / "broden", n=40)
    torch.manual_seed(0)
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    pool = BrodenPool(broden, preprocessing=model_info(net).preprocessing)
    return tmp_path, broden, net, pool


def run(net, pool, cache, **options):
    return dissect(net, ["conv3"], pool, batch_size=8, label_cache=cache, **options)


def test_second_dissection_reads_the_cache_and_gives_the_same_result(setup, monkeypatch):
    tmp, _, net, pool = setup
    cache = tmp / "labels"
    plain = dissect(net, ["conv3"], pool, batch_size=8)
    first = run(net, pool, cache)
    files = sorted(cache.glob("*.pt"))
    assert len(files) == 5  # one per batch of 8
    stamps = [f.stat().st_mtime_ns for f in files]

    def no_decoding(self, i):
        raise AssertionError("a cached batch was decoded again")

    monkeypatch.setattr(dissect_module._AnnotationView, "__getitem__", no_decoding)
    second = run(net, pool, cache, quantile=0.01)  # another threshold: same labels
    again = run(net, pool, cache)
    assert [f.stat().st_mtime_ns for f in sorted(cache.glob("*.pt"))] == stamps
    for result in (first, again):
        np.testing.assert_array_equal(result.layers["conv3"].iou, plain.layers["conv3"].iou)
        np.testing.assert_array_equal(result.layers["conv3"].top_overlap, plain.layers["conv3"].top_overlap)
        np.testing.assert_array_equal(result.cooccurrence, plain.cooccurrence)
    assert not np.array_equal(second.layers["conv3"].thresholds, first.layers["conv3"].thresholds)


def test_an_edited_mask_is_decoded_again(setup):
    tmp, broden, net, pool = setup
    cache = tmp / "labels"
    before = run(net, pool, cache)
    # image 0 loses its box: rewrite its object mask (new size/mtime -> new key for batch 0 only)
    mask = next(p for p in pool.mask_paths(0)["object"])
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(mask)
    os.utime(mask, ns=(1, 1))
    pool = BrodenPool(broden, preprocessing=model_info(net).preprocessing)
    after = run(net, pool, cache)
    assert len(list(cache.glob("*.pt"))) == 6  # batch 0 twice (old and new key), the rest shared
    box = pool.concepts.find("box").number - 1
    assert after.concept_images[box] == before.concept_images[box] - 1
    uncached = dissect(net, ["conv3"], pool, batch_size=8)
    np.testing.assert_array_equal(after.layers["conv3"].iou, uncached.layers["conv3"].iou)


def test_pools_without_annotation_keys_are_decoded_every_time(tmp_path):
    from toys import IndicatorNet, ToyPool

    cache = tmp_path / "labels"
    result = dissect(IndicatorNet(), "conv", ToyPool(), batch_size=5, label_cache=cache, threshold_rule="inclusive")
    assert result.to_frame().loc[0, "iou"] == pytest.approx(1.0)
    assert not cache.exists() or not list(cache.glob("*.pt"))


@pytest.mark.parametrize("shape,size", [((16, 16), (64, 64)), ((13, 13), (84, 112)), ((7, 5), (7, 5)),
                                        ((3, 9), (50, 20))])
def test_upsampler_matches_bilinear_interpolate(shape, size):
    maps = torch.randn(11, *shape, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    got = dissect_module._Upsampler()(maps, size)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("shape", [(128, 128), (128, 97), (97, 128), (120, 100), (50, 40)])
def test_mask_subsampling_picks_the_pixels_of_the_one_mask_rule(shape):
    # the masks' one rule (unitscope.data.resample); a halving, as the demo's 128 -> 64 px masks,
    # keeps the pixels F.interpolate(mode="nearest") picks, as the dissection always did
    from unitscope.data.resample import resize_nearest

    view = dissect_module._AnnotationView(None, 64, 9)
    mask = np.random.default_rng(0).integers(0, 9, shape)
    index, size = view._target(shape)
    got = mask if index is None else mask[index]
    np.testing.assert_array_equal(got, resize_nearest(mask, size))
    if all(s == 2 * t for s, t in zip(shape, size)):
        expected = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=size, mode="nearest")[0, 0]
        np.testing.assert_array_equal(got, expected.long().numpy())
