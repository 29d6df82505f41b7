"""The experiment's entry point, :func:`localize_objects`: checks, the plan per layer, batches, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import unitscope
from unitscope.hooks import resolve_layer
from unitscope.results.localize import LocalizationResult

from .._common import (Progress, check_dataset, check_positive_int, check_spatial_layers, eval_mode,
                       input_channel_order, iter_batches, model_device, normalisation, preprocessing_record,
                       weights_record)
from .._common import class_names as _class_names
from ..resume import BatchCheckpoints, data_key
from .batch import _Setting, _localize_batch
from .detectors import _detectors_per_layer, _dissection_layer, _threshold, check_dissected_network
from .scores import _Scores, _tables


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
    work_dir: str | Path | None = None, checkpoint_every: int = 20, restart: bool = False,
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
        package docstring for how it maps to the mask grid).
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
        (:class:`~unitscope.experiments.resume.BatchCheckpoints`).
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
    fingerprint, total, batch_size, threshold = _checked_arguments(
        model, layers, data, dissection, iou_threshold=iou_threshold, pointing_radius=pointing_radius,
        box_hit_iou=box_hit_iou, examples=examples, batch_size=batch_size, max_images=max_images)
    detectors = _detectors_per_layer(dissection, layers, objects, threshold)
    numbers = _object_numbers(detectors, data)
    names = _class_names(model, data, class_names)
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input
    device = model_device(model)
    plan = _plan(dissection, layers, detectors, device)
    setting = _Setting(layers=layers, detectors=detectors, numbers=numbers,
                       threshold_rule=dissection.threshold_rule, mask_size=mask_size, examples=examples,
                       pointing_radius=pointing_radius, box_hit_iou=box_hit_iou, class_names=names,
                       mean=mean_t, std=std_t, channel_order=order)

    checkpoints = BatchCheckpoints(work_dir, {
        "experiment": "localize", "weights": fingerprint, "layers": layers,
        "data": data_key(data), "total": total, "detectors": detectors, "threshold": threshold,
        "pointing_radius": pointing_radius, "box_hit_iou": box_hit_iou, "mask_size": mask_size,
        "examples": examples, "batch_size": batch_size, "version": unitscope.__version__,
    }, every=checkpoint_every, restart=restart)
    counts, kept_examples, pictures = _run_batches(model, data, setting=setting, plan=plan, checkpoints=checkpoints,
                                                   total=total, batch_size=batch_size, num_workers=num_workers,
                                                   device=device, progress=progress)
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


def _run_batches(model: nn.Module, data: Dataset, *, setting: _Setting, plan: dict, checkpoints: BatchCheckpoints,
                 total: int, batch_size: int, num_workers: int, device: torch.device,
                 progress: Progress | None) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    """Score the first ``total`` images batch by batch, resuming from and saving to ``checkpoints``.

    Returns
    -------
    tuple
        ``(counts, example records, pictures)``; the running sums are in ``plan``.
    """
    layers = setting.layers
    counts = {"images": 0, "unreadable": 0, "labelled": 0, "correct": 0}
    kept_examples: list[dict] = []
    pictures: dict[str, np.ndarray] = {}
    n_batches = -(-total // batch_size)

    def accumulators():
        return {"counts": counts, "examples": kept_examples, "pictures": pictures,
                "scores": {n: {o: vars(s) for o, s in plan[n]["scores"].items()} for n in layers},
                "running_min": {n: None if plan[n]["running_min"] is None
                                else plan[n]["running_min"].cpu().numpy() for n in layers}}

    done, saved = checkpoints.resume()
    if saved is not None:
        counts, kept_examples, pictures = saved["counts"], saved["examples"], saved["pictures"]
        _restore_plan(plan, saved, layers, device)
    with eval_mode(model), torch.inference_mode():
        for positions, images, metas, dropped in iter_batches(data, batch_size,
                                                               indices=range(done * batch_size, total),
                                                               num_workers=num_workers):
            counts["unreadable"] += dropped
            if positions:  # a batch of unreadable images only still counts as done
                _localize_batch(model, images.to(device), positions, metas, data=data, setting=setting,
                                plan=plan, counts=counts, kept=kept_examples, pictures=pictures)
            done += 1
            checkpoints.done(done, accumulators)
            if progress is not None:
                progress(done, n_batches)
    checkpoints.finish()
    return counts, kept_examples, pictures


def _checked_arguments(model: nn.Module, layers: list[str], data: Dataset, dissection, *,
                       iou_threshold: float | None, pointing_radius: float, box_hit_iou: float,
                       examples: int, batch_size: int, max_images: int | None) -> tuple[str, int, int, float]:
    """Refuse bad arguments before any work.

    Returns
    -------
    tuple
        ``(weights fingerprint, images to use, batch_size, detector IoU threshold)``.
    """
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
    return fingerprint, total, batch_size, threshold


def _object_numbers(detectors: dict[str, dict[str, list[int]]], data) -> dict[str, int]:
    """Object name -> its concept number in the pool, refused when the pool lacks the object."""
    numbers: dict[str, int] = {}
    for name in dict.fromkeys(o for d in detectors.values() for o in d):
        try:
            numbers[name] = data.concepts.find(name, "object").number
        except LookupError:
            raise LookupError(f"object {name!r} of the dissection is not an object concept of the "
                              "data set; localise on a pool with the same vocabulary") from None
    return numbers


def _plan(dissection, layers: list[str], detectors: dict, device: torch.device) -> dict[str, dict]:
    """Per layer: its detector units, their thresholds ``T_u`` and scales ``M_u - T_u``, and the running sums.

    ``scale`` is 1 where ``M_u == T_u`` (``M_u``: the unit's maximum over the dissection pool).
    """
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
    return plan


def _restore_plan(plan: dict, saved: dict, layers: list[str], device: torch.device) -> None:
    """Put a checkpoint's running sums and running minima back into ``plan``."""
    for n in layers:
        for obj, values in saved["scores"][n].items():
            vars(plan[n]["scores"][obj]).update(values)
        low = saved["running_min"][n]
        plan[n]["running_min"] = None if low is None else torch.as_tensor(low, device=device)
