"""The object census of one network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unitscope.results.layout import CENSUS_CORRELATIONS_CSV, CENSUS_INFORMATIVE_CSV, CENSUS_JSON, CENSUS_LAYERS_CSV, CENSUS_OBJECTS_CSV, CENSUS_SWEEP_CSV, DISSECT
from unitscope.results.schema import read_json, read_table

__all__ = ["Census", "load_census"]


@dataclass
class Census:
    """The object census of one network (``census_*.csv``; null rows have network ``<network>-random``)."""

    network: str
    objects: pd.DataFrame
    layers: pd.DataFrame
    correlations: pd.DataFrame
    sweep: pd.DataFrame
    informative: pd.DataFrame
    config: dict = field(default_factory=dict)


def load_census(results_dir: Path, network: str) -> Census | None:
    """Read ``<network>/dissect/census_*.csv``; None when ``census_objects.csv`` is absent."""
    folder = Path(results_dir) / network / DISSECT
    objects = read_table(folder / CENSUS_OBJECTS_CSV, DISSECT)
    if objects is None:
        return None
    empty = pd.DataFrame()

    def read(name: str) -> pd.DataFrame:
        frame = read_table(folder / name)
        return empty.copy() if frame is None else frame

    config = (read_json(folder / CENSUS_JSON) or {}).get("config") or {}
    return Census(network=network, objects=objects, layers=read(CENSUS_LAYERS_CSV),
                  correlations=read(CENSUS_CORRELATIONS_CSV), sweep=read(CENSUS_SWEEP_CSV),
                  informative=read(CENSUS_INFORMATIVE_CSV), config=config)
