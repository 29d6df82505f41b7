"""The study report from a small hand-written results directory.

:func:`make_fake_results` writes every section's files with pandas and PIL,
in the layout the experiments write (their ``save()`` methods); the numbers
are chosen so the expected sentences are known:

* scenenet: conv3 has 1 object detector (bed), conv5 has 4 (bed, bed,
  painting, bookcase) -> 5 of 12 units, 3 different objects;
* objectnet: conv3 none, conv5 one (car) -> 1 of 12 units;
* scenenet-random (the null): one object detector in conv5.

The browser test (``test_report_browser.py``) imports it too.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from unitscope.report import ReportInputError, build_report, load_results
from unitscope.report.summary import key_layer, layer_order, object_detector_table, summarise

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
    folder = results / "preference"
    rows, tops, thumbs = [], [], []
    shares = {("scenenet", "conv3"): 0.55, ("scenenet", "conv5"): 0.81,
              ("objectnet", "conv3"): 0.52, ("objectnet", "conv5"): 0.23}
    for (network, layer), scene_share in shares.items():
        rows.append({"network": network, "layer": layer, "source": "scenes", "count": round(scene_share * 10),
                     "fraction": scene_share})
        rows.append({"network": network, "layer": layer, "source": "objects",
                     "count": 10 - round(scene_share * 10), "fraction": round(1 - scene_share, 2)})
        for rank in range(2):
            image_id = f"{network}-{layer}-{rank}"
            rel = f"top/{network}/{layer}/{rank:03d}_{image_id}.png"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            picture(rank + len(tops), 24).save(folder / rel)
            tops.append({"network": network, "layer": layer, "rank": rank, "pool": 0, "index": rank,
                         "id": image_id, "source": "scenes", "score": 1.0 - rank / 10})
            thumbs.append({"network": network, "layer": layer, "rank": rank, "id": image_id, "file": rel})
    pd.DataFrame(rows).to_csv(folder / "fractions.csv", index=False)
    pd.DataFrame(tops).to_csv(folder / "top_images.csv", index=False)
    (folder / "preference.json").write_text(json.dumps({"experiment": "layer_preference", "top": 10,
                                                        "sources": ["scenes", "objects"], "scores": [],
                                                        "thumbnails": thumbs}))


def _write_minimal(results: Path, network: str) -> None:
    folder = results / network / "minimal" / "masks"
    (folder / "examples").mkdir(parents=True, exist_ok=True)
    images = pd.DataFrame([
        {"index": 0, "id": "bed1", "label": 0, "label_name": "bedroom", "n_segments": 6, "n_kept": 2, "n_steps": 4,
         "kept_fraction": 0.30, "initial_score": 0.9, "final_score": 0.5, "kept": "0;3",
         "objects_present": "bed;lamp", "objects_kept": "bed"},
        {"index": 1, "id": "bed2", "label": 0, "label_name": "bedroom", "n_segments": 5, "n_kept": 1, "n_steps": 4,
         "kept_fraction": 0.20, "initial_score": 0.8, "final_score": 0.45, "kept": "1",
         "objects_present": "bed", "objects_kept": "bed"},
    ])
    images.to_csv(folder / "images.csv", index=False)
    pd.DataFrame([{"scene": "bedroom", "object": "bed", "n_images": 2, "n_present": 2, "n_kept": 2, "share": 1.0,
                   "share_given_present": 1.0},
                  {"scene": "bedroom", "object": "lamp", "n_images": 2, "n_present": 1, "n_kept": 0, "share": 0.0,
                   "share_given_present": 0.0}]).to_csv(folder / "objects.csv", index=False)
    pd.DataFrame([{"scene": "bedroom", "object": "bed", "n_images": 2, "n_present": 2, "n_kept": 2, "share": 1.0,
                   "share_given_present": 1.0},
                  {"scene": "bedroom", "object": "(any)", "n_images": 2, "n_present": 2, "n_kept": 2, "share": 1.0,
                   "share_given_present": 1.0}]).to_csv(folder / "diagnostic.csv", index=False)
    examples = []
    for n, image_id in enumerate(["bed1", "bed2"]):
        stem = f"examples/{n:03d}_{image_id}"
        picture(100 + n, 40).save(folder / f"{stem}_original.png")
        picture(200 + n, 40).save(folder / f"{stem}_minimal.png")
        examples.append({"id": image_id, "original": f"{stem}_original.png", "minimal": f"{stem}_minimal.png"})
    (folder / "minimal.json").write_text(json.dumps({
        "experiment": "minimal_images", "options": {"segmentation": "masks", "fill": "mean"},
        "counts": {"seen": 3, "evaluated": 2, "incorrect": 1}, "diagnostic": {"bedroom": ["bed"]},
        "examples": examples, "records": []}))


def _write_rf(results: Path, network: str) -> None:
    for layer, theoretical, sizes in (("conv3", 51, [20.0, 24.0]), ("conv5", 99, [30.0, 40.0])):
        folder = results / network / "rf" / layer
        (folder / "maps").mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"network": network, "layer": layer, "unit": [0, 1], "rf_size": sizes, "peak": [1.0, 2.0],
                      "n_images": [5, 5], "theoretical_size": theoretical}).to_csv(folder / "units.csv", index=False)
        pd.DataFrame([{"network": network, "layer": layer, "n_units": 2, "n_measured": 2,
                       "rf_mean": float(np.mean(sizes)), "rf_std": float(np.std(sizes)),
                       "rf_median": float(np.median(sizes)), "theoretical_size": theoretical,
                       "theoretical_stride": 8, "occluder": 6, "stride": 2, "image_size": "128x128"}]).to_csv(
            folder / "layer.csv", index=False)
        pictures = []
        for unit in (0, 1):
            name = f"maps/unit_{unit:04d}.png"
            picture(300 + unit, 21).save(folder / name)
            pictures.append(name)
        (folder / "rf.json").write_text(json.dumps({
            "experiment": "empirical_receptive_fields", "network": network, "layer": layer,
            "theoretical": {"size": theoretical, "stride": 8, "start": 0}, "image_size": [128, 128],
            "occluder": 6, "stride": 2, "options": {}, "stats": {"images": 4}, "pictures": pictures}))
    folder = results / network / "rf" / "segmentations"
    (folder / "conv5").mkdir(parents=True, exist_ok=True)
    picture(400, 30).resize((94, 30)).save(folder / "conv5" / "unit_0000.png")
    (folder / "segmentations.json").write_text(json.dumps({
        "experiment": "unit_segmentations", "network": network, "layer": "conv5", "units": [0], "options": {},
        "tiles": {"0": "conv5/unit_0000.png"}}))


def _write_localize(results: Path, network: str) -> None:
    folder = results / network / "localize"
    (folder / "examples" / "conv5").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([
        {"network": network, "layer": "conv5", "object": "bed", "unit": 0, "kind": "unit", "dissection_iou": 0.12,
         "threshold": 0.5, "images": 10, "images_absent": 5, "mask_iou": 0.4, "mean_image_iou": 0.35,
         "box_iou": 0.5, "box_hit_rate": 0.5, "pointing": 0.9, "fire_rate_absent": 0.1},
        {"network": network, "layer": "conv5", "object": "bed", "unit": 1, "kind": "unit", "dissection_iou": 0.09,
         "threshold": 0.6, "images": 10, "images_absent": 5, "mask_iou": 0.2, "mean_image_iou": 0.2,
         "box_iou": 0.3, "box_hit_rate": 0.2, "pointing": 0.7, "fire_rate_absent": 0.2},
        {"network": network, "layer": "conv5", "object": "bed", "unit": -1, "kind": "combined",
         "dissection_iou": None, "threshold": None, "images": 10, "images_absent": 5, "mask_iou": 0.45,
         "mean_image_iou": 0.4, "box_iou": 0.55, "box_hit_rate": 0.6, "pointing": 0.95, "fire_rate_absent": 0.2},
    ]).to_csv(folder / "units.csv", index=False)
    pd.DataFrame([{"network": network, "layer": "conv5", "object": "bed", "detectors": 2, "units": "0;1",
                   "images": 10, "images_absent": 5, "mask_iou": 0.45, "mean_image_iou": 0.4, "box_iou": 0.55,
                   "box_hit_rate": 0.6, "pointing": 0.95, "fire_rate_absent": 0.2, "best_unit": 0,
                   "best_unit_mask_iou": 0.4, "best_unit_pointing": 0.9, "mean_unit_mask_iou": 0.3,
                   "mean_unit_pointing": 0.8}]).to_csv(folder / "objects.csv", index=False)
    pd.DataFrame([{"network": network, "layer": "conv5", "objects": 1, "detectors": 2, "images": 10,
                   "mask_iou": 0.45, "box_iou": 0.55, "box_hit_rate": 0.6, "pointing": 0.95,
                   "unit_mask_iou": 0.3, "unit_pointing": 0.8}]).to_csv(folder / "layers.csv", index=False)
    picture(500, 48).save(folder / "examples" / "conv5" / "000_bed1.png")
    (folder / "examples.json").write_text(json.dumps([{
        "index": 0, "id": "bed1", "label": 0, "label_name": "bedroom", "predicted": 0, "predicted_name": "bedroom",
        "probability": 0.8, "image_size": [128, 128], "mask_size": [64, 64],
        "picture": {"conv5": "examples/conv5/000_bed1.png"},
        "detections": [{"layer": "conv5", "object": "bed", "present": True, "detected": True,
                        "boxes": [[1, 2, 30, 40]], "gt_boxes": [[0, 0, 32, 42]], "mask_fraction": 0.2}]}]))
    (folder / "localize.json").write_text(json.dumps({"network": network, "layers": ["conv5"],
                                                      "counts": {"images": 10, "labelled": 10, "correct": 8,
                                                                 "accuracy": 0.8}, "options": {}}))


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


def _text(html: str) -> str:
    """The visible text of a page, tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results = make_fake_results(root)
    index = build_report(results)
    return results, index


# --------------------------------------------------------------------------- loading and numbers
def test_loads_networks_nulls_and_object_detector_counts(tmp_path):
    results = load_results(make_fake_results(tmp_path))
    assert [n.name for n in results.networks] == ["scenenet", "objectnet"]  # run.json order
    assert list(results.nulls) == ["scenenet-random"]
    assert results.network("scenenet").null == "scenenet-random"
    table = object_detector_table(results.networks)
    assert table[["network", "layer", "units", "detectors", "object_detectors", "unique_objects"]].values.tolist() == [
        ["scenenet", "conv3", 6, 3, 1, 1], ["scenenet", "conv5", 6, 5, 4, 3],
        ["objectnet", "conv3", 6, 3, 0, 0], ["objectnet", "conv5", 6, 4, 1, 1],
    ]
    assert key_layer(table, layer_order(results.networks)) == "conv5"
    with pytest.raises(LookupError, match="nothere"):
        load_results(results.root, networks=["nothere"])


def test_summary_answers_the_questions_with_numbers(tmp_path):
    findings = {f.key: f for f in summarise(load_results(make_fake_results(tmp_path)))}
    assert set(findings) >= {"emerge", "layers", "objects", "versus", "preference", "minimal", "rf", "census",
                             "human"}
    emerge = findings["emerge"].answer
    assert emerge.startswith("Yes. In scenenet, 5 of the 12 units in 2 dissected layers are object detectors "
                             "(41.7%, IoU > 0.04), detecting 3 different objects; with random weights the same "
                             "architecture has 1.")
    assert "In objectnet, 1 of the 12 units in 2 dissected layers is an object detector (8.3%, IoU > 0.04), " \
           "detecting 1 different object." in emerge
    assert findings["emerge"].numbers["scenenet"] == {"object_detectors": 5, "units": 12, "unique_objects": 3,
                                                      "layers": 2, "iou_threshold": 0.04, "null_object_detectors": 1}
    assert findings["layers"].answer.startswith(
        "In scenenet, object detectors appear from conv3 (1) and are most numerous in conv5 (4 of 6 units, 66.7%).")
    assert "scenenet: bed (3), bookcase (1), painting (1)" in findings["objects"].answer
    versus = findings["versus"]
    assert versus.question == "Does the scene network use objects more than the object network?"
    assert versus.answer.startswith("Yes: over the 2 layers both networks have, scenenet has 5 object detectors "
                                    "(41.7% of its units) and objectnet 1 (8.3%)")
    assert "In conv5: 4 (66.7%) vs 1 (16.7%)" in versus.answer
    assert versus.numbers["per_layer"] == {"conv3": [1, 0], "conv5": [4, 1]}
    assert "scenenet: conv3 55% scenes → conv5 81% scenes" in findings["preference"].answer
    assert "objectnet: conv3 52% scenes → conv5 77% objects" in findings["preference"].answer
    assert "bedroom → bed 100%" in findings["minimal"].answer
    assert "a diagnostic object of the scene survives in 100% of them" in findings["minimal"].answer
    assert "conv3 22.0±2.0 vs 51, conv5 35.0±5.0 vs 99" in findings["rf"].answer
    assert findings["rf"].answer.startswith("The empirical receptive fields are smaller than the theoretical ones")
    assert "scenenet at conv5: object frequency r = 0.61 [0.31, 0.71]" in findings["census"].answer
    assert findings["localize"].numbers == {"scenenet": {"units": 2, "iou": pytest.approx(0.3),
                                                         "pointing": pytest.approx(0.8)}}
    assert findings["ablate"].answer == (
        "In scenenet (conv5), switching off the detectors of an object lowers the accuracy of its diagnostic scenes "
        "by 25.0 points on average, switching off as many random units by 4.5 (2 objects); for 2 of 2 objects a "
        "diagnostic scene is the class hurt most.")
    assert "human and automatic labels agree on 100%" in findings["human"].answer


# --------------------------------------------------------------------------- the pages
def test_full_report_has_every_section_plot_and_page(full_report):
    results, index = full_report
    assert index == results / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    text = _text(html)
    assert "Yes. In scenenet, 5 of the 12 units" in text
    assert "Does the scene network use objects more than the object network?" in text
    for section in ("summary", "preference", "minimal", "rf", "semantics", "census", "localize", "ablate", "human",
                    "run"):
        assert f'<section id="{section}">' in html
    # every section has results; only objectnet lacks a random-weights null
    assert re.findall(r'class="missing">([^<]*)', html) == ["No random-weights null for objectnet: add "]
    plots = sorted(p.name for p in (index.parent / "plots").iterdir())
    assert plots == ["ablate_scenenet.png", "census_correlations.png", "census_null_scenenet.png",
                     "census_objects.png", "census_scatter_objectnet.png", "census_scatter_scenenet.png",
                     "census_sweep_objectnet.png", "census_sweep_scenenet.png", "detectors.png", "human_types.png",
                     "localize_scenenet.png", "preference.png", "receptive_fields.png", "unit_types.png"]
    for png in (index.parent / "plots").iterdir():
        with Image.open(png) as image:
            assert image.width > 300 and image.height > 150
    # paper's RF values for reference, this run's table, timings and configuration
    assert "17.8" in text and "72" in text and "195" in text and "approximate" in text
    assert "conv5 " in text and "empirical / theoretical" in text
    assert "dissect 30.2 s 30.2 total 2.4 min 143" in text
    assert "config.world.n_scenes" not in text and "world.n_scenes 10" in text
    assert "mini_alexnet" in text and "0.91" in text
    # the unit table: one row per unit of the two networks (not the null), each linking to its page
    rows = re.findall(r'<tr data-network="([^"]+)" data-detector="([01])"', html)
    assert len(rows) == 24 and sum(d == "1" for _, d in rows) == 15
    assert 'href="units/scenenet/conv5/3.html"' in html
    pages = sorted(p.relative_to(index.parent).as_posix() for p in (index.parent / "units").rglob("*.html"))
    assert len(pages) == 24 and "units/objectnet/conv3/0.html" in pages
    summary = json.loads((index.parent / "summary.json").read_text())
    assert summary["key_layer"] == "conv5" and summary["networks"] == ["scenenet", "objectnet"]
    assert [f["key"] for f in summary["findings"]][:4] == ["emerge", "layers", "objects", "versus"]


def test_every_image_link_resolves_and_nothing_is_remote(full_report):
    results, index = full_report
    pages = [index] + sorted((index.parent / "units").rglob("*.html"))
    count = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html and "//cdn" not in html
        links = re.findall(r'<(?:img|script)[^>]* src="([^"]+)"', html)
        links += re.findall(r'href="([^"#]+\.(?:css|html|json))"', html)
        for src in links:
            assert (page.parent / unquote(src)).resolve().is_file(), f"{page}: broken link {src}"
            count += 1
    assert count > 200


def test_unit_page_shows_images_labels_rf_map_tile_and_human_label(full_report):
    _, index = full_report
    page = index.parent / "units" / "scenenet" / "conv5" / "0.html"
    html = page.read_text(encoding="utf-8")
    text = _text(html)
    assert "scenenet · conv5 · unit 0" in text
    segmentation = r'<figure class="seg"><img src="(?:\.\./){4}scenenet/segmentations/conv5/0/00\d_img0x\d\.jpg"'
    assert len(re.findall(segmentation, html)) == N_SEGMENTATIONS
    assert "label bed" in text and "IoU 0.12" in text and "precision (top images) 0.25" in text
    assert "object bed 0.12" in text and "color color-best 0.01" in text  # best label of each category
    assert 'class="rf-map"' in html and "Size: 30 px" in text
    assert 'class="tile-wide"' in html
    assert "Human label" in text and "agreement 1" in text
    assert "bed 0.4 0.5 90%" in text  # localisation of the unit
    assert 'id="next-unit" href="1.html"' in html and 'id="previous-unit"' not in html


def test_text_from_results_is_escaped(full_report):
    _, index = full_report
    html = index.read_text(encoding="utf-8")
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt; &amp; &#34;co&#34;" in html
    unit_page = (index.parent / "units" / "objectnet" / "conv5" / "5.html").read_text(encoding="utf-8")
    assert "<b>evil</b>" not in unit_page and "&lt;b&gt;evil" in unit_page


def test_partial_results_say_what_to_run(tmp_path):
    results = make_fake_results(tmp_path, partial=True)
    index = build_report(results, title="Only <dissection>")
    html = index.read_text(encoding="utf-8")
    text = _text(html)
    assert "<title>Only &lt;dissection&gt;</title>" in html
    assert "Yes. In scenenet, 5 of the 12 units in 2 dissected layers are object detectors" in text
    for hint in ("run `unitscope preference ... --out RESULTS`", "run `unitscope minimal ... --out RESULTS`",
                 "run `unitscope rf ... --out RESULTS`", "`unitscope dissect ... --out RESULTS` writes it",
                 "run `unitscope localize ... --out RESULTS`", "run `unitscope ablate ... --out RESULTS`",
                 "`unitscope label serve RESULTS`", "written by `unitscope demo`"):
        assert hint in text, hint
    assert text.count("No ") >= 8
    # layers.csv was absent: the per-layer table is recomputed from units.csv
    assert sorted(p.name for p in (index.parent / "plots").iterdir()) == ["detectors.png", "unit_types.png"]
    assert len(list((index.parent / "units").rglob("*.html"))) == 12
    assert "Does the scene network" not in text  # one network: nothing to compare


def test_rebuild_replaces_generated_files_and_refuses_foreign_folder(tmp_path):
    results = make_fake_results(tmp_path / "full")
    index = build_report(results, out=tmp_path / "site")
    assert (index.parent / "plots" / "preference.png").is_file()
    partial = make_fake_results(tmp_path / "partial", partial=True)
    assert build_report(partial, out=tmp_path / "site") == index
    # what the first build wrote and the second did not is gone: the folder was replaced whole
    assert sorted(p.name for p in (index.parent / "plots").iterdir()) == ["detectors.png", "unit_types.png"]
    assert not (index.parent / "units" / "objectnet").exists()
    (index.parent / "plots" / "mine.png").write_bytes(b"x")  # not written by unitscope: refused, kept
    with pytest.raises(ValueError, match=r"did not write \(plots/mine.png\)"):
        build_report(partial, out=tmp_path / "site")
    assert (index.parent / "plots" / "mine.png").read_bytes() == b"x"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.html").write_text("mine")
    with pytest.raises(ValueError, match="did not write"):
        build_report(results, out=foreign)
    assert (foreign / "index.html").read_text() == "mine"


def test_copy_images_makes_a_movable_report(tmp_path):
    results = make_fake_results(tmp_path, partial=True)
    index = build_report(results, out=tmp_path / "portable", copy_images=True)
    html = (index.parent / "units" / "scenenet" / "conv3" / "0.html").read_text(encoding="utf-8")
    assert 'src="../../../files/scenenet/segmentations/conv3/0/000_img0x0.jpg"' in html
    assert (index.parent / "files" / "scenenet" / "segmentations" / "conv3" / "0" / "000_img0x0.jpg").is_file()


def test_bad_input_is_reported_not_skipped(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")
    results = make_fake_results(tmp_path, partial=True)
    (results / "run.json").write_text("{not json")
    with pytest.raises(ReportInputError, match="run.json"):
        build_report(results)
    (results / "run.json").unlink()
    pd.DataFrame({"layer": ["conv3"]}).to_csv(results / "scenenet" / "dissect" / "units.csv", index=False)
    with pytest.raises(ReportInputError, match="lacks the column"):
        build_report(results)
