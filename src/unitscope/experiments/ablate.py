"""The causal check of Experiment 5 (SPEC section 7): switch off a layer's detectors of an object.

For each object ``c`` with detectors in the layer (from a dissection), the
detectors' output channels are set to zero and every scene class's accuracy
is measured again; the drop is compared with switching off the same number
of *random* units of the layer (``n_random`` draws among the units that are
not detectors of ``c``).  If the network uses ``c`` to recognise a scene,
that scene's accuracy should fall more than under random ablation: the
*effect* is ``drop(detectors) - mean(drop(random))`` per class.

How the work is batched.  Every ablation is a *condition* (the baseline, the
detectors of each object, each random draw for each object: ``K = 1 +
n_objects * (1 + n_random)``) given by a channel mask.  Conditions are
stacked in the batch dimension: the layer's output for ``B`` images is
repeated ``Kc`` times inside the trace's ``edit`` and each copy is multiplied
by its condition's channel mask, so the network *before* the layer runs once
per batch and only the rest runs ``Kc`` times (``stack="layer"``).  A network
that reuses activations from before the layer after it (a residual block
around the layer) cannot take a bigger batch there; ``stack="input"`` repeats
the images at the input instead (same numbers, the prefix recomputed), and
``stack="auto"`` (default) tries ``"layer"`` on the first batch and falls
back to ``"input"`` when the forward pass fails or returns the wrong number
of rows.  Rows per forward pass are ``batch_size * conditions_per_pass``;
ablated channels are set to exactly zero (``torch.where``), no module is
replaced.  In a transformer's token grid ``(N, T, C)`` a unit is a channel of
the patch tokens: it is zeroed in every patch token, while the class token
(and any other extra leading token) keeps its value, as it is not a position
of the dissected map; what the class token reads from the ablated patches
changes only through the attention layers after the ablated one.

Random draws are reproducible and independent of which other objects are
studied: object ``c``'s draws come from ``numpy.random.default_rng([seed,
number of c])``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import unitscope
from unitscope.hooks import Trace, extra_tokens_of, keep_units, resolve_layer, spatial_layout
from unitscope.results.ablation import AblationResult

from ._common import (Progress, check_dataset, check_diagnostic, check_labels, check_positive_int,
                      check_spatial_layers, eval_mode, iter_batches, model_device, preprocessing_record,
                      weights_record)
from ._common import class_names as _class_names
from .resume import BatchCheckpoints, data_key
from .localize import _dissection_layer, _threshold, check_dissected_network, object_detectors

__all__ = ["ablate_detectors"]

STACKS = ("auto", "layer", "input")

#: Default budget of rows (image x condition) per forward pass when ``conditions_per_pass`` is None.
_ROWS_PER_PASS = 1024


# ---------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------
def ablate_detectors(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    dissection,
    objects: str | Sequence[str] | None = None,
    iou_threshold: float | None = None,
    n_random: int = 5,
    seed: int = 0,
    diagnostic: Mapping[str, Sequence[str]] | None = None,
    class_names: Sequence[str] | None = None,
    network: str | None = None,
    batch_size: int = 32,
    conditions_per_pass: int | None = None,
    stack: str = "auto",
    max_images: int | None = None,
    num_workers: int = 0,
    work_dir: str | Path | None = None, checkpoint_every: int = 20, restart: bool = False,
    progress: Progress | None = None,
) -> AblationResult:
    """Zero a layer's detectors of each object and measure every class's accuracy drop.

    Parameters
    ----------
    model : nn.Module
        A classifier: ``model(x)`` returns ``(N, classes)`` scores.
    layer : str
        Dotted layer name; must be in ``dissection``.  Its output is
        ``(N, C, ...)`` and channel ``u`` is unit ``u``.
    data : Dataset
        Items ``(image, meta)`` with ``meta["label"]`` the scene class
        (-1 = unlabelled, skipped).
    dissection : DissectionResult, keyword-only
        Gives the detectors of each object in ``layer``.
    objects : str or list of str, keyword-only
        Objects to ablate (default: every object with a detector in the layer).
    iou_threshold : float, keyword-only
        Detector threshold on the dissection IoU (default: the dissection's).
    n_random : int, keyword-only
        Random draws per object (0: no random comparison).
    seed : int, keyword-only
    diagnostic : dict of str to list of str, keyword-only
        Scene class name -> its diagnostic objects; the summary then says
        whether each object's diagnostic scene is the class hurt most.
    class_names : list of str, keyword-only
        Default: the model's metadata, else the data set's, else ``class_<k>``.
    network : str, keyword-only
        Name in the tables (default: the dissection's).
    batch_size : int, keyword-only
        Images per step.
    conditions_per_pass : int, keyword-only
        Conditions stacked in one forward pass (default: all of them, capped
        so that a pass has at most about 1024 rows).
    stack : {"auto", "layer", "input"}, keyword-only
        Where conditions are stacked (see the module docstring).
    max_images : int, keyword-only
        Use only the first ``max_images`` images.
    num_workers : int, keyword-only
    work_dir, checkpoint_every, restart : keyword-only
        Folder for checkpoints of the counts (every ``checkpoint_every``
        batches; None: none), from which a run started again with the same
        arguments resumes to the same result, unless ``restart``
        (:class:`~unitscope.experiments.resume.BatchCheckpoints`).
    progress : callable, keyword-only
        ``progress(done, total)`` over forward passes.

    Returns
    -------
    AblationResult

    Raises
    ------
    LookupError
        If the layer is not in the model or the dissection, an object is
        unknown, or a diagnostic scene is not a class name.
    ValueError
        If a named object has no detector, the layer has none, a label is
        out of range, the model does not return ``(N, classes)`` scores, a
        random draw cannot be made (too few other units), or an option is
        out of range.
    """
    resolve_layer(model, layer)
    _dissection_layer(dissection, layer)
    fingerprint = check_dissected_network(model, dissection)
    total = check_dataset(data)
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_images is not None:
        total = min(total, check_positive_int(max_images, "max_images"))
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be a non-negative integer, got {n_random!r}")
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
    threshold = _threshold(dissection, iou_threshold)
    detectors = object_detectors(dissection, layer, objects=objects, iou_threshold=threshold)
    n_units = dissection.layers[layer].num_units
    known_names = _class_names(model, data, class_names)
    check_labels(data, len(known_names) if known_names else None)
    if diagnostic is not None:
        # fail before the forward passes when the names are already known
        check_diagnostic(diagnostic, known_names, dissection.concepts, source="dissection")
    check_spatial_layers(model, [layer], data, purpose="ablation of a dissected layer")

    conditions: list[dict] = [{"kind": "baseline", "object": None, "draw": None, "units": []}]
    for obj, units in detectors.items():
        conditions.append({"kind": "detectors", "object": obj, "draw": None, "units": list(units)})
        others = np.setdiff1d(np.arange(n_units), units)
        if n_random and len(others) < len(units):
            raise ValueError(f"cannot draw {len(units)} random units of layer {layer!r} outside the "
                             f"{len(units)} detectors of {obj!r}: the layer has only {n_units} units")
        rng = np.random.default_rng([int(seed), dissection.concepts.find(obj, "object").number])
        for draw in range(n_random):
            chosen = np.sort(rng.choice(others, size=len(units), replace=False))
            conditions.append({"kind": "random", "object": obj, "draw": draw,
                               "units": [int(u) for u in chosen]})
    n_conditions = len(conditions)
    if conditions_per_pass is None:
        per_pass = min(n_conditions, max(1, _ROWS_PER_PASS // batch_size))
    else:
        per_pass = min(n_conditions, check_positive_int(conditions_per_pass, "conditions_per_pass"))

    device = model_device(model)
    keep = torch.ones((n_conditions, n_units), dtype=torch.bool)
    for k, condition in enumerate(conditions):
        keep[k, condition["units"]] = False
    keep = keep.to(device)
    chunks = [(start, min(start + per_pass, n_conditions)) for start in range(0, n_conditions, per_pass)]

    checkpoints = BatchCheckpoints(work_dir, {
        "experiment": "ablate", "weights": fingerprint, "layer": layer, "data": data_key(data),
        "total": total, "conditions": [c["units"] for c in conditions], "batch_size": batch_size,
        "per_pass": per_pass, "stack": stack, "version": unitscope.__version__,
    }, every=checkpoint_every, restart=restart)
    start_batch, saved = checkpoints.resume()
    correct = None
    totals = None
    counts = {"images": 0, "labelled": 0, "unlabelled": 0, "unreadable": 0}
    mode = "layer" if stack == "auto" else stack
    if saved is not None:
        correct, totals, counts, mode = saved["correct"], saved["totals"], saved["counts"], saved["mode"]
    n_steps = -(-total // batch_size) * len(chunks)
    done = start_batch * len(chunks)
    batch_no = start_batch
    with eval_mode(model), torch.inference_mode():
        for positions, images, metas, dropped in iter_batches(data, batch_size,
                                                               indices=range(start_batch * batch_size, total),
                                                               num_workers=num_workers):
            counts["unreadable"] += dropped
            labels = torch.as_tensor([int(m.get("label", -1)) for m in metas], dtype=torch.int64)
            labelled = labels >= 0
            counts["images"] += len(positions)
            counts["unlabelled"] += int((~labelled).sum())
            if not bool(labelled.any()):
                done += len(chunks)
                batch_no += 1
                checkpoints.done(batch_no, lambda: {"correct": correct, "totals": totals, "counts": counts,
                                                    "mode": mode})
                if progress is not None:
                    progress(done, n_steps)
                continue
            images = images[labelled].to(device)
            labels = labels[labelled]
            counts["labelled"] += len(labels)
            for start, stop in chunks:
                try:
                    logits = _forward(model, layer, images, keep[start:stop], mode, n_units)
                except _StackError as exc:
                    if stack == "layer":
                        raise ValueError(f"{exc}; this network cannot take the conditions stacked at the "
                                         "layer (a connection skips it?): use stack='input'") from exc
                    mode = "input"
                    logits = _forward(model, layer, images, keep[start:stop], mode, n_units)
                if correct is None:
                    n_classes = logits.shape[-1]
                    correct = np.zeros((n_conditions, n_classes), dtype=np.int64)
                    totals = np.zeros(n_classes, dtype=np.int64)
                if int(labels.max()) >= logits.shape[-1]:
                    raise ValueError(f"label {int(labels.max())} is out of range for a model with "
                                     f"{logits.shape[-1]} classes")
                hits = logits.argmax(dim=-1).cpu() == labels[None, :]  # (Kc, B)
                for k in range(stop - start):
                    correct[start + k] += np.bincount(labels[hits[k]].numpy(), minlength=correct.shape[1])
                done += 1
                if progress is not None:
                    progress(done, n_steps)
            totals += np.bincount(labels.numpy(), minlength=len(totals))
            batch_no += 1
            checkpoints.done(batch_no, lambda: {"correct": correct, "totals": totals, "counts": counts,
                                                "mode": mode})
    checkpoints.finish()
    if correct is None:
        raise ValueError("no labelled images (meta['label'] >= 0): accuracy cannot be measured")
    names = known_names
    if not names or len(names) != correct.shape[1]:
        names = [f"class_{k}" for k in range(correct.shape[1])]
    diagnostic = check_diagnostic(diagnostic, names, dissection.concepts, source="dissection")
    options = {"objects": None if objects is None else ([objects] if isinstance(objects, str) else list(objects)),
               "iou_threshold": threshold, "n_random": int(n_random), "seed": int(seed),
               "batch_size": batch_size, "conditions_per_pass": per_pass, "stack": stack, "stack_used": mode,
               "max_images": max_images, **weights_record(model, fingerprint),
               "preprocessing": preprocessing_record(model, data)}
    return AblationResult(network=network or dissection.network, layer=layer, class_names=names,
                          detectors=detectors, conditions=conditions, correct=correct, totals=totals,
                          diagnostic=diagnostic, counts=counts, options=options)


class _StackError(RuntimeError):
    """The network could not take the conditions stacked at the layer."""


def _forward(model: nn.Module, layer: str, images: torch.Tensor, keep: torch.Tensor, mode: str,
             n_units: int) -> torch.Tensor:
    """Logits ``(Kc, B, n_classes)`` of ``B`` images under ``Kc`` channel masks ``keep (Kc, C)``."""
    n_cond, batch = keep.shape[0], images.shape[0]
    rows = n_cond * batch

    def edit(output):
        # the units as the dissection read them: channels of a map, or of a token grid's patches
        layout = spatial_layout(output, layer=layer, image_size=images.shape[-2:],
                                extra_tokens=extra_tokens_of(model))
        if layout.channels != n_units:
            raise ValueError(f"layer {layer!r} outputs {layout.channels} channels but the dissection "
                             f"has {n_units} units for it")
        if mode == "layer":
            if output.shape[0] != batch:
                raise _StackError(f"layer {layer!r} saw a batch of {output.shape[0]}, expected {batch}")
            output = output.repeat(n_cond, *([1] * (output.dim() - 1)))
        elif output.shape[0] != rows:
            raise ValueError(f"layer {layer!r} saw a batch of {output.shape[0]}, expected {rows}")
        return keep_units(output, keep.repeat_interleave(batch, dim=0), layout)

    x = images if mode == "layer" else images.repeat(n_cond, *([1] * (images.dim() - 1)))
    with Trace(model, layer, edit=edit, clone=False):
        try:
            logits = model(x)
        except RuntimeError as exc:
            if mode == "layer" and not isinstance(exc, _StackError):
                raise _StackError(f"the network failed with conditions stacked at {layer!r}: {exc}") from exc
            raise
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError(f"the model must return (N, classes) scores, got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    if logits.shape[0] != rows:
        if mode == "layer":
            raise _StackError(f"the model returned {logits.shape[0]} rows for {rows} stacked conditions")
        raise ValueError(f"the model returned {logits.shape[0]} rows for {rows} inputs")
    return logits.view(n_cond, batch, -1)
