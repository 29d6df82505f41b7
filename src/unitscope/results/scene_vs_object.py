"""Experiment 4's comparison: the scene network's object detectors beside the object network's.

Zhou et al. (2015) found more object detectors at pool5 of the
Places-trained AlexNet than of the ImageNet-trained one, though ImageNet is
the object dataset.  :func:`scene_vs_object` lines up the counts of two
networks under every rule at hand, and :func:`scene_vs_object_sentence`
answers the question from them.  Pure tables: :mod:`unitscope.published`
uses it on the released files, the report on the saved counts of imported
networks (``human/summary.json``'s crowd detectors, ``census_layers.csv``),
so both say the same thing in the same words.

The tables: ``crowd`` rows as
:func:`~unitscope.published.experiment4.crowd_object_detectors` (``layer``,
``min_precision``, ``object_detectors``, ``unique_objects``); ``census`` rows
as :func:`~unitscope.published.netdissect.netdissect_census` (``layer``,
``iou_threshold`` and the ``*_best_label`` / ``*_per_category`` counts).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["COMPARISON_COLUMNS", "scene_vs_object", "scene_vs_object_sentence"]

#: Columns of :func:`scene_vs_object`.
COMPARISON_COLUMNS = ["source", "rule", "measure", "layer", "scene_network", "object_network", "scene", "object"]

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
        :func:`~unitscope.published.experiment4.crowd_object_detectors` rows of both networks (concatenated).
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
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


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
