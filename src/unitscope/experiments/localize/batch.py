"""One batch: a forward pass, every detector's mask and peak on each image, scored against the truth.

The layers are traced without stopping the network, so the same pass gives
the scene class (top-1 of the model output).  A unit's map is upsampled
(bilinear) to the image's mask grid and thresholded at ``T_u``; the layer's
combined detector of an object is the union of its units' masks, peaked where
the maximum of the normalised maps ``(A_u - T_u) / (M_u - T_u)`` lies.

Thresholds at ties.  Dissection counts a pixel equal to ``T_u`` as "on"
unless ``T_u`` is the unit's lowest value (a sparse ReLU unit whose top
quantile is 0).  The lowest value is not stored in a dissection result, so
here it is the running minimum of the unit over the images seen so far
(including the current batch); for continuous activations ties have no
weight either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map

from .examples import _detection, _example_record, _keep_examples
from .masks import _truth_masks
from .scores import _score


@dataclass(frozen=True)
class _Setting:
    """What every batch of one run needs, fixed before the first batch."""

    layers: list[str]
    detectors: dict[str, dict[str, list[int]]]  # layer -> object -> detector units
    numbers: dict[str, int]  # object -> concept number in the pool
    threshold_rule: str  # the dissection's
    mask_size: int | None
    examples: int
    pointing_radius: float
    box_hit_iou: float
    class_names: Sequence[str] | None
    mean: torch.Tensor  # the data's normalisation, to draw the pictures
    std: torch.Tensor
    channel_order: str


def _predictions(output, n: int):
    if isinstance(output, torch.Tensor) and output.dim() == 2 and output.shape[0] == n:
        probs = torch.softmax(output.float(), dim=1)
        probability, predicted = probs.max(dim=1)
        return predicted.cpu().numpy(), probability.cpu().numpy()
    return None, None


def _localize_batch(model: nn.Module, images: torch.Tensor, positions, metas, *, data, setting: _Setting,
                    plan: dict, counts: dict, kept: list[dict], pictures: dict[str, np.ndarray]) -> None:
    """Score one batch ``(N, 3, H, W)`` of readable images: the running sums in ``plan``, ``counts``,
    and the example records ``kept`` with their ``pictures`` grow in place."""
    with TraceDict(model, setting.layers) as traces:
        output = model(images)
    predicted, probability = _predictions(output, len(positions))
    height, width = int(images.shape[2]), int(images.shape[3])
    shapes, truths = _truth_masks(data, positions, setting.numbers, setting.mask_size)
    # examples are the first images containing a studied object, in data order
    picked = [j for j, truth in enumerate(truths) if any(t.any() for t in truth.values())]
    picked = picked[:max(0, setting.examples - len(kept))]
    example_masks: dict[int, dict[tuple[str, str], np.ndarray]] = {}
    records = {j: _example_record(positions[j], metas[j], predicted, probability, j, setting.class_names,
                                  (height, width), shapes[j]) for j in picked}
    for name in setting.layers:
        act = spatial_map(traces[name].output, layer=name, batch=images.shape[0],
                          image_size=images.shape[-2:], extra_tokens=extra_tokens_of(model))
        act = act[:, plan[name]["units"]].float()
        _score_layer(name, act, plan[name], setting=setting, truths=truths, shapes=shapes,
                     image_size=(height, width), records=records, example_masks=example_masks)
    _keep_examples(picked, records, example_masks, images, numbers=setting.numbers,
                   kept=kept, pictures=pictures, mean=setting.mean, std=setting.std,
                   channel_order=setting.channel_order)
    counts["images"] += len(positions)
    for j, meta in enumerate(metas):
        label = int(meta.get("label", -1))
        if label >= 0 and predicted is not None:
            counts["labelled"] += 1
            counts["correct"] += int(predicted[j] == label)


def _score_layer(name: str, act: torch.Tensor, info: dict, *, setting: _Setting, truths: list[dict],
                 shapes: list[tuple[int, int]], image_size: tuple[int, int], records: dict[int, dict],
                 example_masks: dict[int, dict]) -> None:
    """Add each image's scores for the detectors of layer ``name``; ``act`` is ``(N, units, h, w)``,
    the layer's detector units in ``info["units"]`` order.  Example images get their detections."""
    height, width = image_size
    low = act.amin(dim=(0, 2, 3))
    info["running_min"] = low if info["running_min"] is None else torch.minimum(info["running_min"], low)
    # ties count only under the dissection's "inclusive" rule (see _thresholds)
    inclusive = (info["threshold"] > info["running_min"]) & (setting.threshold_rule == "inclusive")
    for j in range(len(shapes)):
        up = F.interpolate(act[j:j + 1], size=shapes[j], mode="bilinear", align_corners=False)[0]
        t = info["threshold"][:, None, None]
        on = ((up > t) | ((up >= t) & inclusive[:, None, None])).cpu().numpy()
        unit_peaks = up.flatten(1).argmax(dim=1).cpu().numpy()
        normalised = (up - t) / info["scale"][:, None, None]
        spacing = (height / shapes[j][0], width / shapes[j][1])
        for obj, units in setting.detectors[name].items():
            cols = [info["column"][u] for u in units]
            masks = on[cols]
            masks = np.concatenate([masks, masks.any(axis=0, keepdims=True)])
            combined_peak = int(normalised[cols].amax(dim=0).flatten().argmax())
            peaks = np.append(unit_peaks[cols], combined_peak)
            _score(info["scores"][obj], masks, peaks, truths[j][obj], spacing,
                   setting.pointing_radius, setting.box_hit_iou)
            if j in records:
                records[j]["detections"].append(
                    _detection(name, obj, masks[-1], truths[j][obj], spacing))
                example_masks.setdefault(j, {})[(name, obj)] = masks[-1]
