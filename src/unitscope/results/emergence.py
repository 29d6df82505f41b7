"""How detectors emerge over training: the per-unit labels of every snapshot, and what they add up to.

``unitscope emergence`` dissects every snapshot of a training run over one
pool, and once the same architecture with random weights (the null, the
reference row).  Saved in ``RESULTS/emergence/<network>/``::

    units.csv       one row per (snapshot, layer, unit): step (blank for the null), null, label,
                    category, iou, detector -- the per-unit labels over steps, a long table
    emergence.csv   one row per (snapshot, layer): units, detectors, unique_objects,
                    object_detectors, object_share, kept_next, kept_final (the null's row: step blank)
    emergence.json  network, steps, the pool, the options, each snapshot's weights fingerprint, the
                    configuration key a second identical run is recognised by
    timings.json    seconds each snapshot's dissection took (and the null's): the one file that
                    differs when the same command runs again (as ``run.json`` elsewhere)

The counts per layer are the census's (:func:`~unitscope.results.census.layer_counts`:
one label per unit, its best).  Stability: of the units that are detectors
at a snapshot, ``kept_next`` is the share that are detectors with the same
label at the next snapshot, ``kept_final`` the share that are at the last
one (1 at the last snapshot itself; blank where the snapshot has no
detectors, and ``kept_next`` blank at the last snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope.results import layout
from unitscope.results.census import layer_counts
from unitscope.results.schema import ResultFileError, as_bool, read_json, read_required_json, read_required_table
from unitscope.results.writing import write_csv, write_json

__all__ = ["EmergenceResult", "UNIT_COLUMNS", "emergence_table", "load_emergence", "read_units", "write_units"]

#: The columns of ``units.csv`` (what each snapshot's dissection contributes).
UNIT_COLUMNS = ["network", "step", "null", "layer", "unit", "label", "category", "iou", "detector"]


def _kept(now: pd.DataFrame, later: pd.DataFrame | None) -> float:
    """Share of ``now``'s detectors that are detectors with the same label in ``later`` (NaN: none, or no later)."""
    det = now[now["detector"]]
    if later is None or not len(det):
        return float("nan")
    same = det.merge(later[later["detector"]][["unit", "label"]], on=["unit", "label"], how="inner")
    return len(same) / len(det)


def emergence_table(units: pd.DataFrame, *, iou_threshold: float = 0.04) -> pd.DataFrame:
    """Per (snapshot, layer) of a ``units.csv`` frame: the census's counts, object share and stability.

    Rows in step order, layers in the order they appear, the null's rows last.
    """
    rows = []
    trained = units[~units["null"]]
    steps = sorted(int(s) for s in trained["step"].unique())
    layers = list(dict.fromkeys(units["layer"]))
    by = {(int(s), layer): f for (s, layer), f in trained.groupby(["step", "layer"], sort=False)}
    for i, step in enumerate(steps):
        for layer in layers:
            now = by.get((step, layer))
            if now is None:
                continue
            rows.append(_row(now, step=step, null=False, iou_threshold=iou_threshold,
                             kept_next=_kept(now, by.get((steps[i + 1], layer)) if i + 1 < len(steps) else None),
                             kept_final=_kept(now, by.get((steps[-1], layer)))))
    null = units[units["null"]]
    for layer in layers:
        now = null[null["layer"] == layer]
        if len(now):
            rows.append(_row(now, step=None, null=True, iou_threshold=iou_threshold, kept_next=float("nan"),
                             kept_final=float("nan")))
    frame = pd.DataFrame(rows, columns=["network", "step", "null", "layer", "units", "detectors", "unique_objects",
                                        "object_detectors", "object_share", "kept_next", "kept_final"])
    frame["step"] = frame["step"].astype("Int64")
    return frame


def _row(units: pd.DataFrame, *, step, null: bool, iou_threshold: float, kept_next: float,
         kept_final: float) -> dict:
    counts = layer_counts(units, network=str(units["network"].iloc[0]), layer=str(units["layer"].iloc[0]),
                          iou_threshold=iou_threshold)
    share = counts["object_detectors"] / counts["detectors"] if counts["detectors"] else float("nan")
    return {"network": counts["network"], "step": step, "null": null, "layer": counts["layer"],
            "units": counts["units"], "detectors": counts["detectors"], "unique_objects": counts["unique_objects"],
            "object_detectors": counts["object_detectors"], "object_share": share,
            "kept_next": kept_next, "kept_final": kept_final}


@dataclass
class EmergenceResult:
    """Every snapshot's dissection of one training run, as labels per unit and counts per layer.

    Attributes
    ----------
    network : str
        The run's name (its folder ``RESULTS/emergence/<network>``).
    units : DataFrame
        :data:`UNIT_COLUMNS`: one row per (snapshot, layer, unit); ``step`` is
        ``Int64`` (``<NA>`` on the null's rows), ``null`` marks them.
    steps : list of int
        The snapshots' training steps, in order.
    wall_s : dict
        Seconds each snapshot's dissection took (keys: the step as text, and
        ``"random"`` for the null), as measured when it ran (a resumed run keeps the earlier times).
    config : dict
        The layers, the pool, the dissection options, each snapshot's weights
        fingerprint and ``key``: the configuration a second call is matched by.
    """

    network: str
    units: pd.DataFrame
    steps: list[int]
    wall_s: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        return self.config.get("key")

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(self.units["layer"]))

    def to_frame(self) -> pd.DataFrame:
        """Per (snapshot, layer): units, detectors, unique_objects, object_detectors, object_share, kept_next,
        kept_final (``emergence.csv``; the null's rows last, step blank)."""
        return emergence_table(self.units, iou_threshold=float(self.config.get("iou_threshold", 0.04)))

    def labels(self, layer: str) -> pd.DataFrame:
        """Each unit's label at each step of ``layer`` (rows: units, columns: steps; blank: not a detector)."""
        trained = self.units[(self.units["layer"] == layer) & ~self.units["null"]]
        shown = trained.assign(shown=np.where(trained["detector"], trained["label"], ""))
        return shown.pivot(index="unit", columns="step", values="shown")

    # -- files -------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``units.csv``, ``emergence.csv`` and ``emergence.json`` into ``folder`` (each atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_units(folder / layout.UNITS_CSV, self.units)
        write_csv(folder / layout.EMERGENCE_CSV, self.to_frame())
        write_json(folder / layout.EMERGENCE_JSON, {"network": self.network, "steps": list(self.steps),
                                                    "config": self.config})
        write_json(folder / layout.EMERGENCE_TIMINGS_JSON, {"wall_s": dict(self.wall_s)})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "EmergenceResult":
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``emergence.json`` or ``units.csv`` is missing (naming it).
        ResultFileError
            If a file does not hold what :meth:`save` writes (naming it).
        """
        folder = Path(folder)
        doc = read_required_json(folder / layout.EMERGENCE_JSON, what="emergence result")
        path = folder / layout.EMERGENCE_JSON
        if not isinstance(doc.get("network"), str) or not isinstance(doc.get("steps"), list) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in doc["steps"]):
            raise ResultFileError(f"{path} must hold the run's 'network' (text) and 'steps' (a list of integers)")
        units = read_units(folder / layout.UNITS_CSV)
        missing = sorted(set(doc["steps"]) - {int(s) for s in units.loc[~units["null"], "step"].dropna()})
        if missing or units.loc[~units["null"], "step"].isna().any():
            raise ResultFileError(f"{folder / layout.UNITS_CSV} has no rows for step(s) {missing} that {path} "
                                  "lists (a truncated file?)" if missing else
                                  f"{folder / layout.UNITS_CSV} has a snapshot row without a step")
        timings = read_json(folder / layout.EMERGENCE_TIMINGS_JSON) or {}  # (times are optional)
        wall = timings.get("wall_s") if isinstance(timings, dict) else None
        if not isinstance(wall, dict) or not all(isinstance(v, (int, float)) for v in wall.values()):
            wall = {}
        return cls(network=doc["network"], units=units[UNIT_COLUMNS], steps=list(doc["steps"]),
                   wall_s={str(k): float(v) for k, v in wall.items()},
                   config=doc.get("config") or {})


def write_units(path: str | Path, units: pd.DataFrame) -> Path:
    """Write a ``units.csv`` (the :data:`UNIT_COLUMNS` of ``units``); also each snapshot's part of a run."""
    return write_csv(path, units[UNIT_COLUMNS])


def read_units(path: str | Path) -> pd.DataFrame:
    """Read a ``units.csv`` written by :func:`write_units`: ``step`` as ``Int64``, ``null``/``detector`` as booleans."""
    units = read_required_table(Path(path), layout.EMERGENCE, what="emergence units").copy()
    units["null"] = as_bool(units["null"])
    units["detector"] = as_bool(units["detector"])
    units["step"] = pd.to_numeric(units["step"], errors="coerce").astype("Int64")
    units["label"] = units["label"].fillna("")
    units["category"] = units["category"].fillna("")
    return units[UNIT_COLUMNS]


def load_emergence(results_dir: str | Path) -> dict[str, EmergenceResult]:
    """Every emergence result of ``RESULTS/emergence/<network>/``, by network (empty when there is none)."""
    root = layout.emergence_root(results_dir)
    if not root.is_dir():
        return {}
    return {p.name: EmergenceResult.load(p) for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / layout.EMERGENCE_JSON).is_file()}
