"""The :func:`dissect` entry point: options checked up front, the run keyed and resumed, both passes.

Each rank dissects a contiguous shard of the pool (:mod:`.activations`
then :mod:`.counting`) under a :class:`~unitscope.experiments.resume.RunState`
keyed by the whole configuration, so that a killed run started again with
the same arguments resumes and ends with the same results.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

import unitscope
from unitscope.experiments import _distributed as D
from unitscope.experiments import _thresholds as TH
from unitscope.experiments._common import (check_spatial_layers, eval_mode, model_device, preprocessing_key,
                                           preprocessing_record)
from unitscope.experiments.resume import RunState, config_key, weights_fingerprint
from unitscope.experiments.dissect.activations import _first_pass, _ShardRun, _Statistics
from unitscope.experiments.dissect.cache import (DEFAULT_CACHE_BUDGET_GB, check_cache_options, check_free_space,
                                                 plan_cache)
from unitscope.experiments.dissect.counting import _Counts, _second_pass
from unitscope.experiments.dissect.labels import _LabelBatches
from unitscope.hooks import resolve_layer
from unitscope.results.dissection import DissectionResult, LayerDissection
from unitscope.results.dissection_warnings import dissection_warnings
from unitscope.stats import PairOverlap


def _check_inputs(model, layers, data):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("dissect needs at least one layer name")
    repeated = sorted({layer for layer in layers if layers.count(layer) > 1})
    if repeated:
        raise ValueError(f"layers are named more than once: {', '.join(repeated)}")
    for layer in layers:
        resolve_layer(model, layer)
    for attr in ("annotation", "concepts"):
        if not hasattr(data, attr):
            raise ValueError(
                f"dissection needs an annotated pool with concept masks (a Broden directory or an "
                f"image + index-mask pool); {type(data).__name__} has no {attr!r}"
            )
    if len(data) == 0:
        raise ValueError("the pool is empty")
    if len(data.concepts) == 0:
        raise ValueError("the pool has no concepts (its label table is empty)")
    return check_spatial_layers(model, layers, data, purpose="dissection")


def dissect(
    model: nn.Module,
    layers: str | Sequence[str],
    data,
    *,
    network: str = "network",
    quantile: float = 0.005,
    threshold_rule: str = "unitscope",
    min_support: int = TH.DEFAULT_MIN_SUPPORT,
    iou_threshold: float = 0.04,
    top_k: int = 60,
    batch_size: int = 32,
    num_workers: int = 0,
    mask_size: int | str | None = "auto",
    quantile_resolution: int = 2048,
    activation_cache: str = "auto",
    cache_budget_gb: float = DEFAULT_CACHE_BUDGET_GB,
    work_dir: str | Path | None = None, checkpoint_every: int = 20, restart: bool = False,
    label_cache: str | Path | None = None,
    category_types: dict[str, str] | None = None,
    progress=None,
    log: Callable[[str], None] | None = None,
) -> DissectionResult:
    """Dissect one or more layers of ``model`` over an annotated pool.

    Parameters
    ----------
    model : nn.Module
    layers : str or sequence of str
        Dotted names of spatial layers: outputs ``(N, C, H, W)``, or token
        grids ``(N, T, C)`` read as maps of their patches
        (:func:`unitscope.hooks.spatial_map`).
    data : annotated pool
        A pool with ``concepts`` and ``annotation(i)`` (``BrodenPool``,
        ``IndexMaskPool``); its images must be transformed for ``model``.
    network : str, keyword-only
        Name written in the tables.
    quantile : float, keyword-only
        Top quantile that sets each unit's threshold (0.005: the top 0.5 %).
    threshold_rule : {"unitscope", "netdissect", "inclusive"}, keyword-only
        How the threshold is computed and how ties count (see
        :mod:`unitscope.experiments._thresholds`).  ``"unitscope"``
        (default): the sketch's order statistic, on when ``A > T``, so each
        mask covers at most the nominal share.  ``"netdissect"``: Network
        Dissection's linearly interpolated quantile, exact (each unit's
        largest ``quantile * n + 2`` values are kept in memory in pass 1:
        up to 12 bytes each with the batches waiting to be cut back, e.g.
        52 MB for 512 units of 13 x 13 over 10,000 images; the sketch, with
        a warning, beyond 1 GiB), on when ``A > T``.  ``"inclusive"``:
        unitscope's earlier ``A >= T``, for comparisons.  Units whose
        threshold is their maximum are reported as ``saturated``.
    min_support : int, keyword-only
        Images a concept needs in the pool to be used as a label (default
        10, Broden's own filter); the others stay in ``concepts.csv``.
    iou_threshold : float, keyword-only
        A unit is a detector when its best IoU exceeds this.
    top_k : int, keyword-only
        Top images kept per unit (for precision and the tables).
    batch_size, num_workers : int, keyword-only
    mask_size : int, "auto" or None, keyword-only
        Subsample masks whose longest side exceeds this (nearest neighbour).
        ``"auto"`` (default): half the model's input size, Network
        Dissection's convention (112 px segmentations for 224 px inputs).
        None keeps the masks' native resolution.
    quantile_resolution : int, keyword-only
        Resolution of the quantile sketch (see ``RunningQuantile``).
    activation_cache : {"auto", "disk", "float16", "recompute"}, keyword-only
        Keep pass-1 activations on disk for pass 2 (``"disk"``: float32,
        one forward pass; ``"float16"``: half the bytes, thresholds compared
        with rounded values, so a few IoUs move) or run the network again in
        pass 2 (``"recompute"``: no disk, twice the forward cost, the same
        results as ``"disk"``).  ``"auto"`` (default): ``"disk"`` within
        ``cache_budget_gb``, else ``"recompute"``.  The choice is logged and
        recorded in ``result.json`` (``config.activation_cache``); see
        :mod:`unitscope.experiments.dissect.cache`.
    cache_budget_gb : float, keyword-only
        Disk budget of the activation cache under ``"auto"``, in GB
        (default 20: AlexNet's conv5 over Broden's 63,000 images at 224 px
        takes 10.9 GB).  Whatever the policy, a cache larger than the free
        space of ``work_dir`` is refused before the first batch.
    work_dir : path, keyword-only
        Where checkpoints and the activation cache go (deleted when the run
        ends).  None: a temporary folder, and no resume.
    checkpoint_every : int, keyword-only
        Batches between checkpoints.
    restart : bool, keyword-only
        Discard a partial run in ``work_dir`` instead of resuming it.
    label_cache : path, keyword-only
        A folder where the pool's decoded annotations are kept for later
        dissections of the same images (other networks, layers or
        thresholds), which then skip decoding the masks: the second and
        later dissections of a pool cost little more than the forward pass.
        Entries are keyed by the mask files' names, sizes and modification
        times, the mask size and the concept table, so an edited pool is
        decoded again.  Size: about ``L x mask_size^2`` bytes per image (L
        label layers).  None (default): decode for this run only.
    category_types : dict, keyword-only
        Overrides of :data:`~unitscope.experiments.dissect.CATEGORY_TYPES`.
    progress : callable, keyword-only
        ``progress(done, total)`` over both passes.
    log : callable, keyword-only
        ``log(line)`` for status lines (the activation cache chosen).

    Returns
    -------
    DissectionResult

    Raises
    ------
    LookupError
        If a layer does not exist.
    ValueError
        If the pool has no masks, a layer is not spatial, activations are
        NaN, or an option is out of range.
    OSError
        If the activation cache cannot fit in the free space of ``work_dir``.
    """
    mask_size = _check_options(model, mask_size=mask_size, quantile=quantile, threshold_rule=threshold_rule,
                               min_support=min_support, iou_threshold=iou_threshold,
                               batch_size=batch_size, top_k=top_k,
                               checkpoint_every=checkpoint_every, num_workers=num_workers)
    check_cache_options(activation_cache, cache_budget_gb)
    shapes = _check_inputs(model, layers, data)  # after the options: it runs one image through
    layers = list(shapes)

    rank, world = D.rank_and_world()
    # Contiguous shards: rank r takes positions [r n / world, (r + 1) n / world) of the pool,
    # and every table refers to images by their position in the whole pool.
    n_all = len(data)
    first, last = rank * n_all // world, (rank + 1) * n_all // world
    shard = data.shard(rank, world) if world > 1 else data
    global_index = np.arange(first, last, dtype=np.int64)
    num_concepts = data.concepts.max_number
    # (one plan for every rank: the largest shard's, so that all ranks share the run's key)
    plan = plan_cache(activation_cache, shapes, -(-n_all // world), budget_gb=cache_budget_gb)
    config = _run_config(model, layers, data, network=network, quantile=quantile, threshold_rule=threshold_rule,
                         min_support=min_support, iou_threshold=iou_threshold, top_k=top_k,
                         batch_size=batch_size, mask_size=mask_size, quantile_resolution=quantile_resolution,
                         activation_cache=plan.mode, category_types=category_types, world=world)
    # where a value came from is recorded, but the same values resume the same run
    keyed = dict(config, preprocessing=preprocessing_key(config["preprocessing"]))
    key = config_key(keyed)

    import tempfile

    temporary = None
    if work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="unitscope-dissect-")
        work_dir = temporary.name
    # Scratch files of this rank: pass 1's activations and decoded labels (see _run).
    state = RunState(Path(work_dir), key, config=keyed, rank=rank, restart=restart,
                     scratch=(f"acts_rank{rank}_*.f32", f"acts_rank{rank}_*.f16", f"labels_rank{rank}_*.pt"))
    try:
        existing = sum(p.stat().st_size for suffix in ("f32", "f16")
                       for p in Path(work_dir).glob(f"acts_rank{rank}_*.{suffix}"))
        check_free_space(plan, Path(work_dir), existing)
        if log is not None and rank == 0:
            log(plan.describe())
        result = _run(model, layers, data, shard, global_index, num_concepts, state, config,
                      batch_size=batch_size, num_workers=num_workers, mask_size=mask_size,
                      quantile=quantile, threshold_rule=threshold_rule, top_k=top_k,
                      resolution=quantile_resolution,
                      activation_cache=plan.mode, checkpoint_every=checkpoint_every,
                      progress=progress, rank=rank,
                      label_cache=Path(label_cache) if label_cache is not None else None)
    except BaseException:
        # A failure (bad data, a full disk) or an interruption before the first checkpoint leaves
        # nothing to resume from: remove the activation cache rather than leave gigabytes behind.
        # After a checkpoint the run stays resumable, its scratch files with it.
        if not state.path.exists():
            state.clear()
        raise
    finally:
        if temporary is not None:
            temporary.cleanup()
    result.warnings = dissection_warnings(result)
    return result


def _check_options(model, *, mask_size, quantile, threshold_rule, min_support, iou_threshold,
                   batch_size, top_k, checkpoint_every, num_workers):
    """Refuse an option out of range (one clear line); returns ``mask_size`` with ``"auto"`` resolved."""
    from unitscope.models.info import model_info

    if mask_size == "auto":
        mask_size = max(1, model_info(model).preprocessing.nominal_side // 2)
    elif mask_size is not None and (isinstance(mask_size, str) or int(mask_size) < 1):
        raise ValueError(f"mask_size must be a positive int, 'auto' or None, not {mask_size!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    TH.check_threshold_rule(threshold_rule)
    TH.check_min_support(min_support)
    if not 0 <= iou_threshold < 1:  # also refuses NaN, which no IoU exceeds
        raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
    for name, value in (("batch_size", batch_size), ("top_k", top_k), ("checkpoint_every", checkpoint_every)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if int(num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return mask_size


def _run_config(model, layers, data, *, network, quantile, threshold_rule, min_support, iou_threshold, top_k,
                batch_size, mask_size, quantile_resolution, activation_cache, category_types, world) -> dict:
    """The run's configuration: recorded in ``result.json``, and the key that a resumed run must match."""
    from unitscope.models.info import model_info

    return {
        "network": network,
        "layers": layers,
        "weights": weights_fingerprint(model),
        "weights_seed": model_info(model).seed,
        "data": {"type": type(data).__name__, "n": len(data),
                 "ids": config_key({"ids": list(getattr(data, "ids", []))}),
                 # what the masks mean: resuming with another class list must not mix the two
                 "labels": config_key({"labels": data.labels_key() if hasattr(data, "labels_key")
                                       else data.concepts.to_records()})},
        "preprocessing": preprocessing_record(model, data),
        "quantile": quantile,
        "threshold_rule": threshold_rule,
        "min_support": int(min_support),
        "iou_threshold": iou_threshold,
        "top_k": top_k,
        "batch_size": batch_size,
        "mask_size": mask_size,
        "quantile_resolution": quantile_resolution,
        "activation_cache": activation_cache,
        "category_types": category_types or {},
        "world_size": world,
        "version": unitscope.__version__,
    }


def _run(model, layers, data, shard, global_index, num_concepts, state: RunState, config, *,
         batch_size, num_workers, mask_size, quantile, threshold_rule, top_k, resolution, activation_cache,
         checkpoint_every, progress, rank, label_cache):
    """Both passes over this rank's shard, from ``state``'s checkpoint on; the result merged over ranks."""
    device = model_device(model)
    n_batches = math.ceil(len(shard) / batch_size)
    saved = state.load() or {"pass": 1, "batch": 0}
    statistics = _Statistics(layers, saved, resolution=resolution, top_k=top_k, rank=rank)
    run = _ShardRun(model=model, layers=layers, shard=shard, global_index=global_index, device=device,
                    batch_size=batch_size, num_workers=num_workers, checkpoint_every=checkpoint_every,
                    n_batches=n_batches, state=state, rank=rank, shapes=saved.get("shapes", {}), progress=progress,
                    cache_mode=activation_cache)
    label_batches = _LabelBatches(shard, batch_size, mask_size, data.concepts, state.folder, rank,
                                  cache=label_cache)
    state.folder.mkdir(parents=True, exist_ok=True)
    with eval_mode(model), torch.inference_mode():
        if saved["pass"] == 1:
            saved = _first_pass(run, statistics, label_batches, saved, pool_size=len(data), quantile=quantile,
                                threshold_rule=threshold_rule)
        counts = _second_pass(run, saved, num_concepts=num_concepts, threshold_rule=threshold_rule)
    result = _assemble(layers, saved["merged"], counts, data, config)
    run.close_caches()
    D.barrier()
    state.clear()
    return result


def _assemble(layers, merged: dict[str, dict], counts: _Counts, data, config: dict) -> DissectionResult:
    """The result of both passes, their statistics merged over ranks."""
    layer_results = {}
    for layer in layers:
        o = D.merge_across_ranks(counts.overlaps[layer], PairOverlap.from_state_dict)
        tops = D.gather_objects(counts.top_overlap[layer])
        combined = np.logical_or.reduce(tops) if len(tops) > 1 else tops[0]
        m = merged[layer]
        layer_results[layer] = LayerDissection(
            layer=layer, thresholds=m["thresholds"], iou=o.iou().cpu().numpy().astype(np.float64),
            top_indices=m["top_indices"], top_values=m["top_values"], top_overlap=combined,
            maxima=m["maxima"], minima=m["minima"], saturated=m["saturated"], coverage=o.coverage().cpu().numpy(),
            exact=m["exact"], positions=m["positions"])
        concept_pixels = o.concept_area.cpu().numpy()
    concept_images = np.sum(D.gather_objects(counts.concept_images), axis=0)
    cooccurrence = np.sum(D.gather_objects(counts.cooccurrence), axis=0)
    return DissectionResult(
        network=config["network"], concepts=data.concepts, layers=layer_results,
        image_ids=list(getattr(data, "ids", [str(i) for i in range(len(data))])),
        concept_images=concept_images, cooccurrence=cooccurrence, config=config, concept_pixels=concept_pixels)
