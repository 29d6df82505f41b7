"""``build_report``: render the study report from a results directory.

Data first, views second: :mod:`unitscope.results` reads the saved
files, :mod:`unitscope.report.summary` answers the seed's questions from
them (also written as ``summary.json``), :mod:`unitscope.report.sections` and
:mod:`unitscope.report.detector_sections` shape each section, draw its plots
and, from the arrays the results hold, its pictures
(:mod:`unitscope.report.pictures`), and Jinja2 templates (autoescaped) render
the pages::

    REPORT/index.html                       the report
    REPORT/units/<network>/<layer>/<n>.html  one page per unit
    REPORT/plots/*.png                      figures
    REPORT/pictures/...                     pictures drawn from saved arrays (thumbnails, minimal images,
                                            RF maps, unit strips, localisation examples), at their arrays'
                                            result paths
    REPORT/static/report.css, report.js     style and the unit table's sorting / filtering
    REPORT/summary.json                     the answers and the numbers behind them
    REPORT/.unitscope-report                the files the build wrote (see unitscope.report.folder)

Image files of the results (the segmentation tiles) are linked with
relative paths, so the report opens from disk with no server; with
``copy_images=True`` they are copied under ``REPORT/files`` and the report
folder can be moved on its own.

Every result file is checked before anything is written
(:mod:`unitscope.results.schema`), and the report is built beside ``REPORT``
and swapped in whole (:mod:`unitscope.report.folder`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from unitscope.report import detector_sections, emergence_section, objectives_section, published_sections, sections
from unitscope.report.assets import Assets, cell, unit_page_path
from unitscope.report.folder import check_report_folder, staged_folder, write_manifest
from unitscope.report.measures import key_layer, layer_order, object_detector_table
from unitscope.report.summary import summarise
from unitscope.results import NetworkResults, ResultSet, load_results

__all__ = ["build_report", "render_environment"]

_HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- formatting
def format_number(value: Any, digits: int = 3) -> str:
    """How numbers read in the tables: ints as ints, floats with ``digits`` significant digits, NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value == int(value) and abs(value) < 1e9:
            return str(int(value))
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_percent(value: Any, digits: int = 0) -> str:
    if value is None or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def format_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or not np.isfinite(value):
        return "–"
    if value >= 90:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def render_environment() -> Environment:
    """The Jinja2 environment of the report (autoescaping on, undefined names are errors)."""
    env = Environment(loader=FileSystemLoader(str(_HERE / "templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["pct"] = format_percent
    env.filters["seconds"] = format_seconds
    return env


# --------------------------------------------------------------------------- unit pages
def _unit_lookups(net: NetworkResults) -> dict[str, dict]:
    rf_sizes = {}
    if net.rf is not None and len(net.rf.units) and "rf_size" in net.rf.units:
        rf_sizes = {(str(r.layer), int(r.unit)): r.rf_size for r in net.rf.units.itertuples()}
    human = {}
    if net.human is not None and len(net.human.units):
        for r in net.human.units.to_dict(orient="records"):
            human[(str(r["layer"]), int(r["unit"]))] = r
    localize = {}
    if net.localize is not None:
        units = net.localize.unit_frame()
        for r in units[units["kind"] == "unit"].to_dict(orient="records"):
            localize.setdefault((str(r["layer"]), int(r["unit"])), []).append(r)
    maps = net.rf.maps if net.rf is not None else {}
    return {"rf": rf_sizes, "human": human, "localize": localize, "maps": maps}


def _write_unit_pages(results: ResultSet, assets: Assets, env: Environment, out: Path,
                      title: str) -> int:
    template = env.get_template("unit.html.j2")
    written = 0
    for net in results.networks:
        if net.dissection is None:
            continue
        lookups = _unit_lookups(net)
        categories = net.dissection.categories
        units = net.dissection.units
        for layer in dict.fromkeys(units["layer"]):
            rows = units[units["layer"] == layer].sort_values("unit").to_dict(orient="records")
            for i, row in enumerate(rows):
                unit = int(row["unit"])
                rel = unit_page_path(net.name, layer, unit)
                page = out / rel
                page_dir = page.parent
                page_dir.mkdir(parents=True, exist_ok=True)
                best = [{"category": c, "label": row.get(f"{c}_label", ""),
                         "iou": cell(row.get(f"{c}_iou"))} for c in categories]
                images = [{"url": assets.url(s["path"], page_dir), "id": s["id"], "rank": s["rank"]}
                          for s in net.segmentations.get((layer, unit), [])]
                strip = net.unit_tiles.get((layer, unit))
                tile = sections.unit_strip_picture(assets, strip) if strip is not None else None
                averaged = lookups["maps"].get((layer, unit))
                rf_map = sections.rf_map_picture(assets, net.name, layer, unit, averaged) \
                    if averaged is not None else None
                human = lookups["human"].get((layer, unit))
                neighbours = {
                    "previous": rows[i - 1]["unit"] if i > 0 else None,
                    "next": rows[i + 1]["unit"] if i + 1 < len(rows) else None,
                }
                context = {
                    "root": "../../../", "report_title": title, "page_title": f"{net.name} · {layer} · unit {unit}",
                    "network": net.name, "layer": layer, "unit": unit,
                    "fields": [["label", row.get("label", "")], ["category", row.get("category", "")],
                               ["type", row.get("type", "")], ["IoU", cell(row.get("iou"))],
                               ["detector", bool(row.get("detector"))],
                               ["precision (top images)", cell(row.get("precision"))],
                               ["activation threshold", cell(row.get("threshold"))]],
                    "threshold": net.dissection.iou_threshold,
                    "best": best, "images": images,
                    "tile": assets.url(tile, page_dir) if tile else None,
                    "rf_map": assets.url(rf_map, page_dir) if rf_map else None,
                    "rf_size": cell(lookups["rf"].get((layer, unit))),
                    "human": human, "localize": lookups["localize"].get((layer, unit), []),
                    "previous": f"{neighbours['previous']}.html" if neighbours["previous"] is not None else None,
                    "next": f"{neighbours['next']}.html" if neighbours["next"] is not None else None,
                    "previous_unit": neighbours["previous"], "next_unit": neighbours["next"],
                }
                page.write_text(template.render(**context), encoding="utf-8")
                written += 1
    return written


# --------------------------------------------------------------------------- the report
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _generated_at() -> str:
    """When the report was built: ``$SOURCE_DATE_EPOCH`` if set (reproducible builds: same bytes), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def build_report(
    results_dir: str | Path,
    *,
    out: str | Path | None = None,
    title: str | None = None,
    networks: Sequence[str] | None = None,
    copy_images: bool = False,
) -> Path:
    """Render the HTML study report of a results directory.

    Parameters
    ----------
    results_dir : str or Path
        The results directory (``RESULTS``) the experiments wrote.
    out : str or Path, optional
        The report folder (default ``RESULTS/report``).  It is built beside
        its target and swapped in whole when complete, so an interrupted
        build leaves the previous report intact (see
        :mod:`unitscope.report.folder`).  A previous report there is
        replaced; a folder holding anything else (even one file added to
        a report folder) is refused, never emptied.
    title : str, optional
        Page title (default: the networks compared).
    networks : sequence of str, optional
        Networks shown side by side, in this order (default: every network
        folder found, ``run.json`` order first; ``<name>-random`` folders are
        the nulls of ``<name>``).
    copy_images : bool, optional
        Copy the result images into ``out/files`` instead of linking to them
        in place (a report folder that can be moved or archived alone).

    Returns
    -------
    Path
        The report's ``index.html``.

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` does not exist.
    LookupError
        If ``results_dir`` holds no results, or a network asked for has none.
    ValueError
        If ``out`` is not usable (a file, the results themselves, a folder
        inside a network's results, a folder with files a report did not
        write), or a result file does not hold what its writer writes
        (:class:`~unitscope.results.ResultFileError`).  Both are
        checked before anything is written.

    Examples
    --------
    >>> from unitscope.report import build_report
    >>> index = build_report("results")  # doctest: +SKIP
    >>> index.name  # doctest: +SKIP
    'index.html'
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    out_dir = check_report_folder(Path(out) if out is not None else root / "report", root)
    results = load_results(root, networks=list(networks) if networks is not None else None)
    with staged_folder(out_dir) as staging:
        _render(results, staging, title=title, copy_images=copy_images)
        write_manifest(staging)
    return out_dir / "index.html"


def _render(results: ResultSet, out_dir: Path, *, title: str | None, copy_images: bool) -> None:
    """Write the report's pages, plots and summary into ``out_dir``."""
    names = [n.name for n in results.networks]
    title = title or ("unitscope report: " + (" vs ".join(names) if names else results.root.name))
    assets = Assets(out_dir, results.root, copy=copy_images)
    env = render_environment()

    findings = summarise(results)
    counts = object_detector_table(results.networks)
    order = layer_order(results.networks)
    context = {
        "root": "", "report_title": title, "page_title": title,
        "generated": _generated_at(),
        "results_dir": str(results.root),
        "networks": names, "nulls": list(results.nulls),
        "findings": detector_sections.findings_context(findings),
        "key_layer": key_layer(counts, order),
        "preference": sections.preference_section(results, assets),
        "minimal": sections.minimal_section(results, assets),
        "rf": sections.rf_section(results, assets),
        "semantics": sections.semantics_section(results, assets),
        "census": sections.census_section(results, assets),
        "emergence": emergence_section.emergence_section(results, assets),
        "objectives": objectives_section.objectives_section(results, assets),
        "localize": detector_sections.localize_section(results, assets),
        "ablate": detector_sections.ablate_section(results, assets),
        "human": detector_sections.human_section(results, assets),
        "crowd": published_sections.crowd_section(results, assets),
        "published": published_sections.published_section(results, assets),
        "reference": published_sections.reference_section(results, assets),
        "run": sections.run_section(results),
    }
    static = out_dir / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in ("report.css", "report.js"):
        shutil.copyfile(_HERE / "static" / name, static / name)
    _write_unit_pages(results, assets, env, out_dir, title)
    summary = {
        "title": title, "results_dir": str(results.root), "networks": names, "nulls": list(results.nulls),
        "key_layer": context["key_layer"],
        "findings": [f.to_dict() for f in findings],
        "object_detectors": counts.to_dict(orient="records"),
        "plots": [p.name for p in assets.plotted],
    }
    if results.emergence:  # only with emergence results: a report without them keeps its bytes
        summary["emergence"] = emergence_section.emergence_summary(results)
    objectives = objectives_section.objectives_summary(results)
    if objectives is not None:  # only with `unitscope objectives` results: other reports keep their bytes
        summary["objectives"] = objectives
    published = published_sections.published_summary(results)
    if any(published.values()):  # only with imported networks: a report of one's own runs keeps its bytes
        summary["published"] = published
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n",
                                          encoding="utf-8")
    (out_dir / "index.html").write_text(env.get_template("index.html.j2").render(**context), encoding="utf-8")
