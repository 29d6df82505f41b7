"""Read a results directory into plain data: one loader per report section.

The report never imports the experiments: it reads the files they saved
(the layout of ``docs/ARCHITECTURE.md``)::

    RESULTS/run.json                                  configuration, versions, timings
    RESULTS/preference/                               fractions.csv, top_images.csv, preference.json, top/...
    RESULTS/<network>/dissect/                        units.csv, layers.csv, concepts.csv, census_*.csv
    RESULTS/<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg
    RESULTS/<network>/minimal/**/minimal.json         + images.csv, objects.csv, diagnostic.csv, examples/
    RESULTS/<network>/rf/**/rf.json                   + layer.csv, units.csv, maps/unit_<n>.png
    RESULTS/<network>/**/segmentations.json           unit segmentation tiles (experiment 2b)
    RESULTS/<network>/localize/, ablate/              CSV / JSON / PNG
    RESULTS/<network>/human/                          units.csv, layers.csv, compare.csv, summary.json

Every loader returns ``None`` (or an empty container) when its files are
absent, so a partial result set gives a partial report.  A file that exists
but does not hold what its writer writes raises :class:`ReportInputError`
naming the file: a broken result is reported, never silently skipped.  What
each file must hold is written down once, in :mod:`unitscope.report.inputs`;
the checks across files (a ``units.csv`` with fewer rows than ``layers.csv``
counts) are here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope.report.inputs import CSV_SPECS, ReportInputError, read_csv, read_json, spec_for

__all__ = [
    "ReportInputError",
    "NETWORK_FOLDERS",
    "Dissection",
    "Census",
    "Preference",
    "MinimalRun",
    "ReceptiveFields",
    "ExperimentFiles",
    "Human",
    "NetworkResults",
    "ResultSet",
    "find_networks",
    "load_run",
    "load_dissection",
    "load_census",
    "load_preference",
    "load_minimal",
    "load_receptive_fields",
    "load_unit_tiles",
    "load_segmentations",
    "load_experiment_files",
    "load_human",
    "load_results",
]

#: Sub-folders that mark a folder of ``RESULTS`` as a network's results.
NETWORK_FOLDERS = ("dissect", "segmentations", "minimal", "rf", "localize", "ablate", "human")
#: Folders of ``RESULTS`` that are never networks.
_NOT_NETWORKS = {"report", "preference"}
#: Suffix of a random-weights null network (``<network>-random``).
NULL_SUFFIX = "-random"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}
_SEGMENTATION_NAME = re.compile(r"^(\d+)_(.+)\.(jpe?g|png)$", re.IGNORECASE)


# --------------------------------------------------------------------------- helpers
def _read_csv(path: Path, kind: str | None = None) -> pd.DataFrame | None:
    """Read a CSV checked against the spec of ``kind`` (``"dissect/units.csv"``; default: any table)."""
    return read_csv(path, CSV_SPECS[kind]) if kind else read_csv(path)


def _as_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin({"true", "1", "yes"})


def safe_name(text: str) -> str:
    """The file-name-safe form of a layer or image name used by the experiments' writers."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "_"


def _layer_folders(layer: str) -> list[str]:
    """Folder names a writer may have used for ``layer`` (as is, and its safe forms)."""
    per_char = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in layer)
    return list(dict.fromkeys([layer, safe_name(layer), per_char]))


# --------------------------------------------------------------------------- run.json
def load_run(results_dir: Path) -> dict | None:
    """``RESULTS/run.json`` as a dict (keys ``config``, ``versions``, ``timings``, ``networks``, ``world``), or None."""
    return read_json(Path(results_dir) / "run.json")


# --------------------------------------------------------------------------- networks
def find_networks(results_dir: Path, run: dict | None = None) -> list[str]:
    """Every network folder of ``results_dir`` (nulls included), ``run.json`` order first, then sorted."""
    results_dir = Path(results_dir)
    found = sorted(
        p.name for p in results_dir.iterdir()
        if p.is_dir() and p.name not in _NOT_NETWORKS and not p.name.startswith(".")
        and not (p / ".unitscope-report").exists()
        and any((p / sub).is_dir() for sub in NETWORK_FOLDERS)
    ) if results_dir.is_dir() else []
    listed = list((run or {}).get("networks") or {})
    return [n for n in listed if n in found] + [n for n in found if n not in listed]


# --------------------------------------------------------------------------- dissection
@dataclass
class Dissection:
    """The dissection tables of one network (``RESULTS/<network>/dissect``)."""

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    concepts: pd.DataFrame | None
    categories: list[str]
    iou_threshold: float
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # result.json's plain sentences (saturation, support)

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers["layer"])


UNIT_TYPES = ("simple", "texture", "region", "part", "object", "scene")


def _layer_summary(units: pd.DataFrame, network: str) -> pd.DataFrame:
    """The per-layer table of ``layers.csv``, recomputed from the units (when that file is absent)."""
    rows = []
    for layer in dict.fromkeys(units["layer"]):
        u = units[units["layer"] == layer]
        det = u[u["detector"]]
        row = {"network": network, "layer": layer, "units": len(u), "detectors": len(det),
               "unique_concepts": det["label"].nunique(),
               "unique_objects": det.loc[det["category"] == "object", "label"].nunique(),
               "mean_iou": float(u["iou"].mean()) if len(u) else 0.0,
               "mean_precision": float(det["precision"].mean()) if len(det) else float("nan")}
        for key in UNIT_TYPES:
            row[f"share_{key}"] = float((det["type"] == key).sum()) / max(len(u), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def load_dissection(results_dir: Path, network: str) -> Dissection | None:
    """Read ``<network>/dissect/units.csv`` (+ ``layers.csv``, ``concepts.csv``, ``result.json``).

    Adds two columns to the units: ``detector`` (when absent: IoU above the
    dissection's threshold) and ``object_detector`` (a detector whose label is
    an object).  Returns None when there is no ``units.csv``.
    """
    folder = Path(results_dir) / network / "dissect"
    units = _read_csv(folder / "units.csv", "dissect/units.csv")
    if units is None:
        return None
    meta = read_json(folder / "result.json") or {}
    config = meta.get("config") or {}
    threshold = config.get("iou_threshold", 0.04)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ReportInputError(f"{folder / 'result.json'}: config.iou_threshold must be a finite number, "
                               f"not {threshold!r}")
    threshold = float(threshold)
    layers = _read_csv(folder / "layers.csv", "dissect/layers.csv")
    _check_unit_counts(folder, units, layers, meta.get("layers"))
    units = units.copy()
    if "network" not in units.columns:
        units.insert(0, "network", network)
    for column in ("category", "type", "top_images"):
        if column not in units.columns:
            units[column] = ""
    if "precision" not in units.columns:
        units["precision"] = np.nan
    units["precision"] = pd.to_numeric(units["precision"], errors="coerce")
    units["detector"] = _as_bool(units["detector"]) if "detector" in units.columns else units["iou"] > threshold
    units["object_detector"] = units["detector"] & (units["category"] == "object")
    categories = [c[: -len("_label")] for c in units.columns
                  if c.endswith("_label") and f"{c[: -len('_label')]}_iou" in units.columns]
    if layers is None or not len(layers):
        layers = _layer_summary(units, network)
    concepts = _read_csv(folder / "concepts.csv", "dissect/concepts.csv")
    return Dissection(network=network, units=units, layers=layers, concepts=concepts,
                      categories=categories, iou_threshold=threshold, config=config,
                      warnings=[str(w) for w in meta.get("warnings") or []])


def _check_unit_counts(folder: Path, units: pd.DataFrame, layers: pd.DataFrame | None,
                       listed: list | None) -> None:
    """``units.csv`` holds one row per unit of every layer the dissection lists: none missing, none twice.

    A truncated ``units.csv`` would otherwise read as a smaller dissection
    ("1 of the 6 units") with no sign that anything is wrong.
    """
    path = folder / "units.csv"
    twice = units.duplicated(["layer", "unit"])
    if twice.any():
        row = units[twice].iloc[0]
        raise ReportInputError(f"{path} has unit {row['unit']} of layer {row['layer']} twice")
    counts = units.groupby("layer", sort=False).size()
    for layer in listed or []:
        if str(layer) not in counts.index:
            raise ReportInputError(f"{path} has no rows for layer {layer}, which "
                                   f"{folder / 'result.json'} lists (a truncated file?)")
    if layers is None or not len(layers):
        return
    extra = [layer for layer in counts.index if layer not in set(layers["layer"])]
    if extra:
        raise ReportInputError(f"{path} has rows for layer {extra[0]}, which {folder / 'layers.csv'} does not list "
                               "(files of two different dissections?)")
    for layer, expected in zip(layers["layer"], layers["units"]):
        found = int(counts.get(layer, 0))
        if found != int(expected):
            raise ReportInputError(f"{path} has {found} rows for layer {layer} where {folder / 'layers.csv'} "
                                   f"counts {int(expected)} units (a truncated or mixed-up file?)")


@dataclass
class Census:
    """The object census of one network (``census_*.csv``; null rows have network ``<network>-random``)."""

    network: str
    objects: pd.DataFrame
    layers: pd.DataFrame
    correlations: pd.DataFrame
    sweep: pd.DataFrame
    informative: pd.DataFrame
    config: dict = field(default_factory=dict)


def load_census(results_dir: Path, network: str) -> Census | None:
    """Read ``<network>/dissect/census_*.csv``; None when ``census_objects.csv`` is absent."""
    folder = Path(results_dir) / network / "dissect"
    objects = _read_csv(folder / "census_objects.csv", "dissect/census_objects.csv")
    if objects is None:
        return None
    empty = pd.DataFrame()

    def read(name: str) -> pd.DataFrame:
        frame = _read_csv(folder / name)
        return empty.copy() if frame is None else frame

    config = (read_json(folder / "census.json") or {}).get("config") or {}
    return Census(network=network, objects=objects, layers=read("census_layers.csv"),
                  correlations=read("census_correlations.csv"), sweep=read("census_sweep.csv"),
                  informative=read("census_informative.csv"), config=config)


# --------------------------------------------------------------------------- preference
@dataclass
class Preference:
    """Layer preference (``RESULTS/preference``): source fractions and top-image thumbnails."""

    fractions: pd.DataFrame  # network, layer, source, count, fraction
    top_images: pd.DataFrame  # network, layer, rank, id, source, score
    thumbnails: pd.DataFrame  # network, layer, rank, id, source, path (absolute)
    top: int
    sources: list[str]


def _has_preference(results_dir: Path) -> bool:
    return (results_dir / "preference" / "fractions.csv").is_file() or any(
        results_dir.glob("*/preference/fractions.csv"))


def load_preference(results_dir: Path) -> Preference | None:
    """Read ``RESULTS/preference`` (or every ``RESULTS/<network>/preference``); None when absent."""
    results_dir = Path(results_dir)
    folders = [results_dir / "preference"] if (results_dir / "preference" / "fractions.csv").is_file() else []
    if not folders and results_dir.is_dir():
        folders = sorted(p.parent for p in results_dir.glob("*/preference/fractions.csv"))
    if not folders:
        return None
    fractions, tops, thumbs, sources, top = [], [], [], [], 0
    for folder in folders:
        fractions.append(_read_csv(folder / "fractions.csv", "preference/fractions.csv"))
        top_frame = _read_csv(folder / "top_images.csv", "preference/top_images.csv")
        if top_frame is not None:
            tops.append(top_frame)
        meta = read_json(folder / "preference.json") or {}
        top = max(top, int(meta.get("top") or 0))
        sources += [s for s in meta.get("sources") or [] if s not in sources]
        for t in meta.get("thumbnails") or []:
            path = folder / str(t.get("file", ""))
            if path.is_file():
                thumbs.append({"network": str(t.get("network")), "layer": str(t.get("layer")),
                               "rank": int(t.get("rank", 0)), "id": str(t.get("id", "")), "path": path})
    fractions_frame = pd.concat(fractions, ignore_index=True)
    for s in fractions_frame["source"]:
        if s not in sources:
            sources.append(s)
    top_frame = pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(
        columns=["network", "layer", "rank", "id", "source", "score"])
    thumbs_frame = pd.DataFrame(thumbs, columns=["network", "layer", "rank", "id", "path"])
    if len(thumbs_frame) and len(top_frame):
        source = top_frame[["network", "layer", "rank", "source"]].drop_duplicates(["network", "layer", "rank"])
        thumbs_frame = thumbs_frame.merge(source, on=["network", "layer", "rank"], how="left")
    if "source" not in thumbs_frame.columns:
        thumbs_frame["source"] = ""
    thumbs_frame["source"] = thumbs_frame["source"].fillna("")
    if not top and len(top_frame):
        top = int(top_frame.groupby(["network", "layer"]).size().max())
    return Preference(fractions=fractions_frame, top_images=top_frame, thumbnails=thumbs_frame,
                      top=top, sources=sources)


# --------------------------------------------------------------------------- minimal images
@dataclass
class MinimalRun:
    """One minimal-images run of a network (a folder holding ``minimal.json``)."""

    network: str
    name: str  # folder relative to <network>/minimal ("" for the folder itself)
    segmentation: str  # "superpixels", "masks", ... (from the options)
    options: dict
    counts: dict
    images: pd.DataFrame
    objects: pd.DataFrame | None
    diagnostic: pd.DataFrame | None
    examples: list[dict]  # id, label_name, kept_fraction, original (Path), minimal (Path)


def load_minimal(results_dir: Path, network: str) -> list[MinimalRun]:
    """Every ``minimal.json`` under ``<network>/minimal`` (sorted by folder)."""
    base = Path(results_dir) / network / "minimal"
    runs: list[MinimalRun] = []
    if not base.is_dir():
        return runs
    for meta_path in sorted(base.rglob("minimal.json")):
        folder = meta_path.parent
        meta = read_json(meta_path)
        images = _read_csv(folder / "images.csv", "minimal/images.csv")
        images = pd.DataFrame() if images is None else images
        for column in ("kept_fraction", "n_segments", "n_kept", "initial_score", "final_score"):
            if column in images.columns:
                images[column] = pd.to_numeric(images[column], errors="coerce")
        objects = _read_csv(folder / "objects.csv", "minimal/objects.csv")
        diagnostic = _read_csv(folder / "diagnostic.csv", "minimal/diagnostic.csv")
        by_id = images.set_index("id") if "id" in images.columns and images["id"].is_unique else None
        examples = []
        for e in meta.get("examples") or []:
            original, minimal = folder / str(e.get("original", "")), folder / str(e.get("minimal", ""))
            if not (original.is_file() and minimal.is_file()):
                continue
            image_id = str(e.get("id", ""))
            row = by_id.loc[image_id] if by_id is not None and image_id in by_id.index else None
            examples.append({
                "id": image_id,
                "label_name": str(row["label_name"]) if row is not None and "label_name" in row else "",
                "kept_fraction": float(row["kept_fraction"]) if row is not None and "kept_fraction" in row
                else float("nan"),
                "objects_kept": str(row["objects_kept"]) if row is not None and "objects_kept" in row else "",
                "original": original, "minimal": minimal,
            })
        options = dict(meta.get("options") or {})
        rel = folder.relative_to(base).as_posix()
        runs.append(MinimalRun(network=network, name="" if rel == "." else rel,
                               segmentation=str(options.get("segmentation", rel if rel != "." else "")),
                               options=options, counts=dict(meta.get("counts") or {}), images=images,
                               objects=objects, diagnostic=diagnostic, examples=examples))
    return runs


# --------------------------------------------------------------------------- receptive fields
@dataclass
class ReceptiveFields:
    """Empirical receptive fields of a network, every layer measured (``<network>/rf``)."""

    network: str
    layers: pd.DataFrame  # the concatenated one-row layer.csv files, in depth order if known
    units: pd.DataFrame  # network, layer, unit, rf_size, peak, n_images, theoretical_size
    maps: dict[tuple[str, int], Path]  # (layer, unit) -> averaged map PNG
    stats: dict[str, dict] = field(default_factory=dict)  # layer -> rf.json stats


def load_receptive_fields(results_dir: Path, network: str) -> ReceptiveFields | None:
    """Every ``rf.json`` under ``<network>/rf`` (one per layer); None when there is none."""
    base = Path(results_dir) / network / "rf"
    if not base.is_dir():
        return None
    layer_frames, unit_frames, maps, stats = [], [], {}, {}
    for meta_path in sorted(base.rglob("rf.json")):
        folder = meta_path.parent
        meta = read_json(meta_path) or {}
        layer = str(meta.get("layer", folder.name))
        summary = _read_csv(folder / "layer.csv", "rf/layer.csv")
        if summary is None:
            theoretical = (meta.get("theoretical") or {}).get("size", np.nan)
            summary = pd.DataFrame([{"network": network, "layer": layer, "rf_mean": np.nan, "rf_std": np.nan,
                                     "theoretical_size": theoretical}])
        summary = summary.copy()
        summary["network"] = network
        layer_frames.append(summary)
        units = _read_csv(folder / "units.csv", "rf/units.csv")
        if units is not None:
            units = units.copy()
            units["network"] = network
            if "layer" not in units.columns:
                units["layer"] = layer
            unit_frames.append(units)
        stats[layer] = dict(meta.get("stats") or {})
        for name in meta.get("pictures") or []:
            match = re.search(r"unit_(\d+)\.png$", str(name))
            if match and (folder / name).is_file():
                maps[(layer, int(match.group(1)))] = folder / name
    if not layer_frames:
        return None
    layers = pd.concat(layer_frames, ignore_index=True)
    for column in ("rf_mean", "rf_std", "theoretical_size"):
        if column in layers.columns:
            layers[column] = pd.to_numeric(layers[column], errors="coerce")
    if "theoretical_size" in layers.columns:
        # Deeper layers have larger theoretical receptive fields: a depth order without a model.
        layers = layers.sort_values("theoretical_size", kind="stable").reset_index(drop=True)
    units = pd.concat(unit_frames, ignore_index=True) if unit_frames else pd.DataFrame(
        columns=["network", "layer", "unit", "rf_size"])
    return ReceptiveFields(network=network, layers=layers, units=units, maps=maps, stats=stats)


def load_unit_tiles(results_dir: Path, network: str) -> dict[tuple[str, int], Path]:
    """Unit segmentation strips of experiment 2b: every ``segmentations.json`` under ``<network>``."""
    base = Path(results_dir) / network
    tiles: dict[tuple[str, int], Path] = {}
    if not base.is_dir():
        return tiles
    for meta_path in sorted(base.rglob("segmentations.json")):
        meta = read_json(meta_path) or {}
        layer = str(meta.get("layer", ""))
        for unit, name in (meta.get("tiles") or {}).items():
            if not (unit.isdigit() and isinstance(name, str)):
                raise ReportInputError(f"{meta_path}: tiles must map unit numbers to file names, "
                                       f"not {unit!r} to {name!r}")
            path = meta_path.parent / name
            if path.is_file():
                tiles[(layer, int(unit))] = path
    return tiles


def load_segmentations(results_dir: Path, network: str, layers: list[str]) -> dict[tuple[str, int], list[dict]]:
    """Top-image segmentations ``<network>/segmentations/<layer>/<unit>/<rank>_<id>.jpg``.

    Returns ``(layer, unit) -> [{"rank", "id", "path"}, ...]`` sorted by rank.
    """
    base = Path(results_dir) / network / "segmentations"
    out: dict[tuple[str, int], list[dict]] = {}
    if not base.is_dir():
        return out
    for layer in layers:
        folder = next((base / f for f in _layer_folders(layer) if (base / f).is_dir()), None)
        if folder is None:
            continue
        for unit_dir in folder.iterdir():
            if not (unit_dir.is_dir() and unit_dir.name.isdigit()):
                continue
            images = []
            for f in unit_dir.iterdir():
                match = _SEGMENTATION_NAME.match(f.name)
                if match and f.is_file():
                    images.append({"rank": int(match.group(1)), "id": match.group(2), "path": f})
            if images:
                out[(layer, int(unit_dir.name))] = sorted(images, key=lambda d: d["rank"])
    return out


# --------------------------------------------------------------------------- localisation, ablation
@dataclass
class ExperimentFiles:
    """Whatever an experiment folder holds: its tables, JSON documents and images."""

    network: str
    name: str
    tables: dict[str, pd.DataFrame]  # relative path -> frame
    documents: dict[str, Any]  # relative path -> parsed JSON
    images: list[Path]


def load_experiment_files(results_dir: Path, network: str, name: str, *,
                          max_images: int = 48) -> ExperimentFiles | None:
    """Every CSV, JSON and image under ``<network>/<name>``; None when the folder is absent or empty.

    Used for localisation and ablation, whose exact tables the report reads
    by column name when it knows them and shows as plain tables otherwise.
    """
    base = Path(results_dir) / network / name
    if not base.is_dir():
        return None
    tables, documents, images = {}, {}, []
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        suffix = path.suffix.lower()
        if suffix == ".csv":
            tables[rel] = read_csv(path, spec_for(f"{name}/{rel}"))
        elif suffix == ".json":
            documents[rel] = read_json(path)
        elif suffix in _IMAGE_SUFFIXES and len(images) < max_images:
            images.append(path)
    if not (tables or documents or images):
        return None
    return ExperimentFiles(network=network, name=name, tables=tables, documents=documents, images=images)


# --------------------------------------------------------------------------- human labels
@dataclass
class Human:
    """Human labels of a network (``<network>/human``, written by ``unitscope label results``)."""

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    compare: pd.DataFrame
    summary: dict


def load_human(results_dir: Path, network: str) -> Human | None:
    folder = Path(results_dir) / network / "human"
    units = _read_csv(folder / "units.csv", "human/units.csv")
    if units is None:
        return None

    def read(name: str) -> pd.DataFrame:
        frame = _read_csv(folder / name)
        return pd.DataFrame() if frame is None else frame

    return Human(network=network, units=units, layers=read("layers.csv"), compare=read("compare.csv"),
                 summary=read_json(folder / "summary.json") or {})


# --------------------------------------------------------------------------- everything
@dataclass
class NetworkResults:
    """Everything saved for one network."""

    name: str
    null: str | None  # name of its random-weights null when present
    dissection: Dissection | None
    census: Census | None
    segmentations: dict[tuple[str, int], list[dict]]
    minimal: list[MinimalRun]
    rf: ReceptiveFields | None
    unit_tiles: dict[tuple[str, int], Path]
    localize: ExperimentFiles | None
    ablate: ExperimentFiles | None
    human: Human | None
    info: dict = field(default_factory=dict)  # run.json networks[name]


@dataclass
class ResultSet:
    """A whole results directory, as read by :func:`load_results`."""

    root: Path
    run: dict | None
    networks: list[NetworkResults]  # the networks shown side by side
    nulls: dict[str, NetworkResults]  # null networks by name
    preference: Preference | None

    def network(self, name: str) -> NetworkResults:
        for n in self.networks:
            if n.name == name:
                return n
        raise LookupError(f"no network {name!r} in the results; have {[n.name for n in self.networks]}")


def _load_network(results_dir: Path, name: str, info: dict) -> NetworkResults:
    dissection = load_dissection(results_dir, name)
    layers = dissection.layer_names if dissection is not None else []
    return NetworkResults(
        name=name, null=None, dissection=dissection, census=load_census(results_dir, name),
        segmentations=load_segmentations(results_dir, name, layers),
        minimal=load_minimal(results_dir, name), rf=load_receptive_fields(results_dir, name),
        unit_tiles=load_unit_tiles(results_dir, name),
        localize=load_experiment_files(results_dir, name, "localize"),
        ablate=load_experiment_files(results_dir, name, "ablate"),
        human=load_human(results_dir, name), info=dict(info or {}),
    )


def load_results(results_dir: str | Path, *, networks: list[str] | None = None) -> ResultSet:
    """Read every section's files under ``results_dir``.

    Parameters
    ----------
    results_dir : str or Path
    networks : list of str, optional
        The networks to show side by side (default: every network folder
        found, except ``<name>-random`` folders whose ``<name>`` is present:
        those are the nulls of their network).

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a directory.
    LookupError
        If a requested network has no results.
    ReportInputError
        If a result file exists but cannot be read.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    run = load_run(root)
    found = find_networks(root, run)
    if networks is None:
        chosen = [n for n in found if not (n.endswith(NULL_SUFFIX) and n[: -len(NULL_SUFFIX)] in found)]
    else:
        chosen = list(dict.fromkeys(networks))
        missing = [n for n in chosen if n not in found]
        if missing:
            raise LookupError(f"no results for network(s) {', '.join(missing)} in {root}; found: "
                              f"{', '.join(found) or 'none'}")
    if not found and not _has_preference(root):
        raise LookupError(f"{root} holds no unitscope results (no <network>/dissect, minimal, rf, ... folder and "
                          "no preference/); point the report at the --out of an experiment")
    infos = (run or {}).get("networks") or {}
    loaded = [_load_network(root, name, infos.get(name, {})) for name in chosen]
    nulls: dict[str, NetworkResults] = {}
    for net in loaded:
        null_name = net.name + NULL_SUFFIX
        if null_name in found and null_name not in chosen:
            nulls[null_name] = _load_network(root, null_name, infos.get(null_name, {}))
            net.null = null_name
        elif net.census is not None and len(net.census.objects) and (
                net.census.objects["network"] == null_name).any():
            net.null = null_name
    return ResultSet(root=root, run=run, networks=loaded, nulls=nulls, preference=load_preference(root))
