"""Network Dissection's released per-unit tables, and the census they allow.

Bau et al. (CVPR 2017) released, per network, one CSV row per unit of the
dissected layer (CSAILVision/NetDissect, ``plot/*.csv``): the unit
(**numbered from 1 in the file; unitscope counts from 0, so the reader
subtracts 1**), its best label over all categories (``category``, ``label``,
``score`` = IoU) and, for each category (object, part, scene, material,
texture, color), the best label there and the counts behind its IoU:
``<cat>-label``, ``<cat>-truth`` (label pixels), ``<cat>-activation``
(unit-mask pixels), ``<cat>-intersect``, ``<cat>-iou``.  ``<cat>-label`` is
empty where their code found none (374 / 695 texture labels of the
ResNet-152 tables, all with texture IoU below 0.03).

The census counts detectors (IoU above a threshold, 0.04 as in both papers)
and unique concepts under two rules, named in every column:

* **best label** (``*_best_label``): one label per unit, its overall best -
  unitscope's own census (``experiments/census.py``) counts this way;
* **per category** (``*_per_category``): a unit is a detector of every
  category whose best IoU exceeds the threshold, and unique concepts are
  counted per category and summed - Network Dissection's own summary
  (``semantics_cvpr_release.mat``) counts this way
  (:mod:`unitscope.published.netdissect_summary` compares the two).

Both rules agree on ``detectors``, the units whose best IoU is above the
threshold.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.label.results import DETECTOR_IOU

from ._source import MalformedFile, existing_file

__all__ = [
    "BASE_COLUMNS",
    "CATEGORY_FIELDS",
    "CENSUS_COLUMNS",
    "CATEGORY_COLUMNS",
    "netdissect_categories",
    "netdissect_census",
    "read_netdissect",
    "table_categories",
]

#: Columns every table has, whatever its categories.
BASE_COLUMNS = ["unit", "category", "label", "score"]
#: Per category ``<cat>-<field>``.
CATEGORY_FIELDS = ["label", "truth", "activation", "intersect", "iou"]
_COUNTS = ("truth", "activation", "intersect")

#: Columns of :func:`netdissect_census`.
CENSUS_COLUMNS = [
    "network", "layer", "iou_threshold", "units", "detectors",
    "object_detectors_best_label", "unique_concepts_best_label", "unique_objects_best_label",
    "detections_per_category", "unique_concepts_per_category",
    "object_detectors_per_category", "unique_objects_per_category",
]
#: Columns of :func:`netdissect_categories`.
CATEGORY_COLUMNS = ["network", "layer", "category", "iou_threshold", "detectors_best_label", "unique_best_label",
                    "detectors_per_category", "unique_per_category"]


def read_netdissect(path: str | Path, *, network: str, layer: str) -> pd.DataFrame:
    """Read one of Network Dissection's released per-unit CSV tables.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    network, layer : str, keyword-only
        The names the rows are given.

    Returns
    -------
    DataFrame
        One row per unit, sorted by unit: ``network``, ``layer``, ``unit``
        (**from 0**: the file's number minus 1), ``category``, ``label``,
        ``score``, then the file's ``<cat>-<field>`` columns (labels as
        text, ``''`` for none; counts and IoUs as floats).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    MalformedFile
        A ``ValueError`` whose one line names the file and says what is
        wrong: not a CSV table, a missing or unexpected column, a category without all five
        columns, a value that is not a number, an IoU outside [0, 1], a
        negative count, a unit numbered twice or numbering with gaps, a
        best label that is not its category's.
    """
    path = existing_file(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise MalformedFile(path, f"not a CSV table ({' '.join(str(error).split())})") from None
    categories = _check_columns(path, raw.columns)
    if raw.empty:
        raise MalformedFile(path, "the table has no unit rows")
    units = _check_units(path, raw["unit"])
    frame = pd.DataFrame({"network": network, "layer": layer, "unit": units - 1}, index=raw.index)
    frame["category"] = raw["category"]
    frame["label"] = raw["label"]
    frame["score"] = _numbers(path, raw, "score", units, low=0.0, high=1.0)
    for category in categories:
        frame[f"{category}-label"] = raw[f"{category}-label"]
        for field in _COUNTS:
            frame[f"{category}-{field}"] = _numbers(path, raw, f"{category}-{field}", units, low=0.0, high=math.inf)
        frame[f"{category}-iou"] = _numbers(path, raw, f"{category}-iou", units, low=0.0, high=1.0)
    _check_best(path, frame, categories, units)
    return frame.sort_values("unit", kind="stable").reset_index(drop=True)


def table_categories(frame: pd.DataFrame) -> list[str]:
    """The categories of a table from :func:`read_netdissect`, in its column order."""
    return [column[: -len("-iou")] for column in frame.columns if column.endswith("-iou")]


def _check_columns(path: Path, columns: pd.Index) -> list[str]:
    columns = [str(column) for column in columns]
    missing = [column for column in BASE_COLUMNS if column not in columns]
    if missing:
        raise MalformedFile(path, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"(expected {', '.join(BASE_COLUMNS)} and <category>-{{{','.join(CATEGORY_FIELDS)}}})")
    categories: list[str] = []
    for column in columns:
        if column in BASE_COLUMNS:
            continue
        category, _, field = column.rpartition("-")
        if not category or field not in CATEGORY_FIELDS:
            raise MalformedFile(path, f"unexpected column {column!r} (expected {', '.join(BASE_COLUMNS)} and "
                                f"<category>-{{{','.join(CATEGORY_FIELDS)}}})")
        if category not in categories:
            categories.append(category)
    if not categories:
        raise MalformedFile(path, "no per-category columns (<category>-label, -truth, -activation, -intersect, -iou)")
    for category in categories:
        absent = [f"{category}-{field}" for field in CATEGORY_FIELDS if f"{category}-{field}" not in columns]
        if absent:
            raise MalformedFile(path, f"category {category!r} lacks column{'s' if len(absent) > 1 else ''} "
                                f"{', '.join(absent)}")
    return categories


def _check_units(path: Path, column: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(column.str.strip(), errors="coerce")
    bad = ~np.isfinite(numbers) | (numbers != numbers.round()) | (numbers < 1)
    if bad.any():
        raise MalformedFile(path, f"unit {column[bad].iloc[0]!r} is not a unit number "
                            "(1, 2, ...; the file counts from 1)")
    numbers = numbers.astype("int64")
    twice = numbers[numbers.duplicated()]
    if len(twice):
        raise MalformedFile(path, f"unit {twice.iloc[0]} appears {int((numbers == twice.iloc[0]).sum())} times")
    highest = int(numbers.max())
    if highest > len(numbers):  # distinct numbers from 1: more than n of them only with gaps
        present = set(numbers)
        first = [unit for unit in range(1, min(highest, len(numbers) + 5) + 1) if unit not in present][:5]
        missing = highest - len(numbers)
        shown = ", ".join(str(unit) for unit in first) + (", ..." if missing > len(first) else "")
        raise MalformedFile(path, f"unit numbering has gaps: {missing} of units 1..{highest} missing ({shown})")
    return numbers


def _numbers(path: Path, raw: pd.DataFrame, column: str, units: pd.Series, *, low: float, high: float) -> pd.Series:
    values = pd.to_numeric(raw[column].str.strip(), errors="coerce").astype("float64")
    if values.isna().any():
        where = values.isna().to_numpy().nonzero()[0][0]
        raise MalformedFile(path, f"column {column!r}, unit {units.iloc[where]}: "
                            f"{raw[column].iloc[where]!r} is not a number")
    outside = ~values.between(low, high)
    if outside.any():
        where = outside.to_numpy().nonzero()[0][0]
        wanted = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f"a count >= {low:g}"
        raise MalformedFile(path, f"column {column!r}, unit {units.iloc[where]}: "
                            f"{values.iloc[where]:g} is not {wanted}")
    return values


def _check_best(path: Path, frame: pd.DataFrame, categories: list[str], units: pd.Series) -> None:
    for position, row in enumerate(frame.itertuples(index=False)):
        category, label, score = row.category, row.label, row.score
        where = f"unit {units.iloc[position]}"
        if category not in categories:
            raise MalformedFile(path, f"{where}: category {category!r} is not one of {', '.join(categories)}")
        if not label:
            raise MalformedFile(path, f"{where}: the best label is empty")
        if label != frame[f"{category}-label"].iat[position] or score != frame[f"{category}-iou"].iat[position]:
            raise MalformedFile(path, f"{where}: the best label {label!r} (IoU {score:g}) is not its category's "
                                f"({category}-label {frame[f'{category}-label'].iat[position]!r}, "
                                f"{category}-iou {frame[f'{category}-iou'].iat[position]:g})")


def netdissect_categories(frame: pd.DataFrame, *, threshold: float = DETECTOR_IOU) -> pd.DataFrame:
    """Per network, layer and category: detectors and unique labels under both rules.

    Returns
    -------
    DataFrame
        Columns :data:`CATEGORY_COLUMNS`: ``detectors_best_label`` units
        whose overall best label is of this category with IoU above
        ``threshold``, ``unique_best_label`` their distinct labels;
        ``detectors_per_category`` units whose best IoU in this category is
        above ``threshold`` (and that have a label there),
        ``unique_per_category`` their distinct labels.
    """
    rows = []
    for (network, layer), units in frame.groupby(["network", "layer"], sort=False):
        best = units[units["score"] > threshold]
        for category in table_categories(units):
            mine = best[best["category"] == category]
            detects = units[(units[f"{category}-iou"] > threshold) & (units[f"{category}-label"] != "")]
            rows.append({"network": network, "layer": layer, "category": category, "iou_threshold": threshold,
                         "detectors_best_label": len(mine), "unique_best_label": mine["label"].nunique(),
                         "detectors_per_category": len(detects),
                         "unique_per_category": detects[f"{category}-label"].nunique()})
    return pd.DataFrame(rows, columns=CATEGORY_COLUMNS)


def netdissect_census(frame: pd.DataFrame, *, threshold: float = DETECTOR_IOU) -> pd.DataFrame:
    """The census of a released table, per network and layer, under both counting rules.

    Parameters
    ----------
    frame : DataFrame
        From :func:`read_netdissect` (several tables concatenated are fine).
    threshold : float, keyword-only
        A unit detects a concept when its IoU is above this (default 0.04).

    Returns
    -------
    DataFrame
        Columns :data:`CENSUS_COLUMNS`: ``units``; ``detectors`` (best IoU
        above the threshold); by best label: ``object_detectors_best_label``,
        ``unique_concepts_best_label`` (distinct best labels of detectors),
        ``unique_objects_best_label``; per category (Network Dissection's
        summary): ``detections_per_category`` (unit-category pairs above the
        threshold: a unit counts once per category),
        ``unique_concepts_per_category`` (distinct labels per category,
        summed), ``object_detectors_per_category`` (units whose object IoU
        is above the threshold), ``unique_objects_per_category``.
    """
    per_category = netdissect_categories(frame, threshold=threshold)
    rows = []
    for (network, layer), units in frame.groupby(["network", "layer"], sort=False):
        mine = per_category[(per_category["network"] == network) & (per_category["layer"] == layer)]
        objects = mine[mine["category"] == "object"]
        detectors = units[units["score"] > threshold]
        rows.append({
            "network": network, "layer": layer, "iou_threshold": threshold, "units": len(units),
            "detectors": len(detectors),
            "object_detectors_best_label": int(objects["detectors_best_label"].sum()),
            "unique_concepts_best_label": detectors["label"].nunique(),
            "unique_objects_best_label": int(objects["unique_best_label"].sum()),
            "detections_per_category": int(mine["detectors_per_category"].sum()),
            "unique_concepts_per_category": int(mine["unique_per_category"].sum()),
            "object_detectors_per_category": int(objects["detectors_per_category"].sum()),
            "unique_objects_per_category": int(objects["unique_per_category"].sum()),
        })
    return pd.DataFrame(rows, columns=CENSUS_COLUMNS)
