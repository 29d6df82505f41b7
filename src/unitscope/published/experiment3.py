"""Experiment 3 on the real networks: what the crowd saw in each layer of AlexNet.

Zhou et al. (2015, Figure 9 and Section 3): per layer, the average
precision of the units' annotations, how many units are precise (top-60
precision above 75 %), and the distribution of unit types, which moves from
colours and textures in pool1 towards objects and scenes in pool5 - more so
in the scene network.  :func:`layer_table` computes all of it from the
per-annotation rows; :func:`check_layer_average` confirms that the type
shares recomputed from those rows are the figure's numbers stored in the
file (``layerAverageCount``).
"""

from __future__ import annotations

import pandas as pd

from unitscope.label.results import PRECISION_CUT
from unitscope.taxonomy import TYPES

from .crowd import unit_consensus
from .iclr15 import CODE_TYPES, Iclr15Annotations

__all__ = ["LAYER_COLUMNS", "check_layer_average", "layer_average", "layer_table"]

#: Columns of :func:`layer_table`.
LAYER_COLUMNS = (
    ["network", "layer", "units", "annotations", "mean_precision", "units_precision_over_75", "precision_over_75"]
    + [f"annotation_share_{name}" for name in TYPES]
    + [f"consensus_share_{name}" for name in TYPES]
    + ["all_agree_type", "two_agree_type", "mean_type_agreement"]
)


def layer_table(annotations: Iclr15Annotations, *, precision_cut: float = PRECISION_CUT) -> pd.DataFrame:
    """Experiment 3's numbers per layer, from the per-annotation rows.

    Parameters
    ----------
    annotations : Iclr15Annotations
    precision_cut : float, keyword-only
        A unit is precise when its precision (mean over its annotators)
        exceeds this (default 0.75, as the labeling app's ``precision_over_75``).

    Returns
    -------
    DataFrame
        One row per layer (file order), columns :data:`LAYER_COLUMNS`:

        * ``units``, ``annotations``: how many of each;
        * ``mean_precision``: mean of the units' precisions;
        * ``units_precision_over_75`` / ``precision_over_75``: number and
          share of units whose precision exceeds ``precision_cut``;
        * ``annotation_share_<type>``: share of the layer's annotations (all
          three per unit counted, as the paper's figure and
          ``layerAverageCount``) of each type;
        * ``consensus_share_<type>``: share of units whose consensus type
          (:func:`~unitscope.published.crowd.unit_consensus`) it is;
        * ``all_agree_type`` / ``two_agree_type``: share of units whose
          annotators all chose the same type / at least two did;
        * ``mean_type_agreement``: mean share of a unit's annotators who
          chose its consensus type.
    """
    units = unit_consensus(annotations)
    rows = annotations.annotations
    table = []
    for layer in annotations.layers:
        mine = units[units["layer"] == layer]
        notes = rows[rows["layer"] == layer]
        votes = (mine["type_agreement"] * mine["n_annotations"]).round()
        precise = int((mine["precision"] > precision_cut).sum())
        row = {"network": annotations.network, "layer": layer, "units": len(mine), "annotations": len(notes),
               "mean_precision": mine["precision"].mean(), "units_precision_over_75": precise,
               "precision_over_75": precise / len(mine)}
        note_types = notes["type"].value_counts()
        unit_types = mine["type"].value_counts()
        row.update({f"annotation_share_{name}": note_types.get(name, 0) / len(notes) for name in TYPES})
        row.update({f"consensus_share_{name}": unit_types.get(name, 0) / len(mine) for name in TYPES})
        row["all_agree_type"] = float((votes == mine["n_annotations"]).mean())
        row["two_agree_type"] = float((votes >= 2).mean())
        row["mean_type_agreement"] = mine["type_agreement"].mean()
        table.append(row)
    return pd.DataFrame(table, columns=LAYER_COLUMNS)


def layer_average(annotations: Iclr15Annotations) -> pd.DataFrame:
    """``layerAverageCount`` recomputed from the per-annotation rows, in the stored table's shape.

    Columns ``network``, ``layer``, ``code_1`` ... ``code_6``: per layer, the
    share of its annotations with each category code.
    """
    rows = annotations.annotations
    table = []
    for layer in annotations.layers:
        codes = rows.loc[rows["layer"] == layer, "type_code"]
        counts = codes.value_counts()
        row = {"network": annotations.network, "layer": layer}
        row.update({f"code_{code}": counts.get(code, 0) / len(codes) for code in CODE_TYPES})
        table.append(row)
    return pd.DataFrame(table, columns=list(annotations.layer_average.columns))


def check_layer_average(annotations: Iclr15Annotations, *, tolerance: float = 1e-9) -> float:
    """Check that the recomputed type shares are the stored ``layerAverageCount``.

    Returns
    -------
    float
        The largest absolute difference found.

    Raises
    ------
    ValueError
        Naming the file, layer and category code of the first share that
        differs by more than ``tolerance``.
    """
    stored = annotations.layer_average
    recomputed = layer_average(annotations)
    columns = [f"code_{code}" for code in CODE_TYPES]
    difference = (recomputed[columns] - stored[columns]).abs()
    for index, layer in enumerate(annotations.layers):
        for column in columns:
            if not difference.at[index, column] <= tolerance:
                code = int(column.split("_")[1])
                raise ValueError(
                    f"{annotations.source}: layer {layer!r}, category code {code} ({CODE_TYPES[code]}): "
                    f"layerAverageCount says {stored.at[index, column]:.12g} but the annotations give "
                    f"{recomputed.at[index, column]:.12g}"
                )
    return float(difference.to_numpy().max()) if len(difference) else 0.0
