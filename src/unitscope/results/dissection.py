"""The dissection tables of one network, as the report and the labeling app read them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.layout import CONCEPTS_CSV, DISSECT, LAYERS_CSV, RESULT_JSON, UNITS_CSV
from unitscope.results.schema import ResultFileError, as_bool, read_json, read_table

__all__ = ["Dissection", "UNIT_TYPES", "load_dissection"]


@dataclass
class Dissection:
    """The dissection tables of one network (``RESULTS/<network>/dissect``)."""

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    concepts: pd.DataFrame | None
    categories: list[str]
    iou_threshold: float
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # result.json's plain sentences (saturation, support)

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers["layer"])


UNIT_TYPES = ("simple", "texture", "region", "part", "object", "scene")


def _layer_summary(units: pd.DataFrame, network: str) -> pd.DataFrame:
    """The per-layer table of ``layers.csv``, recomputed from the units (when that file is absent)."""
    rows = []
    for layer in dict.fromkeys(units["layer"]):
        u = units[units["layer"] == layer]
        det = u[u["detector"]]
        row = {"network": network, "layer": layer, "units": len(u), "detectors": len(det),
               "unique_concepts": det["label"].nunique(),
               "unique_objects": det.loc[det["category"] == "object", "label"].nunique(),
               "mean_iou": float(u["iou"].mean()) if len(u) else 0.0,
               "mean_precision": float(det["precision"].mean()) if len(det) else float("nan")}
        for key in UNIT_TYPES:
            row[f"share_{key}"] = float((det["type"] == key).sum()) / max(len(u), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def load_dissection(results_dir: Path, network: str) -> Dissection | None:
    """Read ``<network>/dissect/units.csv`` (+ ``layers.csv``, ``concepts.csv``, ``result.json``).

    Adds two columns to the units: ``detector`` (when absent: IoU above the
    dissection's threshold) and ``object_detector`` (a detector whose label is
    an object).  Returns None when there is no ``units.csv``.
    """
    folder = Path(results_dir) / network / DISSECT
    units = read_table(folder / UNITS_CSV, DISSECT)
    if units is None:
        return None
    meta = read_json(folder / RESULT_JSON) or {}
    config = meta.get("config") or {}
    threshold = config.get("iou_threshold", 0.04)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ResultFileError(f"{folder / RESULT_JSON}: config.iou_threshold must be a finite number, "
                               f"not {threshold!r}")
    threshold = float(threshold)
    layers = read_table(folder / LAYERS_CSV, DISSECT)
    _check_unit_counts(folder, units, layers, meta.get("layers"))
    units = units.copy()
    if "network" not in units.columns:
        units.insert(0, "network", network)
    for column in ("category", "type", "top_images"):
        if column not in units.columns:
            units[column] = ""
    if "precision" not in units.columns:
        units["precision"] = np.nan
    units["precision"] = pd.to_numeric(units["precision"], errors="coerce")
    units["detector"] = as_bool(units["detector"]) if "detector" in units.columns else units["iou"] > threshold
    units["object_detector"] = units["detector"] & (units["category"] == "object")
    categories = [c[: -len("_label")] for c in units.columns
                  if c.endswith("_label") and f"{c[: -len('_label')]}_iou" in units.columns]
    if layers is None or not len(layers):
        layers = _layer_summary(units, network)
    concepts = read_table(folder / CONCEPTS_CSV, DISSECT)
    return Dissection(network=network, units=units, layers=layers, concepts=concepts,
                      categories=categories, iou_threshold=threshold, config=config,
                      warnings=[str(w) for w in meta.get("warnings") or []])


def _check_unit_counts(folder: Path, units: pd.DataFrame, layers: pd.DataFrame | None,
                       listed: list | None) -> None:
    """``units.csv`` holds one row per unit of every layer the dissection lists: none missing, none twice.

    A truncated ``units.csv`` would otherwise read as a smaller dissection
    ("1 of the 6 units") with no sign that anything is wrong.
    """
    path = folder / UNITS_CSV
    twice = units.duplicated(["layer", "unit"])
    if twice.any():
        row = units[twice].iloc[0]
        raise ResultFileError(f"{path} has unit {row['unit']} of layer {row['layer']} twice")
    counts = units.groupby("layer", sort=False).size()
    for layer in listed or []:
        if str(layer) not in counts.index:
            raise ResultFileError(f"{path} has no rows for layer {layer}, which "
                                   f"{folder / RESULT_JSON} lists (a truncated file?)")
    if layers is None or not len(layers):
        return
    extra = [layer for layer in counts.index if layer not in set(layers["layer"])]
    if extra:
        raise ResultFileError(f"{path} has rows for layer {extra[0]}, which {folder / LAYERS_CSV} does not list "
                               "(files of two different dissections?)")
    for layer, expected in zip(layers["layer"], layers["units"]):
        found = int(counts.get(layer, 0))
        if found != int(expected):
            raise ResultFileError(f"{path} has {found} rows for layer {layer} where {folder / LAYERS_CSV} "
                                   f"counts {int(expected)} units (a truncated or mixed-up file?)")
