"""Unit segmentations: each unit's top images with its thresholded map highlighted.

These tiles are what the paper's annotators looked at, so they are written
as plain JPEG files in the layout the labeling app and the report read::

    OUT/<layer>/<unit>/<rank>_<image-id>.jpg

The region where the unit's upsampled activation exceeds its dissection
threshold keeps its colours and gets a yellow outline; the rest is dimmed.

A rerun (other weights, another ``top``) replaces each unit's tiles as a
whole: a layer's tiles are written into a temporary folder first, then
moved in, and the old ones removed.  Only files unitscope recorded in the
layer's manifest (``OUT/<layer>/tiles.json``) are ever removed.  Other
files in those folders are left alone, except files named like tiles
(``<rank>_<id>.jpg``) that the manifest does not list: the labeling app
and the report would show them beside the new tiles, so they are refused
up front (:func:`check_tile_folders`), before any work.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from unitscope.experiments import _thresholds as TH
from unitscope.experiments._common import eval_mode, model_device
from unitscope._files import make_temp_dir, remove_dead_temps
from unitscope.experiments._io import atomic_write_bytes, read_json, safe_name, write_json
from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map

__all__ = ["highlight", "write_unit_segmentations", "check_tile_folders"]

#: The record of the tiles unitscope wrote in a layer's folder.
MANIFEST = "tiles.json"
#: Names the labeling app and the report show as a unit's tiles.
_TILE_NAME = re.compile(r"^(\d+)_(.+)\.(jpe?g|png)$", re.IGNORECASE)


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
    recorded = check_tile_folders(out, layers)
    wanted: dict[int, list[tuple[str, int, int]]] = {}  # image -> [(layer, unit, rank)]
    for layer in layers:
        ld = result.layers[layer]
        for u in (units if units is not None else range(ld.num_units)):
            for rank, index in enumerate(ld.top_indices[u][:top].tolist()):
                if index >= 0:
                    wanted.setdefault(int(index), []).append((layer, u, rank))
    device = model_device(model)
    images = sorted(wanted)
    staging = {}
    for layer in layers:
        remove_dead_temps(out, safe_name(layer))  # a killed earlier run's staging folder
        staging[layer] = make_temp_dir(out, safe_name(layer))
    try:
        _render(model, result, data, wanted, staging, images, tile_size=tile_size, batch_size=batch_size,
                device=device, progress=progress)
        about = {"network": result.network, "weights": result.config.get("weights"), "top": top,
                 "tile_size": tile_size}
        for layer in layers:
            _swap_in(out / safe_name(layer), staging[layer], recorded[layer], about=about,
                     whole_layer=units is None)
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _render(model, result, data, wanted, staging, images, *, tile_size, batch_size, device, progress):
    """Write every wanted tile under its layer's staging folder."""
    done = 0
    layers = list(staging)
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
                    ld = result.layers[layer]
                    mask = TH.unit_masks(up, float(ld.thresholds[u]), minimum=float(act.min()),
                                         rule=result.threshold_rule,
                                         saturated=ld.saturated is not None and bool(ld.saturated[u])).cpu().numpy()
                    buffer = _jpeg(highlight(tile, mask))
                    # (not durable: thousands of small tiles a rerun makes again; the manifest is)
                    atomic_write_bytes(staging[layer] / str(u) / f"{rank:03d}_{image_id}.jpg", buffer,
                                       clean=False, durable=False)
            done += len(chunk)
            if progress is not None:
                progress(done, len(images))


def _read_manifest(folder: Path) -> dict[str, list[str]]:
    """Unit -> tile file names unitscope recorded in ``folder`` (empty when there is no manifest)."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    doc = read_json(path)
    units = doc.get("units") if isinstance(doc, dict) else None
    if not (isinstance(units, dict) and all(
            isinstance(u, str) and u.isdigit() and isinstance(names, list)
            and all(isinstance(n, str) and n == os.path.basename(n) and _TILE_NAME.match(n) for n in names)
            for u, names in units.items())):
        raise ValueError(f"{path} is not a record of segmentation tiles; move that folder away or use "
                         "another --out")
    return {u: list(names) for u, names in units.items()}


def check_tile_folders(out_dir: str | Path, layers: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """Refuse tile folders holding tiles unitscope did not record (before any work is done).

    Parameters
    ----------
    out_dir : path
        The segmentations folder (``RESULTS/<network>/segmentations``).
    layers : sequence of str

    Returns
    -------
    dict
        Layer -> its manifest (unit -> recorded file names).

    Raises
    ------
    FileExistsError
        If a unit folder holds files named like tiles that the layer's
        manifest does not list (tiles of an earlier unitscope version, or
        a user's): they would be shown mixed with the new tiles.
    ValueError
        If a manifest is damaged.
    """
    out = Path(out_dir)
    recorded = {}
    for layer in layers:
        folder = out / safe_name(layer)
        manifest = recorded[layer] = _read_manifest(folder)
        if not folder.is_dir():
            continue
        strangers = []
        for unit_dir in sorted(folder.iterdir()):
            if unit_dir.is_dir() and unit_dir.name.isdigit():
                known = set(manifest.get(unit_dir.name, ()))
                strangers += [f"{unit_dir.name}/{f.name}" for f in sorted(unit_dir.iterdir())
                              if _TILE_NAME.match(f.name) and f.name not in known]
        if strangers:
            raise FileExistsError(
                f"{folder} holds {len(strangers)} segmentation tile(s) unitscope did not record (e.g. "
                f"{strangers[0]}), which would be shown beside the new ones; move them away (or that "
                "folder) or use another --out")
    return recorded


def _swap_in(target: Path, staged: Path, old: dict[str, list[str]], *, about: dict,
             whole_layer: bool) -> None:
    """Replace the recorded tiles of each unit in ``target`` by the staged ones (see the module docstring)."""
    new = {u.name: sorted(f.name for f in u.iterdir()) for u in staged.iterdir() if u.is_dir()}
    touched = set(new) | (set(old) if whole_layer else set())
    # Record both generations before moving anything: a run killed midway leaves every file of
    # ours listed, and the next run can clean up after it.
    pending = {u: sorted(set(old.get(u, ())) | set(new.get(u, ()))) for u in set(old) | set(new)}
    write_json(target / MANIFEST, dict(about, units=pending))
    for unit in sorted(touched, key=int):
        folder = target / unit
        for name in set(old.get(unit, ())) - set(new.get(unit, ())):
            (folder / name).unlink(missing_ok=True)
        if unit in new:
            folder.mkdir(parents=True, exist_ok=True)
        for name in new.get(unit, ()):
            os.replace(staged / unit / name, folder / name)
        if unit not in new and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    final = {u: names for u, names in old.items() if u not in touched}
    final.update(new)
    write_json(target / MANIFEST, dict(about, units={u: final[u] for u in sorted(final, key=int)}))


def _jpeg(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
