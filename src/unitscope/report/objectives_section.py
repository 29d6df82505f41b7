"""The report's section "Which objectives make object detectors emerge" (``unitscope objectives``).

Reads the saved :class:`~unitscope.results.ObjectivesResult`: per objective,
the layer with the most unique objects (object classes with at least one
detector) and the deepest dissected layer, drawn as bars with the
random-weights null as a line; the table; one sentence whose numbers are
also in ``summary.json`` (``objectives``).  Network Dissection's published
ranking of self-supervised objectives is shown beside it as a reference
line: real images and real networks, not a target for the synthetic world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from unitscope.report.assets import Assets, table
from unitscope.report.plots import _figure, _save, _wrap
from unitscope.results import ResultSet
from unitscope.results.objectives import RANDOM, ObjectivesResult

__all__ = ["objectives_section", "objectives_summary", "NETDISSECT_RANKING", "HINT"]

HINT = ("No objectives compared: run `unitscope objectives --preset study --out RESULTS` (one network per "
        "training objective, each dissected beside a random-weights null; `--objective NAME` to choose).")

#: Network Dissection's AlexNet conv5 unique detectors per training objective (Bau et al., CVPR 2017, Fig. 9):
#: real images, real networks; a reference line, not a target.
NETDISSECT_RANKING = (("Places365 (supervised)", 91), ("ImageNet (supervised)", 61), ("tracking", 41),
                      ("object-centric", 37), ("audio", 24), ("colorization", 18), ("puzzle", 16),
                      ("context", 8), ("video order", 4))


def _ranking(result: ObjectivesResult) -> pd.DataFrame:
    """Per objective (null last): its best layer's counts and those of the deepest dissected layer."""
    best = result.best_layers().rename(columns={"layer": "best_layer"})
    last = result.layers[-1] if result.layers else None
    deepest = result.table[result.table["layer"] == last].set_index("objective")
    best["last_layer"] = last
    best["last_unique_objects"] = [int(deepest.loc[o, "unique_objects"]) if o in deepest.index else None
                                   for o in best["objective"]]
    best["accuracy"] = [deepest.loc[o, "accuracy"] if o in deepest.index else None for o in best["objective"]]
    trained = best[best["objective"] != RANDOM].sort_values(
        ["unique_objects", "object_detectors"], ascending=False, kind="stable")
    return pd.concat([trained, best[best["objective"] == RANDOM]], ignore_index=True)


def objectives_summary(results: ResultSet) -> dict[str, Any] | None:
    """The numbers behind the section's sentence (``summary.json["objectives"]``); None without results."""
    result = results.objectives
    if result is None or not len(result.table):
        return None
    ranking = _ranking(result)
    trained = ranking[ranking["objective"] != RANDOM]
    null = ranking[ranking["objective"] == RANDOM]
    rows = [{"objective": r.objective, "network": r.network, "best_layer": r.best_layer,
             "unique_objects": int(r.unique_objects), "object_detectors": int(r.object_detectors),
             "last_layer": r.last_layer, "last_unique_objects": r.last_unique_objects}
            for r in ranking.itertuples()]
    numbers: dict[str, Any] = {"ranking": rows, "objectives": len(trained)}
    if len(null):
        numbers["random_unique_objects"] = int(null["unique_objects"].iloc[0])
    if len(trained):
        most = trained.iloc[0]
        detectors = trained.sort_values("object_detectors", ascending=False, kind="stable").iloc[0]
        numbers.update(most_unique_objects=most.objective, most_object_detectors=detectors.objective,
                       above_random=int((trained["unique_objects"] > numbers.get("random_unique_objects", -1)).sum()))
        text = (f"Of {len(trained)} objectives, {most.objective} makes detectors of the most objects: "
                f"{int(most.unique_objects)} unique objects at {most.best_layer} "
                f"({int(most.object_detectors)} object detectors)")
        if detectors.objective != most.objective:
            text += (f"; {detectors.objective} has the most object detectors "
                     f"({int(detectors.object_detectors)} at {detectors.best_layer})")
        if "random_unique_objects" in numbers:
            text += (f"; the random-weights null finds {numbers['random_unique_objects']} at its best layer, and "
                     f"{numbers['above_random']} of {len(trained)} objectives exceed it")
        numbers["sentence"] = text + "."
    return numbers


def plot_objectives(ranking: pd.DataFrame, path: Path) -> Path | None:
    """Unique objects per objective: best layer and deepest layer as bars, the random null as lines."""
    trained = ranking[ranking["objective"] != RANDOM]
    if not len(trained):
        return None
    null = ranking[ranking["objective"] == RANDOM]
    last = trained["last_layer"].iloc[0]
    width = max(5.0, 0.8 * len(trained) + 2.0)
    fig = _figure(width, 3.6)
    ax = fig.subplots()
    x = range(len(trained))
    ax.bar([i - 0.2 for i in x], trained["unique_objects"], 0.4, label="best layer", color="#0072B2")
    ax.bar([i + 0.2 for i in x], trained["last_unique_objects"].fillna(0), 0.4, label=str(last), color="#D55E00")
    for column, style, label in (("unique_objects", "--", "random weights, best layer"),
                                 ("last_unique_objects", ":", f"random weights, {last}")):
        if len(null) and pd.notna(null[column].iloc[0]):
            ax.axhline(float(null[column].iloc[0]), color="#000000", linestyle=style, linewidth=1.2, label=label)
    ax.set_xticks(list(x), [f"{o}\n({layer})" for o, layer in zip(trained["objective"], trained["best_layer"])],
                  fontsize=8)
    ax.set_ylabel("unique objects detected")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(_wrap("Unique objects detected per objective (same network, world and budget)", width))
    ax.legend(fontsize=8)
    return _save(fig, path)


def objectives_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    """The section's context for ``objectives.html.j2``: ``available``, ``hint``, plot, tables, sentence."""
    result = results.objectives
    if result is None or not len(result.table):
        return {"available": False, "hint": HINT}
    ranking = _ranking(result)
    plot = assets.plot("objectives_unique_objects", lambda p: plot_objectives(ranking, p))
    frame = result.to_frame()
    summary = objectives_summary(results) or {}
    return {
        "available": True, "hint": "", "plot": plot, "sentence": summary.get("sentence", ""),
        "ranking": table(ranking, ["objective", "network", "best_layer", "unique_objects", "object_detectors",
                                   "detectors", "last_layer", "last_unique_objects", "accuracy"],
                         rename={"best_layer": "best layer", "unique_objects": "unique objects",
                                 "object_detectors": "object detectors", "last_layer": "deepest layer",
                                 "last_unique_objects": "unique objects there"}),
        "table": table(frame, ["objective", "network", "layer", "units", "detectors", "unique_objects",
                               "object_detectors", "other_detectors", "accuracy", "accuracy_kind", "steps",
                               "train_seconds", "dissect_seconds"]),
        "reference": [{"objective": name, "unique": count} for name, count in NETDISSECT_RANKING],
        "config": {k: v for k, v in result.config.items() if k in ("world", "preset", "layers", "train", "null")},
    }
