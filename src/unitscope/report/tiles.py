"""Segmentation tiles: each unit's top images with its thresholded map highlighted, as JPEG files.

These tiles are what the paper's annotators looked at, so they are written
as plain JPEG files in the layout the labeling app and the report read::

    OUT/<layer>/<unit>/<rank>_<image-id>.jpg

The experiment gives what a tile shows (the image and the unit's mask,
:func:`unitscope.experiments.segmentations.segmentation_tiles`); the tile is
drawn here by the report's renderer
(:func:`unitscope.report.pictures.segmentation_tile`: the region where the
unit fires keeps its colours and gets a yellow outline, the rest is dimmed).

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
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from unitscope._files import atomic_write_bytes, make_temp_dir, remove_dead_temps
from unitscope.report.pictures import jpeg_bytes, segmentation_tile
from unitscope.results.layout import SEGMENTATION_TILE, TILES_JSON, safe_name
from unitscope.results.schema import read_json
from unitscope.results.writing import write_json

__all__ = ["write_tiles", "check_tile_folders"]

#: One tile: ``(layer, unit, rank, image id, image (H, W, 3) uint8, mask (H, W) bool)``.
Tile = tuple[str, int, int, str, np.ndarray, np.ndarray]


def write_tiles(out_dir: str | Path, layers: Sequence[str], tiles: Iterable[Tile], *, about: dict,
                whole_layer: bool = True) -> Path:
    """Draw and write the tiles of ``layers``, replacing the ones unitscope wrote there before.

    Parameters
    ----------
    out_dir : path
        The segmentations folder (``RESULTS/<network>/segmentations``).
    layers : sequence of str
        The layers the tiles belong to (each gets its manifest).
    tiles : iterable of Tile
        What each tile shows; iterated only after the folders are checked
        (so a generator that runs the network does no work on a refused folder).
    about : dict
        Written at the top of each manifest (network, weights, top, tile size).
    whole_layer : bool, keyword-only
        The tiles are every unit of each layer: units recorded before and
        absent now lose their tiles.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError, ValueError
        As :func:`check_tile_folders`, before any tile is drawn.
    """
    out = Path(out_dir)
    layers = list(layers)
    recorded = check_tile_folders(out, layers)
    staging = {}
    for layer in layers:
        remove_dead_temps(out, safe_name(layer))  # a killed earlier run's staging folder
        staging[layer] = make_temp_dir(out, safe_name(layer))
    try:
        for layer, unit, rank, image_id, image, mask in tiles:
            # (not durable: thousands of small tiles a rerun makes again; the manifest is)
            atomic_write_bytes(staging[layer] / str(unit) / f"{rank:03d}_{safe_name(image_id)}.jpg",
                               jpeg_bytes(segmentation_tile(image, mask)), clean=False, durable=False)
        for layer in layers:
            _swap_in(out / safe_name(layer), staging[layer], recorded[layer], about=about, whole_layer=whole_layer)
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _read_manifest(folder: Path) -> dict[str, list[str]]:
    """Unit -> tile file names unitscope recorded in ``folder`` (empty when there is no manifest)."""
    path = folder / TILES_JSON
    if not path.exists():
        return {}
    doc = read_json(path)
    units = doc.get("units") if isinstance(doc, dict) else None
    if not (isinstance(units, dict) and all(
            isinstance(u, str) and u.isdigit() and isinstance(names, list)
            and all(isinstance(n, str) and n == os.path.basename(n) and SEGMENTATION_TILE.match(n) for n in names)
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
                              if SEGMENTATION_TILE.match(f.name) and f.name not in known]
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
    write_json(target / TILES_JSON, dict(about, units=pending))
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
    write_json(target / TILES_JSON, dict(about, units={u: final[u] for u in sorted(final, key=int)}))
