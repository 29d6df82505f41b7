"""The report reads what the experiments' own ``save()`` methods write.

Every result is built by hand (small arrays, no network run) and saved with
its real writer, so a change of file names or columns on either side breaks
this test instead of a user's report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from unitscope.concepts import Concept, ConceptTable
from unitscope.experiments import (
    EmpiricalRFResult,
    LayerPreferenceResult,
    MinimalImageRecord,
    MinimalImagesResult,
    RFWindow,
    UnitSegmentationsResult,
)
from unitscope.experiments.census import object_census
from unitscope.experiments.dissect import DissectionResult, LayerDissection
from unitscope.report import build_report, load_results
from unitscope.report.summary import summarise

CONCEPTS = ConceptTable([Concept(1, "bed", "object"), Concept(2, "wall", "material"), Concept(3, "lamp", "object"),
                         Concept(4, "bedroom", "scene"), Concept(5, "kitchen", "scene")])
IMAGE_IDS = [f"im{i}" for i in range(6)]


def _dissection(network: str, iou: list[list[float]]) -> DissectionResult:
    iou = np.asarray(iou, dtype=np.float64)
    units, k = iou.shape
    layer = LayerDissection(
        layer="conv5", thresholds=np.full(units, 0.5), iou=iou,
        top_indices=np.tile(np.arange(3), (units, 1)), top_values=np.ones((units, 3)),
        top_overlap=np.ones((units, 3, k), dtype=bool))
    occurrence = np.array([4, 6, 2, 3, 3])
    cooccurrence = np.minimum.outer(occurrence, occurrence)
    cooccurrence[0, 4] = cooccurrence[4, 0] = 0  # no bed in kitchens
    return DissectionResult(network=network, concepts=CONCEPTS, layers={"conv5": layer}, image_ids=IMAGE_IDS,
                            concept_images=occurrence, cooccurrence=cooccurrence, config={"iou_threshold": 0.04})


def _picture(seed: int, h: int = 16, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("contract") / "results"
    # dissection of a trained network (2 bed detectors, 1 wall) and its random null, census with the null
    trained = _dissection("scenenet", [[0.10, 0.01, 0.0, 0.0, 0.0], [0.08, 0.0, 0.02, 0.0, 0.0],
                                       [0.0, 0.06, 0.0, 0.0, 0.0], [0.0, 0.0, 0.01, 0.03, 0.0]])
    null = _dissection("scenenet-random", [[0.01, 0.0, 0.0, 0.0, 0.0]] * 4)
    null.save(results / "scenenet-random" / "dissect")
    trained.save(results / "scenenet" / "dissect")
    object_census(trained, null=null, n_boot=50).save(results / "scenenet" / "dissect")
    seg = results / "scenenet" / "segmentations" / "conv5" / "0"
    seg.mkdir(parents=True)
    Image.fromarray(_picture(1)).save(seg / "000_im0.jpg")

    images = pd.DataFrame({"pool": [0, 0, 1, 1], "index": [0, 1, 0, 1], "id": ["o0", "o1", "s0", "s1"],
                           "source": ["objects", "objects", "scenes", "scenes"]})
    LayerPreferenceResult(images=images, scores={"scenenet": {"conv5": np.array([0.1, 0.2, 0.9, 0.8])}}, top=2,
                          sources=["objects", "scenes"],
                          thumbnails={("scenenet", "conv5"): [(0, "s0", _picture(2)), (1, "s1", _picture(3))]}
                          ).save(results / "preference")

    record = MinimalImageRecord(index=0, id="s0", label=0, label_name="bedroom", n_segments=3, kept=[0],
                                steps=[(1, 0.8), (2, 0.6)], initial_score=0.9, stop_segment=0, stop_score=0.1,
                                stop_prediction=1, kept_fraction=0.25, segment_objects=[["bed"], ["lamp"], []],
                                objects_present=["bed", "lamp"], objects_kept=["bed"])
    MinimalImagesResult(records=[record], counts={"seen": 1, "evaluated": 1}, options={"segmentation": "masks"},
                        diagnostic={"bedroom": ["bed"]}, examples={"s0": (_picture(4), _picture(5))}
                        ).save(results / "scenenet" / "minimal")

    maps = np.zeros((2, 9, 9))
    maps[0, 3:6, 3:6] = 1.0
    maps[1, 2:7, 2:7] = 1.0
    rf = EmpiricalRFResult(layer="conv5", units=np.array([0, 1]), maps=maps, sizes=np.array([3.0, 5.0]),
                           top_ids=np.zeros((2, 2), dtype=int), top_values=np.ones((2, 2)),
                           locations=np.zeros((2, 2, 2), dtype=int), theoretical=RFWindow(11, 4, 0),
                           image_size=(32, 32), occluder=3, stride=1, network="scenenet")
    rf.save(results / "scenenet" / "rf" / "conv5")
    table = pd.DataFrame({"unit": [0], "rank": [0], "index": [0], "id": ["s0"], "activation": [1.0],
                          "threshold": [0.5], "mask_fraction": [0.2]})
    UnitSegmentationsResult(layer="conv5", units=[0], table=table, images={0: _picture(6, 16, 40)},
                            masks={(0, 0): np.eye(16, 40, dtype=bool)},
                            network="scenenet").save(results / "scenenet" / "unit_segmentations")
    _save_localize_and_ablate(results)
    return results


def _save_localize_and_ablate(results: Path) -> None:
    localize = pytest.importorskip("unitscope.experiments.localize")
    ablate = pytest.importorskip("unitscope.experiments.ablate")
    metrics = {"mask_iou": 0.4, "mean_image_iou": 0.3, "box_iou": 0.5, "box_hit_rate": 0.5, "pointing": 0.75,
               "fire_rate_absent": 0.1}
    units = pd.DataFrame([dict(network="scenenet", layer="conv5", object="bed", unit=u, kind=kind,
                               dissection_iou=0.1, threshold=0.5, images=4, images_absent=2, **metrics)
                          for u, kind in ((0, "unit"), (1, "unit"), (-1, "combined"))])
    objects = pd.DataFrame([dict(network="scenenet", layer="conv5", object="bed", detectors=2, units="0;1",
                                 images=4, images_absent=2, **metrics, best_unit=0, best_unit_mask_iou=0.4,
                                 best_unit_pointing=0.75, mean_unit_mask_iou=0.4, mean_unit_pointing=0.75)])
    example = {"index": 0, "id": "s0", "label": 0, "label_name": "bedroom", "predicted": 0,
               "predicted_name": "bedroom", "probability": 0.9, "image_size": [32, 32], "mask_size": [32, 32],
               "picture": {"image": "image_000", "masks": ["mask_000_0"]},
               "detections": [{"layer": "conv5", "object": "bed", "present": True, "detected": True,
                               "boxes": [[0, 0, 8, 8]], "gt_boxes": [[0, 0, 9, 9]], "mask_fraction": 0.1}]}
    localize.LocalizationResult(network="scenenet", layers=["conv5"], units=units, objects=objects,
                                examples=[example],
                                pictures={"image_000": _picture(7), "mask_000_0": np.eye(32, dtype=bool),
                                          "objects": np.array(["bed"])},
                                counts={"images": 4, "labelled": 4, "correct": 3, "accuracy": 0.75}
                                ).save(results / "scenenet" / "localize")
    conditions = [{"kind": "baseline", "object": None, "draw": None, "units": []},
                  {"kind": "detectors", "object": "bed", "draw": None, "units": [0, 1]},
                  {"kind": "random", "object": "bed", "draw": 0, "units": [2, 3]},
                  {"kind": "random", "object": "bed", "draw": 1, "units": [3, 2]}]
    correct = np.array([[9, 8], [3, 8], [9, 8], [8, 8]])  # bedroom, kitchen
    ablate.AblationResult(network="scenenet", layer="conv5", class_names=["bedroom", "kitchen"],
                          detectors={"bed": [0, 1]}, conditions=conditions, correct=correct,
                          totals=np.array([10, 10]), diagnostic={"bedroom": ["bed"]},
                          counts={"images": 20, "labelled": 20}, options={"n_random": 2}
                          ).save(results / "scenenet" / "ablate")


def test_report_reads_every_writer(saved):
    results = load_results(saved)
    net = results.network("scenenet")
    assert net.null == "scenenet-random" and "scenenet-random" in results.nulls
    assert net.dissection.units[["label", "detector", "object_detector"]].values.tolist() == [
        ["bed", True, True], ["bed", True, True], ["wall", True, False], ["bedroom", False, False]]
    assert net.dissection.categories == ["object", "material", "scene"]
    assert list(net.rf.layers["rf_mean"]) == [4.0] and list(net.rf.layers["theoretical_size"]) == [11]
    assert sorted(net.rf.maps) == [("conv5", 0), ("conv5", 1)]
    assert list(net.unit_tiles) == [("conv5", 0)]
    assert net.minimal[0].segmentation == "masks" and len(net.minimal[0].examples) == 1
    assert list(results.preference.fractions["fraction"]) == [0.0, 1.0]

    findings = {f.key: f for f in summarise(results)}
    assert findings["emerge"].numbers["scenenet"] == {"object_detectors": 2, "units": 4, "unique_objects": 1,
                                                      "layers": 1, "iou_threshold": 0.04,
                                                      "null_object_detectors": 0}
    assert "conv5 100% scenes" in findings["preference"].answer
    assert "bedroom → bed 100%" in findings["minimal"].answer
    assert "conv5 4.0±1.0 vs 11" in findings["rf"].answer
    assert findings["localize"].numbers == {"scenenet": {"units": 2, "iou": 0.4, "pointing": 0.75}}
    ablation = findings["ablate"].numbers["scenenet"]
    assert ablation["basis"] == "diagnostic scenes"
    assert ablation["targeted"] == pytest.approx(0.6) and ablation["random"] == pytest.approx(0.05)
    assert ablation["diagnostic_most_hurt"] == 1 and ablation["with_diagnostic"] == 1


def test_report_from_saved_results_links_every_file(saved):
    index = build_report(saved)
    html = index.read_text(encoding="utf-8")
    assert html.count('class="missing"') == 2  # no run.json, no human labels
    summary = json.loads((index.parent / "summary.json").read_text())
    assert sorted(summary["plots"]) == [
        "ablate_scenenet.png", "census_null_scenenet.png", "census_objects.png", "census_scatter_scenenet.png",
        "census_sweep_scenenet.png", "detectors.png", "localize_scenenet.png", "preference.png",
        "receptive_fields.png", "unit_types.png"]
    pages = [index] + sorted((index.parent / "units").rglob("*.html"))
    assert len(pages) == 5
    for page in pages:
        for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text(encoding="utf-8")):
            assert (page.parent / unquote(src)).is_file(), src
    unit = (index.parent / "units" / "scenenet" / "conv5" / "0.html").read_text(encoding="utf-8")
    assert "unit_segmentations/conv5/unit_0000.png" in unit and "rf/conv5/maps/unit_0000.png" in unit
    assert "segmentations/conv5/0/000_im0.jpg" in unit
