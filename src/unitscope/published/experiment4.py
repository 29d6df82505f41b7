"""Experiment 4 on the real networks: does the scene network have more object detectors?

Zhou et al. (2015) found more object detectors at pool5 of the
Places-trained AlexNet than of the ImageNet-trained one, though ImageNet is
the object dataset.  Two kinds of published evidence answer it here:

* the crowd labels (:func:`crowd_object_detectors`): units at pool5 whose
  consensus type is object with precision at least 0.75;
* Network Dissection's tables (:func:`~unitscope.published.netdissect.netdissect_census`):
  units with an object IoU above 0.04, by best label per unit and per
  category.

:func:`scene_vs_object` puts them side by side, :func:`scene_vs_object_sentence`
says what the numbers say.
"""

from __future__ import annotations

import pandas as pd

from unitscope.label.taxonomy import label_key

from .crowd import unit_consensus
from .iclr15 import Iclr15Annotations

__all__ = ["CROWD_COLUMNS", "MIN_OBJECT_PRECISION", "crowd_object_detectors", "scene_vs_object",
           "scene_vs_object_sentence"]

#: Precision a crowd-labelled object unit needs to count as a detector.
MIN_OBJECT_PRECISION = 0.75

#: Columns of :func:`crowd_object_detectors`.
CROWD_COLUMNS = ["network", "layer", "min_precision", "units", "object_detectors", "object_detector_share",
                 "unique_objects", "objects"]

_CROWD_RULE = "crowd labels: consensus type object, precision >= {min_precision:g}"
_BEST_RULE = "Network Dissection, best label per unit: IoU > {threshold:g}"
_CATEGORY_RULE = "Network Dissection, per category (their summary's rule): object IoU > {threshold:g}"
#: (which table, its column, what it counts, the rule's text)
_MEASURES = (
    ("crowd", "object_detectors", "object detectors", _CROWD_RULE),
    ("crowd", "unique_objects", "unique objects", _CROWD_RULE),
    ("census", "object_detectors_best_label", "object detectors", _BEST_RULE),
    ("census", "unique_objects_best_label", "unique objects", _BEST_RULE),
    ("census", "object_detectors_per_category", "object detectors", _CATEGORY_RULE),
    ("census", "unique_objects_per_category", "unique objects", _CATEGORY_RULE),
)


def crowd_object_detectors(
    annotations: Iclr15Annotations, *, layer: str = "pool5", min_precision: float = MIN_OBJECT_PRECISION
) -> pd.DataFrame:
    """Object detectors of one layer by the crowd labels.

    Parameters
    ----------
    annotations : Iclr15Annotations
    layer : str, keyword-only
        The layer (default ``pool5``, as the paper).
    min_precision : float, keyword-only
        A unit whose consensus type is object counts when its precision is
        at least this (default 0.75).

    Returns
    -------
    DataFrame
        One row, columns :data:`CROWD_COLUMNS`: ``unique_objects`` counts
        distinct consensus labels (``beds`` and ``bed`` are one, as in the
        labeling app), ``objects`` lists them, ``;``-separated.

    Raises
    ------
    LookupError
        If the file has no such layer.
    """
    if layer not in annotations.layers:
        raise LookupError(f"{annotations.source} has no layer {layer!r}; it has {', '.join(annotations.layers)}")
    units = unit_consensus(annotations)
    units = units[units["layer"] == layer]
    detectors = units[(units["type"] == "object") & (units["precision"] >= min_precision)]
    objects: dict[str, str] = {}
    for label in detectors["label"]:
        objects.setdefault(label_key(label), label)
    row = {"network": annotations.network, "layer": layer, "min_precision": min_precision, "units": len(units),
           "object_detectors": len(detectors), "object_detector_share": len(detectors) / len(units),
           "unique_objects": len(objects), "objects": ";".join(sorted(objects.values()))}
    return pd.DataFrame([row], columns=CROWD_COLUMNS)


def _row(table: pd.DataFrame, network: str, what: str) -> pd.Series:
    rows = table[table["network"] == network]
    if len(rows) != 1:
        known = ", ".join(dict.fromkeys(table["network"]))
        found = "no row" if rows.empty else f"{len(rows)} rows (one layer per network, please)"
        raise LookupError(f"the {what} table has {found} for network {network!r}; it has {known}")
    return rows.iloc[0]


def scene_vs_object(
    *,
    crowd: pd.DataFrame | None = None,
    crowd_networks: tuple[str, str] | None = None,
    census: pd.DataFrame | None = None,
    census_networks: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """The scene network's object detectors beside the object network's.

    Parameters
    ----------
    crowd : DataFrame, keyword-only
        :func:`crowd_object_detectors` rows of both networks (concatenated).
    crowd_networks : (str, str), keyword-only
        Their names in ``crowd``: (scene network, object network).
    census : DataFrame, keyword-only
        :func:`~unitscope.published.netdissect.netdissect_census` rows.
    census_networks : (str, str), keyword-only
        (scene network, object network) in ``census``.

    Returns
    -------
    DataFrame
        One row per measure: ``source``, ``rule``, ``measure``, ``layer``,
        ``scene_network``, ``object_network``, ``scene``, ``object``.

    Raises
    ------
    LookupError
        If a network has no row, or several, in its table.
    """
    tables = {"crowd": (crowd, crowd_networks), "census": (census, census_networks)}
    rows = []
    for source, column, measure, rule in _MEASURES:
        table, networks = tables[source]
        if table is None or networks is None:
            continue
        scene, other = (_row(table, name, source) for name in networks)
        values = {"min_precision": scene.get("min_precision"), "threshold": scene.get("iou_threshold")}
        rows.append({"source": source, "rule": rule.format(**values), "measure": measure,
                     "layer": scene["layer"], "scene_network": networks[0], "object_network": networks[1],
                     "scene": int(scene[column]), "object": int(other[column])})
    return pd.DataFrame(rows, columns=["source", "rule", "measure", "layer", "scene_network", "object_network",
                                       "scene", "object"])


def scene_vs_object_sentence(table: pd.DataFrame) -> str:
    """Answer "does the scene network have more object detectors than the object network?" from the numbers.

    ``Yes`` when the scene network has more by every measure of ``table``
    (:func:`scene_vs_object`), ``No`` when by none, ``Partly`` otherwise;
    then every measure with both numbers.

    Raises
    ------
    ValueError
        If ``table`` is empty.
    """
    if table.empty:
        raise ValueError("no measures to compare: give scene_vs_object a crowd or census table")
    more = table["scene"] > table["object"]
    verdict = "Yes" if more.all() else "No" if not more.any() else "Partly"
    scene = " / ".join(dict.fromkeys(table["scene_network"]))
    other = " / ".join(dict.fromkeys(table["object_network"]))
    parts = []
    for rule, rows in table.groupby("rule", sort=False):
        numbers = ", ".join(f"{row.scene} vs {row.object} {row.measure}" for row in rows.itertuples(index=False))
        parts.append(f"{rule} at {rows['layer'].iloc[0]}: {numbers}")
    return (f"Does the scene network ({scene}) have more object detectors than the object network ({other})? "
            f"{verdict}: " + "; ".join(parts) + ".")
