"""The report's section "How detectors emerge during training", from saved emergence results.

Per training run (``RESULTS/emergence/<network>``, :class:`~unitscope.results.EmergenceResult`):
a plot of detectors per layer against the training step (log axis; the
random-weights null as a dashed line per layer), the table of
``emergence.csv``, and one sentence whose numbers go to ``summary.json``
(:func:`emergence_summary`): at the layer with the most detectors at the
last snapshot, its detectors at the first and last snapshots and with
random weights, the first step reaching half the final count, the object
share and unique objects at the end, and the share of detectors whose
label holds to the end (median over the snapshots before the last).
Without results the section names the commands that make them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator, NullLocator

from unitscope.report import plots
from unitscope.report.assets import Assets, table
from unitscope.report.measures import pct
from unitscope.results import EmergenceResult, ResultSet

__all__ = ["HINT", "emergence_section", "emergence_summary", "emergence_numbers", "plot_emergence"]

HINT = ("No emergence results: train with snapshots (`unitscope train --snapshots ...`), then dissect them with "
        "`unitscope emergence --snapshots DIR --data POOL --out RESULTS`.")

_COLUMNS = ["step", "layer", "units", "detectors", "unique_objects", "object_detectors", "object_share", "kept_next",
            "kept_final"]


def emergence_numbers(result: EmergenceResult) -> dict[str, Any]:
    """The numbers behind a run's sentence (see the module docstring)."""
    frame = result.to_frame()
    trained, null = frame[~frame["null"]], frame[frame["null"]]
    last = trained[trained["step"] == trained["step"].max()]
    layer = str(last.sort_values(["detectors"], kind="stable").iloc[-1]["layer"]) if len(last) else None
    rows = trained[trained["layer"] == layer].sort_values("step")
    final = int(rows["detectors"].iloc[-1]) if len(rows) else 0
    half = rows[rows["detectors"] >= final / 2] if final else rows.iloc[0:0]
    kept = rows["kept_final"].iloc[:-1].dropna()
    null_row = null[null["layer"] == layer]
    return {"layer": layer, "steps": [int(s) for s in result.steps], "snapshots": len(result.steps),
            "detectors_first": int(rows["detectors"].iloc[0]) if len(rows) else 0, "detectors_last": final,
            "detectors_random": int(null_row["detectors"].iloc[0]) if len(null_row) else None,
            "half_step": int(half["step"].iloc[0]) if len(half) else None,
            "object_share_last": float(rows["object_share"].iloc[-1]) if len(rows) else float("nan"),
            "unique_objects_last": int(rows["unique_objects"].iloc[-1]) if len(rows) else 0,
            "kept_final_median": float(np.median(kept)) if len(kept) else float("nan"),
            "wall_s": {k: float(v) for k, v in result.wall_s.items()}}


def _sentence(network: str, n: dict[str, Any]) -> str:
    if n["layer"] is None:
        return f"{network}: no snapshot was dissected."
    steps = n["steps"]
    text = (f"In {network}, {n['layer']} has {n['detectors_first']} detectors at step {steps[0]} and "
            f"{n['detectors_last']} at step {steps[-1]}")
    if n["detectors_random"] is not None:
        text += f" (random weights: {n['detectors_random']})"
    if n["half_step"] is not None and n["detectors_last"]:
        text += (f"; half of them are there by step {n['half_step']}, {pct(n['object_share_last'])} are object "
                 f"detectors at the end ({n['unique_objects_last']} different "
                 f"object{'s' if n['unique_objects_last'] != 1 else ''})")
    if np.isfinite(n["kept_final_median"]):
        text += f", and a median {pct(n['kept_final_median'])} of a snapshot's detectors keep their label to the end"
    return text + "."


def plot_emergence(frame: pd.DataFrame, path: Path, *, network: str) -> Path | None:
    """Detectors per layer against the training step (log x axis); the null of each layer dashed."""
    trained, null = frame[~frame["null"]], frame[frame["null"]]
    if not len(trained):
        return None
    fig = plots._figure(6.4, 3.8)
    ax = fig.subplots()
    for i, layer in enumerate(dict.fromkeys(trained["layer"])):
        rows = trained[trained["layer"] == layer].sort_values("step")
        ax.plot(rows["step"].astype(float), rows["detectors"], marker="o", color=plots._color(i), label=layer)
        base = null[null["layer"] == layer]
        if len(base):
            ax.axhline(float(base["detectors"].iloc[0]), color=plots._color(i), linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    steps = sorted({int(s) for s in trained["step"]})
    ax.set_xticks(steps, [str(s) for s in steps], rotation=45 if len(steps) > 8 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step (log scale; dashed: random weights)")
    ax.set_ylabel("detectors")
    ax.set_title(plots._wrap(f"{network}: detectors per layer over training", 6.4))
    ax.legend(fontsize=8, frameon=False)
    return plots._save(fig, path)


def emergence_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    """The section's context: one entry per training run, or the hint."""
    if not results.emergence:
        return {"available": False, "hint": HINT}
    runs = []
    for name, result in results.emergence.items():
        frame = result.to_frame()
        numbers = emergence_numbers(result)
        runs.append({"network": name, "sentence": _sentence(name, numbers),
                     "plot": assets.plot(f"emergence_{name}", lambda p, f=frame, n=name: plot_emergence(
                         f, p, network=n)),
                     "table": table(frame.assign(step=frame["step"].astype(object).where(~frame["null"], "random")),
                                    _COLUMNS),
                     "wall_s": sum(numbers["wall_s"].values())})
    return {"available": True, "hint": "", "runs": runs}


def emergence_summary(results: ResultSet) -> dict[str, Any]:
    """``summary.json``'s ``emergence``: per run, its sentence and the numbers behind it."""
    return {name: dict(emergence_numbers(r), sentence=_sentence(name, emergence_numbers(r)))
            for name, r in results.emergence.items()}
