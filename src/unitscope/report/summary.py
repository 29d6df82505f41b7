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

from typing import Any, Sequence

import numpy as np
import pandas as pd

from unitscope.report.experiment_findings import (
    localize_finding,
    localize_summary,
    minimal_finding,
    preference_finding,
    receptive_fields_finding,
)
from unitscope.report.finding import Finding, pct
from unitscope.results import NetworkResults, ResultSet
from unitscope.results.localize import ExperimentFiles

__all__ = [
    "PAPER_RF",
    "PAPER_CORRELATIONS",
    "network_role",
    "object_detector_table",
    "key_layer",
    "summarise",
    "ablate_summary",
    "ablation_runs",
    "ablation_targets",
]

#: The paper's Table 1 (Places-CNN, 224 px), as the SPEC recalls it: approximate.
PAPER_RF = pd.DataFrame({
    "layer": ["pool1", "pool2", "conv3", "conv4", "pool5"],
    "empirical_mean": [17.8, 37.4, 52.1, 60.0, 72.0],
    "empirical_std": [1.6, 5.9, 10.6, 13.7, 20.0],
    "theoretical": [19, 67, 99, 131, 195],
})
#: The paper's correlations of detector counts with object frequency / informative scenes.
PAPER_CORRELATIONS = {"frequency": 0.54, "informative_scenes": 0.84}


# --------------------------------------------------------------------------- roles
_ROLE_WORDS = {"scene": ("scene", "places", "sun"), "object": ("object", "imagenet")}


def network_role(net: NetworkResults) -> str | None:
    """``"scene"``, ``"object"`` or None: what the network was trained to recognise."""
    for key in ("task", "trained_on", "data", "dataset"):
        value = str(net.info.get(key, "")).lower()
        for role, words in _ROLE_WORDS.items():
            if any(w in value for w in words):
                return role
    name = net.name.lower()
    for role, words in _ROLE_WORDS.items():
        if any(w in name for w in words):
            return role
    return None


# --------------------------------------------------------------------------- tables
def object_detector_table(nets: list[NetworkResults]) -> pd.DataFrame:
    """Per network and layer: ``units, detectors, object_detectors, object_share, unique_concepts, unique_objects``.

    ``object_share`` is object detectors / units of the layer.
    """
    rows = []
    for net in nets:
        if net.dissection is None:
            continue
        units = net.dissection.units
        for layer in dict.fromkeys(units["layer"]):
            u = units[units["layer"] == layer]
            det = u[u["detector"]]
            obj = u[u["object_detector"]]
            rows.append({"network": net.name, "layer": layer, "units": len(u), "detectors": len(det),
                         "object_detectors": len(obj), "object_share": len(obj) / max(len(u), 1),
                         "unique_concepts": det["label"].nunique(), "unique_objects": obj["label"].nunique()})
    return pd.DataFrame(rows, columns=["network", "layer", "units", "detectors", "object_detectors",
                                       "object_share", "unique_concepts", "unique_objects"])


def layer_order(nets: list[NetworkResults]) -> list[str]:
    """Dissected layers in depth order, as the networks list them (union, first network first)."""
    order: list[str] = []
    for net in nets:
        if net.dissection is not None:
            order += [layer for layer in net.dissection.layer_names if layer not in order]
    return order


def key_layer(table: pd.DataFrame, order: list[str]) -> str | None:
    """The layer with the most object detectors over all networks (ties: the deepest)."""
    if not len(table):
        return None
    totals = table.groupby("layer")["object_detectors"].sum()
    best = None
    for layer in order:
        if layer in totals.index and (best is None or totals[layer] >= totals[best]):
            best = layer
    return best


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
    for net in nets:
        if net.dissection is None:
            continue
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


def _human(nets) -> Finding | None:
    parts, numbers = [], {}
    for net in nets:
        if net.human is None:
            continue
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


# --------------------------------------------------------------------------- localisation, ablation
def first_table(files: ExperimentFiles, names: Sequence[str]) -> pd.DataFrame | None:
    for name in names:
        if name in files.tables and files.tables[name] is not None:
            return files.tables[name]
    return None


def ablation_runs(files: ExperimentFiles) -> list[dict[str, Any]]:
    """The ablation results of a network's ``ablate`` folder: one per folder holding ``classes.csv``.

    Each is ``{"folder", "layer", "classes", "summary"}`` (``summary`` may be
    None); ``classes`` has per (object, class) ``drop``, ``random_drop_mean``,
    ``random_drop_std``, ``effect`` and ``diagnostic``.
    """
    runs = []
    for name, frame in sorted(files.tables.items()):
        if not (name == "classes.csv" or name.endswith("/classes.csv")) or frame is None:
            continue
        if not {"object", "class_name", "drop", "random_drop_mean"} <= set(frame.columns):
            continue
        folder = name[: -len("classes.csv")].rstrip("/")
        summary = files.tables.get(f"{folder}/summary.csv" if folder else "summary.csv")
        layer = str(frame["layer"].iloc[0]) if "layer" in frame and len(frame) else folder
        runs.append({"folder": folder, "layer": layer, "classes": frame, "summary": summary})
    return runs


def ablation_targets(classes: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per object, the classes its ablation is judged on: its diagnostic scenes, else its most hurt class.

    Returns the rows and which rule was used (``"diagnostic scenes"`` or ``"most hurt class"``).
    """
    diagnostic = classes["diagnostic"].astype(str).str.lower().isin({"true", "1"}) if "diagnostic" in classes \
        else pd.Series(False, index=classes.index)
    if diagnostic.any():
        return classes[diagnostic], "diagnostic scenes"
    rows = classes.assign(_drop=pd.to_numeric(classes["drop"], errors="coerce"))
    best = rows.sort_values(["object", "_drop"], ascending=[True, False], kind="stable").groupby("object").head(1)
    return best.drop(columns="_drop"), "most hurt class"


def ablate_summary(results: ResultSet) -> dict[str, dict]:
    """Per network and ablated layer: mean accuracy drop of the target classes, detectors off vs random units off.

    The target classes of an object are its diagnostic scenes when the
    ablation knew them, else the class its ablation hurt most (see
    :func:`ablation_targets`).
    """
    out = {}
    for net in results.networks:
        if net.ablate is None:
            continue
        for run in ablation_runs(net.ablate):
            rows, basis = ablation_targets(run["classes"])
            if not len(rows):
                continue
            drop = pd.to_numeric(rows["drop"], errors="coerce")
            random = pd.to_numeric(rows["random_drop_mean"], errors="coerce")
            entry = {"layer": run["layer"], "objects": int(rows["object"].nunique()), "basis": basis,
                     "targeted": float(drop.mean()), "random": float(random.mean()),
                     "effect": float((drop - random).mean())}
            summary = run["summary"]
            if summary is not None and "diagnostic_most_hurt" in summary:
                flags = summary["diagnostic_most_hurt"].astype(str).str.lower()
                known = flags.isin({"true", "false"})
                if known.any():
                    entry["diagnostic_most_hurt"] = int((flags == "true").sum())
                    entry["with_diagnostic"] = int(known.sum())
            out[f"{net.name}/{run['layer']}" if len(ablation_runs(net.ablate)) > 1 else net.name] = entry
    return out


def summarise(results: ResultSet) -> list[Finding]:
    """The report's answers, in the order the seed asks its questions."""
    nets = results.networks
    table = object_detector_table(nets)
    order = layer_order(nets)
    key = key_layer(table, order)
    findings = [
        _emerge(nets, table, results), _where(nets, table), _which(nets), _versus(nets, table, order),
        preference_finding(results, nets), minimal_finding(nets), receptive_fields_finding(nets),
        _correlations(nets, key), localize_finding(localize_summary(results)), _ablation(ablate_summary(results)), _human(nets),
    ]
    return [f for f in findings if f is not None]
