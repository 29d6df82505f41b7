"""Experiment 4 on the real networks: does the scene network have more object detectors?

Zhou et al. (2015) found more object detectors at pool5 of the
Places-trained AlexNet than of the ImageNet-trained one, though ImageNet is
the object dataset.  Two kinds of published evidence answer it here:

* the crowd labels (:func:`crowd_object_detectors`): units at pool5 whose
  consensus type is object with precision at least 0.75;
* Network Dissection's tables (:func:`~unitscope.published.netdissect.netdissect_census`):
  units with an object IoU above 0.04, by best label per unit and per
  category.

:func:`~unitscope.results.scene_vs_object.scene_vs_object` puts them side by
side and :func:`~unitscope.results.scene_vs_object.scene_vs_object_sentence`
says what the numbers say (in :mod:`unitscope.results`, so that the report
says it from the saved counts of imported networks in the same words).
"""

from __future__ import annotations

import pandas as pd

from unitscope.label.taxonomy import label_key

from .crowd import unit_consensus
from .iclr15 import Iclr15Annotations

__all__ = ["CROWD_COLUMNS", "MIN_OBJECT_PRECISION", "crowd_object_detectors"]

#: Precision a crowd-labelled object unit needs to count as a detector.
MIN_OBJECT_PRECISION = 0.75

#: Columns of :func:`crowd_object_detectors`.
CROWD_COLUMNS = ["network", "layer", "min_precision", "units", "object_detectors", "object_detector_share",
                 "unique_objects", "objects"]


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
