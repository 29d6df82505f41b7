"""Minimal-images runs of a network, as the report reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unitscope.results.layout import DIAGNOSTIC_CSV, IMAGES_CSV, MINIMAL, MINIMAL_JSON, OBJECTS_CSV
from unitscope.results.schema import read_json, read_table

__all__ = ["MinimalRun", "load_minimal"]


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
    base = Path(results_dir) / network / MINIMAL
    runs: list[MinimalRun] = []
    if not base.is_dir():
        return runs
    for meta_path in sorted(base.rglob(MINIMAL_JSON)):
        folder = meta_path.parent
        meta = read_json(meta_path)
        images = read_table(folder / IMAGES_CSV, MINIMAL)
        images = pd.DataFrame() if images is None else images
        for column in ("kept_fraction", "n_segments", "n_kept", "initial_score", "final_score"):
            if column in images.columns:
                images[column] = pd.to_numeric(images[column], errors="coerce")
        objects = read_table(folder / OBJECTS_CSV, MINIMAL)
        diagnostic = read_table(folder / DIAGNOSTIC_CSV, MINIMAL)
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
