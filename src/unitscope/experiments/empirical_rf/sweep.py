"""The occlusion stage: each top image's unit maxima, the forward passes counted, then the sweep.

Three steps, so the number of forward passes is known (and logged) before
the first occluded copy runs:

1. :func:`locate_maxima` -- one full forward per distinct top image: where
   each of its units peaks (the location the discrepancy is read at);
2. :func:`count_copies` -- the crop groups planned from those locations
   (:func:`~.crops._plan_groups`, geometry only) and their occluded copies
   counted: exact, or for the adaptive drill-down the coarse copies and the
   most the refinement can add;
3. :func:`sweep` -- the images read again (no forward), cut into their crop
   groups and handed to the engine (:class:`~.occluder._Occluder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import Trace
from unitscope.models.rf_window import RFWindow

from .._common import eval_mode, iter_batches, model_device, model_dtype
from .adaptive import DrillDown
from .crops import _image_groups, _plan_groups
from .layers import _layer_output
from .occluder import _Occluder

__all__ = ["Maxima", "locate_maxima", "count_copies", "sweep", "units_of_images"]


@dataclass
class Maxima:
    """Each top image's targets and the activations the crop check compares with."""

    targets: dict[int, list[tuple[int, int, int]]]  # image -> [(unit row, i, j)]
    values: dict[int, np.ndarray]  # image -> (targets,) full-forward activation at each target
    peaks: dict[int, float]  # image -> the layer's largest absolute activation


def units_of_images(top_ids: np.ndarray, n_units: int) -> tuple[dict[int, list[int]], dict[tuple[int, int], int]]:
    """Which units occlude which image: ``{image: [unit rows]}``, and each ``(row, image)``'s rank in the row's top-K."""
    by_image: dict[int, list[int]] = {}
    for row in range(n_units):
        for image in top_ids[row]:
            by_image.setdefault(int(image), []).append(row)
    rank_of = {(row, int(image)): k for row in range(n_units) for k, image in enumerate(top_ids[row])}
    return by_image, rank_of


def locate_maxima(model: nn.Module, layer: str, data: Dataset, *, union: list[int], by_image: dict[int, list[int]],
                  rank_of: dict[tuple[int, int], int], units: np.ndarray, locations: np.ndarray, batch_size: int,
                  num_workers: int) -> Maxima:
    """One forward of each top image: its units' maxima (filling ``locations``, ``(U, K, 2)``)."""
    device, dtype = model_device(model), model_dtype(model)
    units_t = torch.as_tensor(units)
    found = Maxima({}, {}, {})
    with torch.inference_mode(), eval_mode(model):
        for positions, images, _, _ in iter_batches(data, batch_size, indices=union, num_workers=num_workers):
            best, best_value, layer_peak, ow = _unit_maxima(model, layer, images.to(device=device, dtype=dtype),
                                                            units_t)
            for k, position in enumerate(positions):
                targets = []
                for row in by_image[position]:
                    i, j = divmod(int(best[k, row]), ow)
                    locations[row, rank_of[(row, position)]] = (i, j)
                    targets.append((row, i, j))
                found.targets[position] = targets
                found.values[position] = best_value[k, by_image[position]]
                found.peaks[position] = float(layer_peak[k])
    return found


def count_copies(maxima: Maxima, *, window: RFWindow, image_size, occluder: int, stride: int, grid, crop: bool,
                 drill: DrillDown | None) -> tuple[int, int]:
    """``(copies certain, copies at most)`` of the sweep: equal for the exact sweep; for the adaptive
    drill-down the coarse copies, and those plus every refinement the coarse passes could ask for."""
    certain = most = 0
    for targets in maxima.targets.values():
        for _, (gy0, gy1, gx0, gx1), _ in _plan_groups(targets, window, image_size, occluder, stride, grid, crop):
            if drill is None:
                certain += 1 + (gy1 - gy0) * (gx1 - gx0)
                most += 1 + (gy1 - gy0) * (gx1 - gx0)
            else:
                certain += drill.coarse_copies(gy1 - gy0, gx1 - gx0)
                most += drill.coarse_copies(gy1 - gy0, gx1 - gx0) + drill.refinement_at_most(gy1 - gy0, gx1 - gx0)
    return certain, most


def sweep(data: Dataset, engine: _Occluder, maxima: Maxima, *, union: list[int], units: np.ndarray,
          window: RFWindow, image_size, occluder: int, stride: int, grid, crop: bool, batch_size: int,
          num_workers: int, device: torch.device, dtype: torch.dtype) -> None:
    """Hand every top image's crop groups to ``engine``, which paints the maps."""
    n_units = len(units)
    for positions, images, _, _ in iter_batches(data, batch_size, indices=union, num_workers=num_workers):
        images = images.to(device=device, dtype=dtype)
        padded = torch.nn.functional.pad(images, (occluder, occluder, occluder, occluder))
        for k, position in enumerate(positions):
            targets = maxima.targets[position]
            full_values = np.zeros(n_units, dtype=maxima.values[position].dtype)
            full_values[[row for row, _, _ in targets]] = maxima.values[position]
            for group in _image_groups(padded[k], position, targets, full_values=full_values,
                                       scale=maxima.peaks[position], units=units, window=window,
                                       image_size=image_size, occluder=occluder, stride=stride, grid=grid,
                                       crop=crop):
                engine.submit(group)
    engine.flush()


def _unit_maxima(model: nn.Module, layer: str, images: torch.Tensor, units: torch.Tensor):
    """Each unit's first maximum in the full forward of ``images``.

    Returns ``(best, best_value, layer_peak, ow)``: the flat map index
    ``(B, U)`` of each unit's max and its value ``(B, U)``, the layer's
    largest absolute activation per image ``(B,)`` (the crop check's scale)
    and the map's width.
    """
    with Trace(model, layer, stop=True, clone=False) as trace:
        model(images)
    out = _layer_output(trace, layer, images)
    oh, ow = out.shape[-2:]
    selected = out[:, units.to(out.device)].float()  # (B, U, oh, ow)
    flat = selected.flatten(2)
    best = flat.argmax(dim=2).cpu().numpy()  # (B, U): first maximum
    layer_peak = flat.abs().flatten(1).amax(dim=1).cpu().numpy()  # (B,)
    best_value = flat.gather(2, torch.as_tensor(best, device=flat.device).unsqueeze(2)).squeeze(2)
    best_value = best_value.cpu().numpy()
    return best, best_value, layer_peak, ow
