"""Scores of a detector against the ground truth: mask IoU, box IoU, pointing game, false alarms.

Each (layer, object) keeps running sums for its *slots*: its detector units,
then the layer's combined detector.  Masks are compared on the annotation's
grid; the pointing radius is in pixels of the network's input image (the
distance transform is taken with the mask grid's pixel spacing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .boxes import box_iou, component_boxes

#: Metrics of every (unit or combined detector, object) row.
METRICS = ("mask_iou", "mean_image_iou", "box_iou", "box_hit_rate", "pointing", "fire_rate_absent")


class _Scores:
    """Running sums for the detector slots of one (layer, object): its units, then the combined one."""

    def __init__(self, slots: int) -> None:
        self.images = 0
        self.absent = 0
        self.inter = np.zeros(slots)
        self.union = np.zeros(slots)
        self.image_iou = np.zeros(slots)
        self.box_iou = np.zeros(slots)
        self.box_hits = np.zeros(slots)
        self.pointing = np.zeros(slots)
        self.fires_absent = np.zeros(slots)

    def metrics(self) -> dict[str, np.ndarray]:
        n = self.images if self.images else np.nan
        return {
            "mask_iou": np.divide(self.inter, self.union, out=np.full_like(self.inter, np.nan),
                                  where=self.union > 0),
            "mean_image_iou": self.image_iou / n,
            "box_iou": self.box_iou / n,
            "box_hit_rate": self.box_hits / n,
            "pointing": self.pointing / n,
            "fire_rate_absent": self.fires_absent / (self.absent if self.absent else np.nan),
        }


def _score(scores: _Scores, masks: np.ndarray, peaks: np.ndarray, truth: np.ndarray,
           spacing: tuple[float, float], radius: float, hit_iou: float) -> None:
    """Add one image's scores for every slot; ``masks`` is ``(slots, sh, sw)`` bool."""
    if not truth.any():
        scores.absent += 1
        scores.fires_absent += masks.reshape(len(masks), -1).any(axis=1)
        return
    scores.images += 1
    inter = (masks & truth).reshape(len(masks), -1).sum(axis=1)
    union = (masks | truth).reshape(len(masks), -1).sum(axis=1)
    scores.inter += inter
    scores.union += union
    scores.image_iou += inter / union  # truth is not empty, so union > 0
    distance = ndimage.distance_transform_edt(~truth, sampling=spacing)
    scores.pointing += distance.ravel()[peaks] <= radius
    gt_boxes = component_boxes(truth)
    for s, mask in enumerate(masks):
        boxes = component_boxes(mask)
        best = float(box_iou(boxes, gt_boxes).max()) if len(boxes) else 0.0
        scores.box_iou[s] += best
        scores.box_hits[s] += best >= hit_iou


def _tables(network, layers, detectors, plan, dissection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``units`` and ``objects`` tables of a result, from the running sums in ``plan``."""
    unit_rows, object_rows = [], []
    for name in layers:
        ld = dissection.layers[name]
        for obj, units in detectors[name].items():
            scores = plan[name]["scores"][obj]
            metrics = scores.metrics()
            column = dissection.concepts.find(obj, "object").number - 1
            for s, unit in enumerate(units + [-1]):
                combined = unit < 0
                row = {"network": network, "layer": name, "object": obj, "unit": unit,
                       "kind": "combined" if combined else "unit",
                       "dissection_iou": np.nan if combined else float(ld.iou[unit, column]),
                       "threshold": np.nan if combined else float(ld.thresholds[unit]),
                       "images": scores.images, "images_absent": scores.absent}
                row.update({m: float(metrics[m][s]) for m in METRICS})
                unit_rows.append(row)
            unit_iou = metrics["mask_iou"][:-1]
            best = int(np.nanargmax(unit_iou)) if np.isfinite(unit_iou).any() else 0
            row = {"network": network, "layer": name, "object": obj, "detectors": len(units),
                   "units": ";".join(str(u) for u in units), "images": scores.images,
                   "images_absent": scores.absent}
            row.update({m: float(metrics[m][-1]) for m in METRICS})
            row.update({"best_unit": units[best], "best_unit_mask_iou": float(unit_iou[best]),
                        "best_unit_pointing": float(metrics["pointing"][best]),
                        "mean_unit_mask_iou": float(np.mean(unit_iou)),
                        "mean_unit_pointing": float(np.mean(metrics["pointing"][:-1]))})
            object_rows.append(row)
    unit_columns = ["network", "layer", "object", "unit", "kind", "dissection_iou", "threshold",
                    "images", "images_absent", *METRICS]
    object_columns = ["network", "layer", "object", "detectors", "units", "images", "images_absent",
                      *METRICS, "best_unit", "best_unit_mask_iou", "best_unit_pointing",
                      "mean_unit_mask_iou", "mean_unit_pointing"]
    return pd.DataFrame(unit_rows, columns=unit_columns), pd.DataFrame(object_rows, columns=object_columns)
