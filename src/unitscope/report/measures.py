"""The numbers behind the report's answers: detector tables, key layer, localisation and ablation summaries.

Computed from the results :mod:`unitscope.results` reads; the sentences
that quote them are :mod:`unitscope.report.summary`, the pages
:mod:`unitscope.report.sections`.  :class:`Finding` is one answer with its
numbers (written to ``report/summary.json``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from unitscope.results import NetworkResults, ResultSet

__all__ = [
    "Finding",
    "PAPER_RF",
    "PAPER_CORRELATIONS",
    "pct",
    "network_role",
    "object_detector_table",
    "layer_order",
    "key_layer",
    "localize_summary",
    "ablate_summary",
    "ablation_targets",
]

#: The paper's Table 1 (Places-CNN, 224 px), as the SPEC recalls it: approximate.
PAPER_RF = pd.DataFrame({
    "layer": ["pool1", "pool2", "conv3", "conv4", "pool5"],
    "empirical_mean": [17.8, 37.4, 52.1, 60.0, 72.0],
    "empirical_std": [1.6, 5.9, 10.6, 13.7, 20.0],
    "theoretical": [19, 67, 99, 131, 195],
})
#: The paper's correlations of detector counts with object frequency / informative scenes.
PAPER_CORRELATIONS = {"frequency": 0.54, "informative_scenes": 0.84}



@dataclass
class Finding:
    """One question of the seed and its answer."""

    key: str
    question: str
    answer: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def pct(value: float, digits: int = 0) -> str:
    """``0.316 -> "32%"`` (``"n/a"`` for NaN)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


# --------------------------------------------------------------------------- roles
_ROLE_WORDS = {"scene": ("scene", "places", "sun"), "object": ("object", "imagenet")}


def network_role(net: NetworkResults) -> str | None:
    """``"scene"``, ``"object"`` or None: what the network was trained to recognise."""
    for key in ("task", "trained_on", "data", "dataset"):
        value = str(net.info.get(key, "")).lower()
        for role, words in _ROLE_WORDS.items():
            if any(w in value for w in words):
                return role
    name = net.name.lower()
    for role, words in _ROLE_WORDS.items():
        if any(w in name for w in words):
            return role
    return None


# --------------------------------------------------------------------------- tables
def object_detector_table(nets: list[NetworkResults]) -> pd.DataFrame:
    """Per network and layer: ``units, detectors, object_detectors, object_share, unique_concepts, unique_objects``.

    ``object_share`` is object detectors / units of the layer.
    """
    rows = []
    for net in nets:
        if net.dissection is None:
            continue
        units = net.dissection.units
        for layer in dict.fromkeys(units["layer"]):
            u = units[units["layer"] == layer]
            det = u[u["detector"]]
            obj = u[u["object_detector"]]
            rows.append({"network": net.name, "layer": layer, "units": len(u), "detectors": len(det),
                         "object_detectors": len(obj), "object_share": len(obj) / max(len(u), 1),
                         "unique_concepts": det["label"].nunique(), "unique_objects": obj["label"].nunique()})
    return pd.DataFrame(rows, columns=["network", "layer", "units", "detectors", "object_detectors",
                                       "object_share", "unique_concepts", "unique_objects"])


def layer_order(nets: list[NetworkResults]) -> list[str]:
    """Dissected layers in depth order, as the networks list them (union, first network first)."""
    order: list[str] = []
    for net in nets:
        if net.dissection is not None:
            order += [layer for layer in net.dissection.layer_names if layer not in order]
    return order


def key_layer(table: pd.DataFrame, order: list[str]) -> str | None:
    """The layer with the most object detectors over all networks (ties: the deepest)."""
    if not len(table):
        return None
    totals = table.groupby("layer")["object_detectors"].sum()
    best = None
    for layer in order:
        if layer in totals.index and (best is None or totals[layer] >= totals[best]):
            best = layer
    return best


# --------------------------------------------------------------------------- localisation, ablation
def localize_summary(results: ResultSet) -> dict[str, dict]:
    """Per network: detector units scored and their mean mask IoU / pointing-game rate (combined rows excluded)."""
    out = {}
    for net in results.networks:
        if net.localize is None:
            continue
        units = net.localize.unit_frame()
        units = units[units["kind"] == "unit"]
        if not len(units):
            continue
        entry = {"units": int(len(units))}
        for column, key in (("mask_iou", "iou"), ("pointing", "pointing")):
            if column in units:
                value = pd.to_numeric(units[column], errors="coerce").mean()
                entry[key] = None if not np.isfinite(value) else float(value)
        out[net.name] = entry
    return out


def ablation_targets(classes: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per object, the classes its ablation is judged on: its diagnostic scenes, else its most hurt class.

    Returns the rows and which rule was used (``"diagnostic scenes"`` or ``"most hurt class"``).
    """
    diagnostic = classes["diagnostic"].astype(str).str.lower().isin({"true", "1"}) if "diagnostic" in classes \
        else pd.Series(False, index=classes.index)
    if diagnostic.any():
        return classes[diagnostic], "diagnostic scenes"
    rows = classes.assign(_drop=pd.to_numeric(classes["drop"], errors="coerce"))
    best = rows.sort_values(["object", "_drop"], ascending=[True, False], kind="stable").groupby("object").head(1)
    return best.drop(columns="_drop"), "most hurt class"


def ablate_summary(results: ResultSet) -> dict[str, dict]:
    """Per network and ablated layer: mean accuracy drop of the target classes, detectors off vs random units off.

    The target classes of an object are its diagnostic scenes when the
    ablation knew them, else the class its ablation hurt most (see
    :func:`ablation_targets`).
    """
    out = {}
    for net in results.networks:
        for run in net.ablate:
            rows, basis = ablation_targets(run.classes)
            if not len(rows):
                continue
            drop = pd.to_numeric(rows["drop"], errors="coerce")
            random = pd.to_numeric(rows["random_drop_mean"], errors="coerce")
            entry = {"layer": run.layer, "objects": int(rows["object"].nunique()), "basis": basis,
                     "targeted": float(drop.mean()), "random": float(random.mean()),
                     "effect": float((drop - random).mean())}
            summary = run.summary
            if summary is not None and "diagnostic_most_hurt" in summary:
                flags = summary["diagnostic_most_hurt"].astype(str).str.lower()
                known = flags.isin({"true", "false"})
                if known.any():
                    entry["diagnostic_most_hurt"] = int((flags == "true").sum())
                    entry["with_diagnostic"] = int(known.sum())
            out[f"{net.name}/{run.layer}" if len(net.ablate) > 1 else net.name] = entry
    return out
