"""Network Dissection's own per-network summary, and whether the census reproduces it.

``semantics_cvpr_release.mat`` (CSAILVision/NetDissect, ``plot/``) holds one
struct ``stat`` with, for 27 networks, per concept group (``all`` and the six
categories) ``num_detectors``, ``num_uniquedetectors`` and
``ratio_detectors`` at ``thresh_concepts`` (0.04).  Read against the
released CSVs, its counts are:

* ``all`` detectors: units whose best IoU exceeds the threshold;
* a category's detectors: units whose best IoU *in that category* exceeds
  it (a unit counts in every such category), and its unique detectors the
  distinct labels among them;
* ``all`` unique detectors: the per-category unique counts summed.

That is the **per category** rule of :func:`~unitscope.published.netdissect.netdissect_census`;
:func:`compare_with_summary` lines the two up.  The ResNet-152 CSVs
(``ResNet-152-model_*``) are the summary's ``resnet-152-torch-*`` rows
(:data:`SUMMARY_NAMES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._source import MalformedFile, existing_file, load_mat, mat_text

__all__ = ["SUMMARY_COLUMNS", "SUMMARY_NAMES", "compare_with_summary", "read_netdissect_summary"]

#: Released CSV name -> the summary's network name, where they differ.
SUMMARY_NAMES: dict[str, str] = {
    "ResNet-152-model_imagenet": "resnet-152-torch-imagenet",
    "ResNet-152-model_places365": "resnet-152-torch-places365",
}

#: Columns of :func:`read_netdissect_summary`.
SUMMARY_COLUMNS = ["network", "layer", "concept", "iou_threshold", "detectors", "unique_detectors", "detector_ratio"]
_FIELDS = ("networks_name", "layers_name", "ratio_detectors", "num_uniquedetectors", "num_detectors", "concepts",
           "thresh_concepts")


def read_netdissect_summary(path: str | Path) -> pd.DataFrame:
    """Read ``semantics_cvpr_release.mat`` into one row per network and concept group.

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS`; ``concept`` is ``all`` or a category.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    MalformedFile
        If it is not a MATLAB file or ``stat`` lacks a field or has
        tables of mismatched shapes.
    """
    path = existing_file(path)
    stat = load_mat(path).get("stat")
    if not isinstance(stat, np.ndarray) or stat.dtype.names is None or stat.size != 1:
        raise MalformedFile(path, "no struct variable 'stat' (not Network Dissection's summary file)")
    stat = stat.reshape(-1)[0]
    missing = [name for name in _FIELDS if name not in stat.dtype.names]
    if missing:
        raise MalformedFile(path, f"'stat' lacks field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    networks = _names(path, stat["networks_name"], "networks_name")
    layers = _names(path, stat["layers_name"], "layers_name")
    concepts = _names(path, stat["concepts"], "concepts")
    shape = (len(networks), len(concepts))
    tables = {}
    for field in ("num_detectors", "num_uniquedetectors", "ratio_detectors"):
        table = stat[field]
        if not isinstance(table, np.ndarray) or table.dtype.kind not in "iuf" or table.shape != shape:
            raise MalformedFile(path, f"'stat.{field}' should be a {shape} numeric matrix (networks x concepts), "
                                f"got {getattr(table, 'shape', None)}")
        tables[field] = table
    if len(layers) != len(networks):
        raise MalformedFile(path, f"'stat' names {len(networks)} networks but {len(layers)} layers")
    threshold = float(np.asarray(stat["thresh_concepts"], dtype=float).reshape(-1)[0])
    rows = [{"network": network, "layer": layer, "concept": concept, "iou_threshold": threshold,
             "detectors": int(tables["num_detectors"][i, j]),
             "unique_detectors": int(tables["num_uniquedetectors"][i, j]),
             "detector_ratio": float(tables["ratio_detectors"][i, j])}
            for i, (network, layer) in enumerate(zip(networks, layers)) for j, concept in enumerate(concepts)]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _names(path: Path, cells: Any, field: str) -> list[str]:
    names = [mat_text(cell) for cell in np.asarray(cells, dtype=object).reshape(-1)]
    if not names or any(name is None for name in names):
        raise MalformedFile(path, f"'stat.{field}' should be a cell array of names")
    return names  # type: ignore[return-value]


def compare_with_summary(
    census: pd.DataFrame, categories: pd.DataFrame, summary: pd.DataFrame, *,
    names: Mapping[str, str] = SUMMARY_NAMES,
) -> pd.DataFrame:
    """Line up the census's *per category* counts with Network Dissection's summary.

    Parameters
    ----------
    census, categories : DataFrame
        :func:`~unitscope.published.netdissect.netdissect_census` and
        :func:`~unitscope.published.netdissect.netdissect_categories` of the
        released tables, at the summary's threshold.
    summary : DataFrame
        :func:`read_netdissect_summary`.
    names : mapping, keyword-only
        Census network name -> summary network name where they differ.

    Returns
    -------
    DataFrame
        One row per network and concept group (``all``, then the
        categories): ``detectors`` / ``unique_per_category`` (ours),
        ``summary_detectors`` / ``summary_unique`` (theirs) and
        ``reproduced`` (both equal).  Networks the summary lacks are left out.

    Raises
    ------
    ValueError
        If the census was counted at another threshold than the summary's.
    """
    rows = []
    for record in census.itertuples(index=False):
        theirs = summary[summary["network"] == names.get(record.network, record.network)]
        if theirs.empty:
            continue
        if not np.isclose(record.iou_threshold, theirs["iou_threshold"].iloc[0]):
            raise ValueError(f"the census of {record.network} counts IoU > {record.iou_threshold:g} but the summary "
                             f"counts IoU > {theirs['iou_threshold'].iloc[0]:g}; count at the same threshold")
        ours = {"all": (record.detectors, record.unique_concepts_per_category)}
        mine = categories[(categories["network"] == record.network) & (categories["layer"] == record.layer)]
        ours.update({row.category: (row.detectors_per_category, row.unique_per_category)
                     for row in mine.itertuples(index=False)})
        for summary_row in theirs.itertuples(index=False):
            detectors, unique = ours.get(summary_row.concept, (None, None))
            rows.append({"network": record.network, "summary_network": summary_row.network,
                         "concept": summary_row.concept, "detectors": detectors,
                         "summary_detectors": summary_row.detectors, "unique_per_category": unique,
                         "summary_unique": summary_row.unique_detectors,
                         "reproduced": detectors == summary_row.detectors and unique == summary_row.unique_detectors})
    return pd.DataFrame(rows, columns=["network", "summary_network", "concept", "detectors", "summary_detectors",
                                       "unique_per_category", "summary_unique", "reproduced"])
