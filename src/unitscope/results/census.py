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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unitscope.results.layout import (CENSUS_CORRELATIONS_CSV, CENSUS_INFORMATIVE_CSV, CENSUS_JSON,
                                      CENSUS_LAYERS_CSV, CENSUS_OBJECTS_CSV, CENSUS_SWEEP_CSV, DISSECT, dissect_dir)
from unitscope.results.schema import read_json, read_optional_table, read_required_table
from unitscope.results.writing import write_csv, write_json

__all__ = ["CensusResult", "load_census"]


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
