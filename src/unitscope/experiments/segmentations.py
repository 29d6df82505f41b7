"""What a unit's segmentations show: its top images, and where it fires on each.

Two views of the same thing, computed by one pass of the network over the
distinct top images (:func:`_top_image_maps`); both give arrays, and the
report's renderer draws them (:mod:`unitscope.report.pictures`):

* :func:`segmentation_tiles` -- the tiles the labeling app shows, for every
  unit of a dissection: its top images (the dissection's ``top_k`` order)
  resized so the longest side is ``tile_size`` (bilinear), the unit's
  activation map upsampled to that size (bilinear) and thresholded at the
  unit's dissection threshold, with the dissection's rule
  (:func:`unitscope.experiments._thresholds.unit_masks`).  Written by
  :mod:`unitscope.report.tiles`.
* :func:`unit_segmentations` -- experiment 2b (SPEC section 4): chosen
  units' top images (highest max activation) as the network saw them, masked
  by the region the unit responds to: either its activation map, upsampled
  to the image (bilinear) and thresholded, or its *empirical receptive
  field* (the region of the averaged occlusion map above half its peak, from
  :func:`~unitscope.experiments.empirical_receptive_fields`) placed at the
  unit's max location, as in the paper's figures.  The result
  (:class:`~unitscope.results.segmentations.UnitSegmentationsResult`) holds
  the images and masks; the report draws one strip per unit.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from unitscope.experiments import _thresholds as TH
from unitscope.experiments._common import (
    Progress,
    check_positive_int,
    eval_mode,
    input_channel_order,
    iter_batches,
    model_device,
    model_dtype,
    normalisation,
    preprocessing_record,
    to_uint8,
)
from unitscope.experiments.empirical_rf import EmpiricalRFResult, top_activations
from unitscope.hooks import TraceDict, extra_tokens_of, resolve_layer, spatial_map
from unitscope.models.rf_window import RFWindow
from unitscope.results.segmentations import UnitSegmentationsResult

__all__ = ["segmentation_tiles", "unit_segmentations"]

MASKS = ("activation", "rf")


def _top_image_maps(model: nn.Module, layers: Sequence[str], data: Dataset, indices: Sequence[int], *,
                    batch_size: int, num_workers: int = 0, progress: Progress | None = None):
    """Run the network once over the images ``indices`` (in batches, in this order).

    Yields ``(positions, images (B, 3, H, W), metas, maps)``: ``maps`` is layer ->
    its output as maps ``(B, C, h, w)`` (token grids reshaped).  ``progress(done,
    len(indices))`` is called after each batch.
    """
    device, dtype = model_device(model), model_dtype(model)
    done = 0
    with torch.inference_mode(), eval_mode(model):
        for positions, images, metas, dropped in iter_batches(data, batch_size, indices=indices,
                                                              num_workers=num_workers):
            if positions:
                with TraceDict(model, layers, stop=True) as td:
                    model(images.to(device=device, dtype=dtype))
                maps = {layer: spatial_map(td[layer].output, layer=layer, batch=images.shape[0],
                                           image_size=images.shape[-2:], extra_tokens=extra_tokens_of(model))
                        for layer in layers}
                yield positions, images, metas, maps
            done += len(positions) + dropped
            if progress is not None:
                progress(done, len(indices))


# --------------------------------------------------------------------------- the labeling app's tiles
def segmentation_tiles(
    model: torch.nn.Module,
    result,
    data,
    *,
    top: int = 12,
    layers: Sequence[str] | None = None,
    units: Sequence[int] | None = None,
    tile_size: int = 160,
    batch_size: int = 32,
    progress=None,
) -> Iterator[tuple[str, int, int, str, np.ndarray, np.ndarray]]:
    """What each of the top-``top`` segmentation tiles of a dissection's units shows.

    The options are checked now; the network runs as the tiles are taken.

    Parameters
    ----------
    model : nn.Module
        The dissected network.
    result : DissectionResult
        Gives each unit's threshold and top images.
    data : pool
        The pool the dissection ran on (``raw_image`` and items).
    top : int, keyword-only
        Tiles per unit (at most the dissection's ``top_k``).
    layers, units : keyword-only
        Restrict to these layers / unit indices.
    tile_size : int, keyword-only
        Longest side of a tile in pixels.
    batch_size : int, keyword-only
    progress : callable, keyword-only
        ``progress(done, total)``: images done.

    Returns
    -------
    iterator of (str, int, int, str, ndarray, ndarray)
        ``(layer, unit, rank, image id, image (h, w, 3) uint8, mask (h, w) bool)``, image by image.

    Raises
    ------
    ValueError
        If ``top`` < 1.
    LookupError
        If a layer is not in the dissection.
    """
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    layers = list(layers or result.layers)
    for layer in layers:
        if layer not in result.layers:
            raise LookupError(f"layer {layer!r} is not in the dissection (layers: {list(result.layers)})")
    wanted: dict[int, list[tuple[str, int, int]]] = {}  # image -> [(layer, unit, rank)]
    for layer in layers:
        ld = result.layers[layer]
        for u in (units if units is not None else range(ld.num_units)):
            for rank, index in enumerate(ld.top_indices[u][:top].tolist()):
                if index >= 0:
                    wanted.setdefault(int(index), []).append((layer, u, rank))
    return _tiles(model, result, data, wanted, layers, tile_size=tile_size, batch_size=batch_size,
                  progress=progress)


def _tiles(model, result, data, wanted, layers, *, tile_size, batch_size, progress):
    for positions, _, _, maps in _top_image_maps(model, layers, data, sorted(wanted), batch_size=batch_size,
                                                 progress=progress):
        for j, index in enumerate(positions):
            raw = data.raw_image(index)
            scale = tile_size / max(raw.shape[:2])
            size = (max(1, round(raw.shape[0] * scale)), max(1, round(raw.shape[1] * scale)))
            tile = np.asarray(Image.fromarray(raw).resize(size[::-1], Image.BILINEAR))
            for layer, u, rank in wanted[index]:
                act = maps[layer][j, u][None, None].float()
                up = F.interpolate(act, size=size, mode="bilinear", align_corners=False)[0, 0]
                ld = result.layers[layer]
                mask = TH.unit_masks(up, float(ld.thresholds[u]), minimum=float(act.min()),
                                     rule=result.threshold_rule,
                                     saturated=ld.saturated is not None and bool(ld.saturated[u])).cpu().numpy()
                yield layer, u, rank, str(result.image_ids[index]), tile, mask


# --------------------------------------------------------------------------- experiment 2b
def unit_segmentations(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    units: Sequence[int],
    top: int = 8,
    mask: str = "activation",
    threshold: float = 0.5,
    thresholds: Sequence[float] | np.ndarray | None = None,
    rf: EmpiricalRFResult | None = None,
    dim: float = 0.15,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    network: str = "",
    batch_size: int = 64,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> UnitSegmentationsResult:
    """Each unit's top images and the region it responds to on each.

    Parameters
    ----------
    model : nn.Module
    layer : str
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)``.
    units : sequence of int, keyword-only
        Channels to show.
    top : int, keyword-only
        Images per unit (its top images by max activation).
    mask : {"activation", "rf"}, keyword-only
        ``"activation"``: the activation map upsampled (bilinear) to the image
        and thresholded; ``"rf"``: the empirical RF of ``rf`` (region above
        half its peak) centred on the unit's max location.
    threshold : float, keyword-only
        For ``"activation"`` without ``thresholds``: the fraction of the
        unit's highest activation (over its top images) above which a pixel
        is kept.
    thresholds : array (C,), keyword-only
        Absolute per-channel thresholds (e.g. Network Dissection's top-0.5%
        quantiles), indexed by channel number.
    rf : EmpiricalRFResult, keyword-only
        Needed for ``mask="rf"``; its top images are reused when it covers the units.
    dim : float, keyword-only
        Brightness the strip keeps outside the mask (0 = black); recorded for the report.
    mean, std, network, batch_size, num_workers, progress
        As for the other experiments.

    Returns
    -------
    UnitSegmentationsResult
        The images (de-normalised, RGB) and per (unit, rank) the mask; the
        report draws each unit's strip from them.

    Raises
    ------
    LookupError
        For an unknown layer.
    ValueError
        For bad units or options (``mask="rf"`` without ``rf``, or ``rf`` of another layer).
    """
    resolve_layer(model, layer)
    top = check_positive_int(top, "top")
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    units = [int(u) for u in units]
    if not units:
        raise ValueError("units is empty")
    if len(set(units)) < len(units):
        raise ValueError(f"units lists a unit twice: {units}")
    if rf is not None and rf.layer != layer:
        raise ValueError(f"rf is for layer {rf.layer!r}, not {layer!r}")
    if mask == "rf" and rf is None:
        raise ValueError("mask='rf' needs rf=, the layer's EmpiricalRFResult")
    if not 0 <= dim <= 1:
        raise ValueError(f"dim must be in [0, 1], got {dim}")
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input

    rf_rows = {int(u): k for k, u in enumerate(rf.units)} if rf is not None else {}
    if rf is not None and all(u in rf_rows for u in units) and rf.top_ids.shape[1] >= top:
        rows = [rf_rows[u] for u in units]
        top_values = rf.top_values[rows, :top]
        top_ids = rf.top_ids[rows, :top]
    else:
        _, top_values, top_ids, _ = top_activations(model, layer, data, top_k=top, units=units,
                                                   batch_size=batch_size, num_workers=num_workers)
    if thresholds is not None:
        unit_thresholds = np.asarray(thresholds, dtype=np.float64)[units]
    else:
        unit_thresholds = threshold * top_values[:, 0].astype(np.float64)
    window = rf.theoretical if mask == "rf" else None

    needed: dict[int, list[tuple[int, int]]] = {}  # image -> [(row, rank)]; an RF's -1: no image
    for row in range(len(units)):
        for rank, image in enumerate(top_ids[row]):
            if image >= 0:
                needed.setdefault(int(image), []).append((row, rank))
    images_seen: dict[int, np.ndarray] = {}
    masks: dict[tuple[int, int], np.ndarray] = {}
    records = []
    units_t = torch.as_tensor(units)
    for positions, images, metas, maps in _top_image_maps(model, [layer], data, sorted(needed),
                                                          batch_size=batch_size, num_workers=num_workers,
                                                          progress=progress):
        out = maps[layer][:, units_t.to(maps[layer].device)].float()
        h, w = images.shape[-2:]
        up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False).cpu().numpy()
        small = out.cpu().numpy()
        for k, (position, meta) in enumerate(zip(positions, metas)):
            images_seen[position] = to_uint8(images[k], mean_t, std_t, channel_order=order)
            for row, rank in needed[position]:
                if mask == "activation":
                    keep = up[k, row] > unit_thresholds[row]
                else:
                    keep = _rf_mask(rf, rf_rows[units[row]], small[k, row], window, (h, w))
                masks[(units[row], rank)] = keep
                records.append({"unit": units[row], "rank": rank, "index": position,
                                "id": str(meta.get("id", position)),
                                "activation": float(top_values[row, rank]),
                                "threshold": float(unit_thresholds[row]) if mask == "activation" else float("nan"),
                                "mask_fraction": float(keep.mean())})
    table = pd.DataFrame(records, columns=["unit", "rank", "index", "id", "activation", "threshold",
                                           "mask_fraction"])
    table["_order"] = table["unit"].map({u: i for i, u in enumerate(units)})
    table = table.sort_values(["_order", "rank"], kind="stable").drop(columns="_order").reset_index(drop=True)
    options = {"top": top, "mask": mask, "threshold": threshold if thresholds is None else None,
               "dim": dim, "preprocessing": preprocessing_record(model, data)}
    return UnitSegmentationsResult(layer=layer, units=units, table=table, images=images_seen, masks=masks,
                                   options=options, network=network)


def _rf_mask(rf: EmpiricalRFResult, row: int, activation: np.ndarray, window: RFWindow,
             image_size: tuple[int, int]) -> np.ndarray:
    """The unit's empirical RF (above half its peak) centred on its max location in this image."""
    h, w = image_size
    averaged = rf.maps[row]
    keep = np.zeros((h, w), dtype=bool)
    peak = float(averaged.max())
    if peak <= 0:
        return keep
    region = averaged > peak / 2
    i, j = divmod(int(np.argmax(activation)), activation.shape[1])
    r = rf.radius
    cy, cx = window.centre(i), window.centre(j)
    y0, x0 = cy - r, cx - r
    iy0, ix0 = max(0, y0), max(0, x0)
    iy1, ix1 = min(h, y0 + region.shape[0]), min(w, x0 + region.shape[1])
    if iy1 > iy0 and ix1 > ix0:
        keep[iy0:iy1, ix0:ix1] = region[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    return keep
