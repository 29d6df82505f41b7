"""The object census of a network (experiment 4): its tables and their files.

Saved beside the dissection it counts (``RESULTS/<network>/dissect``)::

    census_objects.csv        per (network, layer, object): detectors, frequency, informative_scenes
    census_layers.csv         per (network, layer): detectors, object_detectors, unique objects / concepts
    census_correlations.csv   per (network, layer, against): n, pearson, spearman and their intervals
    census_sweep.csv          per (network, layer, iou_threshold): detectors, unique concepts / objects
    census_informative.csv    per (scene, object): score and rank
    census.json               {"config": ...}

Rows of a random-weights null have network ``<network>-random``.  Only
``census_objects.csv`` is required: an older folder without the other
tables or ``census.json`` reads with empty tables and an empty config.

The counts per layer (:func:`layer_counts`) are defined here once: the
census of a dissection with its arrays (``experiments/census.py``) and the
census of a dissection known only by its tables (:func:`census_from_tables`,
e.g. one imported from Network Dissection's release) both use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.dissection_tables import DissectionTables
from unitscope.results.layout import (CENSUS_CORRELATIONS_CSV, CENSUS_INFORMATIVE_CSV, CENSUS_JSON,
                                      CENSUS_LAYERS_CSV, CENSUS_OBJECTS_CSV, CENSUS_SWEEP_CSV, DISSECT, dissect_dir)
from unitscope.results.schema import read_json, read_optional_table, read_required_table
from unitscope.results.writing import write_csv, write_json

__all__ = ["CensusResult", "DEFAULT_SWEEP", "census_from_tables", "layer_counts", "load_census"]

#: IoU thresholds of the census's sweep.
DEFAULT_SWEEP = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10)


@dataclass
class CensusResult:
    """Tables of the object census (all pandas DataFrames).

    Attributes
    ----------
    objects : per (network, layer, object): detectors, frequency, informative_scenes
    layers : per (network, layer): detectors, object_detectors, unique_objects, unique_concepts
    correlations : per (network, layer, against): n, pearson (+ _lo/_hi), spearman (+ _lo/_hi)
    sweep : per (network, layer, iou_threshold): detectors, unique_concepts, unique_objects
    informative : per (scene, object): score and rank
    config : dict
    """

    objects: pd.DataFrame
    layers: pd.DataFrame
    correlations: pd.DataFrame
    sweep: pd.DataFrame
    informative: pd.DataFrame
    config: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per-object table."""
        return self.objects

    def save(self, out_dir: str | Path) -> Path:
        """Write the tables and ``census.json`` into ``out_dir`` (each atomically)."""
        out = Path(out_dir)
        write_csv(out / CENSUS_OBJECTS_CSV, self.objects)
        write_csv(out / CENSUS_LAYERS_CSV, self.layers)
        write_csv(out / CENSUS_CORRELATIONS_CSV, self.correlations)
        write_csv(out / CENSUS_SWEEP_CSV, self.sweep)
        write_csv(out / CENSUS_INFORMATIVE_CSV, self.informative)
        write_json(out / CENSUS_JSON, {"config": self.config})
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "CensusResult":
        """Read a census written by :meth:`save`: no ``census_objects.csv`` in ``out_dir`` is a
        ``FileNotFoundError``, a file that cannot be read a :class:`~unitscope.results.schema.ResultFileError`."""
        out = Path(out_dir)
        objects = read_required_table(out / CENSUS_OBJECTS_CSV, DISSECT, what="census")
        tables = {name: read_optional_table(out / name, DISSECT)
                  for name in (CENSUS_LAYERS_CSV, CENSUS_CORRELATIONS_CSV, CENSUS_SWEEP_CSV, CENSUS_INFORMATIVE_CSV)}
        return cls(objects=objects, layers=tables[CENSUS_LAYERS_CSV], correlations=tables[CENSUS_CORRELATIONS_CSV],
                   sweep=tables[CENSUS_SWEEP_CSV], informative=tables[CENSUS_INFORMATIVE_CSV],
                   config=(read_json(out / CENSUS_JSON) or {}).get("config") or {})


def load_census(results_dir: Path, network: str) -> CensusResult | None:
    """The census of ``RESULTS/<network>/dissect``; None when ``census_objects.csv`` is absent."""
    folder = dissect_dir(results_dir, network)
    return CensusResult.load(folder) if (folder / CENSUS_OBJECTS_CSV).is_file() else None


def layer_counts(units: pd.DataFrame, *, network: str, layer: str, iou_threshold: float) -> dict:
    """The census's counts of one layer's units (a frame with ``detector``, ``category``, ``label``).

    One label per unit, its best (the best-label rule): ``detectors``,
    ``object_detectors`` (detectors whose label is an object),
    ``unique_concepts`` and ``unique_objects`` (distinct labels of those).
    """
    det = units[units["detector"]]
    return {"network": network, "layer": layer, "iou_threshold": iou_threshold,
            "units": len(units), "detectors": len(det),
            "object_detectors": int((det["category"] == "object").sum()),
            "unique_concepts": det["label"].nunique(),
            "unique_objects": det.loc[det["category"] == "object", "label"].nunique()}


def census_from_tables(tables: DissectionTables, *, iou_threshold: float | None = None,
                       sweep: tuple[float, ...] = DEFAULT_SWEEP) -> CensusResult:
    """The census of a dissection known only by its tables (no arrays, no pool).

    What needs the pool is left empty: object frequencies and informative
    scenes are NaN, ``correlations`` and ``informative`` are empty tables.
    The counts are :func:`layer_counts` of the saved units, a unit being a
    detector at threshold ``t`` when its IoU exceeds ``t``, except one the
    saved table refuses at its own threshold although its IoU is above it
    (an empty mask): that one is never a detector.

    Parameters
    ----------
    tables : DissectionTables
    iou_threshold : float, keyword-only
        Detector threshold (default: the dissection's).
    sweep : tuple of float, keyword-only
        IoU thresholds of the sweep.

    Returns
    -------
    CensusResult
    """
    threshold = tables.iou_threshold if iou_threshold is None else iou_threshold
    units = tables.units
    never = ~units["detector"] & (units["iou"] > tables.iou_threshold)
    sweep_rows, object_rows = [], []
    objects = sorted(set(units.loc[units["category"] == "object", "label"]))
    for t in sorted(set(sweep) | {threshold}):
        at = units.assign(detector=(units["iou"] > t) & ~never)
        for layer in dict.fromkeys(at["layer"]):
            mine = at[at["layer"] == layer]
            sweep_rows.append(layer_counts(mine, network=tables.network, layer=layer, iou_threshold=t))
            if t == threshold:
                per_object = mine.loc[mine["detector"] & (mine["category"] == "object"), "label"].value_counts()
                object_rows += [{"network": tables.network, "layer": layer, "object": name,
                                 "detectors": int(per_object.get(name, 0)), "frequency": np.nan,
                                 "informative_scenes": np.nan} for name in objects]
    sweep_frame = pd.DataFrame(sweep_rows)
    return CensusResult(
        objects=pd.DataFrame(object_rows, columns=["network", "layer", "object", "detectors", "frequency",
                                                   "informative_scenes"]),
        layers=sweep_frame[np.isclose(sweep_frame["iou_threshold"], threshold)].reset_index(drop=True),
        correlations=pd.DataFrame(columns=["network", "layer", "against", "n", "pearson", "spearman"]),
        sweep=sweep_frame, informative=pd.DataFrame(columns=["scene", "object", "score", "rank"]),
        config={"network": tables.network, "null": None, "iou_threshold": threshold,
                "from": "tables (no pool: frequencies and informative scenes unknown)"})
