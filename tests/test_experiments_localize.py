"""Experiment 5, localisation: planted detectors on hand-built networks with exact answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toys import PlantedNet, ZoomToyPool, toy_masks
from unitscope.experiments.dissect import DissectionResult, LayerDissection, dissect
from unitscope.experiments.localize import (
    LocalizationResult,
    box_iou,
    component_boxes,
    localize_objects,
    object_detectors,
)

CONCEPTS = ZoomToyPool.concepts  # thing 1, ghost 2, background 3


def test_planted_detector_localises_its_object_every_time(tmp_path):
    masks = toy_masks()
    pool = ZoomToyPool(masks)
    net = PlantedNet()
    dissection = dissect(net, "conv", pool, batch_size=5, network="toy",
                       threshold_rule="inclusive", min_support=0)  # binary planted units (ties are the mask), 9 images
    assert object_detectors(dissection, "conv") == {"thing": [0]}

    result = localize_objects(net, "conv", pool, dissection=dissection, batch_size=5, examples=3)
    with_thing = int((masks.reshape(len(masks), -1).sum(1) > 0).sum())
    row = result.to_frame().iloc[0]
    assert (row["object"], row["detectors"], row["units"]) == ("thing", 1, "0")
    assert row["images"] == with_thing == 9 and row["images_absent"] == 3
    for metric in ("mask_iou", "mean_image_iou", "box_iou", "box_hit_rate", "pointing"):
        assert row[metric] == 1.0, metric
    assert row["fire_rate_absent"] == 0.0
    units = result.unit_frame()
    assert list(units["kind"]) == ["unit", "combined"] and list(units["unit"]) == [0, -1]
    assert (units["pointing"] == 1.0).all() and (units["mask_iou"] == 1.0).all()
    assert units.loc[0, "dissection_iou"] == pytest.approx(1.0)
    layer = result.layer_summary().iloc[0]
    assert layer["objects"] == 1 and layer["detectors"] == 1 and layer["pointing"] == 1.0

    # the same forward pass gives the scene class: class 1 iff 10 * mean(thing) > 1
    expected = (10 * masks.reshape(len(masks), -1).mean(1) > 1).astype(int)
    accuracy = float((expected == np.arange(len(masks)) % 2).mean())
    assert result.counts["images"] == 12 and result.counts["accuracy"] == pytest.approx(accuracy)

    # examples: the first three images containing "thing" (image 0 has none), boxes = GT boxes
    assert [e["index"] for e in result.examples] == [1, 2, 3]
    for example in result.examples:
        i = example["index"]
        assert example["predicted"] == expected[i]
        assert example["predicted_name"] == ["even", "odd"][expected[i]]
        (det,) = example["detections"]
        assert det["present"] and det["detected"]
        assert det["boxes"] == det["gt_boxes"] == component_boxes(masks[i]).astype(float).tolist()

    result.save(tmp_path / "loc")
    for name in ("objects.csv", "objects.json", "units.csv", "layers.csv", "examples.csv",
                 "examples.json", "localize.json", "examples.npz"):
        assert (tmp_path / "loc" / name).exists(), name
    back = LocalizationResult.load(tmp_path / "loc")
    assert back.to_frame().equals(result.to_frame())
    assert back.unit_frame().equals(result.unit_frame())
    assert back.examples == result.examples
    # the picture's image and masks are arrays in the result (the report draws them)
    assert result.examples[0]["picture"] == {"image": "image_000", "masks": ["mask_000_0"]}
    for name in ("image_000", "mask_000_0", "objects"):
        np.testing.assert_array_equal(back.pictures[name], result.pictures[name])
    assert len(back.examples_frame()) == sum(len(d["boxes"]) for e in result.examples for d in e["detections"])


def _hand_dissection(thresholds, labelled_units, n_units=3):
    """A dissection of layer "pool" where ``labelled_units`` detect "thing" (IoU 0.5), the rest nothing."""
    iou = np.zeros((n_units, CONCEPTS.max_number))
    iou[labelled_units, 0] = 0.5
    top = np.full((n_units, 2), -1, dtype=np.int64)
    layer = LayerDissection(layer="pool", thresholds=np.asarray(thresholds, dtype=np.float64), iou=iou,
                            top_indices=top, top_values=np.ones((n_units, 2)),
                            top_overlap=np.zeros((n_units, 2, CONCEPTS.max_number), dtype=bool))
    k = CONCEPTS.max_number
    return DissectionResult(network="hand", concepts=CONCEPTS, layers={"pool": layer}, image_ids=[],
                            concept_images=np.zeros(k, dtype=np.int64),
                            cooccurrence=np.zeros((k, k), dtype=np.int64), config={"iou_threshold": 0.04})


def test_pointing_radius_is_in_input_pixels_when_masks_are_smaller():
    # Masks are 8x8, images 16x16 (zoom 2): the object is mask column 0; unit 1's only peak is at
    # mask (3, i) in image i, i.e. 2*i input pixels from the object.  With a 5 px radius, images
    # 0, 1, 2 are hits (0, 2, 4 px); in mask pixels (the wrong unit) 0..5 would be.
    n, size = 8, 8
    masks = np.zeros((n, size, size), dtype=np.int64)
    masks[:, :, 0] = 1
    extra = np.zeros((n, 2 * size, 2 * size))
    for i in range(n):
        extra[i, 6:8, 2 * i:2 * i + 2] = 1.0  # a 2x2 block -> one hot pixel after 2x2 pooling
    pool = ZoomToyPool(masks, zoom=2, extra=extra)
    net = PlantedNet(pool=2)
    dissection = _hand_dissection([1.0, 1.0, 0.0], [0, 1])
    result = localize_objects(net, "pool", pool, dissection=dissection, pointing_radius=5, batch_size=3)
    units = result.unit_frame().set_index("unit")
    assert units.loc[0, "pointing"] == 1.0 and units.loc[0, "mask_iou"] == 1.0
    assert units.loc[1, "pointing"] == pytest.approx(3 / 8)
    # unit 1's mask is its single pixel: image 0 overlaps the object column (1 of 8 pixels)
    assert units.loc[1, "mask_iou"] == pytest.approx(1 / (8 + 7 * 9))
    assert units.loc[1, "mean_image_iou"] == pytest.approx((1 / 8) / 8)
    assert units.loc[1, "box_iou"] == pytest.approx((1 / 8) / 8)
    assert units.loc[1, "box_hit_rate"] == 0.0
    # combined: union of both masks; the peak of max(normalised maps) is the first maximum, on the object
    assert units.loc[-1, "mask_iou"] == pytest.approx(64 / (8 + 7 * 9))
    assert units.loc[-1, "pointing"] == 1.0
    wide = localize_objects(net, "pool", pool, dissection=dissection, pointing_radius=15, batch_size=8)
    assert wide.unit_frame().set_index("unit").loc[1, "pointing"] == 1.0  # 14 px at most


def test_boxes_and_box_iou():
    mask = np.zeros((6, 7), dtype=bool)
    mask[0:2, 0:3] = True
    mask[3:6, 5:7] = True
    mask[2, 3] = True  # touches the first block diagonally: 8-connected
    np.testing.assert_array_equal(component_boxes(mask), [[0, 0, 4, 3], [5, 3, 7, 6]])
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]),
                               [[1 / 7, 1.0, 0.0]])
    assert component_boxes(np.zeros((3, 3), dtype=bool)).shape == (0, 4)


def test_bad_input_is_refused_with_clear_errors():
    pool = ZoomToyPool(toy_masks())
    net = PlantedNet()
    dissection = dissect(net, "conv", pool, batch_size=6, threshold_rule="inclusive", min_support=0)
    with pytest.raises(ValueError, match="no detectors of 'ghost'"):
        localize_objects(net, "conv", pool, dissection=dissection, objects=["thing", "ghost"])
    with pytest.raises(LookupError, match="not object concepts.*'thnig'.*thing"):
        localize_objects(net, "conv", pool, dissection=dissection, objects="thnig")
    with pytest.raises(LookupError, match="'head' is not in the dissection"):
        localize_objects(net, "head", pool, dissection=dissection)
    with pytest.raises(LookupError, match="no layer named 'conv9'"):
        localize_objects(net, "conv9", pool, dissection=dissection)
    with pytest.raises(ValueError, match="pointing_radius"):
        localize_objects(net, "conv", pool, dissection=dissection, pointing_radius=-1)
    plain = [(torch.zeros(3, 8, 8), {"label": 0})]
    with pytest.raises(ValueError, match="annotated pool"):
        localize_objects(net, "conv", plain, dissection=dissection)
    dead = _hand_dissection([0.0, 0.0, 0.0], [])
    with pytest.raises(ValueError, match="has no object detectors"):
        object_detectors(dead, "pool")


def test_no_hook_is_left_behind_after_a_failing_run():
    class NotSpatial(PlantedNet):
        def forward(self, x):
            return self.head(self.conv(x))

    pool = ZoomToyPool(toy_masks())
    net = PlantedNet()
    dissection = dissect(net, "conv", pool, batch_size=6, threshold_rule="inclusive", min_support=0)
    broken = NotSpatial()
    broken.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 2))
    broken.conv = nn.Sequential(broken.conv, nn.Flatten())  # "conv" now outputs (N, 192)
    dissection.config.pop("weights")  # taken on trust, so the layer check is what fails
    with pytest.raises(ValueError, match="not a spatial map"):
        localize_objects(broken, "conv", pool, dissection=dissection)
    assert all(not m._forward_hooks for m in broken.modules())


def test_unit_mask_iou_equals_the_dissection_iou_when_every_image_has_the_object():
    # Reference: dissect's pooled IoU.  Localisation counts only images that contain the object,
    # so on a pool where every image does, each unit's pooled mask IoU is the dissection's IoU.
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    masks = toy_masks(n=10, seed=2)
    masks[:, 0, 0] = 1
    pool = ZoomToyPool(masks, extra=np.random.default_rng(0).random((10, 8, 8)))
    dissection = dissect(net, "1", pool, batch_size=4, quantile=0.1, quantile_resolution=4096)
    result = localize_objects(net, "1", pool, dissection=dissection, iou_threshold=0.0, batch_size=3,
                              examples=0)
    units = result.unit_frame()
    units = units[units["kind"] == "unit"]
    assert len(units) >= 2 and (units["images"] == 10).all()
    np.testing.assert_allclose(units["mask_iou"], units["dissection_iou"], rtol=0, atol=1e-12)
    assert not result.examples and not result.pictures
