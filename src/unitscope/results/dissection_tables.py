"""The tables of a dissection, and the one place their files are written and read.

A dissection folder (``RESULTS/<network>/dissect``) holds::

    units.csv, units.json   one row per unit: label, category, type, iou, detector, threshold, saturated,
                            coverage, precision, top_images, <category>_label / <category>_iou
    layers.csv              one row per layer: units, detectors, unique concepts/objects, type shares
    concepts.csv            one row per concept: number, name, category, images, pixels, supported
    result.json             network, layers, image_ids, config (threshold rule, min support,
                            preprocessing, ...), thresholds, warnings

:func:`write_tables` writes them (for :meth:`DissectionResult.save
<unitscope.results.dissection.DissectionResult.save>`, which adds the
arrays); :class:`DissectionTables` reads them back, and needs nothing else:
a folder holding only the tables (a dissection imported from published
tables) is a complete input for the report and the labeling app.

Older folders: ``layers.csv`` absent (recomputed from the units), no
``detector`` column (IoU above the threshold of ``result.json``, else
0.04), no ``coverage``/``saturated`` columns, no ``concepts.csv``, no
``result.json`` or one without ``config``: all read.  A ``units.csv``
that disagrees with ``layers.csv`` or ``result.json`` (a truncated or
mixed-up file) raises :class:`~unitscope.results.schema.ResultFileError`
naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.layout import (CONCEPTS_CSV, DISSECT, LAYERS_CSV, RESULT_JSON, UNITS_CSV, UNITS_JSON,
                                      dissect_dir)
from unitscope.results.schema import ResultFileError, as_bool, read_json, read_required_table, read_table
from unitscope.results.writing import write_csv, write_json
from unitscope.taxonomy import TYPES

__all__ = ["DEFAULT_IOU_THRESHOLD", "DissectionTables", "write_tables", "summarise_layers", "load_dissection"]

#: The IoU a detector exceeds when a result does not say (SPEC section 5).
DEFAULT_IOU_THRESHOLD = 0.04


def write_tables(folder: Path, *, units: pd.DataFrame, layers: pd.DataFrame, concepts: pd.DataFrame,
                 document: dict) -> None:
    """Write a dissection's tables into ``folder``.

    ``concepts.csv``, ``units.csv`` (and the same rows as ``units.json``),
    ``layers.csv`` and ``result.json`` (``document``), each atomically.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / CONCEPTS_CSV, concepts)
    write_csv(folder / UNITS_CSV, units)
    write_json(folder / UNITS_JSON, units.to_dict(orient="records"))
    write_csv(folder / LAYERS_CSV, layers)
    write_json(folder / RESULT_JSON, document)


def summarise_layers(units: pd.DataFrame, network: str) -> pd.DataFrame:
    """Per layer of ``units`` (in order): units, detectors, unique concepts/objects, mean IoU, precision, types.

    With ``saturated`` and ``coverage`` columns in ``units``, also the
    saturated units and the largest coverage of each layer.
    """
    rows = []
    for layer in dict.fromkeys(units["layer"]):
        u = units[units["layer"] == layer]
        det = u[u["detector"]]
        row = {"network": network, "layer": layer, "units": len(u), "detectors": len(det),
               "unique_concepts": det["label"].nunique(),
               "unique_objects": det.loc[det["category"] == "object", "label"].nunique(),
               "mean_iou": float(u["iou"].mean()) if len(u) else 0.0,
               "mean_precision": float(det["precision"].mean()) if len(det) else float("nan")}
        if "saturated" in u.columns and "coverage" in u.columns:
            row["saturated"] = int(u["saturated"].sum())
            row["max_coverage"] = float(u["coverage"].max()) if len(u) else float("nan")
        for key in TYPES:
            row[f"share_{key}"] = float((det["type"] == key).sum()) / max(len(u), 1)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class DissectionTables:
    """The tables of one network's dissection (``RESULTS/<network>/dissect``), as saved.

    Attributes
    ----------
    network : str
    units : DataFrame
        ``units.csv``, with ``network``, ``category``, ``type``, ``top_images``
        and ``precision`` filled in when an older file lacks them, ``detector``
        as booleans and ``object_detector`` (a detector whose label is an object).
    layers : DataFrame
        ``layers.csv`` (recomputed from the units when absent).
    concepts : DataFrame or None
        ``concepts.csv`` when present.
    categories : list of str
        The categories with ``<category>_label`` / ``<category>_iou`` columns.
    iou_threshold : float
        ``config.iou_threshold`` of ``result.json`` (default 0.04).
    config : dict
    warnings : list of str
        ``result.json``'s plain sentences (saturation, support, null).
    document : dict
        ``result.json`` as read (empty when absent).
    """

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    concepts: pd.DataFrame | None
    categories: list[str]
    iou_threshold: float
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    document: dict = field(default_factory=dict)

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers["layer"])

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table."""
        return self.units

    def save(self, folder: str | Path) -> Path:
        """Write the tables into ``folder`` (``object_detector``, derived on reading, is not written)."""
        units = self.units.drop(columns=["object_detector"], errors="ignore")
        concepts = self.concepts if self.concepts is not None else pd.DataFrame(
            columns=["number", "name", "category"])
        document = dict(self.document) or {"network": self.network, "layers": self.layer_names,
                                           "config": self.config, "warnings": list(self.warnings)}
        write_tables(Path(folder), units=units, layers=self.layers, concepts=concepts, document=document)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path, *, network: str | None = None) -> "DissectionTables":
        """Read the tables of the dissection in ``folder``.

        Parameters
        ----------
        folder : str or Path
            A dissection folder (``RESULTS/<network>/dissect``).
        network : str, optional
            The network's name when ``units.csv`` has no ``network`` column
            (default: ``result.json``'s, else the name of the folder above).

        Raises
        ------
        FileNotFoundError
            If ``folder`` holds no ``units.csv``.
        ResultFileError
            If a file cannot be read or the files disagree.
        """
        folder = Path(folder)
        units = read_required_table(folder / UNITS_CSV, DISSECT, what="dissection tables")
        meta = read_json(folder / RESULT_JSON) or {}
        network = network or meta.get("network") or folder.resolve().parent.name
        config = meta.get("config") or {}
        threshold = config.get("iou_threshold", DEFAULT_IOU_THRESHOLD)
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
            layers = summarise_layers(units.drop(columns=["saturated", "coverage"], errors="ignore"), network)
        return cls(network=network, units=units, layers=layers, concepts=read_table(folder / CONCEPTS_CSV, DISSECT),
                   categories=categories, iou_threshold=threshold, config=config,
                   warnings=[str(w) for w in meta.get("warnings") or []], document=meta)


def load_dissection(results_dir: Path, network: str) -> DissectionTables | None:
    """The dissection tables of ``RESULTS/<network>/dissect``; None when there is no ``units.csv``."""
    folder = dissect_dir(results_dir, network)
    if not (folder / UNITS_CSV).is_file():
        return None
    return DissectionTables.load(folder, network=network)


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
