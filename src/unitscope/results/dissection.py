"""What a dissection found: per-layer arrays, the per-unit and per-layer tables, and their files.

:class:`DissectionResult` holds both passes' measurements (a
:class:`LayerDissection` per layer, the pool's concept counts).  Its tables
name each unit's best concept, type and precision and whether it is a
detector; :meth:`~DissectionResult.save` and :meth:`~DissectionResult.load`
write and read the arrays (``layer_<layer>.npz``, ``pool.npz``) and, through
:mod:`unitscope.results.dissection_tables`, the tables (``units.csv``,
``layers.csv``, ``concepts.csv``, ``result.json``), which is also what the
report and the labeling app read: a folder holding only the tables (a
published dissection imported as tables) is read there, without the arrays.
The result's warnings are plain sentences
(:mod:`unitscope.results.dissection_warnings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope.concepts import Concept, ConceptTable
from unitscope.results import layout
from unitscope.results.dissection_tables import summarise_layers, write_tables
from unitscope.results.dissection_warnings import is_strict
from unitscope.results.schema import ResultFileError, read_required_json, read_table
from unitscope.results.writing import write_npz
from unitscope.taxonomy import TYPE_NAMES

__all__ = ["UNIT_TYPES", "CATEGORY_TYPES", "LayerDissection", "DissectionResult"]

#: The paper's unit taxonomy (keys used in every table).
UNIT_TYPES = TYPE_NAMES

#: Default type of a unit from its label's category.  ``material`` maps to
#: region/surface because the built-in world and CamVid file surfaces (wall,
#: sky, road) there; for the real Broden, whose materials are wood/fabric/...,
#: pass ``category_types={"material": "texture"}``.
CATEGORY_TYPES = {
    "color": "simple",
    "texture": "texture",
    "material": "region",
    "part": "part",
    "object": "object",
    "scene": "scene",
}


@dataclass
class LayerDissection:
    """Dissection of one layer.

    Shapes: ``U`` is the layer's number of units, ``K`` the number of concepts.

    Attributes
    ----------
    layer : str
    thresholds : ndarray, shape (U,)
        Activation threshold of each unit.
    iou : ndarray, shape (U, K)
        IoU of each unit with each concept; column ``j`` is concept number ``j + 1``.
    top_indices : ndarray, shape (U, top_k)
        Pool indices of each unit's top images (highest max activation), -1 padded.
    top_values : ndarray, shape (U, top_k)
    top_overlap : ndarray, shape (U, top_k, K), bool
        Whether the unit's thresholded map on that top image overlaps each concept.
    maxima, minima : ndarray, shape (U,), optional
        Each unit's largest and smallest activation over the pool.
    saturated : ndarray, shape (U,), bool, optional
        Threshold equal to the maximum (see :mod:`unitscope.experiments._thresholds`).
    coverage : ndarray, shape (U,), optional
        Share of all mask pixels of the pool where the unit was on.
    exact : bool
        Whether the thresholds are exact quantiles (the ``"netdissect"`` rule
        within its memory budget) rather than the streaming sketch's.
    positions : int
        Activations per unit over the pool (images x positions of the map).
    """

    layer: str
    thresholds: np.ndarray
    iou: np.ndarray
    top_indices: np.ndarray
    top_values: np.ndarray
    top_overlap: np.ndarray
    maxima: np.ndarray | None = None
    minima: np.ndarray | None = None
    saturated: np.ndarray | None = None
    coverage: np.ndarray | None = None
    exact: bool = False
    positions: int = 0

    @property
    def num_units(self) -> int:
        return int(self.thresholds.shape[0])


@dataclass
class DissectionResult:
    """What :func:`dissect` returns: per-layer arrays plus the per-unit table.

    Use :meth:`to_frame` for the per-unit table, :meth:`layer_summary` for
    the per-layer one, :meth:`save` / :meth:`load` for files (``units.csv``,
    ``units.json``, ``layers.csv``, ``concepts.csv``, ``layer_<name>.npz``,
    ``result.json``).
    """

    network: str
    concepts: ConceptTable
    layers: dict[str, LayerDissection]
    image_ids: list[str]
    concept_images: np.ndarray  # (K,) images containing each concept
    cooccurrence: np.ndarray  # (K, K) images containing both concepts
    config: dict[str, Any] = field(default_factory=dict)
    concept_pixels: np.ndarray | None = None  # (K,) mask pixels of each concept (at the mask size)
    warnings: list[str] = field(default_factory=list)  # plain sentences (pool size, saturation, null)

    @property
    def threshold_rule(self) -> str:
        """The tie rule of the masks (results from before the option used ``"inclusive"``)."""
        return self.config.get("threshold_rule", "inclusive")

    def supported(self) -> np.ndarray:
        """``(K,)`` bool: concepts with at least ``min_support`` images in the pool (usable as labels)."""
        return np.asarray(self.concept_images) >= int(self.config.get("min_support", 0))

    # -- labels ----------------------------------------------------------------
    def _column_concepts(self) -> list:
        k = self.cooccurrence.shape[0]
        return [self.concepts[j + 1] if (j + 1) in self.concepts else None for j in range(k)]

    def concept_frame(self) -> pd.DataFrame:
        """Per concept: number, name, category, images and pixels in the pool, and whether it is a label."""
        frame = pd.DataFrame(self.concepts.to_records())
        if len(frame):
            index = frame["number"].to_numpy() - 1
            frame["images"] = np.asarray(self.concept_images)[index]
            if self.concept_pixels is not None:
                frame["pixels"] = np.asarray(self.concept_pixels)[index]
            frame["supported"] = self.supported()[index]
        return frame

    def unit_frame(self, layer: str, *, iou_threshold: float | None = None,
                   category_types: dict[str, str] | None = None) -> pd.DataFrame:
        """The per-unit table of one layer (see :meth:`to_frame`)."""
        iou_threshold = self.config.get("iou_threshold", 0.04) if iou_threshold is None else iou_threshold
        types = dict(CATEGORY_TYPES, **(self.config.get("category_types") or {}), **(category_types or {}))
        ld = self.layers[layer]
        columns = self._column_concepts()
        # Labels come from the concepts with enough images (see _thresholds), nothing else.
        valid = np.array([c is not None for c in columns]) & self.supported()[:len(columns)]
        iou = np.where(valid[None, :], ld.iou, -1.0)
        saturated = ld.saturated if ld.saturated is not None else np.zeros(ld.num_units, dtype=bool)
        never = saturated & is_strict(self.threshold_rule)  # an empty mask by definition
        categories = self.concepts.categories
        rows = []
        for u in range(ld.num_units):
            best = int(np.argmax(iou[u])) if iou.shape[1] else -1
            score = float(iou[u, best]) if best >= 0 else 0.0
            concept = columns[best] if best >= 0 and score > 0 else None
            tops = ld.top_indices[u]
            tops = tops[tops >= 0]
            n_top = len(tops)
            precision = (
                float(ld.top_overlap[u, :n_top, best].mean()) if n_top and best >= 0 else float("nan")
            )
            row = {
                "network": self.network,
                "layer": layer,
                "unit": u,
                "label": concept.name if concept else "",
                "category": concept.category if concept else "",
                "type": types.get(concept.category, "") if concept else "",
                "iou": score,
                "score": score,
                "detector": bool(score > iou_threshold and not never[u]),
                "threshold": float(ld.thresholds[u]),
                "saturated": bool(saturated[u]),
                "coverage": float(ld.coverage[u]) if ld.coverage is not None else float("nan"),
                "precision": precision,
                "top_images": ";".join(self.image_ids[i] for i in tops.tolist()),
            }
            for cat in categories:
                cols = [j for j, c in enumerate(columns) if valid[j] and c.category == cat]
                if cols:
                    j = cols[int(np.argmax(ld.iou[u, cols]))]
                    row[f"{cat}_label"] = columns[j].name
                    row[f"{cat}_iou"] = float(ld.iou[u, j])
            rows.append(row)
        return pd.DataFrame(rows)

    def to_frame(self, *, iou_threshold: float | None = None) -> pd.DataFrame:
        """Per-unit table over every layer.

        Columns: network, layer, unit, label, category, type, iou (alias
        score, NetDissect's name), detector, threshold, saturated,
        coverage, precision, top_images (``;``-separated image ids) and
        ``<category>_label`` / ``<category>_iou`` for the best concept of
        each category.  Labels are chosen among the concepts with at least
        ``min_support`` images (``concepts.csv``'s ``supported``).  A
        saturated unit under a strict rule has an empty mask: IoU 0, no
        label, never a detector.  ``coverage`` is the share of the pool's
        mask pixels where the unit is on, counted on the upsampled masks the
        IoU sees (bilinear upsampling lowers it for peaked maps and can
        raise it for sparse ones).
        """
        frames = [self.unit_frame(layer, iou_threshold=iou_threshold) for layer in self.layers]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def layer_summary(self, *, iou_threshold: float | None = None) -> pd.DataFrame:
        """Per layer: units, detectors, unique concepts/objects, mean IoU, saturated units, share of each type."""
        return summarise_layers(self.to_frame(iou_threshold=iou_threshold), self.network)

    # -- files -------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write the result under ``out_dir`` (each file atomically): arrays, then the tables."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, ld in self.layers.items():
            extra = {key: value for key in ("maxima", "minima", "saturated", "coverage")
                     if (value := getattr(ld, key)) is not None}
            write_npz(out / layout.layer_npz(name), thresholds=ld.thresholds, iou=ld.iou,
                      top_indices=ld.top_indices, top_values=ld.top_values,
                      top_overlap=np.packbits(ld.top_overlap, axis=-1),
                      num_concepts=np.array(ld.iou.shape[1]), exact=np.array(ld.exact),
                      positions=np.array(ld.positions), **extra)
        pixels = {} if self.concept_pixels is None else {"concept_pixels": self.concept_pixels}
        write_npz(out / layout.POOL_NPZ, concept_images=self.concept_images, cooccurrence=self.cooccurrence,
                  **pixels)
        write_tables(out, units=self.to_frame(), layers=self.layer_summary(), concepts=self.concept_frame(),
                     document={
                         "network": self.network,
                         "layers": list(self.layers),
                         "image_ids": self.image_ids,
                         "config": self.config,
                         "thresholds": {"rule": self.threshold_rule,
                                        "on": "A >= T" if not is_strict(self.threshold_rule) else "A > T",
                                        "exact_quantile": {n: bool(ld.exact) for n, ld in self.layers.items()}},
                         "warnings": list(self.warnings),
                     })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "DissectionResult":
        """Read a result written by :meth:`save` (arrays and tables).

        A folder with no dissection result, or only its tables (read those with
        :meth:`DissectionTables.load <unitscope.results.dissection_tables.DissectionTables.load>`),
        is a ``FileNotFoundError``; a ``result.json`` that lacks what the arrays need (its
        ``network``, ``layers`` or ``image_ids``), or a file that cannot be read, a
        :class:`~unitscope.results.schema.ResultFileError`.
        """
        out = Path(out_dir)
        meta_path = out / layout.RESULT_JSON
        meta = read_required_json(meta_path, what="dissection result")
        missing = [key for key in ("network", "layers", "image_ids") if key not in meta]
        if missing:
            raise ResultFileError(f"{meta_path} lacks {', '.join(missing)}: not the result.json of a saved "
                                  "dissection (written by an older unitscope?)")
        concepts_frame = read_table(out / layout.CONCEPTS_CSV, layout.DISSECT)
        if concepts_frame is None:
            raise FileNotFoundError(f"{out / layout.CONCEPTS_CSV} is missing: a dissection result needs it to "
                                    "name its concepts (results of older versions: run the dissection again)")
        lacking = [c for c in ("number", "name", "category") if c not in concepts_frame.columns]
        if lacking:
            raise ResultFileError(f"{out / layout.CONCEPTS_CSV} lacks the column(s) {', '.join(lacking)}")
        concepts = ConceptTable([Concept(int(r.number), str(r.name), str(r.category))
                                 for r in concepts_frame.itertuples()])
        layers = {name: _load_layer(out, name) for name in meta["layers"]}
        pool = out / layout.POOL_NPZ
        if not pool.is_file():
            raise FileNotFoundError(f"{pool} is missing: the pool's concept counts of the dissection in {out}")
        with np.load(pool) as z:
            concept_images, cooccurrence = z["concept_images"], z["cooccurrence"]
            concept_pixels = z["concept_pixels"] if "concept_pixels" in z.files else None
        return cls(network=meta["network"], concepts=concepts, layers=layers,
                   image_ids=list(meta["image_ids"]), concept_images=concept_images,
                   cooccurrence=cooccurrence, config=meta.get("config") or {}, concept_pixels=concept_pixels,
                   warnings=list(meta.get("warnings") or []))


def _load_layer(out: Path, name: str) -> LayerDissection:
    """One layer's arrays, under any spelling of its file name a writer used (:func:`layout.layer_file_names`)."""
    path = next((p for p in (out / f"layer_{n}.npz" for n in layout.layer_file_names(name)) if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"{out / layout.layer_npz(name)} is missing: the arrays of layer {name} "
                                f"(a folder holding only the tables is read with DissectionTables.load)")
    with np.load(path) as z:
        k = int(z["num_concepts"])
        optional = {key: z[key] for key in ("maxima", "minima", "saturated", "coverage") if key in z.files}
        return LayerDissection(
            layer=name, thresholds=z["thresholds"], iou=z["iou"],
            top_indices=z["top_indices"], top_values=z["top_values"],
            top_overlap=np.unpackbits(z["top_overlap"], axis=-1, count=k).astype(bool),
            exact=bool(z["exact"]) if "exact" in z.files else False,
            positions=int(z["positions"]) if "positions" in z.files else 0, **optional,
        )
