"""Pass 2 of a dissection: each unit's thresholded maps against the concepts' masks.

Pass 2 reads back pass 1's activations (or runs the network again) and the
decoded label files.  Only the (image, unit) pairs whose peak reaches the
unit's threshold are upsampled, bilinearly, as two small matrix products;
their masks are thresholded and their intersections and unions with each
image's concepts counted (:class:`~unitscope.stats.PairOverlap`), and for
each unit's top images the concepts its mask touches are marked (the
unit's precision).  The pool's concept counts are taken on the way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unitscope.experiments import _thresholds as TH
from unitscope.experiments.dissect.activations import _activations, _image_loader, _ShardRun
from unitscope.experiments.dissect.labels import _load_label_batch
from unitscope.stats import PairOverlap
from unitscope.stats.pair_overlap import BatchConcepts


class _Upsampler:
    """Bilinear upsampling (``align_corners=False``, as ``F.interpolate``) as two matrix products.

    ``up = Wy @ A @ Wx`` with the 1-D interpolation matrices of each axis:
    the same values as ``F.interpolate(mode="bilinear")`` to float rounding,
    several times faster on the CPU for many small maps.
    """

    def __init__(self) -> None:
        self._matrices: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _axis(n_in: int, n_out: int, device) -> torch.Tensor:
        eye = torch.eye(n_in, device=device)[None]
        return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0]  # (n_in, n_out)

    def __call__(self, maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """``maps (M, h, w)`` -> ``(M, sh, sw)``."""
        h, w = maps.shape[-2:]
        key = (h, w, shape, maps.device, maps.dtype)
        if key not in self._matrices:
            self._matrices[key] = (self._axis(h, shape[0], maps.device).T.to(maps.dtype).contiguous(),
                                   self._axis(w, shape[1], maps.device).to(maps.dtype).contiguous())
        wy, wx = self._matrices[key]
        return wy @ maps @ wx


#: Mask pixels thresholded and counted at a time in pass 2 (~16 MB of float32): big
#: enough to batch many images' small maps, small enough to stay in the CPU's cache.
_CHUNK_PIXELS = 1 << 22


def _count_overlaps(act, cutoff, shape, concepts, overlap, top_table, lookup, image_ids, upsample):
    """Pass 2 for one layer and a batch of images sharing one mask shape.

    Only the units whose peak reaches their threshold on an image are
    upsampled (a bilinear upsample never exceeds the largest input value, so
    the others have empty masks: with the top 0.5 % quantile most pairs are
    skipped).  A few images at a time (so the masks stay in the CPU's
    cache), their masks are thresholded and their overlaps with the images'
    concepts counted (:meth:`PairOverlap.add_masks`); for the (unit, rank)
    whose top image this is, the concepts the mask touches are marked in
    ``top_table``.  A position is on when its value is ``>= cutoff``
    (:func:`~unitscope.experiments._thresholds.cutoffs` sets it per rule).
    """
    overlap.add_images(concepts)
    image, unit = torch.nonzero(act.amax(dim=(2, 3)) >= cutoff[None, :], as_tuple=True)
    if not image.numel():
        return
    concept_index = concepts.concepts.cpu().numpy()  # (N, J), -1 padded
    pixels = shape[0] * shape[1]
    images, units = image.tolist(), unit.tolist()
    start = 0
    while start < len(images):
        stop = start
        while stop < len(images) and (stop == start or (stop - start) * pixels < _CHUNK_PIXELS
                                      or images[stop] == images[stop - 1]):
            stop += 1
        rows = slice(start, stop)
        masks = (upsample(act[image[rows], unit[rows]], shape) >= cutoff[unit[rows]][:, None, None]).flatten(1)
        inter = overlap.add_masks(image[rows], unit[rows], masks, concepts)
        tops = [(m, lookup[(image_ids[images[m]], units[m])]) for m in range(start, stop)
                if (image_ids[images[m]], units[m]) in lookup]
        if tops:
            hit = (inter[[m - start for m, _ in tops]] > 0).cpu().numpy()
            for (m, rank), row in zip(tops, hit):
                top_table[units[m], rank, concept_index[images[m]][row]] = True
        start = stop


class _Counts:
    """Pass 2's counts, resumed from a pass-2 checkpoint ``saved`` if it holds them.

    Per layer: the unit x concept overlaps and, per unit and top image,
    which concepts its mask touches; for the pool: the images holding each
    concept and each pair of concepts.
    """

    def __init__(self, layers: list[str], merged: dict[str, dict], num_concepts: int, device, saved: dict) -> None:
        self.layers = layers
        self.overlaps = {l: PairOverlap(merged[l]["thresholds"].shape[0], num_concepts).to(device) for l in layers}
        self.top_overlap = {l: np.zeros(merged[l]["top_indices"].shape + (num_concepts,), dtype=bool)
                            for l in layers}
        self.concept_images = np.zeros(num_concepts, dtype=np.int64)
        self.cooccurrence = np.zeros((num_concepts, num_concepts), dtype=np.int64)
        if saved.get("stats2"):
            for l in layers:
                self.overlaps[l].load_state_dict(saved["stats2"]["overlap"][l])
                self.top_overlap[l] = saved["stats2"]["top_overlap"][l].copy()
            self.concept_images = saved["stats2"]["concept_images"].copy()
            self.cooccurrence = saved["stats2"]["cooccurrence"].copy()

    def add_pool(self, present: torch.Tensor) -> None:
        """Count a batch's concepts, ``present (N, K)`` bool."""
        present = present.float()
        self.concept_images += present.sum(0).long().numpy()
        self.cooccurrence += (present.T @ present).long().numpy()

    def state_dict(self) -> dict:
        return {"overlap": {l: self.overlaps[l].state_dict() for l in self.layers},
                "top_overlap": self.top_overlap, "concept_images": self.concept_images,
                "cooccurrence": self.cooccurrence}


def _top_ranks(top_indices: np.ndarray) -> dict[tuple[int, int], int]:
    """``(pool position, unit) -> rank`` among the unit's top images (``top_indices (U, top_k)``, -1 padded)."""
    lookup: dict[tuple[int, int], int] = {}
    for u, row in enumerate(top_indices):
        for r, g in enumerate(row.tolist()):
            if g >= 0:
                lookup[(g, u)] = r
    return lookup


def _second_pass(run: _ShardRun, saved: dict, *, num_concepts: int, threshold_rule: str) -> _Counts:
    """Pass 2 from the checkpoint ``saved`` (pass 1's merged statistics) on; returns this rank's counts."""
    layers, device = run.layers, run.device
    merged = saved["merged"]
    counts = _Counts(layers, merged, num_concepts, device, saved)
    upsamplers = {l: _Upsampler() for l in layers}
    top_lookup = {l: _top_ranks(merged[l]["top_indices"]) for l in layers}
    # float32 like the activations, so that "the next float above T" is the activations' next float
    cutoffs = {l: TH.cutoffs(torch.as_tensor(merged[l]["thresholds"], dtype=torch.float32, device=device),
                             torch.as_tensor(merged[l]["minima"], dtype=torch.float32, device=device),
                             torch.as_tensor(merged[l]["saturated"], device=device), threshold_rule)
               for l in layers}
    if run.cached:
        run.close_caches()
        run.caches.update({l: run.open_cache(l) for l in layers})
    label_paths: list[str] = list(saved.get("label_paths", []))
    n_local = len(run.shard)
    batch_no = saved["batch"]
    run.report(run.n_batches + batch_no)
    image_batches = (_image_loader(run.shard, run.batch_size, run.num_workers, batch_no)
                     if not run.cached else None)
    for b in range(batch_no, run.n_batches):
        first, stop = b * run.batch_size, min((b + 1) * run.batch_size, n_local)
        positions = list(range(first, stop))
        if run.cached:
            acts = {l: torch.from_numpy(run.caches[l].read(first, stop)).to(device) for l in layers}
        else:
            _, images, _, _ = next(image_batches)
            acts = _activations(run.model, layers, images.to(device))
        labels = _load_label_batch(label_paths[b])
        counts.add_pool(labels["present"])
        for group in labels["groups"]:
            members = group["members"]
            concepts = BatchConcepts.from_index(group["concepts"].to(device), group["index"].to(device),
                                                group["area"].to(device), group["valid"].to(device))
            member_ids = [int(run.global_index[positions[i]]) for i in members]
            for layer in layers:
                _count_overlaps(acts[layer][members], cutoffs[layer], group["shape"],
                                concepts, counts.overlaps[layer], counts.top_overlap[layer], top_lookup[layer],
                                member_ids, upsamplers[layer])
        batch_no += 1
        run.report(run.n_batches + batch_no)
        if batch_no % run.checkpoint_every == 0 and batch_no < run.n_batches:
            run.state.save({"pass": 2, "batch": batch_no, "shapes": run.shapes, "merged": merged,
                            "label_paths": label_paths, "stats2": counts.state_dict()})
    return counts
