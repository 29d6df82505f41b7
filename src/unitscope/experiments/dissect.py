"""Network dissection: what each unit of a layer detects (SPEC section 5).

For every unit (channel) of a studied layer, over an annotated pool:

1. the threshold ``T_u`` is the top ``quantile`` (default 0.005) of the
   unit's activations over all images and positions (a mergeable streaming
   quantile sketch, never all activations in memory);
2. each activation map is upsampled (bilinear) to the mask size and
   thresholded, ``A_u > T_u``;
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
from torch.utils.data import DataLoader, Dataset

import unitscope
from unitscope.data.concepts import Annotation, ConceptTable
from unitscope.experiments import _distributed as D
from unitscope.experiments._common import eval_mode, model_device, preprocessing_key, preprocessing_record
from unitscope.experiments._io import read_json, write_csv, write_json
from unitscope.experiments._runstate import RunState, config_key, weights_fingerprint
from unitscope.hooks import TraceDict, resolve_layer
from unitscope.stats import PairOverlap, RunningQuantile, RunningTopK
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
    """

    layer: str
    thresholds: np.ndarray
    iou: np.ndarray
    top_indices: np.ndarray
    top_values: np.ndarray
    top_overlap: np.ndarray

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

    # -- labels ----------------------------------------------------------------
    def _column_concepts(self) -> list:
        k = self.cooccurrence.shape[0]
        return [self.concepts[j + 1] if (j + 1) in self.concepts else None for j in range(k)]

    def unit_frame(self, layer: str, *, iou_threshold: float | None = None,
                   category_types: dict[str, str] | None = None) -> pd.DataFrame:
        """The per-unit table of one layer (see :meth:`to_frame`)."""
        iou_threshold = self.config.get("iou_threshold", 0.04) if iou_threshold is None else iou_threshold
        types = dict(CATEGORY_TYPES, **(self.config.get("category_types") or {}), **(category_types or {}))
        ld = self.layers[layer]
        columns = self._column_concepts()
        valid = np.array([c is not None for c in columns])
        iou = np.where(valid[None, :], ld.iou, -1.0)
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
                "detector": bool(score > iou_threshold),
                "threshold": float(ld.thresholds[u]),
                "precision": precision,
                "top_images": ";".join(self.image_ids[i] for i in tops.tolist()),
            }
            for cat in categories:
                cols = [j for j, c in enumerate(columns) if c is not None and c.category == cat]
                if cols:
                    j = cols[int(np.argmax(ld.iou[u, cols]))]
                    row[f"{cat}_label"] = columns[j].name
                    row[f"{cat}_iou"] = float(ld.iou[u, j])
            rows.append(row)
        return pd.DataFrame(rows)

    def to_frame(self, *, iou_threshold: float | None = None) -> pd.DataFrame:
        """Per-unit table over every layer.

        Columns: network, layer, unit, label, category, type, iou (alias
        score, NetDissect's name), detector, threshold, precision,
        top_images (``;``-separated image ids) and ``<category>_label`` /
        ``<category>_iou`` for the best concept of each category.
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
            _write_npz(out / f"layer_{_safe(name)}.npz", thresholds=ld.thresholds, iou=ld.iou,
                       top_indices=ld.top_indices, top_values=ld.top_values,
                       top_overlap=np.packbits(ld.top_overlap, axis=-1),
                       num_concepts=np.array(ld.iou.shape[1]))
        _write_npz(out / "pool.npz", concept_images=self.concept_images, cooccurrence=self.cooccurrence)
        write_csv(out / "concepts.csv", pd.DataFrame(self.concepts.to_records()))
        frame = self.to_frame()
        write_csv(out / "units.csv", frame)
        write_json(out / "units.json", frame.to_dict(orient="records"))
        write_csv(out / "layers.csv", self.layer_summary())
        write_json(out / "result.json", {
            "network": self.network,
            "layers": list(self.layers),
            "image_ids": self.image_ids,
            "config": self.config,
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
                layers[name] = LayerDissection(
                    layer=name, thresholds=z["thresholds"], iou=z["iou"],
                    top_indices=z["top_indices"], top_values=z["top_values"],
                    top_overlap=np.unpackbits(z["top_overlap"], axis=-1, count=k).astype(bool),
                )
        with np.load(out / "pool.npz") as z:
            concept_images, cooccurrence = z["concept_images"], z["cooccurrence"]
        return cls(network=meta["network"], concepts=concepts, layers=layers,
                   image_ids=list(meta["image_ids"]), concept_images=concept_images,
                   cooccurrence=cooccurrence, config=meta.get("config", {}))


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
        return str(path) if self.cache is not None and path.parent == self.cache and path.exists() else None

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
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return str(path)


#: Version of the label files' layout (part of their cache key).
_LABEL_FORMAT = 1


def _load_label_batch(path: str | Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except FileNotFoundError as exc:
        raise RuntimeError(f"the dissection's decoded labels {path} are missing (was the label cache "
                           "cleaned during the run?); start the run again with restart=True") from exc
    except Exception as exc:
        raise RuntimeError(f"the dissection's decoded labels {path} are unreadable ({exc}); delete that "
                           "file and start the run again") from exc


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def _check_inputs(model, layers, data):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("dissect needs at least one layer name")
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
    return layers


def _activations(model, layers, images) -> dict[str, torch.Tensor]:
    with TraceDict(model, layers, stop=True) as td:
        model(images)
    out = {}
    for layer in layers:
        act = td[layer].output
        if not isinstance(act, torch.Tensor) or act.dim() != 4:
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise ValueError(
                f"layer {layer!r} is not spatial: its output has shape {shape}, dissection needs "
                "(N, C, H, W) feature maps (choose a convolutional or pooling layer)"
            )
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
        Dotted names of spatial layers (outputs ``(N, C, H, W)``).
    data : annotated pool
        A pool with ``concepts`` and ``annotation(i)`` (``BrodenPool``,
        ``IndexMaskPool``); its images must be transformed for ``model``.
    network : str, keyword-only
        Name written in the tables.
    quantile : float, keyword-only
        Top quantile that sets each unit's threshold (0.005: the top 0.5 %).
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
    layers = _check_inputs(model, layers, data)
    if mask_size == "auto":
        from unitscope.models.info import model_info

        mask_size = max(1, model_info(model).preprocessing.nominal_side // 2)
    elif mask_size is not None and (isinstance(mask_size, str) or int(mask_size) < 1):
        raise ValueError(f"mask_size must be a positive int, 'auto' or None, not {mask_size!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if activation_cache not in ("disk", "recompute"):
        raise ValueError(f"activation_cache must be 'disk' or 'recompute', not {activation_cache!r}")
    for name, value in (("batch_size", batch_size), ("top_k", top_k), ("checkpoint_every", checkpoint_every)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")

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
        "data": {"type": type(data).__name__, "n": len(data),
                 "ids": config_key({"ids": list(getattr(data, "ids", []))})},
        "preprocessing": preprocessing_record(model, data),
        "quantile": quantile,
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
    state = RunState(Path(work_dir), key, rank=rank, restart=restart)
    try:
        result = _run(model, layers, data, shard, global_index, num_concepts, state, config,
                      batch_size=batch_size, num_workers=num_workers, mask_size=mask_size,
                      quantile=quantile, top_k=top_k, resolution=quantile_resolution,
                      activation_cache=activation_cache, checkpoint_every=checkpoint_every,
                      progress=progress, rank=rank,
                      label_cache=Path(label_cache) if label_cache is not None else None)
    finally:
        if temporary is not None:
            temporary.cleanup()
    return result


def _label_loader(label_batches: _LabelBatches, start_batch: int, num_workers: int):
    """The label file of each batch from ``start_batch`` on, in order, each once it is written.

    Batches found in the label cache are not decoded again; the others are
    decoded by a worker process (in this one when only a few are missing).
    """
    batches = range(start_batch, len(label_batches))
    cached = {b: label_batches.cached(b) for b in batches}
    missing = [b for b in batches if cached[b] is None]
    workers = max(1, num_workers) if len(missing) > 2 else 0
    decoded = iter(DataLoader(label_batches, batch_size=None, sampler=missing, num_workers=workers,
                              prefetch_factor=4 if workers else None)) if missing else iter(())
    for b in batches:
        yield cached[b] if cached[b] is not None else next(decoded)


def _image_loader(shard, batch_size, num_workers, start_batch):
    from unitscope.experiments._common import iter_batches

    indices = list(range(start_batch * batch_size, len(shard)))
    return iter_batches(shard, batch_size, indices=indices, num_workers=num_workers)


def _run(model, layers, data, shard, global_index, num_concepts, state: RunState, config, *,
         batch_size, num_workers, mask_size, quantile, top_k, resolution, activation_cache,
         checkpoint_every, progress, rank, label_cache):
    device = model_device(model)
    n_local = len(shard)
    n_batches = math.ceil(n_local / batch_size)
    saved = state.load() or {"pass": 1, "batch": 0}
    quantiles = {l: RunningQuantile(resolution, seed=rank) for l in layers}
    topks = {l: RunningTopK(top_k) for l in layers}
    shapes: dict[str, tuple[int, int, int]] = saved.get("shapes", {})
    if saved["pass"] == 1 and saved.get("stats"):
        for l in layers:
            quantiles[l].load_state_dict(saved["stats"]["quantile"][l])
            topks[l].load_state_dict(saved["stats"]["topk"][l])
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
            label_tokens = _label_loader(label_batches, batch_no, num_workers)
            for positions, images, metas, dropped in _image_loader(shard, batch_size, num_workers, batch_no):
                if dropped:
                    raise ValueError(f"{dropped} unreadable image(s) in batch {batch_no}; dissection "
                                     "needs every image (fix or remove them)")
                acts = _activations(model, layers, images.to(device))
                ids = torch.as_tensor(global_index[positions], device=device)
                for layer, act in acts.items():
                    n, c, h, w = act.shape
                    shapes.setdefault(layer, (c, h, w))
                    quantiles[layer].add(act.permute(0, 2, 3, 1).reshape(-1, c))
                    topks[layer].add(act.amax(dim=(2, 3)), ids)
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
                    state.save({"pass": 1, "batch": batch_no, "shapes": shapes, "label_paths": label_paths,
                                "stats": {
                        "quantile": {l: quantiles[l].state_dict() for l in layers},
                        "topk": {l: topks[l].state_dict() for l in layers}}})
            label_paths.extend(label_tokens)  # (none left unless the image loader stopped early)
            for cache in caches.values():
                cache.flush()
            # Merge over ranks: every rank gets the same thresholds and top sets.
            merged = {}
            for layer in layers:
                q = D.merge_across_ranks(quantiles[layer], lambda s: RunningQuantile.from_state_dict(s))
                t = D.merge_across_ranks(topks[layer], lambda s: RunningTopK.from_state_dict(s))
                values, indices = t.result()
                qs = q.quantiles([0.0, 1.0 - quantile]).cpu().numpy().astype(np.float64)
                merged[layer] = {
                    "thresholds": qs[:, 1],
                    # Ties at the threshold count as "on" unless the unit never varies below it
                    # (a binary unit's top quantile is its maximum; a dead unit is constant).
                    "inclusive": qs[:, 1] > qs[:, 0],
                    "top_values": values.cpu().numpy(),
                    "top_indices": indices.cpu().numpy().astype(np.int64),
                }
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
        thresholds = {l: torch.as_tensor(merged[l]["thresholds"], dtype=torch.float32, device=device)
                      for l in layers}
        inclusive = {l: torch.as_tensor(merged[l]["inclusive"], device=device) for l in layers}
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
                    _count_overlaps(acts[layer][members], thresholds[layer], inclusive[layer], group["shape"],
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
            top_indices=m["top_indices"], top_values=m["top_values"], top_overlap=combined)
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
        concept_images=concept_images, cooccurrence=cooccurrence, config=config)


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


def _cutoff(threshold, inclusive):
    """Per-unit "on" test as ``value >= cutoff``.

    "On" is value >= t for units whose ties count, value > t otherwise: one
    comparison against the next float above t does both.
    """
    return torch.where(inclusive, threshold, torch.nextafter(threshold, torch.full_like(threshold, float("inf"))))


#: Mask pixels thresholded and counted at a time in pass 2 (~16 MB of float32): big
#: enough to batch many images' small maps, small enough to stay in the CPU's cache.
_CHUNK_PIXELS = 1 << 22


def _count_overlaps(act, threshold, inclusive, shape, concepts, overlap, top_table, lookup, image_ids,
                    upsample):
    """Pass 2 for one layer and a batch of images sharing one mask shape.

    Only the units whose peak reaches their threshold on an image are
    upsampled (a bilinear upsample never exceeds the largest input value, so
    the others have empty masks: with the top 0.5 % quantile most pairs are
    skipped).  A few images at a time (so the masks stay in the CPU's
    cache), their masks are thresholded and their overlaps with the images'
    concepts counted (:meth:`PairOverlap.add_masks`); for the (unit, rank)
    whose top image this is, the concepts the mask touches are marked in
    ``top_table``.
    """
    cutoff = _cutoff(threshold, inclusive)
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
