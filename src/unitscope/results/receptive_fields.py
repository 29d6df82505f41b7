"""Empirical receptive fields of a network, as the report reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.layout import LAYER_CSV, RF, RF_JSON, UNITS_CSV
from unitscope.results.schema import read_json, read_table

__all__ = ["ReceptiveFields", "load_receptive_fields"]


@dataclass
class ReceptiveFields:
    """Empirical receptive fields of a network, every layer measured (``<network>/rf``)."""

    network: str
    layers: pd.DataFrame  # the concatenated one-row layer.csv files, in depth order if known
    units: pd.DataFrame  # network, layer, unit, rf_size, peak, n_images, theoretical_size
    maps: dict[tuple[str, int], Path]  # (layer, unit) -> averaged map PNG
    stats: dict[str, dict] = field(default_factory=dict)  # layer -> rf.json stats


def load_receptive_fields(results_dir: Path, network: str) -> ReceptiveFields | None:
    """Every ``rf.json`` under ``<network>/rf`` (one per layer); None when there is none."""
    base = Path(results_dir) / network / RF
    if not base.is_dir():
        return None
    layer_frames, unit_frames, maps, stats = [], [], {}, {}
    for meta_path in sorted(base.rglob(RF_JSON)):
        folder = meta_path.parent
        meta = read_json(meta_path) or {}
        layer = str(meta.get("layer", folder.name))
        summary = read_table(folder / LAYER_CSV, RF)
        if summary is None:
            theoretical = (meta.get("theoretical") or {}).get("size", np.nan)
            summary = pd.DataFrame([{"network": network, "layer": layer, "rf_mean": np.nan, "rf_std": np.nan,
                                     "theoretical_size": theoretical}])
        summary = summary.copy()
        summary["network"] = network
        layer_frames.append(summary)
        units = read_table(folder / UNITS_CSV, RF)
        if units is not None:
            units = units.copy()
            units["network"] = network
            if "layer" not in units.columns:
                units["layer"] = layer
            unit_frames.append(units)
        stats[layer] = dict(meta.get("stats") or {})
        for name in meta.get("pictures") or []:
            match = re.search(r"unit_(\d+)\.png$", str(name))
            if match and (folder / name).is_file():
                maps[(layer, int(match.group(1)))] = folder / name
    if not layer_frames:
        return None
    layers = pd.concat(layer_frames, ignore_index=True)
    for column in ("rf_mean", "rf_std", "theoretical_size"):
        if column in layers.columns:
            layers[column] = pd.to_numeric(layers[column], errors="coerce")
    if "theoretical_size" in layers.columns:
        # Deeper layers have larger theoretical receptive fields: a depth order without a model.
        layers = layers.sort_values("theoretical_size", kind="stable").reset_index(drop=True)
    units = pd.concat(unit_frames, ignore_index=True) if unit_frames else pd.DataFrame(
        columns=["network", "layer", "unit", "rf_size"])
    return ReceptiveFields(network=network, layers=layers, units=units, maps=maps, stats=stats)
