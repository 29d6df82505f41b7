"""A small hand-written results directory, for the report's tests.

:func:`make_fake_results` writes every section's files with pandas and PIL,
in the layout the experiments write (the typed results of preference, minimal
images, receptive fields, unit segmentations and localisation with their own
``save()``); the numbers are chosen so the expected sentences are known:

* scenenet: conv3 has 1 object detector (bed), conv5 has 4 (bed, bed,
  painting, bookcase) -> 5 of 12 units, 3 different objects;
* objectnet: conv3 none, conv5 one (car) -> 1 of 12 units;
* scenenet-random (the null): one object detector in conv5.

The report's build, folder and browser tests and the bad-input battery
(``tests/bad_inputs/test_bad_report.py``) all read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from unitscope.results.localize import LocalizationResult
from unitscope.results.minimal import MinimalImageRecord, MinimalImagesResult
from unitscope.results.preference import LayerPreferenceResult
from unitscope.results.receptive_fields import EmpiricalRFResult, RFWindow
from unitscope.results.segmentations import UnitSegmentationsResult

LAYERS = ["conv3", "conv5"]
# (label, category, iou) per unit; the type follows the category as in dissection's CATEGORY_TYPES.
UNITS = {
    "scenenet": {
        "conv3": [("bed", "object", 0.06), ("red-c", "color", 0.05), ("striped", "texture", 0.03),
                  ("wall", "material", 0.05), ("wheel", "part", 0.02), ("painting", "object", 0.02)],
        "conv5": [("bed", "object", 0.12), ("bed", "object", 0.09), ("painting", "object", 0.08),
                  ("bookcase", "object", 0.07), ("wall", "material", 0.03), ("bedroom", "scene", 0.05)],
    },
    "objectnet": {
        "conv3": [("red-c", "color", 0.07), ("striped", "texture", 0.05), ("car", "object", 0.03),
                  ("wall", "material", 0.02), ("wheel", "part", 0.05), ("blue-c", "color", 0.02)],
        "conv5": [("car", "object", 0.10), ("wheel", "part", 0.06), ("bed", "object", 0.03),
                  ("dotted", "texture", 0.05), ("sky", "material", 0.06),
                  ('<b>evil</b> & "co"', "object", 0.02)],
    },
    "scenenet-random": {
        "conv3": [("red-c", "color", 0.01)] * 6,
        "conv5": [("bed", "object", 0.05)] + [("wall", "material", 0.01)] * 5,
    },
}
TYPES = {"color": "simple", "texture": "texture", "material": "region", "part": "part", "object": "object",
         "scene": "scene"}
CATEGORIES = ["color", "object", "part", "material", "scene", "texture"]
OBJECTS = ["bed", "painting", "bookcase", "car", '<b>evil</b> & "co"']
N_SEGMENTATIONS = 3


def picture(seed: int, size: int = 32, *, fmt: str = "JPEG") -> Image.Image:
    """A small coloured picture with a bright blob (like a highlighted segmentation)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.integers(40, 200, 3) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
    ImageDraw.Draw(image).ellipse([int(cx) - 6, int(cy) - 6, int(cx) + 6, int(cy) + 6], outline=(255, 214, 0))
    return image


def _units_frame(network: str) -> pd.DataFrame:
    rows = []
    for layer, units in UNITS[network].items():
        for u, (label, category, iou) in enumerate(units):
            row = {"network": network, "layer": layer, "unit": u, "label": label, "category": category,
                   "type": TYPES[category], "iou": iou, "score": iou, "detector": iou > 0.04,
                   "threshold": 0.5 + u / 10, "precision": 0.25 * (u % 4 + 1),
                   "top_images": ";".join(f"img{u}x{r}" for r in range(N_SEGMENTATIONS))}
            for cat in CATEGORIES:
                row[f"{cat}_label"] = label if cat == category else f"{cat}-best"
                row[f"{cat}_iou"] = iou if cat == category else 0.01
            rows.append(row)
    return pd.DataFrame(rows)


def _layers_frame(units: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for layer in dict.fromkeys(units["layer"]):
        u = units[units["layer"] == layer]
        det = u[u["detector"]]
        row = {"network": u["network"].iloc[0], "layer": layer, "units": len(u), "detectors": len(det),
               "unique_concepts": det["label"].nunique(),
               "unique_objects": det.loc[det["category"] == "object", "label"].nunique(),
               "mean_iou": u["iou"].mean(), "mean_precision": det["precision"].mean()}
        for t in ("simple", "texture", "region", "part", "object", "scene"):
            row[f"share_{t}"] = (det["type"] == t).sum() / len(u)
        rows.append(row)
    return pd.DataFrame(rows)


def _write_dissection(results: Path, network: str, *, layers_csv: bool = True) -> None:
    folder = results / network / "dissect"
    folder.mkdir(parents=True, exist_ok=True)
    units = _units_frame(network)
    units.to_csv(folder / "units.csv", index=False)
    if layers_csv:
        _layers_frame(units).to_csv(folder / "layers.csv", index=False)
    (folder / "result.json").write_text(json.dumps({"network": network, "layers": LAYERS, "image_ids": [],
                                                    "config": {"iou_threshold": 0.04}}))
    pd.DataFrame({"number": range(1, 6), "name": ["bed", "painting", "bookcase", "car", "wall"],
                  "category": ["object"] * 4 + ["material"]}).to_csv(folder / "concepts.csv", index=False)
    seed = sum(map(ord, network))
    for row in units.itertuples():
        unit_dir = results / network / "segmentations" / row.layer / str(row.unit)
        unit_dir.mkdir(parents=True, exist_ok=True)
        for rank, image_id in enumerate(row.top_images.split(";")):
            seed += 1
            picture(seed).save(unit_dir / f"{rank:03d}_{image_id}.jpg", quality=80)


def _write_census(results: Path, network: str, null: str | None) -> None:
    folder = results / network / "dissect"
    frequency = {"bed": 40, "painting": 25, "bookcase": 12, "car": 8, '<b>evil</b> & "co"': 2}
    informative = {"bed": 2, "painting": 1, "bookcase": 1, "car": 0, '<b>evil</b> & "co"': 0}
    object_rows, layer_rows, sweep_rows, corr_rows = [], [], [], []
    for net in [network] + ([null] if null else []):
        units = _units_frame(net)
        for layer in LAYERS:
            u = units[units["layer"] == layer]
            det = u[u["detector"] & (u["category"] == "object")]
            for obj in OBJECTS:
                object_rows.append({"network": net, "layer": layer, "object": obj,
                                    "detectors": int((det["label"] == obj).sum()), "frequency": frequency[obj],
                                    "informative_scenes": informative[obj]})
            for t in (0.02, 0.04, 0.06):
                d = u[u["iou"] > t]
                sweep_rows.append({"network": net, "layer": layer, "iou_threshold": t, "units": len(u),
                                   "detectors": len(d), "object_detectors": int((d["category"] == "object").sum()),
                                   "unique_concepts": d["label"].nunique(),
                                   "unique_objects": d.loc[d["category"] == "object", "label"].nunique()})
                if t == 0.04:
                    layer_rows.append(sweep_rows[-1])
            for against, r in (("frequency", 0.61), ("informative_scenes", 0.83)):
                corr_rows.append({"network": net, "layer": layer, "against": against, "n": 5, "pearson": r,
                                  "pearson_lo": r - 0.3, "pearson_hi": min(r + 0.1, 1.0), "spearman": r - 0.05,
                                  "spearman_lo": r - 0.4, "spearman_hi": min(r + 0.1, 1.0)})
    pd.DataFrame(object_rows).to_csv(folder / "census_objects.csv", index=False)
    pd.DataFrame(layer_rows).to_csv(folder / "census_layers.csv", index=False)
    pd.DataFrame(corr_rows).to_csv(folder / "census_correlations.csv", index=False)
    pd.DataFrame(sweep_rows).to_csv(folder / "census_sweep.csv", index=False)
    pd.DataFrame([{"scene": "bedroom", "object": "bed", "p_object_given_scene": 0.9, "p_object": 0.2,
                   "score": 1.3, "rank": 1},
                  {"scene": "bedroom", "object": "painting", "p_object_given_scene": 0.3, "p_object": 0.3,
                   "score": 0.0, "rank": 2}]).to_csv(folder / "census_informative.csv", index=False)
    (folder / "census.json").write_text(json.dumps({"config": {"network": network, "null": null}}))


def _write_preference(results: Path) -> None:
    """100 scene and 100 object images; each layer's top 100 holds the share of scenes below."""
    shares = {("scenenet", "conv3"): 55, ("scenenet", "conv5"): 81,
              ("objectnet", "conv3"): 52, ("objectnet", "conv5"): 23}
    images = pd.DataFrame({"pool": [0] * 100 + [1] * 100, "index": list(range(100)) * 2,
                           "id": [f"s{i}" for i in range(100)] + [f"o{i}" for i in range(100)],
                           "source": ["scenes"] * 100 + ["objects"] * 100})
    scores, thumbnails = {}, {}
    for (network, layer), scenes in shares.items():
        chosen = np.zeros(200)
        chosen[:scenes] = 1.0
        chosen[100:200 - scenes] = 1.0
        scores.setdefault(network, {})[layer] = chosen
        thumbnails[(network, layer)] = [(rank, f"s{rank}", np.asarray(picture(rank + 2 * len(thumbnails), 24)))
                                        for rank in range(2)]
    LayerPreferenceResult(images=images, scores=scores, top=100, sources=["scenes", "objects"],
                          thumbnails=thumbnails).save(results / "preference")


def _write_minimal(results: Path, network: str) -> None:
    def record(index, image_id, n_segments, kept, kept_fraction, initial, final, segment_objects):
        steps = [(s, initial - (initial - final) * (k + 1) / 4) for k, s in enumerate([1, 2, 4, 5])]
        present = sorted({o for objects in segment_objects for o in objects})
        return MinimalImageRecord(index=index, id=image_id, label=0, label_name="bedroom", n_segments=n_segments,
                                  kept=kept, steps=steps, initial_score=initial, stop_segment=kept[0],
                                  stop_score=0.1, stop_prediction=1, kept_fraction=kept_fraction,
                                  segment_objects=segment_objects, objects_present=present, objects_kept=["bed"])

    records = [record(0, "bed1", 6, [0, 3], 0.30, 0.9, 0.5, [["bed"], [], [], ["lamp"], [], []]),
               record(1, "bed2", 5, [1], 0.20, 0.8, 0.45, [[], ["bed"], [], [], []])]
    examples = {image_id: (np.asarray(picture(100 + n, 40)), np.asarray(picture(200 + n, 40)))
                for n, image_id in enumerate(["bed1", "bed2"])}
    kept_masks = {image_id: np.eye(40, dtype=bool) for image_id in examples}
    MinimalImagesResult(records=records, counts={"seen": 3, "evaluated": 2, "incorrect": 1},
                        options={"segmentation": "masks", "fill": "mean"}, diagnostic={"bedroom": ["bed"]},
                        examples=examples, kept_masks=kept_masks).save(results / network / "minimal" / "masks")


def _write_rf(results: Path, network: str) -> None:
    for layer, theoretical, sizes in (("conv3", 51, [20.0, 24.0]), ("conv5", 99, [30.0, 40.0])):
        maps = np.zeros((2, 21, 21))
        maps[0, 8:13, 8:13], maps[1, 6:15, 6:15] = 1.0, 2.0
        EmpiricalRFResult(layer=layer, units=np.array([0, 1]), maps=maps, sizes=np.array(sizes),
                          top_ids=np.zeros((2, 5), dtype=np.int64), top_values=np.ones((2, 5)),
                          locations=np.zeros((2, 5, 2), dtype=np.int64), theoretical=RFWindow(theoretical, 8, 0),
                          image_size=(128, 128), occluder=6, stride=2, stats={"images": 4},
                          network=network).save(results / network / "rf" / layer)
    # unit 0's strip (experiment 2b): its three top images and where it fires on them
    masks = {(0, rank): np.arange(30)[:, None] + np.arange(30) < 20 + 5 * rank for rank in range(3)}
    table = pd.DataFrame({"unit": 0, "rank": [0, 1, 2], "index": [4, 7, 9], "id": ["s4", "s7", "s9"],
                          "activation": [3.0, 2.5, 2.0], "threshold": 1.5,
                          "mask_fraction": [float(masks[(0, k)].mean()) for k in range(3)]})
    UnitSegmentationsResult(layer="conv5", units=[0], table=table,
                            images={i: np.asarray(picture(400 + i, 30)) for i in (4, 7, 9)}, masks=masks,
                            options={"top": 3, "mask": "activation", "dim": 0.15},
                            network=network).save(results / network / "rf" / "segmentations")


def _write_localize(results: Path, network: str) -> None:
    units = pd.DataFrame([
        {"network": network, "layer": "conv5", "object": "bed", "unit": 0, "kind": "unit", "dissection_iou": 0.12,
         "threshold": 0.5, "images": 10, "images_absent": 5, "mask_iou": 0.4, "mean_image_iou": 0.35,
         "box_iou": 0.5, "box_hit_rate": 0.5, "pointing": 0.9, "fire_rate_absent": 0.1},
        {"network": network, "layer": "conv5", "object": "bed", "unit": 1, "kind": "unit", "dissection_iou": 0.09,
         "threshold": 0.6, "images": 10, "images_absent": 5, "mask_iou": 0.2, "mean_image_iou": 0.2,
         "box_iou": 0.3, "box_hit_rate": 0.2, "pointing": 0.7, "fire_rate_absent": 0.2},
        {"network": network, "layer": "conv5", "object": "bed", "unit": -1, "kind": "combined",
         "dissection_iou": None, "threshold": None, "images": 10, "images_absent": 5, "mask_iou": 0.45,
         "mean_image_iou": 0.4, "box_iou": 0.55, "box_hit_rate": 0.6, "pointing": 0.95, "fire_rate_absent": 0.2},
    ])
    objects = pd.DataFrame([{"network": network, "layer": "conv5", "object": "bed", "detectors": 2, "units": "0;1",
                             "images": 10, "images_absent": 5, "mask_iou": 0.45, "mean_image_iou": 0.4,
                             "box_iou": 0.55, "box_hit_rate": 0.6, "pointing": 0.95, "fire_rate_absent": 0.2,
                             "best_unit": 0, "best_unit_mask_iou": 0.4, "best_unit_pointing": 0.9,
                             "mean_unit_mask_iou": 0.3, "mean_unit_pointing": 0.8}])
    example = {"index": 0, "id": "bed1", "label": 0, "label_name": "bedroom", "predicted": 0,
               "predicted_name": "bedroom", "probability": 0.8, "image_size": [128, 128], "mask_size": [64, 64],
               "picture": {"image": "image_000", "masks": ["mask_000_0"]},
               "detections": [{"layer": "conv5", "object": "bed", "present": True, "detected": True,
                               "boxes": [[2, 4, 60, 80]], "gt_boxes": [[0, 0, 64, 84]], "mask_fraction": 0.2}]}
    mask = np.zeros((64, 64), dtype=bool)
    mask[2:40, 1:30] = True
    pictures = {"image_000": np.asarray(picture(500, 128)), "mask_000_0": mask, "objects": np.array(["bed"])}
    LocalizationResult(network=network, layers=["conv5"], units=units, objects=objects, examples=[example],
                       pictures=pictures, counts={"images": 10, "labelled": 10, "correct": 8, "accuracy": 0.8},
                       options={}).save(results / network / "localize")


def _write_ablate(results: Path, network: str) -> None:
    """As ``AblationResult.save`` writes: classes.csv, summary.csv, conditions.csv, ablate.json."""
    folder = results / network / "ablate"
    folder.mkdir(parents=True, exist_ok=True)
    classes = []
    for obj, detectors, scene, drop, random, diagnostic in (
            ("bed", 2, "bedroom", 0.30, 0.05, True), ("bed", 2, "kitchen", 0.02, 0.01, False),
            ("painting", 1, "art_gallery", 0.20, 0.04, True), ("painting", 1, "bedroom", 0.05, 0.0, False)):
        classes.append({"network": network, "layer": "conv5", "object": obj, "detectors": detectors, "class": 0,
                        "class_name": scene, "images": 20, "baseline_acc": 0.9, "ablated_acc": 0.9 - drop,
                        "drop": drop, "random_drop_mean": random, "random_drop_std": 0.02,
                        "effect": drop - random, "diagnostic": diagnostic})
    pd.DataFrame(classes).to_csv(folder / "classes.csv", index=False)
    pd.DataFrame([{"network": network, "layer": "conv5", "object": obj, "detectors": d, "units": units,
                   "most_hurt": hurt, "most_hurt_drop": drop, "most_hurt_effect": drop - 0.05,
                   "max_effect_class": hurt, "max_effect": drop - 0.05, "baseline_acc": 0.9,
                   "ablated_acc": 0.8, "drop": 0.1, "random_drop_mean": 0.01, "random_drop_std": 0.01,
                   "diagnostic_scenes": hurt, "diagnostic_rank": 1, "diagnostic_most_hurt": True}
                  for obj, d, units, hurt, drop in (("bed", 2, "0;1", "bedroom", 0.3),
                                                   ("painting", 1, "2", "art_gallery", 0.2))]).to_csv(
        folder / "summary.csv", index=False)
    pd.DataFrame([{"condition": 0, "kind": "baseline", "object": "", "draw": -1, "units": "", "images": 80,
                   "correct": 72, "accuracy": 0.9}]).to_csv(folder / "conditions.csv", index=False)
    (folder / "ablate.json").write_text(json.dumps({
        "network": network, "layer": "conv5", "class_names": ["art_gallery", "bedroom", "kitchen"],
        "detectors": {"bed": [0, 1], "painting": [2]}, "conditions": [], "correct": [], "totals": [],
        "diagnostic": {"bedroom": ["bed"], "art_gallery": ["painting"]},
        "counts": {"images": 80, "labelled": 80}, "options": {"n_random": 5}}))


def _write_human(results: Path, network: str) -> None:
    folder = results / network / "human"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"network": network, "layer": "conv5", "unit": 0, "label": "bed", "type": "object",
                   "precision": 0.9, "agreement": 1.0, "n_annotations": 3, "type_agreement": 1.0,
                   "labels": "bed;bed;bed", "types": "object;object;object"}]).to_csv(folder / "units.csv",
                                                                                  index=False)
    pd.DataFrame([{"network": network, "layer": "conv5", "n_units": 1, "share_simple": 0.0, "share_texture": 0.0,
                   "share_region": 0.0, "share_part": 0.0, "share_object": 1.0, "share_scene": 0.0,
                   "mean_precision": 0.9, "precision_over_75": 1.0, "mean_agreement": 1.0,
                   "mean_type_agreement": 1.0}]).to_csv(folder / "layers.csv", index=False)
    pd.DataFrame([{"network": network, "layer": "conv5", "unit": 0, "human_label": "bed", "human_type": "object",
                   "auto_label": "bed", "auto_category": "object", "auto_type": "object", "auto_iou": 0.12,
                   "label_match": True, "type_match": True}]).to_csv(folder / "compare.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({
        "network": network, "n_units_labelled": 1, "n_annotations": 3, "n_annotators": 3, "mean_precision": 0.9,
        "precision_over_75": 1.0, "mean_agreement": 1.0, "label_agreement_rate": 1.0,
        "type_agreement_rate": 1.0}))


def make_fake_results(root: Path, *, partial: bool = False) -> Path:
    """Write a results directory under ``root`` (every section, or only the dissection when ``partial``)."""
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    if partial:
        _write_dissection(results, "scenenet", layers_csv=False)
        return results
    for network in ("scenenet", "objectnet", "scenenet-random"):
        _write_dissection(results, network)
    _write_census(results, "scenenet", "scenenet-random")
    _write_census(results, "objectnet", None)
    _write_preference(results)
    for network in ("scenenet", "objectnet"):
        _write_minimal(results, network)
        _write_rf(results, network)
    _write_localize(results, "scenenet")
    _write_ablate(results, "scenenet")
    _write_human(results, "scenenet")
    (results / "run.json").write_text(json.dumps({
        "config": {"quick": True, "seed": 0, "world": {"n_scenes": 10, "size": 128}},
        "versions": {"unitscope": "0.1.0", "torch": "2.x"},
        "timings": {"world": 12.5, "train": 100.0, "dissect": 30.25},
        "networks": {"scenenet": {"arch": "mini_alexnet", "weights": "scene.pt", "val_top1": 0.91},
                     "objectnet": {"arch": "mini_alexnet", "weights": "object.pt", "val_top1": 0.88}},
        "world": {"scenes": 10, "objects": 24},
    }))
    return results
