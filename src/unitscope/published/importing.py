"""Published files turned into an ordinary unitscope results directory (``unitscope import``).

Once imported, a published network is read by everything downstream (the
census, the report, the labeling app's comparisons) as if unitscope had
made it:

* :func:`import_iclr15`: the ICLR 2015 crowd annotations become the
  labeling app's answers (annotators ``iclr15-1`` ... ``iclr15-3``), and
  ``RESULTS/<network>/human`` the tables ``unitscope label results`` writes,
  computed by its own code (:func:`~unitscope.label.results.network_human_results`),
  with Experiment 3's per-layer numbers added to ``layers.csv`` and the
  crowd's object detectors (Experiment 4) to ``summary.json``;
* :func:`import_netdissect`: a Network Dissection unit table becomes
  ``RESULTS/<network>/dissect``'s tables (:class:`~unitscope.results.DissectionTables`)
  and the census of :func:`~unitscope.results.census.census_from_tables`,
  with Network Dissection's per-category counts beside unitscope's
  best-label ones (``*_per_category`` columns of ``census_layers.csv``).

Each folder is built in a hidden sibling and swapped in whole, so a
refused or interrupted import leaves the previous one (or nothing); a
folder that an import did not write (a real ``unitscope dissect``, labels
from the app) is never replaced.  Its ``run.json`` records the provenance:
the source file, its sha256, what was read and what was derived.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

import unitscope
from unitscope._files import make_temp_dir, remove_dead_temps
from unitscope.label.results import network_human_results
from unitscope.results import DissectionTables, HumanResults, RunMetadata, layout
from unitscope.results.census import census_from_tables
from unitscope.results.dissection import CATEGORY_TYPES
from unitscope.results.dissection_tables import DEFAULT_IOU_THRESHOLD, summarise_layers
from unitscope.results.schema import ResultFileError

from .crowd import crowd_answers
from .experiment3 import check_layer_average, layer_table
from .experiment4 import crowd_object_detectors
from .iclr15 import read_iclr15
from .netdissect import netdissect_census, read_netdissect, table_categories

__all__ = ["IMPORT_COMMAND", "import_iclr15", "import_netdissect", "imported_from"]

#: ``run.json``'s ``command`` of an import (``import iclr15`` / ``import netdissect``).
IMPORT_COMMAND = "import"

#: Experiment 3's columns added to the labeling app's ``layers.csv``.
_EXPERIMENT3 = ["units_precision_over_75", "all_agree_type", "two_agree_type"]
_PER_CATEGORY = ["detections_per_category", "unique_concepts_per_category", "object_detectors_per_category",
                 "unique_objects_per_category"]


def imported_from(folder: str | Path) -> dict | None:
    """The provenance of an imported folder (``run.json``'s), None when an import did not write it."""
    path = layout.run_json(folder)
    if not path.is_file():
        return None
    try:
        run = RunMetadata.load(folder)
    except ResultFileError:
        return None
    return run.extra.get("provenance") if str(run.command or "").startswith(IMPORT_COMMAND) else None


def import_iclr15(path: str | Path, *, network: str, out: str | Path) -> Path:
    """Import one ``unitAnnotation_*.mat`` file as ``RESULTS/<network>/human``.

    Parameters
    ----------
    path : str or Path
        The ICLR 2015 release's MATLAB file.
    network : str, keyword-only
        The network's name in the results (``RESULTS/<network>``).
    out : str or Path, keyword-only
        The results directory (made when missing).

    Returns
    -------
    Path
        The ``human`` folder written.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    MalformedFile
        (a ``ValueError``) naming the file and what is wrong with it.
    ValueError
        If ``network`` is not a plain folder name, the file's type shares
        disagree with its ``layerAverageCount``, or ``RESULTS/<network>/human``
        holds labels an import did not write.
    """
    annotations = read_iclr15(path, network=network)
    check_layer_average(annotations)
    target = _target(out, network, layout.HUMAN)
    answers = crowd_answers(annotations)
    human = network_human_results(network, answers, Path(out))
    extra = layer_table(annotations)
    shares = [c for c in extra.columns if c.startswith("annotation_share_")]
    human.layers = human.layers.merge(extra[["layer", *_EXPERIMENT3, *shares]], on="layer", how="left")
    crowd = crowd_object_detectors(annotations) if "pool5" in annotations.layers else None
    human.summary["object_detectors"] = None if crowd is None else json.loads(crowd.to_json(orient="records"))[0]
    human.answers = pd.DataFrame(
        [{"annotator": a.annotator, "layer": a.layer, "unit": a.unit, "label": a.label, "type": a.type,
          "precision": a.precision, "n_images": a.n_images} for a in answers])
    provenance = _provenance(annotations.source, read=["layerAnnotation: description, category code and "
                                                       "precision of 3 annotations per unit", "layerAverageCount"],
                             derived=["answers.csv (images shown and marked from the precisions)",
                                      "units.csv, layers.csv, summary.json (the labeling app's consensus)",
                                      "layers.csv annotation_share_* (equal to layerAverageCount, checked)",
                                      "summary.json object_detectors (pool5, consensus object, precision >= 0.75)"])
    human.summary["imported_from"] = provenance
    with _staged(target) as staging:
        human.save(staging)
        _record(staging, "iclr15", network, annotations.source, provenance)
    return target


def import_netdissect(path: str | Path, *, network: str, layer: str, out: str | Path) -> Path:
    """Import one Network Dissection unit table as ``RESULTS/<network>/dissect`` with its census.

    Parameters
    ----------
    path : str or Path
        A released ``*.csv`` unit table (units numbered from 1 there, from 0 here).
    network, layer, out : keyword-only
        The network's and the layer's names in the results; the results
        directory, made when missing.

    Returns
    -------
    Path
        The ``dissect`` folder written.

    Raises
    ------
    FileNotFoundError, MalformedFile, ValueError
        As :func:`import_iclr15` (but for the ``layerAverageCount`` check),
        the folder being ``RESULTS/<network>/dissect``.
    """
    frame = read_netdissect(path, network=network, layer=layer)
    target = _target(out, network, layout.DISSECT)
    categories = table_categories(frame)
    units = frame[["network", "layer", "unit", "category", "label"]].copy()
    units["type"] = units["category"].map(CATEGORY_TYPES).fillna("")
    units["iou"] = units["score"] = frame["score"]
    units["detector"] = frame["score"] > DEFAULT_IOU_THRESHOLD
    units["precision"] = float("nan")
    units["top_images"] = ""
    for category in categories:
        for field in ("label", "iou", "truth", "activation", "intersect"):
            units[f"{category}_{field}"] = frame[f"{category}-{field}"]
    labels = pd.concat([frame[[f"{c}-label"]].set_axis(["name"], axis=1).assign(category=c) for c in categories])
    concepts = labels[labels["name"] != ""].drop_duplicates().sort_values(["category", "name"])
    concepts.insert(0, "number", range(1, len(concepts) + 1))
    provenance = _provenance(Path(path), read=["unit, category, label, score", "<category>-label, -truth, "
                                               "-activation, -intersect, -iou"],
                             derived=[f"detector (IoU > {DEFAULT_IOU_THRESHOLD:g}), type (from the category)",
                                      "layers.csv, concepts.csv (the labels the table names)",
                                      "census_*.csv (unitscope's census; *_per_category: Network Dissection's)"])
    config = {"iou_threshold": DEFAULT_IOU_THRESHOLD, "imported_from": provenance}
    tables = DissectionTables(network=network, units=units, layers=summarise_layers(units, network),
                              concepts=concepts.reset_index(drop=True), categories=categories,
                              iou_threshold=DEFAULT_IOU_THRESHOLD, config=config)
    census = census_from_tables(tables)
    theirs = netdissect_census(frame)[["network", "layer", *_PER_CATEGORY]]
    census.layers = census.layers.merge(theirs, on=["network", "layer"], how="left")
    with _staged(target) as staging:
        tables.save(staging)
        census.save(staging)
        _record(staging, "netdissect", network, Path(path), provenance, layer=layer)
    return target


# --------------------------------------------------------------------------- provenance and writing
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance(source: Path, *, read: list[str], derived: list[str]) -> dict:
    return {"source": str(Path(source).resolve()), "file": Path(source).name, "sha256": _sha256(Path(source)),
            "read": read, "derived": derived}


def _record(folder: Path, kind: str, network: str, source: Path, provenance: dict, **options) -> None:
    RunMetadata(command=f"{IMPORT_COMMAND} {kind}", options={"file": str(source), "network": network, **options},
                versions={"unitscope": unitscope.__version__}, extra={"provenance": provenance}).save(folder)


def _target(out: str | Path, network: str, kind: str) -> Path:
    """``RESULTS/<network>/<kind>``, if an import may write there."""
    if network != layout.safe_name(network) or network in layout.NOT_NETWORKS or network.startswith("."):
        raise ValueError(f"--network {network!r} must be a plain folder name (letters, digits, '.', '_', '-'), "
                         f"not {', '.join(sorted(layout.NOT_NETWORKS))}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a results directory")
    target = layout.network_dir(out, network) / kind
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and imported_from(target) is None)):
        raise ValueError(f"{target} holds results that unitscope import did not write; it replaces only its own "
                         "imports (choose another --network or --out)")
    return target


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A hidden sibling of ``target`` to write into, swapped in whole for ``target`` when the block completes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(target.parent, target.name)
    staging = make_temp_dir(target.parent, target.name)
    try:
        yield staging
        if target.exists():  # os.replace cannot replace a non-empty folder: set the old one aside first
            trash = make_temp_dir(target.parent, target.name)
            os.replace(target, trash / "old")
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
