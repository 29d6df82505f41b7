"""Layer preference (``RESULTS/preference``), as the report reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unitscope.results.layout import FRACTIONS_CSV, PREFERENCE, PREFERENCE_JSON, TOP_IMAGES_CSV
from unitscope.results.schema import read_json, read_table

__all__ = ["Preference", "load_preference", "has_preference"]


@dataclass
class Preference:
    """Layer preference (``RESULTS/preference``): source fractions and top-image thumbnails."""

    fractions: pd.DataFrame  # network, layer, source, count, fraction
    top_images: pd.DataFrame  # network, layer, rank, id, source, score
    thumbnails: pd.DataFrame  # network, layer, rank, id, source, path (absolute)
    top: int
    sources: list[str]


def has_preference(results_dir: Path) -> bool:
    return (results_dir / PREFERENCE / FRACTIONS_CSV).is_file() or any(
        results_dir.glob(f"*/{PREFERENCE}/{FRACTIONS_CSV}"))


def load_preference(results_dir: Path) -> Preference | None:
    """Read ``RESULTS/preference`` (or every ``RESULTS/<network>/preference``); None when absent."""
    results_dir = Path(results_dir)
    folders = [results_dir / PREFERENCE] if (results_dir / PREFERENCE / FRACTIONS_CSV).is_file() else []
    if not folders and results_dir.is_dir():
        folders = sorted(p.parent for p in results_dir.glob(f"*/{PREFERENCE}/{FRACTIONS_CSV}"))
    if not folders:
        return None
    fractions, tops, thumbs, sources, top = [], [], [], [], 0
    for folder in folders:
        fractions.append(read_table(folder / FRACTIONS_CSV, PREFERENCE))
        top_frame = read_table(folder / TOP_IMAGES_CSV, PREFERENCE)
        if top_frame is not None:
            tops.append(top_frame)
        meta = read_json(folder / PREFERENCE_JSON) or {}
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
