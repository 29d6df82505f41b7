"""The paper's own data in the report: Experiments 3 and 4 on the real networks, and the reference networks.

Networks imported with ``unitscope import`` (:mod:`unitscope.published`)
are ordinary results whose metadata says where they came from
(``imported_from``: the source file and its sha256).  From them:

* :func:`crowd_section`: Experiment 3 on the ICLR 2015 crowd labels, per
  layer: units, mean precision, share above 75 %, the share of annotations
  of each type (the file's ``layerAverageCount``) and annotator agreement;
* :func:`published_section`: Experiment 4: the crowd's object detectors at
  pool5 and Network Dissection's census under both counting rules (one
  best label per unit, as unitscope's census; one per category, as their
  summary), scene networks beside object networks, and the sentence
  (:func:`~unitscope.results.scene_vs_object.scene_vs_object_sentence`);
* :func:`reference_section`: every dissected network at its deepest layer,
  imported or the user's own, side by side.

A network whose name holds ``places`` (``places205``, ``places365``) is the
scene network compared with the network of the same name with ``imagenet``
in its place (``alexnet-places365`` with ``alexnet-imagenet``).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from unitscope.report import plots
from unitscope.report.assets import HINTS, Assets, table
from unitscope.report.measures import Finding, object_detector_table
from unitscope.results import NetworkResults, ResultSet
from unitscope.results.scene_vs_object import scene_vs_object, scene_vs_object_sentence
from unitscope.taxonomy import TYPES

__all__ = ["crowd_section", "published_section", "reference_section", "published_findings", "published_summary",
           "imported_from", "scene_object_pairs"]

_SCENE_DATA = re.compile(r"places\d*", re.IGNORECASE)
#: census_layers.csv column -> the name Experiment 4's comparison reads (the rule said in the name).
_CENSUS_NAMES = {"object_detectors": "object_detectors_best_label", "unique_objects": "unique_objects_best_label",
                 "unique_concepts": "unique_concepts_best_label"}
_PER_CATEGORY = ["detections_per_category", "unique_concepts_per_category", "object_detectors_per_category",
                 "unique_objects_per_category"]


def imported_from(net: NetworkResults) -> dict | None:
    """Where an imported network's results came from (the dissection's, else the human labels'), or None."""
    if net.dissection is not None and net.dissection.config.get("imported_from"):
        return net.dissection.config["imported_from"]
    if net.human is not None and net.human.summary.get("imported_from"):
        return net.human.summary["imported_from"]
    return None


def _crowd_networks(results: ResultSet) -> list[NetworkResults]:
    return [n for n in results.networks if n.human is not None and n.human.summary.get("imported_from")]


def _census_networks(results: ResultSet) -> list[NetworkResults]:
    return [n for n in results.networks if n.census is not None and n.dissection is not None
            and n.dissection.config.get("imported_from") and len(n.census.layers)]


def scene_object_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(scene network, object network) for every name with ``places`` whose ``imagenet`` twin is in ``names``."""
    pairs = []
    for name in names:
        twin = _SCENE_DATA.sub("imagenet", name)
        if twin != name and twin in names:
            pairs.append((name, twin))
    return pairs


def _crowd_table(nets: list[NetworkResults]) -> pd.DataFrame:
    rows = [n.human.summary["object_detectors"] for n in nets if n.human.summary.get("object_detectors")]
    return pd.DataFrame(rows)


def _census_table(nets: list[NetworkResults]) -> pd.DataFrame:
    frames = [n.census.layers[n.census.layers["network"] == n.name] for n in nets]
    return pd.concat(frames, ignore_index=True).rename(columns=_CENSUS_NAMES) if frames else pd.DataFrame()


def _comparisons(results: ResultSet) -> list[dict[str, Any]]:
    """Per (scene, object) pair: the comparison table and its sentence."""
    crowd, census = _crowd_table(_crowd_networks(results)), _census_table(_census_networks(results))
    crowd_names = set(crowd["network"]) if len(crowd) else set()
    census_names = set(census["network"]) if len(census) else set()
    out = []
    for pair in scene_object_pairs([n.name for n in results.networks]):
        has_crowd, has_census = set(pair) <= crowd_names, set(pair) <= census_names
        if not (has_crowd or has_census):
            continue
        compared = scene_vs_object(crowd=crowd if has_crowd else None, crowd_networks=pair if has_crowd else None,
                                   census=census if has_census else None,
                                   census_networks=pair if has_census else None)
        out.append({"scene": pair[0], "object": pair[1], "table": compared,
                    "sentence": scene_vs_object_sentence(compared)})
    return out


def published_summary(results: ResultSet) -> dict[str, Any]:
    """What ``summary.json`` says of the imported networks: crowd detectors, census, comparisons."""
    crowd, census = _crowd_table(_crowd_networks(results)), _census_table(_census_networks(results))
    return {"crowd_object_detectors": crowd.drop(columns="objects", errors="ignore").to_dict(orient="records"),
            "netdissect_census": census.to_dict(orient="records"),
            "scene_vs_object": [{"scene": c["scene"], "object": c["object"], "sentence": c["sentence"],
                                 "rows": c["table"].to_dict(orient="records")} for c in _comparisons(results)]}


def published_findings(results: ResultSet) -> list[Finding]:
    """One finding per (scene, object) pair of imported networks: the sentence and its numbers."""
    return [Finding(f"published-{c['scene']}-vs-{c['object']}",
                    f"The paper's own data: does {c['scene']} have more object detectors than {c['object']}?",
                    c["sentence"], {"rows": c["table"].to_dict(orient="records")})
            for c in _comparisons(results)]


# --------------------------------------------------------------------------- sections
def crowd_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    """Experiment 3 on the imported crowd labels: per layer and network."""
    nets = _crowd_networks(results)
    if not nets:
        return {"available": False, "hint": HINTS["crowd"]}
    shares = {n.name: n.human.layers.rename(columns=lambda c: c.replace("annotation_share_", "share_")
                                            if c.startswith("annotation_share_") else f"_{c}"
                                            if c.startswith("share_") else c) for n in nets}
    plot = assets.plot("published_crowd_types", lambda p: plots.plot_type_shares(
        shares, p, title="The paper's crowd labels: type of each annotation per layer (layerAverageCount)",
        ylabel="annotations (%)"))
    columns = (["layer", "n_units", "mean_precision", "units_precision_over_75", "precision_over_75"]
               + [f"annotation_share_{t}" for t in TYPES] + ["all_agree_type", "two_agree_type", "mean_agreement"])
    rename = {"n_units": "units", "units_precision_over_75": "units with precision > 0.75",
              "precision_over_75": "share with precision > 0.75", "all_agree_type": "3 annotators agree on type",
              "two_agree_type": "2+ agree on type",
              "mean_agreement": "annotators naming the consensus label", **{f"annotation_share_{t}": f"{plots.TYPE_NAMES[t]} (annotations)"
                                                       for t in TYPES}}
    out = [{"network": n.name, "source": _source(n.human.summary["imported_from"]),
            "layers": table(n.human.layers, columns, rename=rename)} for n in nets]
    return {"available": True, "hint": "", "plot": plot, "networks": out}


def published_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    """Experiment 4 on the imported networks: crowd detectors, Network Dissection's census, scene vs object."""
    crowd_nets, census_nets = _crowd_networks(results), _census_networks(results)
    if not crowd_nets and not census_nets:
        return {"available": False, "hint": HINTS["published"]}
    crowd = _crowd_table(crowd_nets)
    census = _census_table(census_nets)
    census_plot = assets.plot("published_census", lambda p: plots.plot_grouped_bars(
        census.assign(layer="imported"), [("detectors", "detectors (IoU > 0.04)"),
                                          ("object_detectors_best_label", "object detectors, best label per unit"),
                                          ("unique_objects_best_label", "unique objects, best label per unit"),
                                          ("unique_objects_per_category", "unique objects, per category")],
        p, title="Network Dissection's released tables: the census", ylabel="count", xlabel="")) \
        if len(census) else None
    comparisons = [{"scene": c["scene"], "object": c["object"], "sentence": c["sentence"],
                    "table": table(c["table"], ["rule", "measure", "layer", "scene", "object"],
                                   rename={"scene": c["scene"], "object": c["object"]})}
                   for c in _comparisons(results)]
    census_columns = (["network", "layer", "units", "detectors", "object_detectors_best_label",
                       "unique_concepts_best_label", "unique_objects_best_label"] + _PER_CATEGORY)
    return {
        "available": True, "hint": "", "census_plot": census_plot, "comparisons": comparisons,
        "crowd": table(crowd, ["network", "layer", "units", "object_detectors", "object_detector_share",
                               "unique_objects", "min_precision"]) if len(crowd) else None,
        "census": table(census, census_columns, rename={c: c.replace("_", " ") .replace(" best label", " (best label)")
                                                        .replace(" per category", " (per category)")
                                                        for c in census_columns}) if len(census) else None,
        "sources": [{"network": n.name, "source": _source(imported_from(n))} for n in crowd_nets + census_nets],
    }


def reference_section(results: ResultSet, assets: Assets) -> dict[str, Any]:
    """Every dissected network at its deepest layer, imported ones and the user's own, side by side."""
    counts = object_detector_table(results.networks)
    if not len(counts) or not any(imported_from(n) for n in results.networks if n.dissection is not None):
        return {"available": False, "hint": HINTS["reference"]}
    rows = []
    for net in results.networks:
        if net.dissection is None:
            continue
        deepest = counts[counts["network"] == net.name].iloc[-1]
        provenance = imported_from(net)
        rows.append({**deepest.to_dict(), "source": f"published ({provenance['file']})" if provenance
                     else "dissected by unitscope", "kind": "published" if provenance else "yours"})
    frame = pd.DataFrame(rows)
    plot = assets.plot("reference_networks", lambda p: plots.plot_grouped_bars(
        frame.assign(layer=frame["network"], network=frame["kind"]),
        [("detectors", "detectors"), ("unique_objects", "unique objects"), ("object_share", "object detectors / units")],
        p, title="Reference networks beside yours (deepest dissected layer, best label per unit)", ylabel="",
        xlabel="network", legend_title="results"))
    return {"available": True, "hint": "", "plot": plot,
            "table": table(frame, ["network", "source", "layer", "units", "detectors", "object_detectors",
                                   "object_share", "unique_concepts", "unique_objects"])}


def _source(provenance: dict | None) -> str:
    if not provenance:
        return ""
    return f"{provenance.get('file', '')} (sha256 {str(provenance.get('sha256', ''))[:12]}…)"
