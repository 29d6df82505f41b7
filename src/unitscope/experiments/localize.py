"""Experiment 5 (SPEC section 7): units as object localizers.

A unit that dissection labelled with object ``c`` (a *detector*: its best
concept is an object and its IoU exceeds the threshold) localises ``c`` by
its activation map: upsampled (bilinear) to the mask resolution and
thresholded at the unit's dissection threshold ``T_u``, it gives a mask, and
the mask's connected components give boxes.  Each is scored against the
ground-truth mask of ``c`` on the images that contain ``c``:

* **mask IoU** -- ``sum |M and G| / sum |M or G|`` over those images (pooled,
  as in dissection) and the mean of the per-image IoUs;
* **box IoU** -- per image, the best IoU between a component box of the
  unit's mask and a box of a ground-truth connected component (0 when the
  unit does not fire); its mean, and the share of images where it reaches
  ``box_hit_iou`` (0.5, the usual detection criterion);
* **pointing game** -- a hit when the maximum of the upsampled map lies
  within ``pointing_radius`` pixels of a pixel of ``c``;
* how often the unit fires on images *without* ``c`` (false alarms).

The detectors of ``c`` in a layer are also combined into "the layer's
detector of c": each map is normalised to ``(A_u - T_u) / (M_u - T_u)``
(0 at the threshold, 1 at the unit's maximum over the dissection pool,
``M_u``; scale 1 when ``M_u == T_u``), the combined map is their maximum, its
mask is the union of the units' masks (the combined map >= 0) and its peak
the combined map's maximum.

Pixels and the pointing radius.  Masks are compared at the annotation's
resolution ``(sh, sw)`` (optionally subsampled to ``mask_size``), which may
differ from the network's input ``(H, W)`` (Broden masks are half the image
size).  ``pointing_radius`` is in pixels of the *network's input image*: the
distance from the peak to the nearest object pixel is measured on the mask
grid with pixel spacing ``(H / sh, W / sw)``, so 15 px means 15 input pixels
whatever the mask resolution.  Connected components use 8-connectivity.

One forward pass.  The layer is traced without stopping the network, so the
same pass that localises the objects also gives the scene class (top-1 of
the model output).  For a few example images the result keeps the predicted
class and the boxes of every detected object, and a picture with the masks
overlaid and the boxes drawn.

Thresholds at ties.  Dissection counts a pixel equal to ``T_u`` as "on"
unless ``T_u`` is the unit's lowest value (a sparse ReLU unit whose top
quantile is 0).  The lowest value is not stored in a dissection result, so
here it is the running minimum of the unit over the images seen so far
(including the current batch); for continuous activations ties have no
weight either way.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from torch.utils.data import Dataset

import unitscope
from unitscope.hooks import TraceDict, extra_tokens_of, resolve_layer, spatial_map

from ._common import (
    input_channel_order,
    preprocessing_record,
    class_names as _class_names,
    Progress,
    check_dataset,
    check_positive_int,
    check_spatial_layers,
    eval_mode,
    iter_batches,
    model_device,
    normalisation,
    to_uint8,
    weights_record,
)
from ._io import read_json, read_png, safe_name, write_csv, write_json, write_png
from ._runstate import BatchCheckpoints, data_key, weights_fingerprint

__all__ = ["LocalizationResult", "localize_objects", "object_detectors", "component_boxes", "box_iou"]

#: 8-connectivity for connected components (diagonal neighbours belong together).
_CONNECTIVITY = np.ones((3, 3), dtype=bool)

#: Metrics of every (unit or combined detector, object) row.
METRICS = ("mask_iou", "mean_image_iou", "box_iou", "box_hit_rate", "pointing", "fire_rate_absent")

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
            (0, 128, 128), (170, 110, 40)]


# ---------------------------------------------------------------------------
# Detectors from a dissection
# ---------------------------------------------------------------------------
def _dissection_layer(dissection, layer: str) -> None:
    if layer not in dissection.layers:
        names = list(dissection.layers)
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise LookupError(f"layer {layer!r} is not in the dissection result{hint} "
                          f"(dissected layers: {', '.join(names) or 'none'})")


def check_dissected_network(model: nn.Module, dissection) -> str:
    """The weights fingerprint of ``model``, refused when ``dissection`` was made from other weights.

    Localising or ablating with the labels of another network's units gives
    numbers about nothing; the dissection records the fingerprint of the
    weights it saw (``config["weights"]``), so the mismatch is caught here.
    A dissection that records none (hand-made, or older) is taken on trust.

    Raises
    ------
    ValueError
        Naming both networks and both fingerprints.
    """
    from unitscope.models.info import model_info

    fingerprint = weights_fingerprint(model)
    recorded = (getattr(dissection, "config", None) or {}).get("weights")
    if recorded is not None and recorded != fingerprint:
        info = model_info(model)
        given = info.arch + (f" with weights {info.weights}" if info.weights else "")
        if info.seed is not None:
            given += f" (seed {info.seed})"
        raise ValueError(
            f"the dissection of {dissection.network!r} was made from other weights (fingerprint "
            f"{recorded}) than the network given, {given} (fingerprint {fingerprint}); pass the "
            "network that was dissected, or dissect this one first"
        )
    return fingerprint


def _threshold(dissection, iou_threshold: float | None) -> float:
    threshold = float(dissection.config.get("iou_threshold", 0.04) if iou_threshold is None else iou_threshold)
    if not 0 <= threshold < 1:  # NaN too: no unit would be a detector, silently
        raise ValueError(f"iou_threshold must be in [0, 1), got {threshold}")
    return threshold


def object_detectors(dissection, layer: str, *, objects: str | Sequence[str] | None = None,
                     iou_threshold: float | None = None) -> dict[str, list[int]]:
    """The units of ``layer`` that dissection labelled with each object.

    Parameters
    ----------
    dissection : DissectionResult
    layer : str
    objects : str or list of str, keyword-only
        Object names to keep (default: every object with at least one detector).
    iou_threshold : float, keyword-only
        A unit is a detector when its best IoU exceeds this (default: the
        dissection's own threshold).

    Returns
    -------
    dict of str to list of int
        Object name -> sorted unit indices, objects in concept-number order
        (or in the order given).

    Raises
    ------
    LookupError
        If ``layer`` was not dissected, or an object name is not an object
        concept of the dissection.
    ValueError
        If a named object has no detector in the layer, or (``objects=None``)
        the layer has no object detector at all.
    """
    _dissection_layer(dissection, layer)
    threshold = _threshold(dissection, iou_threshold)
    frame = dissection.unit_frame(layer, iou_threshold=threshold)
    detectors = frame[frame["detector"] & (frame["category"] == "object")]
    order = {c.name: c.number for c in dissection.concepts.in_category("object")}
    found: dict[str, list[int]] = {}
    for name in sorted(set(detectors["label"]), key=lambda n: order.get(n, 0)):
        found[name] = sorted(int(u) for u in detectors.loc[detectors["label"] == name, "unit"])
    if objects is None:
        if not found:
            raise ValueError(f"layer {layer!r} has no object detectors (no unit labelled with an "
                             f"object at IoU > {threshold})")
        return found
    names = [objects] if isinstance(objects, str) else [str(o) for o in objects]
    if not names:
        raise ValueError("objects is empty: name at least one object (or pass None for all)")
    unknown = [n for n in names if n not in order]
    if unknown:
        close = {n: difflib.get_close_matches(n, list(order), n=3, cutoff=0.6) for n in unknown}
        hints = "; ".join(f"{n!r}: close matches {', '.join(c)}" for n, c in close.items() if c)
        raise LookupError(f"not object concepts of the dissection: {unknown}" + (f" ({hints})" if hints else ""))
    missing = [n for n in names if n not in found]
    if missing:
        have = ", ".join(found) or "none"
        raise ValueError(f"no detectors of {', '.join(repr(n) for n in missing)} in layer {layer!r} "
                         f"(IoU > {threshold}); objects with detectors there: {have}")
    return {n: found[n] for n in dict.fromkeys(names)}


# ---------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------
def component_boxes(mask: np.ndarray) -> np.ndarray:
    """Bounding boxes of the 8-connected components of a boolean mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (h, w)

    Returns
    -------
    ndarray of int64, shape (n, 4)
        ``(x0, y0, x1, y1)`` per component, ends exclusive, in component
        order (raster order of each component's first pixel).
    """
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=_CONNECTIVITY)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for k, sl in enumerate(ndimage.find_objects(labels)):
        boxes[k] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes ``(x0, y0, x1, y1)`` (ends exclusive).

    Parameters
    ----------
    a : ndarray, shape (n, 4)
    b : ndarray, shape (m, 4)

    Returns
    -------
    ndarray of float64, shape (n, m)
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------
@dataclass
class LocalizationResult:
    """Localisation scores of a layer's object detectors.

    Attributes
    ----------
    network : str
    layers : list of str
    units : DataFrame
        One row per (layer, object, detector unit) plus one ``combined`` row
        per (layer, object); see :meth:`unit_frame`.
    objects : DataFrame
        One row per (layer, object); see :meth:`to_frame`.
    examples : list of dict
        Per example image: ``index, id, label, label_name, predicted,
        predicted_name, probability, image_size [H, W], mask_size [sh, sw],
        picture`` (PNG paths per layer, relative to the result folder) and
        ``detections``: per (layer, object) the combined detector's
        ``boxes`` (input-image pixels, ``[x0, y0, x1, y1]``, ends exclusive),
        ``gt_boxes`` (same units), ``present`` (ground truth has the object)
        and ``detected`` (the combined mask is not empty).
    pictures : dict of str to ndarray
        Relative PNG path -> ``(h, w, 3)`` uint8 picture (image, masks, boxes).
    counts : dict
        ``images`` (scored), ``unreadable`` (dropped by the pool), ``labelled``,
        ``correct`` and ``accuracy`` of
        the scene class predicted in the same forward pass.
    options : dict
    """

    network: str
    layers: list[str]
    units: pd.DataFrame
    objects: pd.DataFrame
    examples: list[dict] = field(default_factory=list)
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Per (layer, object): the combined detector's scores and a summary of its units.

        Columns: network, layer, object, detectors (count), units
        (``;``-separated), images (containing the object), images_absent,
        ``mask_iou, mean_image_iou, box_iou, box_hit_rate, pointing,
        fire_rate_absent`` (combined detector), best_unit (highest mask IoU),
        best_unit_mask_iou, best_unit_pointing, mean_unit_mask_iou,
        mean_unit_pointing.
        """
        return self.objects.copy()

    def unit_frame(self) -> pd.DataFrame:
        """Per (layer, object, unit), plus the combined detector (``unit == -1``).

        Columns: network, layer, object, unit, kind (``unit`` / ``combined``),
        dissection_iou, threshold (NaN for combined rows), images,
        images_absent, ``mask_iou, mean_image_iou, box_iou, box_hit_rate,
        pointing, fire_rate_absent``.
        """
        return self.units.copy()

    def layer_summary(self) -> pd.DataFrame:
        """Per layer: objects, detector units, and mean scores over objects (combined) and units.

        Columns: network, layer, objects, detectors, images, ``mask_iou,
        box_iou, box_hit_rate, pointing`` (means over objects of the combined
        detector), unit_mask_iou, unit_pointing (means over detector units).
        """
        rows = []
        for layer in self.layers:
            obj = self.objects[self.objects["layer"] == layer]
            unit = self.units[(self.units["layer"] == layer) & (self.units["kind"] == "unit")]
            row = {"network": self.network, "layer": layer, "objects": len(obj),
                   "detectors": int(unit["unit"].nunique()), "images": int(self.counts.get("images", 0))}
            for metric in ("mask_iou", "box_iou", "box_hit_rate", "pointing"):
                row[metric] = float(obj[metric].mean()) if len(obj) else float("nan")
            row["unit_mask_iou"] = float(unit["mask_iou"].mean()) if len(unit) else float("nan")
            row["unit_pointing"] = float(unit["pointing"].mean()) if len(unit) else float("nan")
            rows.append(row)
        return pd.DataFrame(rows)

    def examples_frame(self) -> pd.DataFrame:
        """One row per example box: id, index, label_name, predicted_name, probability, layer,
        object, present, detected, box (0.. per detection, -1 when nothing was detected),
        x0, y0, x1, y1 (input-image pixels)."""
        rows = []
        for ex in self.examples:
            base = {k: ex.get(k) for k in ("id", "index", "label_name", "predicted_name", "probability")}
            for det in ex["detections"]:
                info = dict(base, layer=det["layer"], object=det["object"], present=det["present"],
                            detected=det["detected"])
                if not det["boxes"]:
                    rows.append(dict(info, box=-1, x0=np.nan, y0=np.nan, x1=np.nan, y1=np.nan))
                for k, (x0, y0, x1, y1) in enumerate(det["boxes"]):
                    rows.append(dict(info, box=k, x0=x0, y0=y0, x1=x1, y1=y1))
        columns = ["id", "index", "label_name", "predicted_name", "probability", "layer", "object",
                   "present", "detected", "box", "x0", "y0", "x1", "y1"]
        return pd.DataFrame(rows, columns=columns)

    # -- files -----------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write ``objects.csv``/``.json``, ``units.csv``, ``layers.csv``, ``examples.json``,
        ``examples.csv``, ``examples/<layer>/<rank>_<id>.png`` and ``localize.json``
        (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "objects.csv", self.objects)
        write_json(out / "objects.json", self.objects.to_dict(orient="records"))
        write_csv(out / "units.csv", self.units)
        write_csv(out / "layers.csv", self.layer_summary())
        write_csv(out / "examples.csv", self.examples_frame())
        write_json(out / "examples.json", self.examples)
        for path, picture in self.pictures.items():
            write_png(out / path, picture)
        write_json(out / "localize.json", {"network": self.network, "layers": self.layers,
                                           "counts": self.counts, "options": self.options})
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "LocalizationResult":
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``out_dir`` holds no localisation result.
        """
        out = Path(out_dir)
        if not (out / "localize.json").exists():
            raise FileNotFoundError(f"no localization result in {out} (missing localize.json)")
        meta = read_json(out / "localize.json")
        examples = read_json(out / "examples.json")
        pictures = {}
        for ex in examples:
            for path in ex.get("picture", {}).values():
                pictures[path] = read_png(out / path)
        objects = pd.read_csv(out / "objects.csv", dtype={"units": str}, keep_default_na=False,
                              na_values=[""])
        objects["units"] = objects["units"].fillna("")
        return cls(network=meta["network"], layers=list(meta["layers"]),
                   units=pd.read_csv(out / "units.csv"), objects=objects,
                   examples=examples, pictures=pictures, counts=meta.get("counts", {}),
                   options=meta.get("options", {}))


# ---------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------
class _Scores:
    """Running sums for the detector slots of one (layer, object): its units, then the combined one."""

    def __init__(self, slots: int) -> None:
        self.images = 0
        self.absent = 0
        self.inter = np.zeros(slots)
        self.union = np.zeros(slots)
        self.image_iou = np.zeros(slots)
        self.box_iou = np.zeros(slots)
        self.box_hits = np.zeros(slots)
        self.pointing = np.zeros(slots)
        self.fires_absent = np.zeros(slots)

    def metrics(self) -> dict[str, np.ndarray]:
        n = self.images if self.images else np.nan
        return {
            "mask_iou": np.divide(self.inter, self.union, out=np.full_like(self.inter, np.nan),
                                  where=self.union > 0),
            "mean_image_iou": self.image_iou / n,
            "box_iou": self.box_iou / n,
            "box_hit_rate": self.box_hits / n,
            "pointing": self.pointing / n,
            "fire_rate_absent": self.fires_absent / (self.absent if self.absent else np.nan),
        }


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * mask.shape[0] // shape[0]).astype(np.int64)
    cols = (np.arange(shape[1]) * mask.shape[1] // shape[1]).astype(np.int64)
    return mask[rows][:, cols]


def _mask_shape(shape: tuple[int, int], mask_size: int | None) -> tuple[int, int]:
    if mask_size and max(shape) > mask_size:
        scale = mask_size / max(shape)
        return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    return tuple(int(s) for s in shape)


def localize_objects(
    model: nn.Module,
    layer: str | Sequence[str],
    data: Dataset,
    *,
    dissection,
    objects: str | Sequence[str] | None = None,
    iou_threshold: float | None = None,
    pointing_radius: float = 15.0,
    box_hit_iou: float = 0.5,
    mask_size: int | None = None,
    examples: int = 8,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    network: str | None = None,
    batch_size: int = 32,
    max_images: int | None = None,
    num_workers: int = 0,
    work_dir: str | Path | None = None,
    checkpoint_every: int = 20,
    restart: bool = False,
    progress: Progress | None = None,
) -> LocalizationResult:
    """Score how well each object detector of a layer localises its object.

    Parameters
    ----------
    model : nn.Module
    layer : str or list of str
        Dotted layer name(s); each must be in ``dissection``.  Several layers
        share one forward pass.
    data : Dataset
        An annotated pool: items ``(image (3, H, W), meta)``, with
        ``data.concepts`` and ``data.annotation(index)`` (masks of the same
        image, possibly at another resolution).
    dissection : DissectionResult, keyword-only
        Gives each unit's label, IoU and threshold ``T_u``.
    objects : str or list of str, keyword-only
        Object names to study (default: every object with a detector in the
        layer).  With several layers, layers without a detector of a named
        object skip it; it must have one in at least one layer.
    iou_threshold : float, keyword-only
        Detector threshold on the dissection IoU (default: the dissection's).
    pointing_radius : float, keyword-only
        Pointing-game radius in pixels of the network's input image (see the
        module docstring for how it maps to the mask grid).
    box_hit_iou : float, keyword-only
        A box counts as a hit when its IoU reaches this.
    mask_size : int, keyword-only
        Subsample masks whose longest side exceeds this (nearest neighbour).
    examples : int, keyword-only
        Keep the predicted class, the boxes and a picture for this many
        images (the first ones that contain a studied object).
    class_names : list of str, keyword-only
        Scene class names (default: the model's metadata, else the data set's).
    mean, std : sequence of float, keyword-only
        The data's normalisation, to draw the pictures (default: the data
        set's transform, else the model's preprocessing).
    network : str, keyword-only
        Name in the tables (default: the dissection's).
    batch_size : int, keyword-only
    max_images : int, keyword-only
        Use only the first ``max_images`` images.
    num_workers : int, keyword-only
    work_dir, checkpoint_every, restart : keyword-only
        Folder for checkpoints of the running scores (every ``checkpoint_every``
        batches; None: none), from which a run started again with the same
        arguments resumes to the same result, unless ``restart``
        (:class:`~unitscope.experiments._runstate.BatchCheckpoints`).
    progress : callable, keyword-only
        ``progress(done, total)`` over batches.

    Returns
    -------
    LocalizationResult

    Raises
    ------
    LookupError
        If a layer is not in the model or not in the dissection, or an
        object is not an object concept of the dissection or of the pool.
    ValueError
        If a named object has no detector, the layer has none, the data set
        is empty or has no annotations, or an option is out of range.
    """
    layers = [layer] if isinstance(layer, str) else list(dict.fromkeys(layer))
    if not layers:
        raise ValueError("no layers given")
    for name in layers:
        resolve_layer(model, name)
        _dissection_layer(dissection, name)
    fingerprint = check_dissected_network(model, dissection)
    total = check_dataset(data)
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_images is not None:
        total = min(total, check_positive_int(max_images, "max_images"))
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 0:
        raise ValueError(f"examples must be a non-negative integer, got {examples!r}")
    if not pointing_radius >= 0:
        raise ValueError(f"pointing_radius must be >= 0 pixels, got {pointing_radius}")
    if not 0 < box_hit_iou <= 1:
        raise ValueError(f"box_hit_iou must be in (0, 1], got {box_hit_iou}")
    if not callable(getattr(data, "annotation", None)) or getattr(data, "concepts", None) is None:
        raise ValueError("localization needs an annotated pool (with .concepts and .annotation(index))")
    threshold = _threshold(dissection, iou_threshold)
    check_spatial_layers(model, layers, data, purpose="localisation")

    detectors = _detectors_per_layer(dissection, layers, objects, threshold)
    numbers: dict[str, int] = {}
    for name in dict.fromkeys(o for d in detectors.values() for o in d):
        try:
            numbers[name] = data.concepts.find(name, "object").number
        except LookupError:
            raise LookupError(f"object {name!r} of the dissection is not an object concept of the "
                              "data set; localise on a pool with the same vocabulary") from None

    names = _class_names(model, data, class_names)
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input
    device = model_device(model)
    plan = {}
    for name in layers:
        ld = dissection.layers[name]
        units = sorted({u for us in detectors[name].values() for u in us})
        thresholds = np.asarray(ld.thresholds, dtype=np.float64)[units]
        top = np.asarray(ld.top_values, dtype=np.float64)[units]
        peak = np.nanmax(np.where(np.isfinite(top), top, -np.inf), axis=1) if top.size else thresholds
        scale = np.where(peak > thresholds, peak - thresholds, 1.0)
        plan[name] = {
            "units": units,
            "column": {u: i for i, u in enumerate(units)},
            "threshold": torch.as_tensor(thresholds, dtype=torch.float32, device=device),
            "scale": torch.as_tensor(scale, dtype=torch.float32, device=device),
            "running_min": None,
            "scores": {obj: _Scores(len(us) + 1) for obj, us in detectors[name].items()},
        }

    counts = {"images": 0, "unreadable": 0, "labelled": 0, "correct": 0}
    kept_examples: list[dict] = []
    pictures: dict[str, np.ndarray] = {}
    n_batches = -(-total // batch_size)
    checkpoints = BatchCheckpoints(work_dir, {
        "experiment": "localize", "weights": fingerprint, "layers": layers,
        "data": data_key(data), "total": total, "detectors": detectors, "threshold": threshold,
        "pointing_radius": pointing_radius, "box_hit_iou": box_hit_iou, "mask_size": mask_size,
        "examples": examples, "batch_size": batch_size, "version": unitscope.__version__,
    }, every=checkpoint_every, restart=restart)

    def accumulators():
        return {"counts": counts, "examples": kept_examples, "pictures": pictures,
                "scores": {n: {o: vars(s) for o, s in plan[n]["scores"].items()} for n in layers},
                "running_min": {n: None if plan[n]["running_min"] is None
                                else plan[n]["running_min"].cpu().numpy() for n in layers}}

    done, saved = checkpoints.resume()
    if saved is not None:
        counts, kept_examples, pictures = saved["counts"], saved["examples"], saved["pictures"]
        for n in layers:
            for obj, values in saved["scores"][n].items():
                vars(plan[n]["scores"][obj]).update(values)
            low = saved["running_min"][n]
            plan[n]["running_min"] = None if low is None else torch.as_tensor(low, device=device)
    with eval_mode(model), torch.inference_mode():
        for positions, images, metas, dropped in iter_batches(data, batch_size,
                                                               indices=range(done * batch_size, total),
                                                               num_workers=num_workers):
            counts["unreadable"] += dropped
            if not positions:
                done += 1
                checkpoints.done(done, accumulators)
                if progress is not None:
                    progress(done, n_batches)
                continue
            images = images.to(device)
            with TraceDict(model, layers) as traces:
                output = model(images)
            predicted, probability = _predictions(output, len(positions))
            height, width = int(images.shape[2]), int(images.shape[3])
            annotations = [data.annotation(p) for p in positions]
            shapes = []
            for p, ann in zip(positions, annotations):
                shape = ann.mask_shape or tuple(data.mask_shape(p))
                shapes.append(_mask_shape(shape, mask_size))
            truths = []  # per image: {object: bool mask at the (possibly reduced) mask shape}
            for ann, shape in zip(annotations, shapes):
                native = ann.mask_shape or shape
                truth = {}
                for obj, number in numbers.items():
                    m = ann.concept_mask(number, native)
                    truth[obj] = m if tuple(m.shape) == shape else _resize_nearest(m, shape)
                truths.append(truth)
            # examples are the first images containing a studied object, in data order
            picked = [j for j, truth in enumerate(truths) if any(t.any() for t in truth.values())]
            picked = picked[:max(0, examples - len(kept_examples))]
            example_masks: dict[int, dict[tuple[str, str], np.ndarray]] = {}
            records = {j: _example_record(positions[j], metas[j], predicted, probability, j, names,
                                          (height, width), shapes[j]) for j in picked}
            for name in layers:
                info = plan[name]
                act = spatial_map(traces[name].output, layer=name, batch=images.shape[0],
                                  image_size=images.shape[-2:], extra_tokens=extra_tokens_of(model))
                act = act[:, info["units"]].float()
                low = act.amin(dim=(0, 2, 3))
                info["running_min"] = low if info["running_min"] is None else torch.minimum(info["running_min"], low)
                # ties count only under the dissection's "inclusive" rule (see _thresholds)
                inclusive = (info["threshold"] > info["running_min"]) & (dissection.threshold_rule == "inclusive")
                for j in range(len(positions)):
                    up = F.interpolate(act[j:j + 1], size=shapes[j], mode="bilinear", align_corners=False)[0]
                    t = info["threshold"][:, None, None]
                    on = ((up > t) | ((up >= t) & inclusive[:, None, None])).cpu().numpy()
                    unit_peaks = up.flatten(1).argmax(dim=1).cpu().numpy()
                    normalised = (up - t) / info["scale"][:, None, None]
                    spacing = (height / shapes[j][0], width / shapes[j][1])
                    for obj, units in detectors[name].items():
                        cols = [info["column"][u] for u in units]
                        masks = on[cols]
                        masks = np.concatenate([masks, masks.any(axis=0, keepdims=True)])
                        combined_peak = int(normalised[cols].amax(dim=0).flatten().argmax())
                        peaks = np.append(unit_peaks[cols], combined_peak)
                        _score(info["scores"][obj], masks, peaks, truths[j][obj], spacing,
                               pointing_radius, box_hit_iou)
                        if j in records:
                            records[j]["detections"].append(
                                _detection(name, obj, masks[-1], truths[j][obj], spacing))
                            example_masks.setdefault(j, {})[(name, obj)] = masks[-1]
            for j in picked:
                record = records[j]
                rank = len(kept_examples)
                record["picture"] = {}
                image = to_uint8(images[j].cpu(), mean_t, std_t, channel_order=order)
                for name in layers:
                    path = f"examples/{safe_name(name)}/{rank:03d}_{safe_name(record['id'])}.png"
                    dets = [d for d in record["detections"] if d["layer"] == name]
                    pictures[path] = _draw_example(image, dets, example_masks.get(j, {}), record, numbers)
                    record["picture"][name] = path
                kept_examples.append(record)
            counts["images"] += len(positions)
            for j, meta in enumerate(metas):
                label = int(meta.get("label", -1))
                if label >= 0 and predicted is not None:
                    counts["labelled"] += 1
                    counts["correct"] += int(predicted[j] == label)
            done += 1
            checkpoints.done(done, accumulators)
            if progress is not None:
                progress(done, n_batches)
    checkpoints.finish()
    counts["accuracy"] = counts["correct"] / counts["labelled"] if counts["labelled"] else None
    network = network or dissection.network
    units_frame, objects_frame = _tables(network, layers, detectors, plan, dissection)
    options = {"objects": None if objects is None else ([objects] if isinstance(objects, str) else list(objects)),
               "iou_threshold": threshold, "pointing_radius": pointing_radius, "box_hit_iou": box_hit_iou,
               "mask_size": mask_size, "examples": examples, "batch_size": batch_size,
               "max_images": max_images, "connectivity": 8, **weights_record(model, fingerprint),
               "detectors": {name: detectors[name] for name in layers},
               "preprocessing": preprocessing_record(model, data)}
    return LocalizationResult(network=network, layers=layers, units=units_frame, objects=objects_frame,
                              examples=kept_examples, pictures=pictures, counts=counts, options=options)


def _detectors_per_layer(dissection, layers, objects, threshold) -> dict[str, dict[str, list[int]]]:
    if objects is None or len(layers) == 1:
        return {name: object_detectors(dissection, name, objects=objects, iou_threshold=threshold)
                for name in layers}
    wanted = [objects] if isinstance(objects, str) else [str(o) for o in objects]
    result = {}
    for name in layers:
        found = object_detectors(dissection, name, iou_threshold=threshold) if _has_objects(
            dissection, name, threshold) else {}
        result[name] = {o: found[o] for o in wanted if o in found}
    nowhere = [o for o in wanted if not any(o in d for d in result.values())]
    if nowhere:
        # let the single-layer check name the problem precisely (unknown name or no detector)
        object_detectors(dissection, layers[0], objects=nowhere, iou_threshold=threshold)
        raise ValueError(f"no detectors of {nowhere} in layers {layers} (IoU > {threshold})")
    return result


def _has_objects(dissection, layer, threshold) -> bool:
    frame = dissection.unit_frame(layer, iou_threshold=threshold)
    return bool((frame["detector"] & (frame["category"] == "object")).any())


def _predictions(output, n: int):
    if isinstance(output, torch.Tensor) and output.dim() == 2 and output.shape[0] == n:
        probs = torch.softmax(output.float(), dim=1)
        probability, predicted = probs.max(dim=1)
        return predicted.cpu().numpy(), probability.cpu().numpy()
    return None, None


def _score(scores: _Scores, masks: np.ndarray, peaks: np.ndarray, truth: np.ndarray,
           spacing: tuple[float, float], radius: float, hit_iou: float) -> None:
    """Add one image's scores for every slot; ``masks`` is ``(slots, sh, sw)`` bool."""
    if not truth.any():
        scores.absent += 1
        scores.fires_absent += masks.reshape(len(masks), -1).any(axis=1)
        return
    scores.images += 1
    inter = (masks & truth).reshape(len(masks), -1).sum(axis=1)
    union = (masks | truth).reshape(len(masks), -1).sum(axis=1)
    scores.inter += inter
    scores.union += union
    scores.image_iou += inter / union  # truth is not empty, so union > 0
    distance = ndimage.distance_transform_edt(~truth, sampling=spacing)
    scores.pointing += distance.ravel()[peaks] <= radius
    gt_boxes = component_boxes(truth)
    for s, mask in enumerate(masks):
        boxes = component_boxes(mask)
        best = float(box_iou(boxes, gt_boxes).max()) if len(boxes) else 0.0
        scores.box_iou[s] += best
        scores.box_hits[s] += best >= hit_iou


def _to_image_boxes(boxes: np.ndarray, spacing) -> list[list[float]]:
    sy, sx = spacing
    return [[round(float(x0 * sx), 3), round(float(y0 * sy), 3), round(float(x1 * sx), 3), round(float(y1 * sy), 3)]
            for x0, y0, x1, y1 in boxes]


def _example_record(position, meta, predicted, probability, j, names, image_size, mask_size) -> dict:
    label = int(meta.get("label", -1))

    def name(k):
        if k is None or k < 0:
            return ""
        return names[k] if names and k < len(names) else str(k)

    pred = None if predicted is None else int(predicted[j])
    return {"index": int(position), "id": str(meta.get("id", position)), "label": label,
            "label_name": name(label), "predicted": pred, "predicted_name": name(pred),
            "probability": None if probability is None else float(probability[j]),
            "image_size": list(image_size), "mask_size": list(mask_size), "detections": []}


def _detection(layer: str, obj: str, mask: np.ndarray, truth: np.ndarray, spacing) -> dict:
    return {"layer": layer, "object": obj, "present": bool(truth.any()), "detected": bool(mask.any()),
            "boxes": _to_image_boxes(component_boxes(mask), spacing),
            "gt_boxes": _to_image_boxes(component_boxes(truth), spacing),
            "mask_fraction": float(mask.mean())}


def _draw_example(image: np.ndarray, detections: list[dict], masks: dict, record: dict,
                  numbers: dict[str, int]) -> np.ndarray:
    """The image (enlarged to at least 256 px) with each detected object's mask tinted and boxes drawn.

    A white band on top gives the scene class predicted in the same forward pass.
    """
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    zoom = max(1, 256 // max(h, w))
    size = (w * zoom, h * zoom)
    picture = Image.fromarray(image).resize(size, Image.NEAREST).convert("RGBA")
    colours = {obj: _PALETTE[k % len(_PALETTE)] for k, obj in enumerate(numbers)}
    for det in detections:
        mask = masks.get((det["layer"], det["object"]))
        if mask is None or not det["detected"]:
            continue
        alpha = Image.fromarray((mask * 110).astype(np.uint8)).resize(size, Image.NEAREST)
        tint = Image.new("RGBA", size, colours[det["object"]] + (255,))
        tint.putalpha(alpha)
        picture = Image.alpha_composite(picture, tint)
    draw = ImageDraw.Draw(picture)
    for det in detections:
        colour = colours[det["object"]] + (255,)
        for x0, y0, x1, y1 in det["boxes"]:
            box = [x0 * zoom, y0 * zoom, max(x0 * zoom, x1 * zoom - 1), max(y0 * zoom, y1 * zoom - 1)]
            draw.rectangle(box, outline=colour, width=2)
            draw.text((box[0] + 3, box[1] + 2), det["object"], fill=colour)
    title = record["predicted_name"] or "?"
    if record["probability"] is not None:
        title += f" ({record['probability']:.2f})"
    if record["label_name"]:
        title += f"  true: {record['label_name']}"
    canvas = Image.new("RGBA", (picture.width, picture.height + 14), (255, 255, 255, 255))
    canvas.paste(picture, (0, 14))
    ImageDraw.Draw(canvas).text((2, 1), title, fill=(0, 0, 0, 255))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8).copy()


def _tables(network, layers, detectors, plan, dissection) -> tuple[pd.DataFrame, pd.DataFrame]:
    unit_rows, object_rows = [], []
    for name in layers:
        ld = dissection.layers[name]
        for obj, units in detectors[name].items():
            scores = plan[name]["scores"][obj]
            metrics = scores.metrics()
            column = dissection.concepts.find(obj, "object").number - 1
            for s, unit in enumerate(units + [-1]):
                combined = unit < 0
                row = {"network": network, "layer": name, "object": obj, "unit": unit,
                       "kind": "combined" if combined else "unit",
                       "dissection_iou": np.nan if combined else float(ld.iou[unit, column]),
                       "threshold": np.nan if combined else float(ld.thresholds[unit]),
                       "images": scores.images, "images_absent": scores.absent}
                row.update({m: float(metrics[m][s]) for m in METRICS})
                unit_rows.append(row)
            unit_iou = metrics["mask_iou"][:-1]
            best = int(np.nanargmax(unit_iou)) if np.isfinite(unit_iou).any() else 0
            row = {"network": network, "layer": name, "object": obj, "detectors": len(units),
                   "units": ";".join(str(u) for u in units), "images": scores.images,
                   "images_absent": scores.absent}
            row.update({m: float(metrics[m][-1]) for m in METRICS})
            row.update({"best_unit": units[best], "best_unit_mask_iou": float(unit_iou[best]),
                        "best_unit_pointing": float(metrics["pointing"][best]),
                        "mean_unit_mask_iou": float(np.mean(unit_iou)),
                        "mean_unit_pointing": float(np.mean(metrics["pointing"][:-1]))})
            object_rows.append(row)
    unit_columns = ["network", "layer", "object", "unit", "kind", "dissection_iou", "threshold",
                    "images", "images_absent", *METRICS]
    object_columns = ["network", "layer", "object", "detectors", "units", "images", "images_absent",
                      *METRICS, "best_unit", "best_unit_mask_iou", "best_unit_pointing",
                      "mean_unit_mask_iou", "mean_unit_pointing"]
    return pd.DataFrame(unit_rows, columns=unit_columns), pd.DataFrame(object_rows, columns=object_columns)
