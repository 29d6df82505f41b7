"""What a unit's segmentation tiles show: its top images, and where it fires on each.

For every unit of a dissection, its top images (the dissection's ``top_k``
order) are resized so the longest side is ``tile_size`` (bilinear); the
unit's activation map is upsampled to that size (bilinear) and thresholded
at the unit's dissection threshold, with the dissection's rule
(:func:`unitscope.experiments._thresholds.unit_masks`).  The result is
arrays; the tiles are drawn and written by :mod:`unitscope.report.tiles`
(the files the labeling app shows).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unitscope.experiments import _thresholds as TH
from unitscope.experiments._common import eval_mode, model_device
from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map

__all__ = ["segmentation_tiles"]


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
    images = sorted(wanted)
    device = model_device(model)
    done = 0
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            batch = torch.stack([data[i][0] for i in chunk]).to(device)
            with TraceDict(model, layers, stop=True) as td:
                model(batch)
            maps = {layer: spatial_map(td[layer].output, layer=layer, batch=batch.shape[0],
                                       image_size=batch.shape[-2:], extra_tokens=extra_tokens_of(model))
                    for layer in layers}
            for j, index in enumerate(chunk):
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
            done += len(chunk)
            if progress is not None:
                progress(done, len(images))
