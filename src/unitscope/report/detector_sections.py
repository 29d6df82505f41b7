"""The sections that put the detectors to work: localisation, ablation, human labels; and the findings.

Shaped as :mod:`unitscope.report.sections` shapes the others: each
``*_section`` function takes the :class:`~unitscope.results.ResultSet` and the
:class:`~unitscope.report.assets.Assets` and returns a dict for the templates
with at least ``available`` and ``hint``.
"""

from __future__ import annotations

import math
from typing import Any

from unitscope.report import plots
from unitscope.report.assets import HINTS, Assets, cell, table
from unitscope.report.pictures import localization_picture
from unitscope.results import ResultSet
from unitscope.results.layout import LOCALIZE, safe_name
from unitscope.results.localize import LocalizationResult
from unitscope.report.measures import Finding, ablation_targets

__all__ = ["localize_section", "ablate_section", "human_section", "findings_context"]


# --------------------------------------------------------------------------- localisation & ablation
def localize_section(results: ResultSet, assets: Assets, *, examples: int = 8) -> dict[str, Any]:
    nets = [n for n in results.networks if n.localize is not None]
    if not nets:
        return {"available": False, "hint": HINTS["localize"]}
    out = []
    for net in nets:
        result = net.localize
        objects = result.to_frame()
        plot = assets.plot(f"localize_{net.name}", lambda p, o=objects, n=net.name: plots.plot_localization(o, n, p))
        counts = {k: v for k, v in result.counts.items()
                  if not (isinstance(v, float) and not math.isfinite(v)) and v is not None}
        out.append({
            "network": net.name, "counts": counts, "plot": plot,
            "layers": table(result.layer_summary(), ["layer", "objects", "detectors", "images", "mask_iou", "box_iou",
                                                     "box_hit_rate", "pointing", "unit_mask_iou", "unit_pointing"]),
            "objects": table(objects, ["layer", "object", "detectors", "units", "images", "mask_iou", "box_iou",
                                       "box_hit_rate", "pointing", "fire_rate_absent", "best_unit",
                                       "best_unit_mask_iou", "best_unit_pointing"], limit=60),
            "pictures": _localization_pictures(net.name, result, assets, examples), "others": {},
        })
    return {"available": True, "hint": "", "networks": out}


def _localization_pictures(network: str, result: LocalizationResult, assets: Assets,
                           limit: int) -> list[dict[str, Any]]:
    """Per example image and layer: the picture drawn from the saved image, masks and boxes."""
    objects = [str(o) for o in result.pictures.get("objects", [])]
    pictures = []
    for rank, ex in enumerate(result.examples[:limit]):
        picture = ex.get("picture") or {}
        image = result.pictures[picture["image"]]
        names = picture.get("masks") or []
        for layer in result.layers:
            chosen = [k for k, d in enumerate(ex["detections"]) if d["layer"] == layer]
            detections = [ex["detections"][k] for k in chosen]
            masks = {i: result.pictures[names[k]] for i, k in enumerate(chosen)
                     if k < len(names) and names[k] is not None}
            rel = (f"{safe_name(network)}/{LOCALIZE}/examples/{safe_name(layer)}/"
                   f"{rank:03d}_{safe_name(ex.get('id', ''))}.png")
            path = assets.picture(rel, lambda: localization_picture(image, ex, detections, masks, objects))
            pictures.append({
                "url": assets.url(path), "id": ex.get("id", ""), "layer": layer,
                "scene": ex.get("label_name", ""), "predicted": ex.get("predicted_name", ""),
                "probability": cell(ex.get("probability")),
                "objects": ", ".join(sorted({d.get("object", "") for d in detections if d.get("detected")})),
            })
    return pictures


def ablate_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    nets = [n for n in results.networks if n.ablate]
    if not nets:
        return {"available": False, "hint": HINTS["ablate"]}
    out = []
    for net in nets:
        runs = []
        for run in net.ablate:
            targets, basis = ablation_targets(run.classes)
            suffix = f"_{safe_name(run.folder)}" if run.folder else ""
            plot = assets.plot(f"ablate_{net.name}{suffix}", lambda p, t=targets, r=run, b=basis: plots.plot_ablation(
                t, p, title=f"{net.name}, {r.layer}: accuracy drop of each object's {b}"))
            runs.append({
                "layer": run.layer, "basis": basis, "plot": plot, "counts": run.counts,
                "n_random": run.options.get("n_random"),
                "summary": table(run.summary, ["object", "detectors", "most_hurt", "most_hurt_drop",
                                                  "most_hurt_effect", "diagnostic_scenes", "diagnostic_rank",
                                                  "drop", "random_drop_mean"],
                                 rename={"drop": "overall drop", "random_drop_mean": "overall random drop"}),
                "targets": table(targets, ["object", "class_name", "images", "baseline_acc", "ablated_acc", "drop",
                                           "random_drop_mean", "random_drop_std", "effect"],
                                 rename={"class_name": "scene class"}, limit=60),
            })
        out.append({"network": net.name, "runs": runs})
    return {"available": True, "hint": "", "networks": out}


# --------------------------------------------------------------------------- human labels
def human_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    nets = [n for n in results.networks if n.human is not None]
    if not nets:
        return {"available": False, "hint": HINTS["human"]}
    plot = assets.plot("human_types", lambda p: plots.plot_human_types(
        {n.name: n.human.layers for n in nets}, p))
    out = []
    for net in nets:
        s = net.human.summary
        names = {"n_units_labelled": "units labelled", "n_annotations": "annotations",
                 "n_annotators": "annotators", "mean_precision": "mean precision",
                 "precision_over_75": "units with precision > 75%", "mean_agreement": "mean agreement",
                 "label_agreement_rate": "label agrees with the automatic one",
                 "type_agreement_rate": "type agrees with the automatic one"}
        summary = [[label, s.get(k)] for k, label in names.items() if k in s]
        out.append({
            "network": net.name, "summary": summary,
            "layers": table(net.human.layers),
            "compare": table(net.human.compare, ["layer", "unit", "human_label", "auto_label", "human_type",
                                                 "auto_type", "auto_iou", "label_match", "type_match"], limit=50),
        })
    return {"available": True, "hint": "", "plot": plot, "networks": out}


def findings_context(findings: list[Finding]) -> list[dict[str, Any]]:
    return [{"key": f.key, "question": f.question, "answer": f.answer} for f in findings]
