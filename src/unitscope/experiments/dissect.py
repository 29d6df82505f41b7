"""Network dissection: what each unit of a layer detects (SPEC section 5).

For every unit (channel) of a studied layer, over an annotated pool:

1. the threshold ``T_u`` is the top ``quantile`` (default 0.005) of the
   unit's activations over all images and positions (a mergeable streaming
   quantile sketch, never all activations in memory; ``threshold_rule``
   picks the convention, :mod:`~unitscope.experiments._thresholds`);
2. each activation map is upsampled (bilinear) to the mask size and
   thresholded, ``A_u > T_u`` (a unit whose threshold is its maximum is
   *saturated*: its mask is empty, never inflated by ties);
3. ``IoU(u, c) = sum |A_u > T_u  and  c| / sum |A_u > T_u  or  c|`` over
   the pool (images where ``c``'s category is not annotated do not count);
4. the unit's label is its concept of highest IoU, per category too; it is a
   *detector* when that IoU exceeds ``iou_threshold`` (default 0.04);
5. its *type* follows the paper's taxonomy from the label's category
   (simple elements & colours, texture/material, region/surface, object
   part, object, scene);
6. its *precision* is the fraction of its top ``top_k`` (default 60) images
   (by maximum activation) whose thresholded map overlaps the label's mask.

How many passes: the network runs **once**, the masks are decoded
**once**.  Pass 1 feeds the quantile and top-k statistics and writes the
layer's activations to a disk cache (``activation_cache="disk"``, the
default; float32, one file per layer under the run's partial folder,
deleted at the end), while a worker process decodes the masks into
per-batch label files (kept in ``label_cache`` for later dissections of
the same pool).  Pass 2 reads both back and counts intersections and
unions: only the (image, unit) pairs whose peak reaches the threshold are
upsampled (two small matrix products), and each image's overlaps with its
concepts are one matrix product with its one-hot labels.  With
``activation_cache="recompute"`` pass 2 runs the network again instead (no
disk, twice the forward cost).  Statistics are checkpointed every
``checkpoint_every`` batches; a killed run started again with the same
arguments resumes and ends with the same results.  Under ``torchrun`` each
rank takes a contiguous shard and the statistics are merged exactly (top-k
and counts) or within the sketch's bound (quantiles).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import unitscope
from unitscope.data.concepts import Annotation, ConceptTable
from unitscope.data.workers import worker_batches
from unitscope.experiments import _distributed as D
from unitscope.experiments import _thresholds as TH
from unitscope.experiments._common import (check_spatial_layers, eval_mode, model_device, preprocessing_key,
                                           preprocessing_record)
from unitscope.experiments._io import read_json, write_csv, write_json
from unitscope.experiments._runstate import RunState, config_key, weights_fingerprint
from unitscope.hooks import TraceDict, extra_tokens_of, resolve_layer, spatial_map
from unitscope.stats import PairOverlap, RunningQuantile, RunningTail, RunningTopK
from unitscope.stats.pair_overlap import BatchConcepts, compact_labels
from unitscope.taxonomy import TYPE_NAMES

__all__ = [
    "UNIT_TYPES",
    "CATEGORY_TYPES",
    "DissectionResult",
    "LayerDissection",
    "dissect",
]

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
        never = saturated & TH.is_strict(self.threshold_rule)  # an empty mask by definition
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
        """Per layer: units, detectors, unique concepts/objects, mean IoU, share of each type."""
        rows = []
        for layer in self.layers:
            units = self.unit_frame(layer, iou_threshold=iou_threshold)
            det = units[units["detector"]]
            row = {
                "network": self.network,
                "layer": layer,
                "units": len(units),
                "detectors": len(det),
                "unique_concepts": det["label"].nunique(),
                "unique_objects": det.loc[det["category"] == "object", "label"].nunique(),
                "mean_iou": float(units["iou"].mean()) if len(units) else 0.0,
                "mean_precision": float(det["precision"].mean()) if len(det) else float("nan"),
                "saturated": int(units["saturated"].sum()),
                "max_coverage": float(units["coverage"].max()) if len(units) else float("nan"),
            }
            for key in UNIT_TYPES:
                row[f"share_{key}"] = float((det["type"] == key).sum()) / max(len(units), 1)
            rows.append(row)
        return pd.DataFrame(rows)

    # -- files -------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write the result under ``out_dir`` (each file atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, ld in self.layers.items():
            extra = {key: value for key in ("maxima", "minima", "saturated", "coverage")
                     if (value := getattr(ld, key)) is not None}
            _write_npz(out / f"layer_{_safe(name)}.npz", thresholds=ld.thresholds, iou=ld.iou,
                       top_indices=ld.top_indices, top_values=ld.top_values,
                       top_overlap=np.packbits(ld.top_overlap, axis=-1),
                       num_concepts=np.array(ld.iou.shape[1]), exact=np.array(ld.exact),
                       positions=np.array(ld.positions), **extra)
        pixels = {} if self.concept_pixels is None else {"concept_pixels": self.concept_pixels}
        _write_npz(out / "pool.npz", concept_images=self.concept_images, cooccurrence=self.cooccurrence,
                   **pixels)
        write_csv(out / "concepts.csv", self.concept_frame())
        frame = self.to_frame()
        write_csv(out / "units.csv", frame)
        write_json(out / "units.json", frame.to_dict(orient="records"))
        write_csv(out / "layers.csv", self.layer_summary())
        write_json(out / "result.json", {
            "network": self.network,
            "layers": list(self.layers),
            "image_ids": self.image_ids,
            "config": self.config,
            "thresholds": {"rule": self.threshold_rule, "on": "A >= T" if not TH.is_strict(self.threshold_rule)
                           else "A > T", "exact_quantile": {n: bool(ld.exact) for n, ld in self.layers.items()}},
            "warnings": list(self.warnings),
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "DissectionResult":
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``out_dir`` holds no dissection result.
        """
        out = Path(out_dir)
        if not (out / "result.json").exists():
            raise FileNotFoundError(f"no dissection result in {out} (missing result.json)")
        meta = read_json(out / "result.json")
        concepts_frame = pd.read_csv(out / "concepts.csv", keep_default_na=False)
        from unitscope.data.concepts import Concept

        concepts = ConceptTable([Concept(int(r.number), str(r.name), str(r.category))
                                 for r in concepts_frame.itertuples()])
        layers = {}
        for name in meta["layers"]:
            with np.load(out / f"layer_{_safe(name)}.npz") as z:
                k = int(z["num_concepts"])
                optional = {key: z[key] for key in ("maxima", "minima", "saturated", "coverage") if key in z.files}
                layers[name] = LayerDissection(
                    layer=name, thresholds=z["thresholds"], iou=z["iou"],
                    top_indices=z["top_indices"], top_values=z["top_values"],
                    top_overlap=np.unpackbits(z["top_overlap"], axis=-1, count=k).astype(bool),
                    exact=bool(z["exact"]) if "exact" in z.files else False,
                    positions=int(z["positions"]) if "positions" in z.files else 0, **optional,
                )
        with np.load(out / "pool.npz") as z:
            concept_images, cooccurrence = z["concept_images"], z["cooccurrence"]
            concept_pixels = z["concept_pixels"] if "concept_pixels" in z.files else None
        return cls(network=meta["network"], concepts=concepts, layers=layers,
                   image_ids=list(meta["image_ids"]), concept_images=concept_images,
                   cooccurrence=cooccurrence, config=meta.get("config", {}), concept_pixels=concept_pixels,
                   warnings=list(meta.get("warnings", [])))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def _write_npz(path: Path, **arrays) -> None:
    import io

    from unitscope.experiments._io import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------
# Annotations as tensors
# ---------------------------------------------------------------------------
class _AnnotationView(Dataset):
    """Item ``i``: ``(label layers (L, sh, sw) int64 of concept index or -1, categories, concepts found)``.

    Image-level labels become whole-image layers.  Masks larger than
    ``mask_size`` (longest side) are subsampled by nearest neighbour (the
    pixels ``F.interpolate(mode="nearest")`` picks); the concepts found are
    counted at the masks' own resolution.
    """

    def __init__(self, pool, mask_size: int | None, num_concepts: int) -> None:
        self.pool = pool
        self.mask_size = mask_size
        self.num_concepts = num_concepts

    def __len__(self) -> int:
        return len(self.pool)

    def _target(self, shape: tuple[int, int]):
        """``(indexer, size)`` of the subsampled mask; the indexer is None to keep the native size."""
        if not self.mask_size or max(shape) <= self.mask_size:
            return None, tuple(shape)
        scale = self.mask_size / max(shape)
        size = (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))
        picks = []
        for inp, out in zip(shape, size):
            index = np.minimum(np.floor(np.arange(out) * (inp / out)).astype(np.int64), inp - 1)
            step = inp // out
            regular = out > 1 and step * out == inp and np.array_equal(index, np.arange(0, inp, step))
            picks.append(slice(0, inp, step) if regular else index)  # a slice is a cheap view
        if not any(isinstance(p, slice) for p in picks):
            picks = list(np.ix_(*picks))
        return tuple(picks), size

    def __getitem__(self, i: int):
        ann: Annotation = self.pool.annotation(i)
        target, out_shape = self._target(tuple(ann.mask_shape or self.pool.mask_shape(i)))
        layers, categories, found = [], [], []
        for category, maps in ann.masks.items():
            if maps:
                categories.append(category)
            for m in maps:
                m = np.asarray(m)
                found.append(np.flatnonzero(np.bincount(m.ravel(), minlength=1)))
                layers.append(m if target is None else m[target])
        for category, numbers in ann.image_labels.items():
            if numbers:
                categories.append(category)
            for number in numbers:
                found.append(np.array([number]))
                layers.append(np.full(out_shape, number, dtype=np.int64))
        if not layers:
            layers.append(np.zeros(out_shape, dtype=np.int64))
        found = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        found = found[(found > 0) & (found <= self.num_concepts)] - 1  # numbers -> indices
        stack = np.stack(layers).astype(np.int64) - 1  # number n -> index n - 1; none -> -1
        return torch.from_numpy(stack), sorted(set(categories)), found


class _LabelBatches(Dataset):
    """Item ``b``: the path of batch ``b``'s annotations, decoded, prepared for counting and saved.

    Runs in a worker process during pass 1, on the CPU the forward pass
    leaves idle; pass 2 reads the files back (:func:`_load_label_batch`).
    Each file holds the concepts found per image (for the pool's concept
    counts) and, per group of images sharing a mask shape, the label layers
    re-indexed over the group's concepts (:func:`compact_labels`).

    With a ``cache`` folder, a batch whose images all have an
    :meth:`~unitscope.data.annotated.AnnotatedPool.annotation_key` is saved
    there under a hash of those keys, the mask size and the concept table,
    and found there by any later dissection of the same images (another
    network, layer or threshold): annotations depend on the pool alone.
    Other batches go to the run's own folder.
    """

    def __init__(self, shard, batch_size: int, mask_size, concepts: ConceptTable, folder: Path, rank: int,
                 cache: Path | None = None):
        self.view = _AnnotationView(shard, mask_size, concepts.max_number)
        self.batch_size = batch_size
        self.folder = folder
        self.rank = rank
        self.cache = cache
        self.num_concepts = concepts.max_number
        self.categories = concepts.categories
        self.membership = torch.zeros(len(self.categories), self.num_concepts)  # category -> its concepts
        for c in concepts:
            self.membership[self.categories.index(c.category), c.number - 1] = 1.0
        geometry = getattr(shard, "geometry_key", None)
        # masks cropped or padded like the images are other annotations than the whole masks
        self._salt = config_key({"format": _LABEL_FORMAT, "mask_size": mask_size,
                                 "concepts": concepts.to_records(),
                                 **({"geometry": geometry()} if callable(geometry) and geometry() else {})})

    def __len__(self) -> int:
        return math.ceil(len(self.view) / self.batch_size)

    def _range(self, b: int) -> range:
        first = b * self.batch_size
        return range(first, min(first + self.batch_size, len(self.view)))

    def path(self, b: int) -> Path:
        """Where batch ``b``'s file goes (the cache when every image has a key)."""
        key_of = getattr(self.view.pool, "annotation_key", None)
        if self.cache is not None and key_of is not None:
            keys = [key_of(i) for i in self._range(b)]
            if all(k is not None for k in keys):
                return self.cache / f"{config_key({'salt': self._salt, 'images': keys})}.pt"
        return self.folder / f"labels_rank{self.rank}_{b:07d}.pt"

    def cached(self, b: int) -> str | None:
        """Batch ``b``'s file when the label cache has it already."""
        path = self.path(b)
        if self.cache is None or path.parent != self.cache or not path.exists():
            return None
        import zipfile

        # A cheap look (the archive's directory) that finds a truncated or foreign entry before
        # the run starts; a damaged entry is an error, never a silent decode (STYLE: caches).
        if not zipfile.is_zipfile(path):
            raise RuntimeError(f"the label cache entry {path} is corrupt (not a saved tensor file); "
                               "delete it (or the label cache folder) and run again")
        return str(path)

    def __getitem__(self, b: int) -> str:
        from unitscope.experiments._io import atomic_write_bytes

        path = self.path(b)
        items = [self.view[i] for i in self._range(b)]
        n = len(items)
        category_index = {cat: j for j, cat in enumerate(self.categories)}
        annotated = torch.zeros(n, len(self.categories))
        present = torch.zeros(n, self.num_concepts, dtype=torch.bool)
        for i, (_, cats, found) in enumerate(items):
            annotated[i, [category_index[c] for c in cats if c in category_index]] = 1.0
            present[i, torch.from_numpy(found)] = True
        valid = (annotated @ self.membership) > 0  # concepts whose category is annotated, per image
        by_shape: dict[tuple, list[int]] = {}
        for i, (labels, _, _) in enumerate(items):
            by_shape.setdefault(tuple(labels.shape[1:]), []).append(i)
        groups = []
        for shape, members in by_shape.items():
            depth = max(items[i][0].shape[0] for i in members)
            labels = torch.full((len(members), depth) + shape, -1, dtype=torch.int64)
            for j, i in enumerate(members):
                labels[j, : items[i][0].shape[0]] = items[i][0]
            concepts, index, area = compact_labels(labels.flatten(2), valid[members], self.num_concepts)
            groups.append({"members": members, "shape": shape, "concepts": concepts, "index": index,
                           "area": area, "valid": valid[members]})
        buffer = io.BytesIO()
        torch.save({"present": present, "groups": groups}, buffer)
        # (the label cache holds thousands of files, other runs write into it, and a damaged
        # entry is refused: no listing of the folder, no fsync per file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buffer.getvalue(), clean=False, durable=False)
        except OSError as exc:
            raise OSError(self._write_error(path.parent, exc)) from exc
        return str(path)

    def _write_error(self, folder: Path, exc: OSError) -> str:
        """One line naming the folder a label file could not be written to, and the way out."""
        reason = exc.strerror or str(exc)
        if self.cache is not None and folder == self.cache:
            return (f"cannot write the decoded-label cache in {folder} ({reason}); free space there or "
                    "dissect without it (--label-cache none)")
        return f"cannot write the dissection's decoded labels in {folder} ({reason}); free space there"


#: Version of the label files' layout (part of their cache key).
_LABEL_FORMAT = 1


def _load_label_batch(path: str | Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except FileNotFoundError as exc:
        raise RuntimeError(f"the dissection's decoded labels {path} are missing (was the label cache "
                           "cleaned during the run?); start the run again with restart=True") from exc
    except Exception as exc:
        import pickle

        from unitscope._files import one_line

        # (torch's own message for a refused object is a page of advice to load it unsafely)
        reason = ("it holds Python objects, not just tensors, and is never unpickled"
                  if isinstance(exc, pickle.UnpicklingError) else one_line(exc))
        raise RuntimeError(f"the dissection's decoded labels {path} are unreadable ({reason}); "
                           "delete that file and start the run again") from None


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def _check_inputs(model, layers, data):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("dissect needs at least one layer name")
    repeated = sorted({layer for layer in layers if layers.count(layer) > 1})
    if repeated:
        raise ValueError(f"layers are named more than once: {', '.join(repeated)}")
    for layer in layers:
        resolve_layer(model, layer)
    for attr in ("annotation", "concepts"):
        if not hasattr(data, attr):
            raise ValueError(
                f"dissection needs an annotated pool with concept masks (a Broden directory or an "
                f"image + index-mask pool); {type(data).__name__} has no {attr!r}"
            )
    if len(data) == 0:
        raise ValueError("the pool is empty")
    if len(data.concepts) == 0:
        raise ValueError("the pool has no concepts (its label table is empty)")
    return list(check_spatial_layers(model, layers, data, purpose="dissection"))


def _activations(model, layers, images) -> dict[str, torch.Tensor]:
    with TraceDict(model, layers, stop=True) as td:
        model(images)
    out = {}
    for layer in layers:
        act = spatial_map(td[layer].output, layer=layer, batch=images.shape[0],
                          image_size=images.shape[-2:], extra_tokens=extra_tokens_of(model))
        if torch.isnan(act).any():
            raise ValueError(f"layer {layer!r} produced NaN activations (check the weights and the input)")
        out[layer] = act.float()
    return out


def dissect(
    model: nn.Module,
    layers: str | Sequence[str],
    data,
    *,
    network: str = "network",
    quantile: float = 0.005,
    threshold_rule: str = "unitscope",
    min_support: int = TH.DEFAULT_MIN_SUPPORT,
    iou_threshold: float = 0.04,
    top_k: int = 60,
    batch_size: int = 32,
    num_workers: int = 0,
    mask_size: int | str | None = "auto",
    quantile_resolution: int = 2048,
    activation_cache: str = "disk",
    work_dir: str | Path | None = None,
    checkpoint_every: int = 20,
    restart: bool = False,
    label_cache: str | Path | None = None,
    category_types: dict[str, str] | None = None,
    progress=None,
) -> DissectionResult:
    """Dissect one or more layers of ``model`` over an annotated pool.

    Parameters
    ----------
    model : nn.Module
    layers : str or sequence of str
        Dotted names of spatial layers: outputs ``(N, C, H, W)``, or token
        grids ``(N, T, C)`` read as maps of their patches
        (:func:`unitscope.hooks.spatial_map`).
    data : annotated pool
        A pool with ``concepts`` and ``annotation(i)`` (``BrodenPool``,
        ``IndexMaskPool``); its images must be transformed for ``model``.
    network : str, keyword-only
        Name written in the tables.
    quantile : float, keyword-only
        Top quantile that sets each unit's threshold (0.005: the top 0.5 %).
    threshold_rule : {"unitscope", "netdissect", "inclusive"}, keyword-only
        How the threshold is computed and how ties count (see
        :mod:`unitscope.experiments._thresholds`).  ``"unitscope"``
        (default): the sketch's order statistic, on when ``A > T``, so each
        mask covers at most the nominal share.  ``"netdissect"``: Network
        Dissection's linearly interpolated quantile, exact (each unit's
        largest ``quantile * n + 2`` values are kept in memory in pass 1:
        up to 12 bytes each with the batches waiting to be cut back, e.g.
        52 MB for 512 units of 13 x 13 over 10,000 images; the sketch, with
        a warning, beyond 1 GiB), on when ``A > T``.  ``"inclusive"``:
        unitscope's earlier ``A >= T``, for comparisons.  Units whose
        threshold is their maximum are reported as ``saturated``.
    min_support : int, keyword-only
        Images a concept needs in the pool to be used as a label (default
        10, Broden's own filter); the others stay in ``concepts.csv``.
    iou_threshold : float, keyword-only
        A unit is a detector when its best IoU exceeds this.
    top_k : int, keyword-only
        Top images kept per unit (for precision and the tables).
    batch_size, num_workers : int, keyword-only
    mask_size : int, "auto" or None, keyword-only
        Subsample masks whose longest side exceeds this (nearest neighbour).
        ``"auto"`` (default): half the model's input size, Network
        Dissection's convention (112 px segmentations for 224 px inputs).
        None keeps the masks' native resolution.
    quantile_resolution : int, keyword-only
        Resolution of the quantile sketch (see ``RunningQuantile``).
    activation_cache : {"disk", "recompute"}, keyword-only
        Keep pass-1 activations on disk (one forward pass) or run the
        network again in pass 2.
    work_dir : path, keyword-only
        Where checkpoints and the activation cache go (deleted when the run
        ends).  None: a temporary folder, and no resume.
    checkpoint_every : int, keyword-only
        Batches between checkpoints.
    restart : bool, keyword-only
        Discard a partial run in ``work_dir`` instead of resuming it.
    label_cache : path, keyword-only
        A folder where the pool's decoded annotations are kept for later
        dissections of the same images (other networks, layers or
        thresholds), which then skip decoding the masks: the second and
        later dissections of a pool cost little more than the forward pass.
        Entries are keyed by the mask files' names, sizes and modification
        times, the mask size and the concept table, so an edited pool is
        decoded again.  Size: about ``L x mask_size^2`` bytes per image (L
        label layers).  None (default): decode for this run only.
    category_types : dict, keyword-only
        Overrides of :data:`CATEGORY_TYPES`.
    progress : callable, keyword-only
        ``progress(done, total)`` over both passes.

    Returns
    -------
    DissectionResult

    Raises
    ------
    LookupError
        If a layer does not exist.
    ValueError
        If the pool has no masks, a layer is not spatial, activations are
        NaN, or an option is out of range.
    """
    from unitscope.models.info import model_info

    if mask_size == "auto":
        mask_size = max(1, model_info(model).preprocessing.nominal_side // 2)
    elif mask_size is not None and (isinstance(mask_size, str) or int(mask_size) < 1):
        raise ValueError(f"mask_size must be a positive int, 'auto' or None, not {mask_size!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    TH.check_threshold_rule(threshold_rule)
    TH.check_min_support(min_support)
    if not 0 <= iou_threshold < 1:  # also refuses NaN, which no IoU exceeds
        raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
    if activation_cache not in ("disk", "recompute"):
        raise ValueError(f"activation_cache must be 'disk' or 'recompute', not {activation_cache!r}")
    for name, value in (("batch_size", batch_size), ("top_k", top_k), ("checkpoint_every", checkpoint_every)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if int(num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    layers = _check_inputs(model, layers, data)  # after the options: it runs one image through

    rank, world = D.rank_and_world()
    # Contiguous shards: rank r takes positions [r n / world, (r + 1) n / world) of the pool,
    # and every table refers to images by their position in the whole pool.
    n_all = len(data)
    first, last = rank * n_all // world, (rank + 1) * n_all // world
    shard = data.shard(rank, world) if world > 1 else data
    global_index = np.arange(first, last, dtype=np.int64)
    num_concepts = data.concepts.max_number
    config = {
        "network": network,
        "layers": layers,
        "weights": weights_fingerprint(model),
        "weights_seed": model_info(model).seed,
        "data": {"type": type(data).__name__, "n": len(data),
                 "ids": config_key({"ids": list(getattr(data, "ids", []))}),
                 # what the masks mean: resuming with another class list must not mix the two
                 "labels": config_key({"labels": data.labels_key() if hasattr(data, "labels_key")
                                       else data.concepts.to_records()})},
        "preprocessing": preprocessing_record(model, data),
        "quantile": quantile,
        "threshold_rule": threshold_rule,
        "min_support": int(min_support),
        "iou_threshold": iou_threshold,
        "top_k": top_k,
        "batch_size": batch_size,
        "mask_size": mask_size,
        "quantile_resolution": quantile_resolution,
        "activation_cache": activation_cache,
        "category_types": category_types or {},
        "world_size": world,
        "version": unitscope.__version__,
    }
    # where a value came from is recorded, but the same values resume the same run
    key = config_key(dict(config, preprocessing=preprocessing_key(config["preprocessing"])))

    import tempfile

    temporary = None
    if work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="unitscope-dissect-")
        work_dir = temporary.name
    # Scratch files of this rank: pass 1's activations and decoded labels (see _run).
    state = RunState(Path(work_dir), key, rank=rank, restart=restart,
                     scratch=(f"acts_rank{rank}_*.f32", f"labels_rank{rank}_*.pt"))
    try:
        result = _run(model, layers, data, shard, global_index, num_concepts, state, config,
                      batch_size=batch_size, num_workers=num_workers, mask_size=mask_size,
                      quantile=quantile, threshold_rule=threshold_rule, top_k=top_k,
                      resolution=quantile_resolution,
                      activation_cache=activation_cache, checkpoint_every=checkpoint_every,
                      progress=progress, rank=rank,
                      label_cache=Path(label_cache) if label_cache is not None else None)
    except BaseException:
        # A failure (bad data, a full disk) or an interruption before the first checkpoint leaves
        # nothing to resume from: remove the activation cache rather than leave gigabytes behind.
        # After a checkpoint the run stays resumable, its scratch files with it.
        if not state.path.exists():
            state.clear()
        raise
    finally:
        if temporary is not None:
            temporary.cleanup()
    result.warnings = _warnings(result)
    return result


def _warnings(result: DissectionResult) -> list[str]:
    """The result's plain-sentence warnings: pool size, saturation, concepts left out as labels."""
    config = result.config
    out = []
    for name, ld in result.layers.items():
        out += TH.pool_size_warnings(name, images=len(result.image_ids), positions=ld.positions,
                                     quantile=config["quantile"], top_k=config["top_k"])
        out += TH.saturation_warning(name, ld.saturated, config["threshold_rule"], dead=ld.minima == ld.maxima)
        out += TH.coverage_warning(name, ld.coverage, config["quantile"])
        out += TH.sketch_warning(name, config["threshold_rule"], exact=ld.exact)
    unsupported = [c.name for c in result.concepts if not result.supported()[c.number - 1]]
    return out + TH.support_warning(unsupported, min_support=config["min_support"])


def flag_null(result: DissectionResult, null: DissectionResult) -> list[str]:
    """Add to both results' warnings the layers where the random-weights ``null`` matches ``result``.

    Returns
    -------
    list of str
        The sentences added (NULL_DETECTOR_RATIO in :mod:`~unitscope.experiments._thresholds`).
    """
    count = lambda r: {row.layer: int(row.detectors) for row in r.layer_summary().itertuples()}  # noqa: E731
    found = TH.null_warnings(count(result), count(null), network=result.network)
    for r in (result, null):
        r.warnings.extend(w for w in found if w not in r.warnings)
    return found


def _label_loader(label_batches: _LabelBatches, start_batch: int, num_workers: int):
    """The label file of each batch from ``start_batch`` on, in order, each once it is written.

    Batches found in the label cache are not decoded again; the others are
    decoded by a worker process (in this one when only a few are missing).
    """
    batches = range(start_batch, len(label_batches))
    cached = {b: label_batches.cached(b) for b in batches}  # (before the first batch: a damaged cache
    missing = [b for b in batches if cached[b] is None]      #  entry is refused up front)
    workers = max(1, num_workers) if len(missing) > 2 else 0
    decoded = worker_batches(label_batches, batch_size=None, sampler=missing, num_workers=workers,
                             prefetch_factor=4 if workers else None) if missing else None

    def tokens():
        try:
            for b in batches:
                yield cached[b] if cached[b] is not None else next(decoded)
        finally:
            # Stop the worker now rather than when the garbage collector gets to it: a failed
            # run's cleanup must not race with a label file still being written.
            if decoded is not None:
                decoded.close()

    return tokens()


def _image_loader(shard, batch_size, num_workers, start_batch):
    from unitscope.experiments._common import iter_batches

    indices = list(range(start_batch * batch_size, len(shard)))
    return iter_batches(shard, batch_size, indices=indices, num_workers=num_workers)


def _run(model, layers, data, shard, global_index, num_concepts, state: RunState, config, *,
         batch_size, num_workers, mask_size, quantile, threshold_rule, top_k, resolution, activation_cache,
         checkpoint_every, progress, rank, label_cache):
    device = model_device(model)
    n_local = len(shard)
    n_batches = math.ceil(n_local / batch_size)
    saved = state.load() or {"pass": 1, "batch": 0}
    quantiles = {l: RunningQuantile(resolution, seed=rank) for l in layers}
    topks = {l: RunningTopK(top_k) for l in layers}
    shapes: dict[str, tuple[int, int, int]] = saved.get("shapes", {})
    # The "netdissect" rule's exact tails: each unit's largest values (None: over budget, or not that rule)
    tails: dict[str, RunningTail | None] = {}
    if saved["pass"] == 1 and saved.get("stats"):
        for l in layers:
            quantiles[l].load_state_dict(saved["stats"]["quantile"][l])
            topks[l].load_state_dict(saved["stats"]["topk"][l])
        for l, tail_state in saved["stats"].get("tails", {}).items():
            tails[l] = RunningTail.from_state_dict(tail_state) if tail_state is not None else None
    total_work = 2 * n_batches

    def report(done):
        if progress is not None:
            progress(done, total_work)

    caches: dict[str, _ActivationFile] = {}
    label_batches = _LabelBatches(shard, batch_size, mask_size, data.concepts, state.folder, rank,
                                  cache=label_cache)
    label_paths: list[str] = list(saved.get("label_paths", []))
    state.folder.mkdir(parents=True, exist_ok=True)

    def open_cache(layer):
        state.folder.mkdir(parents=True, exist_ok=True)
        return _ActivationFile(state.folder / f"acts_rank{rank}_{_safe(layer)}.f32", shapes[layer])

    with eval_mode(model), torch.inference_mode():
        # ---- pass 1: thresholds (quantiles) and top images ----------------------
        if saved["pass"] == 1:
            batch_no = saved["batch"]
            report(batch_no)
            # Annotations are decoded by a worker process while this one runs the network; each
            # batch's labels land in a file that pass 2 reads back (one token per batch here).
            # (closed on the way out, so that no worker still writes a label file after a failure)
            with contextlib.closing(_label_loader(label_batches, batch_no, num_workers)) as label_tokens:
                batches = _image_loader(shard, batch_size, num_workers, batch_no)
                for positions, images, metas, dropped in batches:
                    if dropped:
                        raise ValueError(f"{dropped} unreadable image(s) in batch {batch_no}; dissection "
                                         "needs every image (fix or remove them)")
                    acts = _activations(model, layers, images.to(device))
                    ids = torch.as_tensor(global_index[positions], device=device)
                    for layer, act in acts.items():
                        n, c, h, w = act.shape
                        shapes.setdefault(layer, (c, h, w))
                        values = act.permute(0, 2, 3, 1).reshape(-1, c)
                        quantiles[layer].add(values)
                        topks[layer].add(act.amax(dim=(2, 3)), ids)
                        if threshold_rule == "netdissect":
                            if layer not in tails:
                                tails[layer] = TH.exact_tail(len(data) * h * w, c, quantile, len(layers))
                            if tails[layer] is not None:
                                tails[layer].add(values)
                        if activation_cache == "disk":
                            if layer not in caches:
                                caches[layer] = open_cache(layer)
                            caches[layer].write(positions[0], act.cpu().numpy())
                    label_paths.append(next(label_tokens))
                    batch_no += 1
                    report(batch_no)
                    if batch_no % checkpoint_every == 0 and batch_no < n_batches:
                        for cache in caches.values():
                            cache.flush()
                        state.save({"pass": 1, "batch": batch_no, "shapes": shapes,
                                    "label_paths": label_paths,
                                    "stats": {
                            "quantile": {l: quantiles[l].state_dict() for l in layers},
                            "topk": {l: topks[l].state_dict() for l in layers},
                            "tails": {l: t.state_dict() if t is not None else None for l, t in tails.items()}}})
                label_paths.extend(label_tokens)  # (none left unless the image loader stopped early)
            for cache in caches.values():
                cache.flush()
            # Merge over ranks: every rank gets the same thresholds and top sets.
            merged = {}
            for layer in layers:
                q = D.merge_across_ranks(quantiles[layer], lambda s: RunningQuantile.from_state_dict(s))
                t = D.merge_across_ranks(topks[layer], lambda s: RunningTopK.from_state_dict(s))
                tail = tails.get(layer)
                if tail is not None:
                    tail = D.merge_across_ranks(tail, RunningTail.from_state_dict)
                values, indices = t.result()
                merged[layer] = TH.layer_thresholds(q, tail, quantile, threshold_rule)
                merged[layer].update({
                    "top_values": values.cpu().numpy(),
                    "top_indices": indices.cpu().numpy().astype(np.int64),
                })
            all_shapes = D.gather_objects(shapes)
            for s in all_shapes:
                shapes.update(s)
            saved = {"pass": 2, "batch": 0, "shapes": shapes, "merged": merged, "label_paths": label_paths}
            state.save(saved)
        merged = saved["merged"]

        # ---- pass 2: intersections and unions ----------------------------------
        overlaps = {l: PairOverlap(merged[l]["thresholds"].shape[0], num_concepts).to(device) for l in layers}
        upsamplers = {l: _Upsampler() for l in layers}
        top_overlap = {l: np.zeros(merged[l]["top_indices"].shape + (num_concepts,), dtype=bool)
                       for l in layers}
        concept_images = np.zeros(num_concepts, dtype=np.int64)
        cooccurrence = np.zeros((num_concepts, num_concepts), dtype=np.int64)
        if saved.get("stats2"):
            for l in layers:
                overlaps[l].load_state_dict(saved["stats2"]["overlap"][l])
                top_overlap[l] = saved["stats2"]["top_overlap"][l].copy()
            concept_images = saved["stats2"]["concept_images"].copy()
            cooccurrence = saved["stats2"]["cooccurrence"].copy()
        # (pool position, unit) -> rank among the unit's top images, per layer
        top_lookup = {}
        for l in layers:
            lookup: dict[tuple[int, int], int] = {}
            for u, row in enumerate(merged[l]["top_indices"]):
                for r, g in enumerate(row.tolist()):
                    if g >= 0:
                        lookup[(g, u)] = r
            top_lookup[l] = lookup
        # float32 like the activations, so that "the next float above T" is the activations' next float
        cutoffs = {l: TH.cutoffs(torch.as_tensor(merged[l]["thresholds"], dtype=torch.float32, device=device),
                                 torch.as_tensor(merged[l]["minima"], dtype=torch.float32, device=device),
                                 torch.as_tensor(merged[l]["saturated"], device=device), threshold_rule)
                   for l in layers}
        if activation_cache == "disk":
            for cache in caches.values():
                cache.close()
            caches = {l: open_cache(l) for l in layers}
        batch_no = saved["batch"]
        report(n_batches + batch_no)
        image_batches = (_image_loader(shard, batch_size, num_workers, batch_no)
                         if activation_cache == "recompute" else None)
        for b in range(batch_no, n_batches):
            first, stop = b * batch_size, min((b + 1) * batch_size, n_local)
            positions = list(range(first, stop))
            if activation_cache == "disk":
                acts = {l: torch.from_numpy(caches[l].read(first, stop)).to(device) for l in layers}
            else:
                _, images, _, _ = next(image_batches)
                acts = _activations(model, layers, images.to(device))
            labels = _load_label_batch(label_paths[b])
            present = labels["present"].float()
            concept_images += present.sum(0).long().numpy()
            cooccurrence += (present.T @ present).long().numpy()
            for group in labels["groups"]:
                members = group["members"]
                concepts = BatchConcepts.from_index(group["concepts"].to(device), group["index"].to(device),
                                                    group["area"].to(device), group["valid"].to(device))
                member_ids = [int(global_index[positions[i]]) for i in members]
                for layer in layers:
                    _count_overlaps(acts[layer][members], cutoffs[layer], group["shape"],
                                    concepts, overlaps[layer], top_overlap[layer], top_lookup[layer],
                                    member_ids, upsamplers[layer])
            batch_no += 1
            report(n_batches + batch_no)
            if batch_no % checkpoint_every == 0 and batch_no < n_batches:
                state.save({"pass": 2, "batch": batch_no, "shapes": shapes, "merged": merged,
                            "label_paths": label_paths,
                            "stats2": {"overlap": {l: overlaps[l].state_dict() for l in layers},
                                       "top_overlap": top_overlap, "concept_images": concept_images,
                                       "cooccurrence": cooccurrence}})

    # ---- merge over ranks and assemble -----------------------------------------
    layer_results = {}
    for layer in layers:
        o = D.merge_across_ranks(overlaps[layer], PairOverlap.from_state_dict)
        tops = D.gather_objects(top_overlap[layer])
        combined = np.logical_or.reduce(tops) if len(tops) > 1 else tops[0]
        m = merged[layer]
        layer_results[layer] = LayerDissection(
            layer=layer, thresholds=m["thresholds"], iou=o.iou().cpu().numpy().astype(np.float64),
            top_indices=m["top_indices"], top_values=m["top_values"], top_overlap=combined,
            maxima=m["maxima"], minima=m["minima"], saturated=m["saturated"], coverage=o.coverage().cpu().numpy(),
            exact=m["exact"], positions=m["positions"])
        concept_pixels = o.concept_area.cpu().numpy()
    concept_images = np.sum(D.gather_objects(concept_images), axis=0)
    cooccurrence = np.sum(D.gather_objects(cooccurrence), axis=0)
    for cache in caches.values():
        cache.close()
    caches.clear()
    D.barrier()
    state.clear()
    return DissectionResult(
        network=config["network"], concepts=data.concepts, layers=layer_results,
        image_ids=list(getattr(data, "ids", [str(i) for i in range(len(data))])),
        concept_images=concept_images, cooccurrence=cooccurrence, config=config, concept_pixels=concept_pixels)


class _ActivationFile:
    """Pass 1's activations of one layer on disk: float32 ``(C, H, W)`` per image, in pool order.

    Plain positioned reads and writes rather than a memory map, so the
    pages live in the OS's file cache and not in the process's memory.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int]) -> None:
        self.path = path
        self.shape = tuple(int(s) for s in shape)
        self.image_bytes = 4 * math.prod(self.shape)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def write(self, first: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        offset = first * self.image_bytes
        while data:
            written = os.pwrite(self.fd, data, offset)
            data, offset = data[written:], offset + written

    def read(self, first: int, stop: int) -> np.ndarray:
        size = (stop - first) * self.image_bytes
        data = os.pread(self.fd, size, first * self.image_bytes)
        if len(data) != size:
            raise RuntimeError(f"the activation cache {self.path} is shorter than expected (a partial run "
                               "from another version?); start again with restart=True")
        return np.frombuffer(data, dtype=np.float32).reshape((stop - first,) + self.shape).copy()

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = close


class _Upsampler:
    """Bilinear upsampling (``align_corners=False``, as ``F.interpolate``) as two matrix products.

    ``up = Wy @ A @ Wx`` with the 1-D interpolation matrices of each axis:
    the same values as ``F.interpolate(mode="bilinear")`` to float rounding,
    several times faster on the CPU for many small maps.
    """

    def __init__(self) -> None:
        self._matrices: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _axis(n_in: int, n_out: int, device) -> torch.Tensor:
        eye = torch.eye(n_in, device=device)[None]
        return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0]  # (n_in, n_out)

    def __call__(self, maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """``maps (M, h, w)`` -> ``(M, sh, sw)``."""
        h, w = maps.shape[-2:]
        key = (h, w, shape, maps.device, maps.dtype)
        if key not in self._matrices:
            self._matrices[key] = (self._axis(h, shape[0], maps.device).T.to(maps.dtype).contiguous(),
                                   self._axis(w, shape[1], maps.device).to(maps.dtype).contiguous())
        wy, wx = self._matrices[key]
        return wy @ maps @ wx


#: Mask pixels thresholded and counted at a time in pass 2 (~16 MB of float32): big
#: enough to batch many images' small maps, small enough to stay in the CPU's cache.
_CHUNK_PIXELS = 1 << 22


def _count_overlaps(act, cutoff, shape, concepts, overlap, top_table, lookup, image_ids, upsample):
    """Pass 2 for one layer and a batch of images sharing one mask shape.

    Only the units whose peak reaches their threshold on an image are
    upsampled (a bilinear upsample never exceeds the largest input value, so
    the others have empty masks: with the top 0.5 % quantile most pairs are
    skipped).  A few images at a time (so the masks stay in the CPU's
    cache), their masks are thresholded and their overlaps with the images'
    concepts counted (:meth:`PairOverlap.add_masks`); for the (unit, rank)
    whose top image this is, the concepts the mask touches are marked in
    ``top_table``.  A position is on when its value is ``>= cutoff``
    (:func:`~unitscope.experiments._thresholds.cutoffs` sets it per rule).
    """
    overlap.add_images(concepts)
    image, unit = torch.nonzero(act.amax(dim=(2, 3)) >= cutoff[None, :], as_tuple=True)
    if not image.numel():
        return
    concept_index = concepts.concepts.cpu().numpy()  # (N, J), -1 padded
    pixels = shape[0] * shape[1]
    images, units = image.tolist(), unit.tolist()
    start = 0
    while start < len(images):
        stop = start
        while stop < len(images) and (stop == start or (stop - start) * pixels < _CHUNK_PIXELS
                                      or images[stop] == images[stop - 1]):
            stop += 1
        rows = slice(start, stop)
        masks = (upsample(act[image[rows], unit[rows]], shape) >= cutoff[unit[rows]][:, None, None]).flatten(1)
        inter = overlap.add_masks(image[rows], unit[rows], masks, concepts)
        tops = [(m, lookup[(image_ids[images[m]], units[m])]) for m in range(start, stop)
                if (image_ids[images[m]], units[m]) in lookup]
        if tops:
            hit = (inter[[m - start for m, _ in tops]] > 0).cpu().numpy()
            for (m, rank), row in zip(tops, hit):
                top_table[units[m], rank, concept_index[images[m]][row]] = True
        start = stop
