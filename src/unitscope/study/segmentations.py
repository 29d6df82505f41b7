"""The segmentation tiles of a dissection: computed by the experiment, drawn and written by the report's renderer.

:func:`write_unit_segmentations` is the step of the dissection pipeline
(``dissect --segmentations N``, the demo) that writes
``RESULTS/<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg``
and each layer's ``tiles.json``, the files the labeling app shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from unitscope.experiments.segmentations import segmentation_tiles
from unitscope.report.tiles import write_tiles

__all__ = ["write_unit_segmentations"]


def write_unit_segmentations(model: torch.nn.Module, result, data, out_dir: str | Path, *, top: int = 12,
                             layers: Sequence[str] | None = None, units: Sequence[int] | None = None,
                             tile_size: int = 160, **options) -> Path:
    """Write the top-``top`` segmentation tiles of every unit of a dissection into ``out_dir``; return it.

    ``model``, ``result`` and ``data`` are the dissected network, its
    :class:`DissectionResult` and the pool it ran on; ``out_dir`` is
    ``RESULTS/<network>/segmentations``.  The options (and ``batch_size``,
    ``progress``) are those of
    :func:`~unitscope.experiments.segmentations.segmentation_tiles`, checked
    before anything is read; tile folders holding tiles unitscope did not
    record are refused before the network runs
    (:func:`unitscope.report.tiles.check_tile_folders`).
    """
    tiles = segmentation_tiles(model, result, data, top=top, layers=layers, units=units, tile_size=tile_size,
                               **options)
    about = {"network": result.network, "weights": result.config.get("weights"), "top": top,
             "tile_size": tile_size}
    return write_tiles(out_dir, list(layers or result.layers), tiles, about=about, whole_layer=units is None)
