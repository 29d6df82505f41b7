"""Pass 1 of a dissection: each unit's threshold and top images, and the activation cache.

The network runs once over the shard.  Each layer's activations feed a
mergeable quantile sketch (the threshold), a top-k of each unit's peak
activation (its top images) and, under the ``"netdissect"`` rule, each
unit's exact largest values; they are also written to a file per layer
(float32, or float16 when asked for: :mod:`.cache`) that pass 2 reads back
instead of running the network again.  The
statistics are checkpointed every ``checkpoint_every`` batches and merged
over ranks at the end.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from unitscope.experiments import _distributed as D
from unitscope.experiments import _thresholds as TH
from unitscope.experiments.resume import RunState
from unitscope.experiments.dissect.cache import ActivationFile, cache_suffix
from unitscope.experiments.dissect.labels import _label_loader, _LabelBatches
from unitscope.results.layout import safe_name
from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map
from unitscope.stats import RunningQuantile, RunningTail, RunningTopK


def _activations(model, layers, images) -> dict[str, torch.Tensor]:
    with TraceDict(model, layers, stop=True) as td:
        model(images)
    out = {}
    for layer in layers:
        act = spatial_map(td[layer].output, layer=layer, batch=images.shape[0],
                          image_size=images.shape[-2:], extra_tokens=extra_tokens_of(model))
        if torch.isnan(act).any():
            raise ValueError(f"layer {layer!r} produced NaN activations (check the weights and the input)")
        out[layer] = act.float()
    return out


def _image_loader(shard, batch_size, num_workers, start_batch):
    from unitscope.experiments._common import iter_batches

    indices = list(range(start_batch * batch_size, len(shard)))
    return iter_batches(shard, batch_size, indices=indices, num_workers=num_workers)


@dataclass
class _ShardRun:
    """What both passes over one rank's shard share: the network, the batches, checkpoints, caches.

    ``shapes`` (``(C, H, W)`` per layer, known once pass 1 has seen a batch)
    sizes the activation files; ``caches`` holds the open ones, stored as
    ``cache_mode`` says (``"disk"``: float32, ``"float16"``, or
    ``"recompute"``: none).
    """

    model: Any
    layers: list[str]
    shard: Any
    global_index: np.ndarray  # position in the shard -> position in the whole pool
    device: torch.device
    batch_size: int
    num_workers: int
    checkpoint_every: int
    n_batches: int
    state: RunState
    rank: int
    shapes: dict[str, tuple[int, int, int]]
    progress: Callable[[int, int], None] | None = None
    cache_mode: str = "disk"
    caches: dict[str, ActivationFile] = field(default_factory=dict)

    def report(self, done: int) -> None:
        """``progress(done, total)`` over both passes (``total`` is twice the batches)."""
        if self.progress is not None:
            self.progress(done, 2 * self.n_batches)

    @property
    def cached(self) -> bool:
        """Whether pass 2 reads the activations back (else it runs the network again)."""
        return self.cache_mode != "recompute"

    def open_cache(self, layer: str) -> ActivationFile:
        self.state.folder.mkdir(parents=True, exist_ok=True)
        name = f"acts_rank{self.rank}_{safe_name(layer)}.{cache_suffix(self.cache_mode)}"
        return ActivationFile(self.state.folder / name, self.shapes[layer], self.cache_mode)

    def flush_caches(self) -> None:
        for cache in self.caches.values():
            cache.flush()

    def close_caches(self) -> None:
        for cache in self.caches.values():
            cache.close()
        self.caches.clear()


class _Statistics:
    """Pass 1's statistics of every layer, resumed from a pass-1 checkpoint ``saved`` if it holds them.

    Per layer: a quantile sketch of every unit's activations, the top
    ``top_k`` images by each unit's peak, and under the ``"netdissect"``
    rule each unit's exact largest values.
    """

    def __init__(self, layers: list[str], saved: dict, *, resolution: int, top_k: int, rank: int) -> None:
        self.layers = layers
        self.quantiles = {l: RunningQuantile(resolution, seed=rank) for l in layers}
        self.topks = {l: RunningTopK(top_k) for l in layers}
        # The "netdissect" rule's exact tails: each unit's largest values (None: over budget, or not that rule)
        self.tails: dict[str, RunningTail | None] = {}
        if saved["pass"] == 1 and saved.get("stats"):
            for l in layers:
                self.quantiles[l].load_state_dict(saved["stats"]["quantile"][l])
                self.topks[l].load_state_dict(saved["stats"]["topk"][l])
            for l, tail_state in saved["stats"].get("tails", {}).items():
                self.tails[l] = RunningTail.from_state_dict(tail_state) if tail_state is not None else None

    def add(self, layer: str, act: torch.Tensor, ids: torch.Tensor, *, pool_size: int, quantile: float,
            threshold_rule: str) -> None:
        """Add one batch's activations ``act (N, C, H, W)`` of ``layer``, images ``ids`` in the pool."""
        n, c, h, w = act.shape
        values = act.permute(0, 2, 3, 1).reshape(-1, c)
        self.quantiles[layer].add(values)
        self.topks[layer].add(act.amax(dim=(2, 3)), ids)
        if threshold_rule == "netdissect":
            if layer not in self.tails:
                self.tails[layer] = TH.exact_tail(pool_size * h * w, c, quantile, len(self.layers))
            if self.tails[layer] is not None:
                self.tails[layer].add(values)

    def state_dict(self) -> dict:
        return {
            "quantile": {l: self.quantiles[l].state_dict() for l in self.layers},
            "topk": {l: self.topks[l].state_dict() for l in self.layers},
            "tails": {l: t.state_dict() if t is not None else None for l, t in self.tails.items()}}

    def merged(self, quantile: float, threshold_rule: str) -> dict[str, dict]:
        """Per layer: thresholds, maxima, minima, saturation, top values and indices, merged over ranks."""
        merged = {}
        for layer in self.layers:
            q = D.merge_across_ranks(self.quantiles[layer], lambda s: RunningQuantile.from_state_dict(s))
            t = D.merge_across_ranks(self.topks[layer], lambda s: RunningTopK.from_state_dict(s))
            tail = self.tails.get(layer)
            if tail is not None:
                tail = D.merge_across_ranks(tail, RunningTail.from_state_dict)
            values, indices = t.result()
            merged[layer] = TH.layer_thresholds(q, tail, quantile, threshold_rule)
            merged[layer].update({
                "top_values": values.cpu().numpy(),
                "top_indices": indices.cpu().numpy().astype(np.int64),
            })
        return merged


def _first_pass(run: _ShardRun, statistics: _Statistics, label_batches: _LabelBatches, saved: dict, *,
                pool_size: int, quantile: float, threshold_rule: str) -> dict:
    """Pass 1 from the checkpoint ``saved`` on; returns (and checkpoints) the state pass 2 starts from."""
    label_paths: list[str] = list(saved.get("label_paths", []))
    batch_no = saved["batch"]
    run.report(batch_no)
    # Annotations are decoded by a worker process while this one runs the network; each
    # batch's labels land in a file that pass 2 reads back (one token per batch here).
    # (closed on the way out, so that no worker still writes a label file after a failure)
    with contextlib.closing(_label_loader(label_batches, batch_no, run.num_workers)) as label_tokens:
        batches = _image_loader(run.shard, run.batch_size, run.num_workers, batch_no)
        for positions, images, metas, dropped in batches:
            if dropped:
                raise ValueError(f"{dropped} unreadable image(s) in batch {batch_no}; dissection "
                                 "needs every image (fix or remove them)")
            acts = _activations(run.model, run.layers, images.to(run.device))
            ids = torch.as_tensor(run.global_index[positions], device=run.device)
            for layer, act in acts.items():
                run.shapes.setdefault(layer, tuple(act.shape[1:]))  # (C, H, W)
                statistics.add(layer, act, ids, pool_size=pool_size, quantile=quantile,
                               threshold_rule=threshold_rule)
                if run.cached:
                    if layer not in run.caches:
                        run.caches[layer] = run.open_cache(layer)
                    run.caches[layer].write(positions[0], act.cpu().numpy())
            label_paths.append(next(label_tokens))
            batch_no += 1
            run.report(batch_no)
            if batch_no % run.checkpoint_every == 0 and batch_no < run.n_batches:
                run.flush_caches()
                run.state.save({"pass": 1, "batch": batch_no, "shapes": run.shapes, "label_paths": label_paths,
                                "stats": statistics.state_dict()})
        label_paths.extend(label_tokens)  # (none left unless the image loader stopped early)
    run.flush_caches()
    # Merge over ranks: every rank gets the same thresholds and top sets.
    merged = statistics.merged(quantile, threshold_rule)
    all_shapes = D.gather_objects(run.shapes)
    for s in all_shapes:
        run.shapes.update(s)
    saved = {"pass": 2, "batch": 0, "shapes": run.shapes, "merged": merged, "label_paths": label_paths}
    run.state.save(saved)
    return saved
