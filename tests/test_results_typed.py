"""The typed results of preference, minimal images, receptive fields and localisation: save -> load -> equal.

Each is built by hand from small arrays (no network runs) and must come back
with the same values, its pictures' arrays included, and the columns its
``to_frame()`` promises.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unitscope.results.localize import LocalizationResult
from unitscope.results.minimal import MinimalImageRecord, MinimalImagesResult, load_minimal
from unitscope.results.preference import LayerPreferenceResult, load_preference
from unitscope.results.receptive_fields import EmpiricalRFResult, RFWindow, load_receptive_fields
from unitscope.results.schema import ResultFileError


def pixels(seed: int, h: int = 5, w: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_preference_round_trip(tmp_path):
    images = pd.DataFrame({"pool": [0, 0, 1], "index": [0, 1, 0], "id": ["007", "b", "c"],
                           "source": ["objects", "objects", "scenes"]})
    result = LayerPreferenceResult(images=images, scores={"net": {"conv": np.array([0.3, 0.1, 0.9])}}, top=2,
                                   sources=["objects", "scenes"], thumbnails={("net", "conv"): [(0, "c", pixels(1))]},
                                   weights={"net": {"weights": "abc", "weights_seed": None}})
    result.save(tmp_path / "preference")
    back = load_preference(tmp_path).result
    assert back.images.equals(images), "ids that look like numbers stay text"
    np.testing.assert_array_equal(back.scores["net"]["conv"], result.scores["net"]["conv"])
    (rank, image_id, thumbnail), = back.thumbnails[("net", "conv")]
    assert (rank, image_id) == (0, "c") and (thumbnail == result.thumbnails[("net", "conv")][0][2]).all()
    assert back.weights == result.weights and back.top == 2
    assert list(back.to_frame().columns) == ["network", "layer", "source", "count", "fraction"]
    assert back.to_frame().equals(result.to_frame())


def test_minimal_round_trip(tmp_path):
    record = MinimalImageRecord(index=3, id="x", label=1, label_name="kitchen", n_segments=4, kept=[2],
                                steps=[(0, 0.7), (1, 0.6), (3, 0.55)], initial_score=0.8, stop_segment=2,
                                stop_score=0.2, stop_prediction=0, kept_fraction=0.25)
    kept = np.zeros((5, 4), dtype=bool)
    kept[1:3] = True
    result = MinimalImagesResult(records=[record], counts={"seen": 1, "evaluated": 1}, options={"segmentation": "slic"},
                                 examples={"x": (pixels(2), pixels(3))}, kept_masks={"x": kept})
    result.save(tmp_path / "net" / "minimal" / "slic")
    (run,) = load_minimal(tmp_path, "net")
    back = run.result
    assert run.name == "slic" and run.segmentation == "slic" and run.objects is None
    assert back.records == result.records
    assert (back.examples["x"][0] == pixels(2)).all() and (back.examples["x"][1] == pixels(3)).all()
    assert back.kept_masks["x"].dtype == bool and (back.kept_masks["x"] == kept).all()
    assert list(back.to_frame().columns) == [
        "index", "id", "label", "label_name", "n_segments", "n_kept", "n_steps", "kept_fraction", "initial_score",
        "final_score", "stop_segment", "stop_score", "stop_prediction", "kept", "objects_present", "objects_kept"]
    assert back.to_frame().equals(result.to_frame())


def test_receptive_fields_round_trip(tmp_path):
    maps = np.random.default_rng(4).random((3, 7, 7))
    result = EmpiricalRFResult(layer="features.3", units=np.array([4, 0, 2]), maps=maps,
                               sizes=np.array([2.0, np.nan, 3.0]),
                               top_ids=np.array([[0, 1], [1, -1], [2, 0]]), top_values=np.ones((3, 2)),
                               locations=np.zeros((3, 2, 2), dtype=np.int64), theoretical=RFWindow(11, 4, -2),
                               image_size=(32, 32), occluder=3, stride=1, stats={"images": 3}, network="net")
    result.save(tmp_path / "net" / "rf" / "features.3", pictures=2)
    rf = load_receptive_fields(tmp_path, "net")
    (back,) = rf.results
    np.testing.assert_array_equal(back.maps, maps)
    np.testing.assert_array_equal(back.sizes, result.sizes)
    assert back.theoretical == result.theoretical and back.drawn == [4, 0]
    assert sorted(rf.maps) == [("features.3", 0), ("features.3", 4)], "the maps the report draws"
    assert list(back.to_frame().columns) == ["network", "layer", "unit", "rf_size", "peak", "n_images",
                                             "theoretical_size"]
    assert back.to_frame().equals(result.to_frame())


def test_localization_round_trip_and_missing_arrays(tmp_path):
    units = pd.DataFrame({"network": ["net"], "layer": ["conv"], "object": ["bed"], "unit": [0], "kind": ["unit"],
                          "mask_iou": [0.5], "pointing": [1.0]})
    objects = pd.DataFrame({"network": ["net"], "layer": ["conv"], "object": ["bed"], "detectors": [1], "units": ["0"],
                            "mask_iou": [0.5], "box_iou": [0.4], "box_hit_rate": [0.0], "pointing": [1.0]})
    example = {"id": "a", "predicted_name": "bedroom", "probability": 0.5, "label_name": "bedroom",
               "picture": {"image": "image_000", "masks": ["mask_000_0"]},
               "detections": [{"layer": "conv", "object": "bed", "present": True, "detected": True,
                               "boxes": [[0.0, 0.0, 2.0, 2.0]], "gt_boxes": [], "mask_fraction": 0.25}]}
    mask = np.eye(4, dtype=bool)
    result = LocalizationResult(network="net", layers=["conv"], units=units, objects=objects, examples=[example],
                                pictures={"image_000": pixels(5), "mask_000_0": mask, "objects": np.array(["bed"])},
                                counts={"images": 1})
    result.save(tmp_path)
    back = LocalizationResult.load(tmp_path)
    assert back.examples == [example] and back.to_frame().equals(result.to_frame())
    assert (back.pictures["image_000"] == pixels(5)).all() and (back.pictures["mask_000_0"] == mask).all()
    assert back.pictures["objects"].tolist() == ["bed"]
    np.savez(tmp_path / "examples.npz", image_000=pixels(5))
    with pytest.raises(ResultFileError, match=r"examples.npz has no array 'mask_000_0', which example 'a'"):
        LocalizationResult.load(tmp_path)
