"""Unit segmentations: each unit's top images with its thresholded map highlighted.

These tiles are what the paper's annotators looked at, so they are written
as plain JPEG files in the layout the labeling app and the report read::

    OUT/<layer>/<unit>/<rank>_<image-id>.jpg

The region where the unit's upsampled activation exceeds its dissection
threshold keeps its colours and gets a yellow outline; the rest is dimmed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from unitscope.experiments._common import eval_mode, model_device
from unitscope.experiments._io import atomic_write_bytes, safe_name
from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map

__all__ = ["highlight", "write_unit_segmentations"]


def highlight(image: np.ndarray, mask: np.ndarray, *, dim: float = 0.3) -> np.ndarray:
    """Dim ``image`` (H, W, 3) uint8 outside the boolean ``mask`` (H, W) and outline the mask."""
    out = image.astype(np.float32)
    out[~mask] *= dim
    edge = mask & ~ndimage.binary_erosion(mask, iterations=1)
    out[edge] = (255, 220, 0)
    return out.clip(0, 255).astype(np.uint8)


def write_unit_segmentations(
    model: torch.nn.Module,
    result,
    data,
    out_dir: str | Path,
    *,
    top: int = 12,
    layers: Sequence[str] | None = None,
    units: Sequence[int] | None = None,
    tile_size: int = 160,
    batch_size: int = 32,
    progress=None,
) -> Path:
    """Write the top-``top`` segmentation tiles of every unit of a dissection.

    Parameters
    ----------
    model : nn.Module
        The dissected network.
    result : DissectionResult
        Gives each unit's threshold and top images.
    data : pool
        The pool the dissection ran on (``raw_image`` and items).
    out_dir : path
    top : int, keyword-only
        Tiles per unit (at most the dissection's ``top_k``).
    layers, units : keyword-only
        Restrict to these layers / unit indices.
    tile_size : int, keyword-only
        Longest side of a tile in pixels.

    Returns
    -------
    Path
        ``out_dir``.
    """
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    out = Path(out_dir)
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
    device = model_device(model)
    images = sorted(wanted)
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
                image_id = safe_name(result.image_ids[index])
                for layer, u, rank in wanted[index]:
                    act = maps[layer][j, u][None, None].float()
                    up = F.interpolate(act, size=size, mode="bilinear", align_corners=False)[0, 0]
                    threshold = float(result.layers[layer].thresholds[u])
                    mask = (up >= threshold).cpu().numpy() if threshold > float(act.min()) else \
                        (up > threshold).cpu().numpy()
                    buffer = _jpeg(highlight(tile, mask))
                    atomic_write_bytes(out / safe_name(layer) / str(u) / f"{rank:03d}_{image_id}.jpg", buffer)
            done += len(chunk)
            if progress is not None:
                progress(done, len(images))
    return out


def _jpeg(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
