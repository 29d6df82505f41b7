"""From loaded results to what each section of the page shows (plain dicts for the templates).

The sections of the study's questions: the run, layer preference, minimal
images, receptive fields, unit semantics and the object census (localisation,
ablation and human labels are :mod:`unitscope.report.detector_sections`).
Every ``*_section`` function takes the :class:`~unitscope.results.ResultSet`
and a :class:`Assets` (which turns a file into a link relative to the page
and draws plots into ``report/plots``) and returns a dict with at least
``available`` (bool) and ``hint`` (what to run when it is not).  Tables are
``{"columns": [...], "rows": [[...]]}`` with raw values; the templates format
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope.report import plots
from unitscope.report.pictures import colour_map, unit_strip
from unitscope.report.assets import HINTS, Assets, cell, table, unit_page_path
from unitscope.results import NetworkResults, ResultSet
from unitscope.results.minimal import MinimalRun
from unitscope.results.segmentations import UnitStrip
from unitscope.results.layout import MINIMAL, PREFERENCE, RF, safe_name
from unitscope.report.measures import PAPER_CORRELATIONS, PAPER_RF, key_layer, layer_order, object_detector_table

__all__ = ["run_section", "preference_section", "minimal_section", "rf_section", "semantics_section",
           "census_section", "network_names"]


def network_names(results: ResultSet) -> list[str]:
    return [n.name for n in results.networks]


# --------------------------------------------------------------------------- run
def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = []
        for k, v in value.items():
            items += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return items
    if isinstance(value, (list, tuple)) and len(value) > 12:
        return [(prefix, f"[{len(value)} items] " + ", ".join(map(str, value[:12])) + ", …")]
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(map(str, value)))]
    return [(prefix, value)]


def run_section(results: ResultSet) -> dict[str, Any]:
    """Configuration, versions, timings per stage and the networks' metadata from ``run.json``."""
    run = results.run
    networks_rows = []
    infos = run.networks if run is not None else {}
    for name, info in infos.items():
        info = info if isinstance(info, dict) else {"value": info}
        networks_rows.append({"network": name, **{k: v for k, v in info.items() if not isinstance(v, (dict, list))}})
    networks = table(pd.DataFrame(networks_rows)) if networks_rows else None
    if run is None:
        return {"available": False, "hint": HINTS["run"], "networks": networks}
    timings = run.timings
    timing_rows = [[stage, cell(seconds)] for stage, seconds in timings.items()
                   if isinstance(seconds, (int, float))]
    total = sum(v for _, v in timing_rows if isinstance(v, (int, float)))
    world = run.world
    return {
        "available": True, "hint": "",
        "config": [[k, v] for k, v in _flatten(run.config)],
        "versions": [[k, v] for k, v in _flatten(run.versions)],
        "timings": timing_rows, "timings_total": total,
        "networks": networks,
        "world": [[k, v] for k, v in _flatten(world)] if isinstance(world, dict) else [],
        "extra": [[k, v] for k, v in _flatten({k: v for k, v in run.to_dict().items()
                                               if k not in {"config", "versions", "timings", "networks", "world"}})],
    }


# --------------------------------------------------------------------------- preference
def preference_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    pref = results.preference
    fractions = pref.fractions if pref is not None else None
    if fractions is None or not len(fractions):
        return {"available": False, "hint": HINTS["preference"]}
    names = [n for n in network_names(results) if (fractions["network"] == n).any()]
    names += [n for n in dict.fromkeys(fractions["network"]) if n not in names]
    plot = assets.plot("preference", lambda p: plots.plot_preference(
        fractions, p, networks=names, sources=pref.sources, top=pref.top))
    wide = fractions.pivot_table(index="layer", columns=["network", "source"], values="fraction",
                                 aggfunc="first", sort=False)
    layers = list(dict.fromkeys(fractions["layer"]))
    columns = [(n, s) for n in names for s in pref.sources if (n, s) in wide.columns]
    rows = [[layer] + [cell(wide.loc[layer, c]) if layer in wide.index else None for c in columns]
            for layer in layers]
    source = dict(zip(pref.result.images["id"].astype(str), pref.result.images["source"].astype(str)))
    thumbs = []
    for name in names:
        by_layer = []
        for (network, layer), items in pref.result.thumbnails.items():
            if network != name:
                continue
            by_layer.append({"layer": layer, "images": [
                {"url": assets.url(assets.picture(
                    f"{PREFERENCE}/top/{safe_name(name)}/{safe_name(layer)}/{rank:03d}_{safe_name(image_id)}.png",
                    lambda image=image: image)),
                 "id": image_id, "source": source.get(image_id, ""), "rank": int(rank)}
                for rank, image_id, image in sorted(items, key=lambda item: item[0])]})
        if by_layer:
            thumbs.append({"network": name, "layers": by_layer})
    return {"available": True, "hint": "", "plot": plot, "top": pref.top, "sources": pref.sources,
            "table": {"columns": ["layer"] + [f"{n}: {s}" for n, s in columns], "rows": rows,
                      "percent_from": 1},
            "thumbnails": thumbs}


# --------------------------------------------------------------------------- minimal images
def minimal_section(results: ResultSet, assets: Assets, *, examples: int = 8) -> dict[str, Any]:
    runs = []
    for net in results.networks:
        for run in net.minimal:
            images = run.images
            stats = {"images": len(images)}
            for column in ("kept_fraction", "n_segments", "n_kept"):
                if column in images.columns and len(images):
                    stats[f"mean_{column}"] = float(pd.to_numeric(images[column], errors="coerce").mean())
            scenes = None
            if run.objects is not None and len(run.objects):
                scenes = []
                for scene, rows in run.objects.groupby("scene", sort=True):
                    rows = rows.sort_values("share", ascending=False, kind="stable")
                    scenes.append({"scene": scene, "n_images": int(rows["n_images"].iloc[0]),
                                   "objects": [[r.object, cell(r.share), int(r.n_kept), int(r.n_present)]
                                               for r in rows.head(6).itertuples()]})
            diagnostic = None
            if run.diagnostic is not None and len(run.diagnostic):
                diagnostic = table(run.diagnostic, ["scene", "object", "n_images", "n_present", "n_kept", "share",
                                                    "share_given_present"])
            by_scene = None
            if len(images) and "label_name" in images.columns and "kept_fraction" in images.columns:
                g = images.groupby("label_name", sort=True)
                by_scene = table(pd.DataFrame({"scene": list(g.groups), "images": g.size().to_numpy(),
                                               "mean kept fraction": g["kept_fraction"].mean().to_numpy(),
                                               "mean kept segments": (g["n_kept"].mean().to_numpy()
                                                                      if "n_kept" in images else np.nan)}))
            runs.append({
                "network": net.name, "name": run.segmentation or run.name or "minimal images",
                "options": [[k, v] for k, v in _flatten(run.result.options)], "counts": run.result.counts,
                "stats": stats, "examples": _minimal_examples(run, assets, examples),
                "scenes": scenes, "diagnostic": diagnostic, "by_scene": by_scene,
            })
    if not runs:
        return {"available": False, "hint": HINTS["minimal"]}
    return {"available": True, "hint": "", "runs": runs}


def _minimal_examples(run: MinimalRun, assets: Assets, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` example pairs of a run, drawn into the report (the pixels the search saw)."""
    records = {r.id: r for r in run.result.records}
    folder = "/".join(p for p in (safe_name(run.network), MINIMAL, safe_name(run.name) if run.name else "") if p)
    out = []
    for n, (image_id, (original, minimal)) in enumerate(list(run.result.examples.items())[:limit]):
        record = records.get(image_id)
        stem = f"{folder}/examples/{n:03d}_{safe_name(image_id)}"
        out.append({"id": image_id, "scene": record.label_name if record else "",
                    "kept_fraction": cell(record.kept_fraction) if record else None,
                    "objects_kept": ";".join(record.objects_kept) if record else "",
                    "original": assets.url(assets.picture(f"{stem}_original.png", lambda: original)),
                    "minimal": assets.url(assets.picture(f"{stem}_minimal.png", lambda: minimal))})
    return out


# --------------------------------------------------------------------------- receptive fields
def rf_section(results: ResultSet, assets: Assets, *, maps_per_layer: int = 8,
               tiles_per_layer: int = 4) -> dict[str, Any]:
    nets = [n for n in results.networks if n.rf is not None]
    tiles_nets = [n for n in results.networks if n.unit_tiles]
    paper = table(PAPER_RF, rename={"empirical_mean": "empirical mean (px)", "empirical_std": "std (px)",
                                    "theoretical": "theoretical (px)"})
    if not nets and not tiles_nets:
        return {"available": False, "hint": HINTS["rf"], "paper": paper}
    rows = []
    for net in nets:
        for r in net.rf.layers.itertuples():
            mean, theo = getattr(r, "rf_mean", np.nan), getattr(r, "theoretical_size", np.nan)
            rows.append([net.name, r.layer, cell(getattr(r, "n_measured", getattr(r, "n_units", None))),
                         cell(mean), cell(getattr(r, "rf_std", np.nan)), cell(getattr(r, "rf_median", np.nan)),
                         cell(theo), cell(mean / theo if theo and np.isfinite(theo) and theo > 0 else np.nan)])
    plot = assets.plot("receptive_fields", lambda p: plots.plot_receptive_fields(
        {n.name: n.rf.layers for n in nets}, PAPER_RF, p))
    maps = []
    for net in nets:
        sizes = {}
        if len(net.rf.units) and "rf_size" in net.rf.units:
            sizes = {(str(r.layer), int(r.unit)): cell(r.rf_size) for r in net.rf.units.itertuples()}
        layers = []
        maps_of = net.rf.maps
        for layer in net.rf.layers["layer"]:
            items = sorted(((u, m) for (lay, u), m in maps_of.items() if lay == layer),
                           key=lambda item: item[0])[:maps_per_layer]
            if items:
                layers.append({"layer": layer, "maps": [
                    {"unit": u, "url": assets.url(rf_map_picture(assets, net.name, layer, u, m)),
                     "size": sizes.get((layer, u)),
                     "page": unit_page_path(net.name, layer, u) if _has_unit(net, layer, u) else None}
                    for u, m in items]})
        if layers:
            maps.append({"network": net.name, "layers": layers})
    tiles = []
    for net in tiles_nets:
        by_layer: dict[str, list] = {}
        for (layer, unit), strip in sorted(net.unit_tiles.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if len(by_layer.setdefault(layer, [])) < tiles_per_layer:
                by_layer[layer].append({"unit": unit, "url": assets.url(unit_strip_picture(assets, strip)),
                                        "page": unit_page_path(net.name, layer, unit)
                                        if _has_unit(net, layer, unit) else None})
        order = layer_order([net]) or list(by_layer)
        tiles.append({"network": net.name, "layers": [{"layer": layer, "tiles": by_layer[layer]} for layer in
                                                      sorted(by_layer, key=lambda x: order.index(x)
                                                             if x in order else len(order))]})
    return {"available": True, "hint": "", "plot": plot, "paper": paper,
            "table": {"columns": ["network", "layer", "units measured", "empirical mean (px)", "std (px)",
                                  "median (px)", "theoretical (px)", "empirical / theoretical"], "rows": rows},
            "maps": maps, "tiles": tiles}


def rf_map_picture(assets: Assets, network: str, layer: str, unit: int, averaged: np.ndarray) -> Path:
    """A unit's averaged occlusion map, colour-mapped, in the report (one file for every page showing it)."""
    rel = f"{safe_name(network)}/{RF}/{safe_name(layer)}/maps/unit_{int(unit):04d}.png"
    return assets.picture(rel, lambda: colour_map(averaged))


def unit_strip_picture(assets: Assets, strip: UnitStrip) -> Path:
    """A unit's strip of masked top images (experiment 2b), in the report at its arrays' path."""
    return assets.picture(strip.picture, lambda: unit_strip(strip.result.strip(strip.unit), dim=strip.result.dim))


def _has_unit(net: NetworkResults, layer: str, unit: int) -> bool:
    if net.dissection is None:
        return False
    units = net.dissection.units
    return bool(((units["layer"] == layer) & (units["unit"] == unit)).any())


# --------------------------------------------------------------------------- unit semantics
def semantics_section(results: ResultSet, assets: Assets, *, examples_per_layer: int = 3,
                      images_per_unit: int = 4) -> dict[str, Any]:
    nets = [n for n in results.networks if n.dissection is not None]
    if not nets:
        return {"available": False, "hint": HINTS["semantics"]}
    names = [n.name for n in nets]
    order = layer_order(nets)
    counts = object_detector_table(nets)
    type_plot = assets.plot("unit_types", lambda p: plots.plot_type_shares(
        {n.name: n.dissection.layers for n in nets}, p))
    count_plot = assets.plot("detectors", lambda p: plots.plot_detector_counts(counts, p, networks=names,
                                                                               layers=order))
    layer_rows = []
    for net in nets:
        lay = net.dissection.layers.set_index("layer")
        for r in counts[counts["network"] == net.name].itertuples():
            row = [net.name, r.layer, r.units, r.detectors, r.object_detectors, r.object_share,
                   r.unique_concepts, r.unique_objects]
            row += [cell(lay.loc[r.layer, c]) if r.layer in lay.index and c in lay.columns else None
                    for c in ("mean_iou", "mean_precision")]
            row += [cell(lay.loc[r.layer, f"share_{t}"]) if r.layer in lay.index and f"share_{t}" in lay.columns
                    else None for t in plots.TYPES]
            layer_rows.append(row)
    units = []
    human = {}
    for net in nets:
        if net.human is not None and len(net.human.units):
            for r in net.human.units.itertuples():
                human[(net.name, str(r.layer), int(r.unit))] = r.label
    for net in nets:
        for r in net.dissection.units.itertuples():
            units.append({
                "network": net.name, "layer": r.layer, "depth": order.index(r.layer) if r.layer in order else 0,
                "unit": int(r.unit), "label": r.label,
                "category": r.category, "type": r.type, "iou": cell(r.iou), "precision": cell(r.precision),
                "detector": bool(r.detector), "human": human.get((net.name, r.layer, int(r.unit)), ""),
                "page": unit_page_path(net.name, r.layer, int(r.unit)),
            })
    examples = []
    for net in nets:
        by_layer = []
        for layer in net.dissection.layer_names:
            u = net.dissection.units[(net.dissection.units["layer"] == layer) & net.dissection.units["detector"]]
            u = u.sort_values(["iou", "unit"], ascending=[False, True], kind="stable").head(examples_per_layer)
            items = []
            for r in u.itertuples():
                images = net.segmentations.get((layer, int(r.unit)), [])[:images_per_unit]
                if images:
                    items.append({"unit": int(r.unit), "label": r.label, "type": r.type, "iou": cell(r.iou),
                                  "page": unit_page_path(net.name, layer, int(r.unit)),
                                  "images": [assets.url(im["path"]) for im in images]})
            if items:
                by_layer.append({"layer": layer, "units": items})
        if by_layer:
            examples.append({"network": net.name, "layers": by_layer})
    return {
        "available": True, "hint": "", "type_plot": type_plot, "count_plot": count_plot, "examples": examples,
        "layers": {"columns": ["network", "layer", "units", "detectors", "object detectors", "object share",
                               "unique concepts", "unique objects", "mean IoU", "mean precision"]
                   + [f"{plots.TYPE_NAMES[t]}" for t in plots.TYPES], "rows": layer_rows},
        "units": units, "networks": names, "has_human": bool(human),
        "thresholds": {n.name: n.dissection.iou_threshold for n in nets},
        "notes": [{"network": n.name, "rule": n.dissection.config.get("threshold_rule", ""),
                   "warnings": n.dissection.warnings} for n in nets
                  if n.dissection.warnings or n.dissection.config.get("threshold_rule")],
    }


# --------------------------------------------------------------------------- census
def census_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    nets = [n for n in results.networks if n.census is not None]
    if not nets:
        return {"available": False, "hint": HINTS["census"]}
    names = [n.name for n in nets]
    order = layer_order(results.networks) or list(dict.fromkeys(
        pd.concat([n.census.objects["layer"] for n in nets])))
    counts = object_detector_table(results.networks)
    layer = key_layer(counts, order) if len(counts) else None
    objects = pd.concat([n.census.objects for n in nets], ignore_index=True)
    correlations = pd.concat([n.census.correlations for n in nets], ignore_index=True)
    if layer is None or not (objects["layer"] == layer).any():
        per_layer = objects[objects["network"].isin(names)].groupby("layer", sort=False)["detectors"].sum()
        layer = per_layer.idxmax() if len(per_layer) else None
    objects_plot = assets.plot("census_objects", lambda p: plots.plot_census_objects(
        objects, layer, p, networks=names)) if layer else None
    corr_plot = assets.plot("census_correlations", lambda p: plots.plot_census_correlations(
        correlations, p, networks=names, layers=order, paper=PAPER_CORRELATIONS))
    per_net = []
    for net in nets:
        c = net.census
        scatter = assets.plot(f"census_scatter_{net.name}", lambda p, c=c, n=net.name: plots.plot_census_scatter(
            c.objects, c.correlations, n, layer, p)) if layer else None
        null_name = net.null or f"{net.name}-random"
        null_plot = assets.plot(f"census_null_{net.name}", lambda p, c=c, n=net.name: plots.plot_census_null(
            c.layers, n, null_name, p))
        has_null = bool(len(c.layers)) and "network" in c.layers and (c.layers["network"] == null_name).any()
        sweep_plot = assets.plot(f"census_sweep_{net.name}", lambda p, c=c, n=net.name: plots.plot_census_sweep(
            c.sweep, p, networks=[n]))
        corr = c.correlations
        per_net.append({
            "network": net.name, "null": null_name if has_null else None, "distinct": _distinct_objects(c, net.name, layer),
            "scatter": scatter, "null_plot": null_plot, "sweep_plot": sweep_plot,
            "layers": table(c.layers, ["network", "layer", "iou_threshold", "units", "detectors",
                                       "object_detectors", "unique_objects", "unique_concepts"]),
            "correlations": table(corr, ["network", "layer", "against", "n", "pearson", "pearson_lo", "pearson_hi",
                                         "spearman", "spearman_lo", "spearman_hi"],
                                  rename={"pearson_lo": "pearson 2.5%", "pearson_hi": "pearson 97.5%",
                                          "spearman_lo": "spearman 2.5%", "spearman_hi": "spearman 97.5%"}),
            "informative": _informative(c.informative),
        })
    top_objects = None
    if layer:
        f = objects[(objects["layer"] == layer) & objects["network"].isin(names)]
        if len(f):
            pivot = f.pivot_table(index="object", columns="network", values="detectors", aggfunc="sum",
                                  fill_value=0)
            pivot = pivot[[n for n in names if n in pivot.columns]]
            extra = f.drop_duplicates("object").set_index("object")
            pivot = pivot[pivot.sum(axis=1) > 0]
            pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=False, kind="stable").index]
            rows = [[obj] + [int(v) for v in pivot.loc[obj]] +
                    [cell(extra.loc[obj, "frequency"]) if "frequency" in extra else None,
                     cell(extra.loc[obj, "informative_scenes"]) if "informative_scenes" in extra else None]
                    for obj in pivot.index]
            top_objects = {"columns": ["object"] + list(pivot.columns) + ["frequency (images)",
                                                                          "informative scenes"], "rows": rows}
    return {"available": True, "hint": "", "layer": layer, "objects_plot": objects_plot,
            "correlation_plot": corr_plot, "networks": per_net, "objects": top_objects,
            "paper": PAPER_CORRELATIONS}


def _distinct_objects(census, network: str, layer: str | None) -> dict[str, Any]:
    """Experiment 4's first number: how many object classes have a detector (any layer; the key layer)."""
    own = census.objects[census.objects["network"] == network] if "network" in census.objects else census.objects
    found = own[own["detectors"] > 0]
    return {"objects": int(own["object"].nunique()), "any_layer": int(found["object"].nunique()),
            "at_layer": int(found.loc[found["layer"] == layer, "object"].nunique()) if layer else None}


def _informative(frame: pd.DataFrame) -> dict | None:
    if frame is None or not len(frame) or "rank" not in frame:
        return None
    best = frame[frame["rank"] == 1]
    return table(best, ["scene", "object", "p_object_given_scene", "p_object", "score"],
                 rename={"p_object_given_scene": "P(object | scene)", "p_object": "P(object)"})
