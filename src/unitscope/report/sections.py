"""From loaded results to what each section of the page shows (plain dicts for the templates).

Every ``*_section`` function takes the :class:`~unitscope.results.ResultSet`
and a :class:`Assets` (which turns a file into a link relative to the page
and draws plots into ``report/plots``) and returns a dict with at least
``available`` (bool) and ``hint`` (what to run when it is not).  Tables are
``{"columns": [...], "rows": [[...]]}`` with raw values; the templates format
them.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from unitscope.report import plots
from unitscope.results import NetworkResults, ResultSet
from unitscope.results.layout import safe_name
from unitscope.report.summary import (
    PAPER_CORRELATIONS,
    ablation_runs,
    ablation_targets,
    first_table,
    PAPER_RF,
    Finding,
    key_layer,
    layer_order,
    object_detector_table,
)

__all__ = [
    "Assets",
    "table",
    "HINTS",
    "run_section",
    "preference_section",
    "minimal_section",
    "rf_section",
    "semantics_section",
    "census_section",
    "localize_section",
    "ablate_section",
    "human_section",
    "unit_page_path",
]

#: What to run when a section has no results (``RESULTS`` stands for the results directory).
HINTS = {
    "run": "No run.json: the configuration, versions and timings are written by `unitscope demo`.",
    "preference": "No layer-preference results: run `unitscope preference ... --out RESULTS`.",
    "minimal": "No minimal-image results: run `unitscope minimal ... --out RESULTS`.",
    "rf": "No receptive-field results: run `unitscope rf ... --out RESULTS`.",
    "semantics": "No dissection results: run `unitscope dissect --model MODEL --data POOL --out RESULTS`.",
    "census": "No object census: `unitscope dissect ... --out RESULTS` writes it (add `--null` for the "
              "random-weights null).",
    "localize": "No localisation results: run `unitscope localize ... --out RESULTS`.",
    "ablate": "No ablation results: run `unitscope ablate ... --out RESULTS`.",
    "human": "No human labels: collect them with `unitscope label serve RESULTS`, then write them with "
             "`unitscope label results --results RESULTS`.",
}


# --------------------------------------------------------------------------- assets
class Assets:
    """Links to result files from the report's pages, and where plots go.

    Parameters
    ----------
    out : Path
        The report folder (holds ``index.html``).
    root : Path
        The results directory.
    copy : bool
        Copy every linked file into ``out/files`` (a report folder that can
        be moved on its own) instead of linking to it in place.
    """

    def __init__(self, out: Path, root: Path, *, copy: bool = False) -> None:
        self.out = Path(os.path.abspath(out))
        self.root = Path(os.path.abspath(root))
        self.copy = copy
        self.plots_dir = self.out / "plots"
        self.plotted: list[Path] = []
        self._relative_dirs: dict[tuple[str, str], str] = {}

    def _target(self, path: Path) -> str:
        path = os.path.abspath(path)
        if not self.copy:
            return path
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            rel = Path("external") / safe_name(os.path.dirname(path)) / os.path.basename(path)
        target = self.out / "files" / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Contents only: the copy gets the umask's permissions, not the result file's.
            shutil.copyfile(path, target)
        return str(target)

    def url(self, path: Path, page_dir: Path | None = None) -> str:
        """A relative, percent-encoded link from ``page_dir`` (default: the report folder) to ``path``."""
        target = self._target(path)
        folder, name = os.path.split(target)
        start = os.path.abspath(page_dir) if page_dir is not None else str(self.out)
        key = (folder, start)
        if key not in self._relative_dirs:  # thousands of links share a few folders: relpath once per pair
            self._relative_dirs[key] = Path(os.path.relpath(folder, start)).as_posix()
        rel = self._relative_dirs[key]
        return quote(name if rel == "." else f"{rel}/{name}")

    def plot(self, name: str, draw: Callable[[Path], Path | None]) -> str | None:
        """Draw a plot into ``plots/<name>.png``; its link from the report folder, or None if nothing was drawn."""
        path = draw(self.plots_dir / f"{safe_name(name)}.png")
        if path is None:
            return None
        self.plotted.append(path)
        return quote(Path(os.path.relpath(path, self.out)).as_posix())


#: Columns shown as percentages wherever they appear.
PERCENT_COLUMNS = re.compile(r"^(share(_.*)?|.*_share|fraction|kept_fraction|precision_over_75|.*_rate|pointing|"
                             r".*_pointing|.*accuracy|.*_acc|label_agreement_rate|type_agreement_rate)$")


def table(frame: pd.DataFrame | None, columns: Sequence[str] | None = None, *,
          rename: dict[str, str] | None = None, limit: int | None = None) -> dict[str, Any]:
    """A frame as ``{"columns", "rows", "total", "percent"}`` (only ``columns`` that exist; first ``limit`` rows).

    ``percent`` flags the columns whose values are shares (shown as percentages).
    """
    if frame is None or not len(frame.columns):
        return {"columns": [], "rows": [], "total": 0, "percent": []}
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    rename = rename or {}
    shown = frame[columns] if limit is None else frame[columns].head(limit)
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    return {"columns": [rename.get(c, c.replace("_", " ")) for c in columns], "rows": rows, "total": len(frame),
            "percent": [bool(PERCENT_COLUMNS.match(str(c))) for c in columns]}


def _cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def unit_page_path(network: str, layer: str, unit: int) -> str:
    """Path of a unit's page relative to the report folder."""
    return f"units/{safe_name(network)}/{safe_name(layer)}/{int(unit)}.html"


def _names(results: ResultSet) -> list[str]:
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
    infos = (run or {}).get("networks") or {}
    for name, info in infos.items():
        info = info if isinstance(info, dict) else {"value": info}
        networks_rows.append({"network": name, **{k: v for k, v in info.items() if not isinstance(v, (dict, list))}})
    networks = table(pd.DataFrame(networks_rows)) if networks_rows else None
    if run is None:
        return {"available": False, "hint": HINTS["run"], "networks": networks}
    timings = run.get("timings") or {}
    timing_rows = [[stage, _cell(seconds)] for stage, seconds in timings.items()
                   if isinstance(seconds, (int, float))]
    total = sum(v for _, v in timing_rows if isinstance(v, (int, float)))
    world = run.get("world")
    return {
        "available": True, "hint": "",
        "config": [[k, v] for k, v in _flatten(run.get("config") or {})],
        "versions": [[k, v] for k, v in _flatten(run.get("versions") or {})],
        "timings": timing_rows, "timings_total": total,
        "networks": networks,
        "world": [[k, v] for k, v in _flatten(world)] if isinstance(world, dict) else [],
        "extra": [[k, v] for k, v in _flatten({k: v for k, v in run.items()
                                               if k not in {"config", "versions", "timings", "networks", "world"}})],
    }


# --------------------------------------------------------------------------- preference
def preference_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    pref = results.preference
    if pref is None or not len(pref.fractions):
        return {"available": False, "hint": HINTS["preference"]}
    names = [n for n in _names(results) if (pref.fractions["network"] == n).any()]
    names += [n for n in dict.fromkeys(pref.fractions["network"]) if n not in names]
    plot = assets.plot("preference", lambda p: plots.plot_preference(
        pref.fractions, p, networks=names, sources=pref.sources, top=pref.top))
    wide = pref.fractions.pivot_table(index="layer", columns=["network", "source"], values="fraction",
                                      aggfunc="first", sort=False)
    layers = list(dict.fromkeys(pref.fractions["layer"]))
    columns = [(n, s) for n in names for s in pref.sources if (n, s) in wide.columns]
    rows = [[layer] + [_cell(wide.loc[layer, c]) if layer in wide.index else None for c in columns]
            for layer in layers]
    thumbs = []
    for name in names:
        t = pref.thumbnails[pref.thumbnails["network"] == name]
        by_layer = []
        for layer in dict.fromkeys(t["layer"]):
            items = t[t["layer"] == layer].sort_values("rank")
            by_layer.append({"layer": layer, "images": [
                {"url": assets.url(r.path), "id": r.id, "source": r.source, "rank": int(r.rank)}
                for r in items.itertuples()]})
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
                                   "objects": [[r.object, _cell(r.share), int(r.n_kept), int(r.n_present)]
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
                "options": [[k, v] for k, v in _flatten(run.options)], "counts": run.counts, "stats": stats,
                "examples": [{"id": e["id"], "scene": e["label_name"], "kept_fraction": _cell(e["kept_fraction"]),
                              "objects_kept": e["objects_kept"], "original": assets.url(e["original"]),
                              "minimal": assets.url(e["minimal"])} for e in run.examples[:examples]],
                "scenes": scenes, "diagnostic": diagnostic, "by_scene": by_scene,
            })
    if not runs:
        return {"available": False, "hint": HINTS["minimal"]}
    return {"available": True, "hint": "", "runs": runs}


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
            rows.append([net.name, r.layer, _cell(getattr(r, "n_measured", getattr(r, "n_units", None))),
                         _cell(mean), _cell(getattr(r, "rf_std", np.nan)), _cell(getattr(r, "rf_median", np.nan)),
                         _cell(theo), _cell(mean / theo if theo and np.isfinite(theo) and theo > 0 else np.nan)])
    plot = assets.plot("receptive_fields", lambda p: plots.plot_receptive_fields(
        {n.name: n.rf.layers for n in nets}, PAPER_RF, p))
    maps = []
    for net in nets:
        sizes = {}
        if len(net.rf.units) and "rf_size" in net.rf.units:
            sizes = {(str(r.layer), int(r.unit)): _cell(r.rf_size) for r in net.rf.units.itertuples()}
        layers = []
        for layer in net.rf.layers["layer"]:
            items = sorted((u, p) for (lay, u), p in net.rf.maps.items() if lay == layer)[:maps_per_layer]
            if items:
                layers.append({"layer": layer, "maps": [
                    {"unit": u, "url": assets.url(p), "size": sizes.get((layer, u)),
                     "page": unit_page_path(net.name, layer, u) if _has_unit(net, layer, u) else None}
                    for u, p in items]})
        if layers:
            maps.append({"network": net.name, "layers": layers})
    tiles = []
    for net in tiles_nets:
        by_layer: dict[str, list] = {}
        for (layer, unit), path in sorted(net.unit_tiles.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if len(by_layer.setdefault(layer, [])) < tiles_per_layer:
                by_layer[layer].append({"unit": unit, "url": assets.url(path),
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
            row += [_cell(lay.loc[r.layer, c]) if r.layer in lay.index and c in lay.columns else None
                    for c in ("mean_iou", "mean_precision")]
            row += [_cell(lay.loc[r.layer, f"share_{t}"]) if r.layer in lay.index and f"share_{t}" in lay.columns
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
                "category": r.category, "type": r.type, "iou": _cell(r.iou), "precision": _cell(r.precision),
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
                    items.append({"unit": int(r.unit), "label": r.label, "type": r.type, "iou": _cell(r.iou),
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
            "network": net.name, "null": null_name if has_null else None,
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
                    [_cell(extra.loc[obj, "frequency"]) if "frequency" in extra else None,
                     _cell(extra.loc[obj, "informative_scenes"]) if "informative_scenes" in extra else None]
                    for obj in pivot.index]
            top_objects = {"columns": ["object"] + list(pivot.columns) + ["frequency (images)",
                                                                          "informative scenes"], "rows": rows}
    return {"available": True, "hint": "", "layer": layer, "objects_plot": objects_plot,
            "correlation_plot": corr_plot, "networks": per_net, "objects": top_objects,
            "paper": PAPER_CORRELATIONS}


def _informative(frame: pd.DataFrame) -> dict | None:
    if frame is None or not len(frame) or "rank" not in frame:
        return None
    best = frame[frame["rank"] == 1]
    return table(best, ["scene", "object", "p_object_given_scene", "p_object", "score"],
                 rename={"p_object_given_scene": "P(object | scene)", "p_object": "P(object)"})


# --------------------------------------------------------------------------- localisation & ablation
def localize_section(results: ResultSet, assets: Assets, *, examples: int = 8) -> dict[str, Any]:
    nets = [n for n in results.networks if n.localize is not None]
    if not nets:
        return {"available": False, "hint": HINTS["localize"]}
    out = []
    for net in nets:
        files = net.localize
        meta = files.documents.get("localize.json") or {}
        layers = first_table(files, ["layers.csv"])
        objects = first_table(files, ["objects.csv"])
        pictures = []
        for ex in (files.documents.get("examples.json") or [])[:examples]:
            if not isinstance(ex, dict):
                continue
            found = [d for d in ex.get("detections") or [] if d.get("detected")]
            for layer, rel in (ex.get("picture") or {}).items():
                path = files_root(results, net.name, "localize") / rel
                if path.is_file():
                    pictures.append({
                        "url": assets.url(path), "id": ex.get("id", ""), "layer": layer,
                        "scene": ex.get("label_name", ""), "predicted": ex.get("predicted_name", ""),
                        "probability": _cell(ex.get("probability")),
                        "objects": ", ".join(sorted({d.get("object", "") for d in found
                                                     if d.get("layer") == layer})),
                    })
        if not pictures:
            pictures = [{"url": assets.url(p), "id": p.stem, "layer": "", "scene": "", "predicted": "",
                         "probability": None, "objects": ""} for p in files.images[:examples]]
        plot = assets.plot(f"localize_{net.name}", lambda p, o=objects, n=net.name: plots.plot_localization(o, n, p))
        others = {name: table(frame, limit=30) for name, frame in files.tables.items()
                  if name not in {"layers.csv", "objects.csv", "units.csv", "examples.csv"} and frame is not None}
        counts = {k: v for k, v in (meta.get("counts") or {}).items()
                  if not (isinstance(v, float) and not math.isfinite(v)) and v is not None}
        out.append({
            "network": net.name, "counts": counts, "plot": plot,
            "layers": table(layers, ["layer", "objects", "detectors", "images", "mask_iou", "box_iou",
                                     "box_hit_rate", "pointing", "unit_mask_iou", "unit_pointing"]),
            "objects": table(objects, ["layer", "object", "detectors", "units", "images", "mask_iou", "box_iou",
                                       "box_hit_rate", "pointing", "fire_rate_absent", "best_unit",
                                       "best_unit_mask_iou", "best_unit_pointing"], limit=60),
            "pictures": pictures, "others": others,
        })
    return {"available": True, "hint": "", "networks": out}


def files_root(results: ResultSet, network: str, name: str) -> Path:
    return results.root / network / name


def ablate_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    nets = [n for n in results.networks if n.ablate is not None]
    if not nets:
        return {"available": False, "hint": HINTS["ablate"]}
    out = []
    for net in nets:
        files = net.ablate
        runs = []
        known: set[str] = set()
        for run in ablation_runs(files):
            targets, basis = ablation_targets(run["classes"])
            suffix = f"_{safe_name(run['folder'])}" if run["folder"] else ""
            plot = assets.plot(f"ablate_{net.name}{suffix}", lambda p, t=targets, r=run, b=basis: plots.plot_ablation(
                t, p, title=f"{net.name}, {r['layer']}: accuracy drop of each object's {b}"))
            meta = files.documents.get(f"{run['folder']}/ablate.json" if run["folder"] else "ablate.json") or {}
            options = meta.get("options") or {}
            runs.append({
                "layer": run["layer"], "basis": basis, "plot": plot, "counts": meta.get("counts") or {},
                "n_random": options.get("n_random"),
                "summary": table(run["summary"], ["object", "detectors", "most_hurt", "most_hurt_drop",
                                                  "most_hurt_effect", "diagnostic_scenes", "diagnostic_rank",
                                                  "drop", "random_drop_mean"],
                                 rename={"drop": "overall drop", "random_drop_mean": "overall random drop"}),
                "targets": table(targets, ["object", "class_name", "images", "baseline_acc", "ablated_acc", "drop",
                                           "random_drop_mean", "random_drop_std", "effect"],
                                 rename={"class_name": "scene class"}, limit=60),
            })
            prefix = f"{run['folder']}/" if run["folder"] else ""
            known |= {f"{prefix}{n}" for n in ("classes.csv", "summary.csv", "conditions.csv")}
        others = {name: table(frame, limit=30) for name, frame in files.tables.items()
                  if frame is not None and name not in known}
        images = [{"url": assets.url(p), "name": p.name} for p in files.images[:12]]
        out.append({"network": net.name, "runs": runs, "others": others, "images": images})
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
