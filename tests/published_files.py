"""Hand-made published files with known answers: a small ICLR 2015 crowd file, a small Network Dissection table.

Shared by tests/test_published.py, tests/test_published_import.py and the
bad-input battery (tests/bad_inputs/test_bad_import.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pandas as pd
import scipy.io

__all__ = ["PUBLISHED", "published_or_skip", "CATEGORIES", "HEADER", "ROWS", "SMALL", "WIDTHS", "direct_census", "write_crowd", "write_table"]

#: The released files (``../shared/published``).
PUBLISHED = (Path(__file__).resolve().parents[1] / ".." / "shared" / "published").resolve()


def published_or_skip() -> Path:
    """:data:`PUBLISHED`, or skip the test when the released files are absent."""
    if not PUBLISHED.is_dir():
        pytest.skip(f"published data not found at {PUBLISHED}")
    return PUBLISHED


#: Network Dissection's categories, in the released tables' column order.
CATEGORIES = ("object", "part", "scene", "material", "texture", "color")


def _table(rows: list[list[tuple]]) -> np.ndarray:
    table = np.empty((len(rows), len(rows[0]) * 3 if rows else 9), dtype=object)
    for i, row in enumerate(rows):
        for j, (description, code, precision) in enumerate(row):
            table[i, 3 * j: 3 * j + 3] = [description, code, precision]
    return table


def write_crowd(path: Path, layers: dict[str, list[list[tuple]]], *, average=None, **extra) -> Path:
    """A unitAnnotation_*.mat as MATLAB writes it: cells of (description, code, precision) triples."""
    cells = np.empty((len(layers), 2), dtype=object)
    for i, (name, rows) in enumerate(layers.items()):
        cells[i, 0], cells[i, 1] = _table(rows), name
    if average is None:
        average = np.array([[sum(code == c for row in rows for _, code, _ in row) / (3 * len(rows))
                             for c in range(1, 7)] for rows in layers.values()])
    scipy.io.savemat(path, {"layerAnnotation": cells, "layerAverageCount": average, **extra})
    return path


#: layer "low": two units; layer "high": three.  Precisions are shares of 6 images.
SMALL = {
    "low": [[("red", 6, 1.0), ("Red", 6, 5 / 6), ("stripes", 5, 0.5)],
            [("grass", 5, 0.5), ("lawn", 3, 0.5), ("green", 6, 0.5)]],
    "high": [[("Bed", 2, 1.0), ("beds", 2, 4 / 6), ("pillow", 4, 2 / 6)],
             [("bedroom", 1, 1.0), ("bedroom", 1, 1.0), ("bedroom", 1, 5 / 6)],
             [("car", 2, 5 / 6), ("wheel", 4, 1.0), ("road", 3, 1.0)]],
}
WIDTHS = {"low": 2, "high": 3}


HEADER = ("unit,category,label,score,object-label,object-truth,object-activation,object-intersect,object-iou,"
          "texture-label,texture-truth,texture-activation,texture-intersect,texture-iou")
#: 5 units; at 0.04: units 3, 1, 5 detect by best label (car, car, striped); per category: objects car (3, 1),
#: wheel (2, 0.05), sky (5, 0.06); textures striped (5), dotted (1, 0.045).
ROWS = [
    "3,object,car,0.2,car,100,50.0,25,0.2,striped,10,5.0,0,0.01",
    "1,object,car,0.1,car,100,50.0,14,0.1,dotted,10,5.0,1,0.045",
    "2,object,wheel,0.05,wheel,10,5.0,1,0.05,,0,0.0,0,0.0",
    "5,texture,striped,0.3,sky,10,5.0,1,0.06,striped,10,5.0,3,0.3",
    "4,texture,dotted,0.04,car,10,5.0,0,0.0,dotted,10,5.0,1,0.04",
]


def write_table(path: Path, rows=ROWS, header=HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def direct_census(path: Path, threshold: float = 0.04) -> dict[str, int]:
    """The census counted straight from the CSV with pandas, independently of read_netdissect."""
    raw = pd.read_csv(path, keep_default_na=False)
    detectors = raw[raw["score"] > threshold]
    objects = detectors[detectors["category"] == "object"]
    per_category = {c: raw[(raw[f"{c}-iou"] > threshold) & (raw[f"{c}-label"] != "")] for c in CATEGORIES}
    return {
        "units": len(raw), "detectors": len(detectors),
        "object_detectors_best_label": len(objects),
        "unique_concepts_best_label": detectors["label"].nunique(),
        "unique_objects_best_label": objects["label"].nunique(),
        "detections_per_category": sum(len(t) for t in per_category.values()),
        "unique_concepts_per_category": sum(t[f"{c}-label"].nunique() for c, t in per_category.items()),
        "object_detectors_per_category": len(per_category["object"]),
        "unique_objects_per_category": per_category["object"]["object-label"].nunique(),
    }
