"""What the RF code reads of a layer: its output as maps, its theoretical window, its units.

A token layer is read as the map of its patches
(:func:`unitscope.hooks.spatial_map`); the window comes from
:func:`unitscope.models.theoretical_window`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import SpatialLayout, Trace, check_spatial, extra_tokens_of, spatial_map

from .._common import check_dataset, model_device, model_dtype
from unitscope.models.rf_window import RFWindow, as_window, theoretical_window

__all__ = ["check_rf_layers"]


def _layer_output(trace: Trace, layer: str, images: torch.Tensor) -> torch.Tensor:
    """The traced output of ``images`` as maps ``(N, C, H, W)`` (token grids reshaped)."""
    return spatial_map(trace.output, layer=layer, batch=images.shape[0], image_size=images.shape[-2:],
                       extra_tokens=extra_tokens_of(trace.model))


def check_rf_layers(model: nn.Module, layers: Sequence[str], data: Dataset, *,
                    rf=None) -> dict[str, tuple[SpatialLayout, RFWindow]]:
    """Each layer's map layout and theoretical window, or the refusal an RF run would end in.

    One forward pass of the pool's first image.  Call it before any work
    (the CLI does, for every layer of a run, before the first one starts).

    Raises
    ------
    ValueError
        For a layer that is not a spatial map, or whose units see the whole
        input on a grid of cells that are not square.
    """
    check_dataset(data)
    sample = data[0][0].unsqueeze(0)
    layouts = check_spatial(model, list(layers), sample.to(device=model_device(model), dtype=model_dtype(model)))
    return {layer: (layout, as_window(rf) if rf is not None else
                    theoretical_window(model, layer, input_shape=tuple(sample.shape[-2:]),
                                       grid=(layout.height, layout.width)))
            for layer, layout in layouts.items()}


def _check_units(units, channels: int, layer: str) -> torch.Tensor:
    if units is None:
        return torch.arange(channels)
    units = [int(u) for u in units]
    if not units:
        raise ValueError("units is empty")
    bad = [u for u in units if not 0 <= u < channels]
    if bad:
        raise ValueError(f"units out of range for layer {layer!r} with {channels} channels "
                         f"(0 to {channels - 1}): {bad[:5]}")
    if len(set(units)) != len(units):
        raise ValueError("units has duplicates")
    return torch.as_tensor(units)

