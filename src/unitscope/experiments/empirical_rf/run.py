"""``empirical_receptive_fields``: the top-K pass, then one occlusion sweep per distinct top image."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import resolve_layer

from .._common import (Progress, check_dataset, check_positive_int, eval_mode, iter_batches, model_device,
                       model_dtype, normalisation, preprocessing_record, weights_record)
from unitscope.models.incremental import IncrementalChain
from unitscope.models.rf_window import RFWindow

from .adaptive import DEFAULT_COARSE, DEFAULT_TOLERANCE, MODES, DrillDown
from .by_layer import layer_by_layer
from .layers import _check_units, check_rf_layers
from .occluder import _check_tolerance, _Occluder, default_occluder
from unitscope.results.receptive_fields import EmpiricalRFResult, rf_size
from .sweep import count_copies, locate_maxima, sweep, units_of_images
from .top_images import top_activations

__all__ = ["empirical_receptive_fields"]


def empirical_receptive_fields(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    top_k: int = 20,
    units: Sequence[int] | None = None,
    occluder: int | None = None,
    stride: int | None = None,
    rf=None,
    crop: bool = True,
    mode: str = "exact",
    incremental: bool | None = None,
    coarse: int = DEFAULT_COARSE,
    tolerance: float = DEFAULT_TOLERANCE,
    check: bool = True,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    network: str = "",
    batch_size: int = 64,
    num_workers: int = 0,
    work_dir: str | Path | None = None, restart: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> EmpiricalRFResult | list[EmpiricalRFResult]:
    """Empirical receptive fields of a layer's units by occlusion of their top images.

    Parameters
    ----------
    model : nn.Module
    layer : str or sequence of str
        Dotted name of a layer with ``(N, C, H, W)`` output; several: each
        is measured in turn (every one checked first) and a list of results
        comes back, one per layer.
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)``, all the same size.
    top_k : int, keyword-only
        Top images per unit (default 20).
    units : sequence of int, keyword-only
        Channels to study (default all).
    occluder, stride : int, keyword-only
        Side of the random-pixel patch and its grid step, in pixels (default:
        the paper's 11 and 3 at 224 px, scaled with the image side; 6 and 2
        at 128 px).
    rf : RFWindow, (size, stride, start) or ReceptiveField, keyword-only
        The layer's theoretical receptive field (default:
        ``unitscope.models.receptive_field``; see ``unitscope.models.rf_window``).
    crop : bool, keyword-only
        Occlude only inside the RF window and forward only its crop (exact;
        see the module docstring).  False runs the naive full-image sweep.
    mode : {"exact", "adaptive"}, keyword-only
        ``"exact"`` (default) occludes at every grid position.  ``"adaptive"``
        is Krypton's drill-down (:mod:`.adaptive`): every ``coarse``-th
        position first, then every position in the cells where the coarse
        map is above ``tolerance`` times the unit's coarse peak and its
        interpolation error estimate (second differences) is too; the other
        positions are interpolated bilinearly from the coarse ones.  Its
        maps approximate the exact ones (``benchmarks/rf_deep.py`` measures
        the error); the result records the mode and its parameters.
    incremental : bool or None, keyword-only
        Recompute for each occluded copy only what the occluder reaches
        (:mod:`unitscope.models.incremental`, Krypton's incremental
        inference): the same numbers up to rounding, several times faster
        for deep layers.  ``None`` (default) uses it where the network up to
        the layer is a chain of layers it supports, and logs why not
        otherwise; ``False`` runs every copy through the whole network;
        ``True`` refuses a network it does not support.  Both modes use it.
    coarse : int, keyword-only
        Adaptive mode: fine grid steps per coarse step (default 4).
    tolerance : float, keyword-only
        Adaptive mode: the interpolation error allowed, as a fraction of a
        unit's coarse peak (default 0.01), in ``[0, 1)``: a cell is refined
        where both the coarse values and their second differences exceed it.
    check : bool, keyword-only
        Compare each crop's unoccluded activation with the full forward pass.
    seed : int, keyword-only
        Seed of the occluder's random pixels (uniform in ``[0, 1]`` RGB,
        normalised; one patch per grid position, shared by all images).
    mean, std : sequence of float, keyword-only
        The data's normalisation (default: the data set's transform, else the
        model's metadata).
    network : str, keyword-only
        Name recorded in the result.
    batch_size, num_workers : int, keyword-only
    work_dir : path, keyword-only
        Where each finished layer is saved (removed at the end); run again
        with the same arguments, the run resumes at the first unfinished
        layer (see :mod:`unitscope.experiments.resume`).
    restart : bool, keyword-only
        Discard the layers saved in ``work_dir`` instead of resuming them.
    log : callable, keyword-only
        Receives, per layer, the number of forward passes the sweep will run
        (before the first; adaptive: the coarse ones and the most the
        refinement can add), or ``"conv1: cached"`` when resumed.
    progress : callable, keyword-only
        ``progress(done, total)``: images of the data pass, then forward
        passes of occluded copies (per layer; adaptive: the total shrinks as
        the coarse passes decide the refinement).

    Returns
    -------
    EmpiricalRFResult, or a list of them (one per layer) for several layers

    Raises
    ------
    LookupError
        If the layer does not exist.
    ValueError
        For an empty data set, a layer without spatial output, bad units or options.
    RuntimeError
        If ``check`` finds that the crop does not reproduce the full pass.
    """
    if not isinstance(layer, str) or work_dir is not None:
        layers = [layer] if isinstance(layer, str) else list(layer)
        options = dict(top_k=top_k, units=units, occluder=occluder, stride=stride, rf=rf, crop=crop, mode=mode,
                       incremental=incremental, coarse=coarse, tolerance=tolerance, check=check, seed=seed, mean=mean, std=std,
                       network=network, batch_size=batch_size, num_workers=num_workers)
        # each layer is a run of its own: empirical_receptive_fields of one layer, without a work folder
        results = layer_by_layer(empirical_receptive_fields, model, layers, data, options=options,
                                 work_dir=work_dir, restart=restart, log=log, progress=progress)
        return results[0] if isinstance(layer, str) else results
    resolve_layer(model, layer)
    n_data = check_dataset(data)
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    drill = _drill_down(mode, coarse, tolerance)
    # Before the data pass: a layer that is not spatial, or has no window, is refused up front.
    layout, window = check_rf_layers(model, [layer], data, rf=rf)[layer]
    crop_asked = crop
    if layout.is_token_grid or window.note:
        # a transformer takes only inputs of its own size, and a unit that sees the whole input
        # has no smaller crop: occlude whole images
        crop = False
    if units is not None:
        _check_units(units, layout.channels, layer)  # before the top-k pass, not after its first batch
    chain, why_not = _incremental_chain(model, layer, data, incremental)
    started = time.perf_counter()

    units_arr, top_values, top_ids, (h, w) = top_activations(
        model, layer, data, top_k=top_k, units=units, batch_size=batch_size, num_workers=num_workers,
        progress=progress)
    topk_seconds = time.perf_counter() - started
    occluder, stride = _occluder_and_stride(occluder, stride, (h, w), window)
    ny, nx = (h - occluder) // stride + 1, (w - occluder) // stride + 1
    radius = window.size // 2 + occluder + stride
    side = 2 * radius + 1
    n_units = len(units_arr)
    maps = np.zeros((n_units, side, side), dtype=np.float64)
    device, dtype = model_device(model), model_dtype(model)
    mean_t, std_t = normalisation(model, data, mean, std)
    bank = _occluder_bank(seed, ny * nx, occluder, mean_t, std_t, device=device, dtype=dtype)
    by_image, rank_of = units_of_images(top_ids, n_units)
    union = sorted(by_image)
    locations = np.full(top_ids.shape + (2,), -1, dtype=np.int64)
    occlusion_started = time.perf_counter()
    maxima = locate_maxima(model, layer, data, union=union, by_image=by_image, rank_of=rank_of, units=units_arr,
                           locations=locations, batch_size=batch_size, num_workers=num_workers)
    geometry = dict(window=window, image_size=(h, w), occluder=occluder, stride=stride, grid=(ny, nx), crop=crop)
    certain, most = count_copies(maxima, drill=drill, **geometry)
    if log is not None:
        log(_passes_line(layer, certain, most, len(union), drill))
    if log is not None and incremental is not False:
        log(f"{layer}: incremental inference (each copy recomputes only what its occluder reaches)" if chain
            else f"{layer}: every copy through the whole network (no incremental inference: {why_not})")
    engine = _Occluder(model, layer, occluder=occluder, stride=stride, grid=(ny, nx), bank=bank,
                       batch_size=batch_size, maps=maps, radius=radius, check=check and crop,
                       rtol=_check_tolerance(device, dtype), drill=drill, incremental=chain,
                       on_copies=None if progress is None else lambda done, total: progress(n_data + done, n_data + total))
    engine.expected = most
    pixels_naive = len(union) * (ny * nx + 1) * h * w
    with torch.inference_mode(), eval_mode(model):
        sweep(data, engine, maxima, union=union, units=units_arr, batch_size=batch_size, num_workers=num_workers,
              device=device, dtype=dtype, **geometry)
    counts = (top_ids >= 0).sum(axis=1).clip(min=1)
    maps /= counts[:, None, None]
    sizes = np.asarray([rf_size(m) for m in maps], dtype=np.float64)
    stats = {
        "images": len(union), "copies": engine.copies, "copies_naive": len(union) * (ny * nx + 1),
        "pixels": engine.pixels, "pixels_naive": pixels_naive,
        "topk_s": topk_seconds, "occlusion_s": time.perf_counter() - occlusion_started,
    }
    if drill is not None:
        stats.update(copies_coarse=certain, copies_refined=engine.copies - certain)
    if incremental is not False:  # absent when asked off, so such a run's rf.json is as before
        stats.update(incremental=chain is not None, **({} if chain else {"incremental_not": why_not}))
    options = {"top_k": top_k, "crop": crop, "crop_asked": crop_asked, "layout": layout.describe(),
               "check": check, "seed": seed, "batch_size": batch_size,
               "mean": mean_t.flatten().tolist(), "std": std_t.flatten().tolist(),
               **weights_record(model),
               "preprocessing": preprocessing_record(model, data)}
    return EmpiricalRFResult(
        layer=layer, units=units_arr, maps=maps.astype(np.float32), sizes=sizes, top_ids=top_ids,
        top_values=top_values, locations=locations, theoretical=window, image_size=(h, w),
        occluder=occluder, stride=stride, options=options, stats=stats, network=network, mode=mode,
        drill_down=None if drill is None else {"coarse": drill.coarse, "tolerance": drill.tolerance})


def _drill_down(mode: str, coarse: int, tolerance: float) -> DrillDown | None:
    """The adaptive drill-down of ``mode`` (None for the exact sweep), its options checked."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    coarse = check_positive_int(coarse, "coarse")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a number in [0, 1), got {tolerance!r}")
    return DrillDown(coarse=coarse, tolerance=float(tolerance)) if mode == "adaptive" else None


def _incremental_chain(model: nn.Module, layer: str, data: Dataset, incremental: bool | None):
    """``(IncrementalChain or None, why not)`` for ``layer``, as ``incremental`` asks."""
    if incremental is False:
        return None, "not asked"
    if incremental is not None and incremental is not True:
        raise ValueError(f"incremental must be True, False or None, got {incremental!r}")
    sample = data[0][0].unsqueeze(0).to(device=model_device(model), dtype=model_dtype(model))
    with eval_mode(model):
        chain, why_not = IncrementalChain.of(model, layer, sample)
    if chain is None and incremental:
        raise ValueError(f"incremental inference cannot run layer {layer!r}: {why_not}")
    return chain, why_not


def _passes_line(layer: str, certain: int, most: int, images: int, drill: DrillDown | None) -> str:
    """The log line announcing the sweep's forward passes."""
    if drill is None:
        return f"{layer}: {certain:,} forward passes of occluded copies over {images:,} top image(s)"
    return (f"{layer}: {certain:,} coarse forward passes over {images:,} top image(s), then at most "
            f"{most - certain:,} refining ones (adaptive: coarse step {drill.coarse}, tolerance {drill.tolerance:g})")


def _occluder_and_stride(occluder: int | None, stride: int | None, image_size: tuple[int, int],
                         window: RFWindow) -> tuple[int, int]:
    """The occluder's side and step (the paper's, scaled, when not given), checked against the images and window."""
    h, w = image_size
    default_o, default_st = default_occluder(min(h, w))
    occluder = default_o if occluder is None else check_positive_int(occluder, "occluder")
    stride = default_st if stride is None else check_positive_int(stride, "stride")
    if occluder > min(h, w):
        raise ValueError(f"occluder ({occluder} px) is larger than the images ({h}x{w})")
    if window.size < 1 or window.stride < 1:
        raise ValueError(f"bad receptive field {window}")
    return occluder, stride


def _occluder_bank(seed: int, positions: int, occluder: int, mean_t: torch.Tensor, std_t: torch.Tensor, *,
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One patch of random pixels per grid position, ``(positions, occluder, occluder, 3)``, normalised.

    Uniform in ``[0, 1]`` RGB from ``seed``, so the same seed occludes with the same patches.
    """
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.rand((positions, occluder, occluder, 3), generator=generator)
    return ((noise - mean_t.view(1, 1, 1, 3)) / std_t.view(1, 1, 1, 3)).to(device=device, dtype=dtype)
