"""Which objectives make object detectors emerge: the table of ``unitscope objectives`` and its files.

One row per (objective, layer): the same architecture trained on the same
world under each objective, dissected over the same pool, counted by the
census's one rule (:func:`~unitscope.results.census.layer_counts`: one label
per unit, a detector when its IoU is above the dissection's threshold).  The
random-weights null of that architecture is the objective ``random``.
Saved in ``RESULTS/objectives``::

    objectives.csv    per (objective, layer): network, units, detectors, unique_objects,
                      object_detectors, other_detectors, accuracy
    objectives.json   {"config": options, "runs": {objective: network, accuracy_kind, steps,
                      train_seconds, dissect_seconds, train_cached}, "wall_seconds": ...}

Times vary from run to run, so they live in ``objectives.json`` and never in
``objectives.csv``, which is byte-identical when the same command runs again;
:meth:`ObjectivesResult.to_frame` joins them back.  Each objective's own
dissection is an ordinary ``RESULTS/<network>/dissect`` folder (census
included), so every other section of the report reads it as it reads any
dissection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.census import layer_counts
from unitscope.results.dissection_tables import DissectionTables
from unitscope.results.layout import OBJECTIVES_CSV, OBJECTIVES_JSON, objectives_dir
from unitscope.results.schema import CsvSpec, JsonSpec, ResultFileError, read_csv, read_json
from unitscope.results.writing import write_csv, write_json

__all__ = ["ObjectivesResult", "RANDOM", "TABLE_COLUMNS", "objective_rows", "load_objectives"]

#: The objective name of the random-weights null's rows.
RANDOM = "random"

#: The columns of ``objectives.csv``, in order.
TABLE_COLUMNS = ["objective", "network", "layer", "units", "detectors", "unique_objects", "object_detectors",
                 "other_detectors", "accuracy"]
_COUNTS = ("units", "detectors", "unique_objects", "object_detectors", "other_detectors")
_CSV = CsvSpec(required=tuple(TABLE_COLUMNS), integers=_COUNTS, blank_or_numbers=("accuracy",),
               text=("objective", "network", "layer"))
_JSON = JsonSpec(keys={"config": dict, "runs": dict})
#: Per-run values kept in ``objectives.json`` (times vary between runs) and joined by ``to_frame``.
_RUN_COLUMNS = ("accuracy_kind", "steps", "train_seconds", "dissect_seconds", "train_cached")


def objective_rows(tables: DissectionTables, objective: str, *, accuracy: float | None = None) -> pd.DataFrame:
    """One objective's rows of the table, counted from its saved dissection tables.

    Parameters
    ----------
    tables : DissectionTables
        The objective's dissection (``RESULTS/<network>/dissect``).
    objective : str
        Its name in the table (``random`` for the null).
    accuracy : float, optional
        Held-out accuracy on the objective's own task (NaN when None: the null).

    Returns
    -------
    DataFrame
        :data:`TABLE_COLUMNS`, one row per dissected layer, in the dissection's order.
    """
    rows = []
    for layer in tables.layer_names:
        units = tables.units[tables.units["layer"] == layer]
        counts = layer_counts(units, network=tables.network, layer=layer, iou_threshold=tables.iou_threshold)
        rows.append({"objective": objective, "network": tables.network, "layer": layer, "units": counts["units"],
                     "detectors": counts["detectors"], "unique_objects": counts["unique_objects"],
                     "object_detectors": counts["object_detectors"],
                     "other_detectors": counts["detectors"] - counts["object_detectors"],
                     "accuracy": np.nan if accuracy is None else float(accuracy)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


@dataclass
class ObjectivesResult:
    """The objectives compared: counts per objective and layer, with the null as ``random``.

    Attributes
    ----------
    table : DataFrame
        :data:`TABLE_COLUMNS`; the null's rows have objective ``random`` and accuracy NaN.
    runs : dict
        Per objective (``random`` included): ``network``, ``accuracy_kind`` (which
        accuracy ``accuracy`` is), ``steps`` (optimizer steps: the budget), ``train_seconds``, ``dissect_seconds``,
        ``train_cached`` (trained in an earlier run).
    config : dict
        The options of the run (objectives, layers, world, training options, pool size).
    wall_seconds : float
        Wall time of the call that wrote the result (0 for a run that only read earlier work).
    """

    table: pd.DataFrame
    runs: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def objectives(self) -> list[str]:
        """The objectives in table order (``random`` included)."""
        return list(dict.fromkeys(self.table["objective"]))

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(self.table["layer"]))

    def to_frame(self) -> pd.DataFrame:
        """The table with each objective's ``train_seconds``, ``dissect_seconds`` and ``accuracy_kind`` joined."""
        frame = self.table.copy()
        for column in _RUN_COLUMNS:
            frame[column] = [self.runs.get(o, {}).get(column) for o in frame["objective"]]
        return frame

    def best_layers(self) -> pd.DataFrame:
        """Per objective, the layer with the most unique objects (the shallowest on ties).

        Columns: objective, network, layer, unique_objects, object_detectors, detectors.
        """
        columns = ["objective", "network", "layer", "unique_objects", "object_detectors", "detectors"]
        if not len(self.table):
            return pd.DataFrame(columns=columns)
        best = [group.loc[group["unique_objects"].idxmax()]
                for _, group in self.table.groupby("objective", sort=False)]
        return pd.DataFrame(best)[columns].reset_index(drop=True)

    def save(self, results_dir: str | Path) -> Path:
        """Write ``RESULTS/objectives/objectives.csv`` and ``objectives.json`` (each atomically)."""
        folder = objectives_dir(results_dir)
        write_csv(folder / OBJECTIVES_CSV, self.table[TABLE_COLUMNS])
        write_json(folder / OBJECTIVES_JSON, {"config": self.config, "runs": self.runs,
                                               "best": self.best_layers().to_dict(orient="records"),
                                               "wall_seconds": round(float(self.wall_seconds), 3)})
        return folder

    @classmethod
    def load(cls, results_dir: str | Path) -> "ObjectivesResult":
        """Read what :meth:`save` wrote under ``results_dir``.

        Raises
        ------
        FileNotFoundError
            If ``objectives.csv`` or ``objectives.json`` is missing (naming it).
        ResultFileError
            If either does not hold what :meth:`save` writes.
        """
        folder = objectives_dir(results_dir)
        for name in (OBJECTIVES_CSV, OBJECTIVES_JSON):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"no objectives table in {folder} (missing {name})")
        table = read_csv(folder / OBJECTIVES_CSV, _CSV)
        document = read_json(folder / OBJECTIVES_JSON, _JSON)
        runs = document.get("runs") or {}
        if not all(isinstance(run, dict) for run in runs.values()):
            raise ResultFileError(f"{folder / OBJECTIVES_JSON}: runs must map each objective to an object")
        return cls(table=table[TABLE_COLUMNS].reset_index(drop=True), runs=runs,
                   config=document.get("config") or {}, wall_seconds=float(document.get("wall_seconds") or 0.0))


def load_objectives(results_dir: str | Path) -> ObjectivesResult | None:
    """The objectives table of ``RESULTS``; None when ``RESULTS/objectives/objectives.csv`` is absent."""
    if not (objectives_dir(results_dir) / OBJECTIVES_CSV).is_file():
        return None
    return ObjectivesResult.load(results_dir)
