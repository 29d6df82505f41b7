"""The seed's questions answered in plain sentences, with the numbers behind them.

Everything here is computed from the tables :mod:`unitscope.results`
read; each answer is a :class:`Finding` whose ``numbers`` are written to
``report/summary.json`` beside the page, so the sentences can be checked
against data.

Definitions used by the sentences:

* an *object detector* is a detector unit (IoU above the dissection's
  threshold) whose label is in the ``object`` category;
* the *key layer* is the dissected layer with the most object detectors over
  the networks shown (ties: the deeper layer) — the layer the census plots
  and the summary quote;
* a network is the *scene* or *object* network when ``run.json`` says so
  (``networks.<name>.task``, ``trained_on`` or ``data``) or its name says so
  (``scene``/``places``; ``object``/``imagenet``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from unitscope.report.measures import (Finding, ablate_summary, key_layer, layer_order, localize_summary, network_role,
                                       object_detector_table, pct)
from unitscope.report.published_sections import published_findings
from unitscope.results import ResultSet

__all__ = ["summarise"]


# --------------------------------------------------------------------------- findings
def _emerge(nets, table, results: ResultSet) -> Finding | None:
    dissected = [n for n in nets if n.dissection is not None]
    if not dissected:
        return None
    parts, numbers = [], {}
    for net in dissected:
        t = table[table["network"] == net.name]
        n_obj, n_units = int(t["object_detectors"].sum()), int(t["units"].sum())
        units = net.dissection.units
        objects = units.loc[units["object_detector"], "label"].nunique()
        threshold = net.dissection.iou_threshold
        numbers[net.name] = {"object_detectors": n_obj, "units": n_units, "unique_objects": int(objects),
                             "layers": int(len(t)), "iou_threshold": threshold}
        plural = "s" if len(t) != 1 else ""
        if n_obj:
            verb = "is an object detector" if n_obj == 1 else "are object detectors"
            text = (f"In {net.name}, {n_obj} of the {n_units} units in {len(t)} dissected layer{plural} {verb} "
                    f"({pct(n_obj / max(n_units, 1), 1)}, IoU > {threshold:g}), detecting {objects} "
                    f"different object{'s' if objects != 1 else ''}")
        else:
            text = (f"In {net.name}, none of the {n_units} units in {len(t)} dissected layer{plural} is an "
                    f"object detector (IoU > {threshold:g})")
        null = results.nulls.get(net.null or "")
        null_count = None
        if null is not None and null.dissection is not None:
            null_count = int(null.dissection.units["object_detector"].sum())
        elif net.null and net.census is not None and "network" in net.census.layers.columns and \
                "object_detectors" in net.census.layers.columns:
            rows = net.census.layers[net.census.layers["network"] == net.null]
            null_count = int(rows["object_detectors"].sum()) if len(rows) else None
        if null_count is not None:
            numbers[net.name]["null_object_detectors"] = null_count
            text += f"; with random weights the same architecture has {null_count}"
        parts.append(text + ".")
    any_emerge = any(v["object_detectors"] > 0 for v in numbers.values())
    answer = ("Yes. " if any_emerge else "No. ") + " ".join(parts)
    return Finding("emerge", "Do object detectors emerge inside the networks?", answer, numbers)


def _where(nets, table) -> Finding | None:
    parts, numbers = [], {}
    for net in nets:
        t = table[table["network"] == net.name].reset_index(drop=True)
        if not len(t):
            continue
        with_objects = t[t["object_detectors"] > 0]
        if not len(with_objects):
            continue
        first = with_objects.iloc[0]
        peak = t.loc[t["object_detectors"].idxmax()]
        share_peak = t.loc[t["object_share"].idxmax()]
        numbers[net.name] = {
            "first_layer": first["layer"], "first_count": int(first["object_detectors"]),
            "peak_layer": peak["layer"], "peak_count": int(peak["object_detectors"]),
            "peak_units": int(peak["units"]), "peak_share": float(peak["object_share"]),
            "per_layer": {r.layer: int(r.object_detectors) for r in t.itertuples()},
        }
        if len(t) == 1:
            text = (f"In {net.name}, the one dissected layer, {peak['layer']}, has {int(peak['object_detectors'])} "
                    f"object detectors ({pct(peak['object_share'], 1)} of its {int(peak['units'])} units)")
            parts.append(text + ".")
            continue
        text = (f"In {net.name}, object detectors appear from {first['layer']} ({int(first['object_detectors'])}) "
                f"and are most numerous in {peak['layer']} ({int(peak['object_detectors'])} of "
                f"{int(peak['units'])} units, {pct(peak['object_share'], 1)})")
        if share_peak["layer"] != peak["layer"]:
            text += f"; their share is highest in {share_peak['layer']} ({pct(share_peak['object_share'], 1)})"
        parts.append(text + ".")
    if not parts:
        return None
    answer = " ".join(parts)
    return Finding("layers", "In which layers?", answer, numbers)


def _which(nets) -> Finding | None:
    parts, numbers = [], {}
    for net in [n for n in nets if n.dissection is not None]:
        units = net.dissection.units
        counts = units.loc[units["object_detector"], "label"].value_counts()
        if not len(counts):
            continue
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        top = [f"{name} ({int(c)})" for name, c in counts.head(8).items()]
        numbers[net.name] = {str(k): int(v) for k, v in counts.items()}
        more = f" and {len(counts) - 8} more" if len(counts) > 8 else ""
        parts.append(f"{net.name}: {', '.join(top)}{more}")
    if not parts:
        return None
    answer = "Object detectors per object, all dissected layers (units): " + "; ".join(parts) + "."
    return Finding("objects", "How many units, and which objects?", answer, numbers)


def _versus(nets, table, order) -> Finding | None:
    dissected = [n for n in nets if n.dissection is not None]
    if len(dissected) < 2:
        return None
    roles = {n.name: network_role(n) for n in dissected}
    scene = next((n for n in dissected if roles[n.name] == "scene"), None)
    obj = next((n for n in dissected if roles[n.name] == "object"), None)
    if scene is None or obj is None:
        scene, obj = dissected[0], dissected[1]
        question = f"Does {scene.name} use objects more than {obj.name}?"
    else:
        question = "Does the scene network use objects more than the object network?"
    a = table[table["network"] == scene.name].set_index("layer")
    b = table[table["network"] == obj.name].set_index("layer")
    common = [layer for layer in order if layer in a.index and layer in b.index]
    if not common:
        return Finding("versus", question, f"{scene.name} and {obj.name} share no dissected layer to compare.", {})
    more = [layer for layer in common if a.loc[layer, "object_detectors"] > b.loc[layer, "object_detectors"]]
    fewer = [layer for layer in common if a.loc[layer, "object_detectors"] < b.loc[layer, "object_detectors"]]
    total_a = int(a.loc[common, "object_detectors"].sum())
    total_b = int(b.loc[common, "object_detectors"].sum())
    units_a, units_b = int(a.loc[common, "units"].sum()), int(b.loc[common, "units"].sum())
    deepest = common[-1]
    verdict = "Yes" if total_a > total_b else ("No" if total_a < total_b else "Neither")
    per_layer = ", ".join(
        f"{layer} {int(a.loc[layer, 'object_detectors'])} vs {int(b.loc[layer, 'object_detectors'])}"
        for layer in common)
    answer = (f"{verdict}: over the {len(common)} layers both networks have, {scene.name} has {total_a} object "
              f"detectors ({pct(total_a / max(units_a, 1), 1)} of its units) and {obj.name} {total_b} "
              f"({pct(total_b / max(units_b, 1), 1)}); {scene.name} has more in {len(more)} of {len(common)} "
              f"layers and fewer in {len(fewer)}. In {deepest}: {int(a.loc[deepest, 'object_detectors'])} "
              f"({pct(a.loc[deepest, 'object_share'], 1)}) vs {int(b.loc[deepest, 'object_detectors'])} "
              f"({pct(b.loc[deepest, 'object_share'], 1)}). Per layer ({scene.name} vs {obj.name}): {per_layer}.")
    numbers = {"first": scene.name, "second": obj.name, "layers": common, "first_total": total_a,
               "second_total": total_b, "first_units": units_a, "second_units": units_b,
               "layers_more": more, "layers_fewer": fewer,
               "per_layer": {layer: [int(a.loc[layer, "object_detectors"]), int(b.loc[layer, "object_detectors"])]
                             for layer in common}}
    return Finding("versus", question, answer, numbers)


def _preference(results: ResultSet, nets) -> Finding | None:
    pref = results.preference
    if pref is None or not len(pref.fractions):
        return None
    parts, numbers = [], {}
    names = [n.name for n in nets] + [n for n in dict.fromkeys(pref.fractions["network"]) if n not in
                                      {m.name for m in nets}]
    for name in names:
        f = pref.fractions[pref.fractions["network"] == name]
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


def _minimal(nets) -> Finding | None:
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


def _receptive_fields(nets) -> Finding | None:
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


def _correlations(nets, key: str | None) -> Finding | None:
    parts, numbers = [], {}
    for net in nets:
        census = net.census
        if census is None or not len(census.correlations) or "pearson" not in census.correlations:
            continue
        c = census.correlations[census.correlations["network"] == net.name]
        layer = key if key is not None and (c["layer"] == key).any() else (c["layer"].iloc[-1] if len(c) else None)
        if layer is None:
            continue
        items, entry = [], {"layer": layer}
        for against, label in (("frequency", "object frequency"), ("informative_scenes", "informative scenes")):
            row = c[(c["layer"] == layer) & (c["against"] == against)]
            if not len(row):
                continue
            row = row.iloc[0]
            if not np.isfinite(row["pearson"]):
                continue
            entry[against] = {k: float(row[k]) for k in ("pearson", "pearson_lo", "pearson_hi", "spearman",
                                                          "spearman_lo", "spearman_hi") if k in row}
            items.append(f"{label} r = {row['pearson']:.2f} [{row.get('pearson_lo', np.nan):.2f}, "
                         f"{row.get('pearson_hi', np.nan):.2f}]")
        if items:
            numbers[net.name] = entry
            parts.append(f"{net.name} at {layer}: " + ", ".join(items))
    if not parts:
        return None
    return Finding("census", "Why these objects? (detectors per object vs frequency and informativeness)",
                   "Pearson correlation of an object's detector count with " + "; ".join(parts)
                   + " (95% bootstrap intervals; paper: 0.54 and 0.84).", numbers)


def _ablation(per_network: dict) -> Finding | None:
    if not per_network:
        return None
    parts = []
    for name, e in per_network.items():
        text = (f"in {name} ({e['layer']}), switching off the detectors of an object lowers the accuracy of its "
                f"{e['basis']} by {100 * e['targeted']:.1f} points on average, switching off as many random units "
                f"by {100 * e['random']:.1f} ({e['objects']} objects)")
        if e.get("with_diagnostic"):
            text += (f"; for {e['diagnostic_most_hurt']} of {e['with_diagnostic']} objects a diagnostic scene is "
                     f"the class hurt most")
        parts.append(text)
    answer = "; ".join(parts)
    return Finding("ablate", "Do the networks use these detectors? (ablation)", answer[0].upper() + answer[1:] + ".",
                   per_network)


def _localize(per_network: dict) -> Finding | None:
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


def _human(nets) -> Finding | None:
    parts, numbers = [], {}
    for net in [n for n in nets if n.human is not None]:
        s = net.human.summary
        n = s.get("n_units_labelled", len(net.human.units))
        entry = {k: s.get(k) for k in ("n_units_labelled", "n_annotations", "n_annotators", "mean_precision",
                                       "precision_over_75", "label_agreement_rate", "type_agreement_rate")}
        numbers[net.name] = entry
        text = f"{net.name}: {n} units labelled by {s.get('n_annotators', '?')} annotator(s)"
        if s.get("precision_over_75") is not None:
            text += f", {pct(s['precision_over_75'])} of them with precision above 75%"
        if s.get("label_agreement_rate") is not None:
            text += f", human and automatic labels agree on {pct(s['label_agreement_rate'])}"
        parts.append(text)
    if not parts:
        return None
    return Finding("human", "What do people say the units detect?",
                   "; ".join(parts) + ". (Paper: about 60% of units above 75% precision.)", numbers)


def summarise(results: ResultSet) -> list[Finding]:
    """The report's answers, in the order the seed asks its questions."""
    nets = results.networks
    table = object_detector_table(nets)
    order = layer_order(nets)
    key = key_layer(table, order)
    findings = [
        _emerge(nets, table, results), _where(nets, table), _which(nets), _versus(nets, table, order),
        _preference(results, nets), _minimal(nets), _receptive_fields(nets), _correlations(nets, key),
        _localize(localize_summary(results)), _ablation(ablate_summary(results)), _human(nets),
    ]
    return [f for f in findings if f is not None] + published_findings(results)
