"""The findings of the experiments beside dissection: layer preference, minimal images, receptive fields, localisation.

Each reads its kind's typed result (:mod:`unitscope.results`) and returns a
:class:`~unitscope.report.finding.Finding`, or None when there is nothing to say.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from unitscope.report.finding import Finding, pct
from unitscope.results import ResultSet

__all__ = ["preference_finding", "minimal_finding", "receptive_fields_finding", "localize_finding",
           "localize_summary"]


def preference_finding(results: ResultSet, nets) -> Finding | None:
    pref = results.preference
    fractions = pref.fractions if pref is not None else None
    if fractions is None or not len(fractions):
        return None
    parts, numbers = [], {}
    names = [n.name for n in nets] + [n for n in dict.fromkeys(fractions["network"]) if n not in
                                      {m.name for m in nets}]
    for name in names:
        f = fractions[fractions["network"] == name]
        if not len(f):
            continue
        layers = list(dict.fromkeys(f["layer"]))
        numbers[name] = {}
        described = []
        for layer in (layers[0], layers[-1]) if len(layers) > 1 else layers[:1]:
            rows = f[f["layer"] == layer].sort_values("fraction", ascending=False, kind="stable")
            best = rows.iloc[0]
            numbers[name][layer] = {r.source: float(r.fraction) for r in rows.itertuples()}
            described.append(f"{layer} {pct(best['fraction'])} {best['source']}")
        parts.append(f"{name}: {' → '.join(described)}")
    if not parts:
        return None
    top = f"top-{pref.top} " if pref.top else "top "
    answer = (f"Share of each layer's {top}images from its most frequent source, first → last layer: "
              + "; ".join(parts) + ". (Paper: early layers alike in both networks; from conv4 on, "
              "each network prefers images like its training data — fc7 ~78% / ~76%.)")
    return Finding("preference", "Which images does each layer prefer?", answer, numbers)


def minimal_finding(nets) -> Finding | None:
    parts, numbers = [], {}
    for net in nets:
        for run in net.minimal:
            if not len(run.images):
                continue
            label = run.segmentation or run.name or "minimal"
            kept = float(run.images["kept_fraction"].mean()) if "kept_fraction" in run.images else float("nan")
            entry: dict[str, Any] = {"images": int(len(run.images)), "mean_kept_fraction": kept}
            text = (f"{net.name} ({label}): {len(run.images)} minimal images keep {pct(kept)} of the pixels "
                    f"on average")
            if run.objects is not None and len(run.objects):
                best = (run.objects.sort_values(["scene", "share"], ascending=[True, False], kind="stable")
                        .groupby("scene", sort=True).head(1))
                entry["top_object"] = {r.scene: [r.object, float(r.share)] for r in best.itertuples()}
                shown = [f"{r.scene} → {r.object} {pct(r.share)}" for r in best.head(6).itertuples()]
                text += "; most kept object per scene: " + ", ".join(shown)
                if len(best) > 6:
                    text += f" (+{len(best) - 6} scenes)"
            if run.diagnostic is not None and len(run.diagnostic):
                anyrows = run.diagnostic[run.diagnostic["object"] == "(any)"]
                n = pd.to_numeric(anyrows["n_images"], errors="coerce").sum()
                k = pd.to_numeric(anyrows["n_kept"], errors="coerce").sum()
                if n:
                    entry["diagnostic_kept"] = float(k / n)
                    text += f"; a diagnostic object of the scene survives in {pct(k / n)} of them"
            numbers[f"{net.name}/{label}"] = entry
            parts.append(text)
    if not parts:
        return None
    answer = "; ".join(parts) + "."
    if any("top_object" in entry for entry in numbers.values()):
        answer += " (Paper: bedroom → bed 87%, art gallery → paintings 81%, bookstore → bookcase 96%.)"
    return Finding("minimal", "What do the networks need to recognise a scene (minimal images)?", answer, numbers)


def receptive_fields_finding(nets) -> Finding | None:
    parts, numbers = [], {}
    for net in nets:
        rf = net.rf
        if rf is None or "rf_mean" not in rf.layers or not rf.layers["rf_mean"].notna().any():
            continue
        rows = rf.layers[rf.layers["rf_mean"].notna()]
        items, entry = [], {}
        for r in rows.itertuples():
            std = getattr(r, "rf_std", float("nan"))
            theo = getattr(r, "theoretical_size", float("nan"))
            entry[r.layer] = {"empirical": float(r.rf_mean), "std": float(std), "theoretical": float(theo)}
            items.append(f"{r.layer} {r.rf_mean:.1f}±{std:.1f} vs {theo:.0f}")
        ratios = [v["empirical"] / v["theoretical"] for v in entry.values() if v["theoretical"] > 0]
        smaller = all(v["empirical"] < v["theoretical"] for v in entry.values())
        numbers[net.name] = {"layers": entry, "ratios": ratios, "all_smaller": smaller}
        text = f"{net.name} (empirical vs theoretical, px): {', '.join(items)}"
        if len(ratios) > 1:
            text += (f"; the empirical RF is {pct(ratios[0])} of the theoretical in {rows.iloc[0]['layer']} "
                     f"and {pct(ratios[-1])} in {rows.iloc[-1]['layer']}")
        parts.append(text)
    if not parts:
        return None
    verdict = ("The empirical receptive fields are smaller than the theoretical ones"
               if all(v["all_smaller"] for v in numbers.values())
               else "The empirical receptive fields are not everywhere smaller than the theoretical ones")
    return Finding("rf", "How large are the receptive fields actually used?",
                   f"{verdict}: " + "; ".join(parts) + ". (Paper, approximate: pool1 17.8 vs 19, "
                   "pool5 72.0 vs 195 px.)", numbers)


def localize_finding(per_network: dict) -> Finding | None:
    if not per_network:
        return None
    parts = []
    for name, entry in per_network.items():
        text = f"{name}: {entry['units']} object-detector units"
        if entry.get("iou") is not None:
            text += f", mean mask IoU {entry['iou']:.2f}"
        if entry.get("pointing") is not None:
            text += f", pointing-game hit rate {pct(entry['pointing'])}"
        parts.append(text)
    return Finding("localize", "Do object detectors localise their objects?", "; ".join(parts) + ".",
                   per_network)


def localize_summary(results: ResultSet) -> dict[str, dict]:
    """Per network: detector units scored and their mean mask IoU / pointing-game rate (combined rows excluded)."""
    out = {}
    for net in results.networks:
        if net.localize is None:
            continue
        units = net.localize.unit_frame()
        units = units[units["kind"] == "unit"]
        if not len(units):
            continue
        entry = {"units": int(len(units))}
        for column, key in (("mask_iou", "iou"), ("pointing", "pointing")):
            if column in units:
                value = pd.to_numeric(units[column], errors="coerce").mean()
                entry[key] = None if not np.isfinite(value) else float(value)
        out[net.name] = entry
    return out
