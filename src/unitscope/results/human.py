"""Human labels of a network (``<network>/human``, written by ``unitscope label results``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unitscope.results.layout import COMPARE_CSV, HUMAN, LAYERS_CSV, SUMMARY_JSON, UNITS_CSV
from unitscope.results.schema import read_json, read_table

__all__ = ["Human", "load_human"]


@dataclass
class Human:
    """Human labels of a network (``<network>/human``, written by ``unitscope label results``)."""

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    compare: pd.DataFrame
    summary: dict


def load_human(results_dir: Path, network: str) -> Human | None:
    folder = Path(results_dir) / network / HUMAN
    units = read_table(folder / UNITS_CSV, HUMAN)
    if units is None:
        return None

    def read(name: str) -> pd.DataFrame:
        frame = read_table(folder / name)
        return pd.DataFrame() if frame is None else frame

    return Human(network=network, units=units, layers=read(LAYERS_CSV), compare=read(COMPARE_CSV),
                 summary=read_json(folder / SUMMARY_JSON) or {})
