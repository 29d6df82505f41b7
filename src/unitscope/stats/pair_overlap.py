"""Overlap counts fed by the (image, unit) pairs whose mask is not empty.

With a top-0.5 % threshold most units are silent on most images; counting
only the pairs that fire keeps network dissection's second pass cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._base import Statistic

__all__ = ["PairOverlap"]


class PairOverlap(Statistic):
    """Exact intersection / union counts of unit masks and concepts, fed by active (image, unit) pairs.

    The sparse counterpart of :class:`RunningConceptOverlap` (the same counts):
    only the pairs whose mask is not empty are given, which is what makes
    network dissection's second pass cheap.  Counts are int64, so ``merge``
    is exact.

    Parameters
    ----------
    num_units, num_concepts : int
        U and K.
    """

    _tensor_names = ("intersection", "unit_area", "concept_area")

    def __init__(self, num_units: int, num_concepts: int) -> None:
        if int(num_units) < 1 or int(num_concepts) < 1:
            raise ValueError(f"num_units and num_concepts must be >= 1, got {num_units}, {num_concepts}")
        self.num_units, self.num_concepts = int(num_units), int(num_concepts)
        self.intersection = torch.zeros(self.num_units, self.num_concepts, dtype=torch.int64)
        self.unit_area = torch.zeros(self.num_units, self.num_concepts, dtype=torch.int64)
        self.concept_area = torch.zeros(self.num_concepts, dtype=torch.int64)
        self.count = 0
        self._device = None

    @classmethod
    def _config_keys(cls) -> tuple[str, ...]:
        return ("num_units", "num_concepts")

    def _config(self) -> dict[str, Any]:
        return {"num_units": self.num_units, "num_concepts": self.num_concepts}

    def add(self, image, unit, masks, labels, valid, *, on=None) -> None:
        """Add a batch of images.

        Parameters
        ----------
        image, unit : torch.Tensor, shape (M,), int64
            The (image in batch, unit) of each non-empty mask.
        masks : torch.Tensor, shape (M, P), bool
            The pairs' masks, flattened like ``labels``.
        labels : torch.Tensor, shape (N, L, P), int64
            Concept index (0..K-1) per pixel and label layer, -1 for none.  A
            concept should appear in at most one layer at a given pixel (as
            when each layer is one annotation category), else it counts twice.
        valid : torch.Tensor, shape (N, K), bool
            Whether each concept is annotated in each image.
        on : tuple of tensors, optional
            ``torch.nonzero(masks, as_tuple=True)`` when the caller has it already.
        """
        k = self.num_concepts
        n = labels.shape[0]
        rows = torch.arange(n, device=labels.device)[:, None, None]
        usable = (labels >= 0) & valid[rows, labels.clamp(min=0)]
        binned = torch.where(usable, labels, torch.full_like(labels, k))
        self.concept_area += torch.bincount(binned.reshape(-1), minlength=k + 1)[:k].to(self.concept_area.device)
        self.count += n
        if image.numel() == 0:
            return
        which, pixel = on if on is not None else torch.nonzero(masks, as_tuple=True)
        area = torch.bincount(which, minlength=masks.shape[0])
        target = self.unit_area.device
        self.unit_area.index_add_(0, unit.to(target), (area[:, None] * valid[image].long()).to(target))
        owner_image, owner_unit = image[which], unit[which]
        for layer in range(binned.shape[1]):
            concept = binned[owner_image, layer, pixel]
            counts = torch.bincount(owner_unit * (k + 1) + concept, minlength=self.num_units * (k + 1))
            self.intersection += counts.reshape(self.num_units, k + 1)[:, :k].to(target)

    def union(self) -> torch.Tensor:
        return self.unit_area + self.concept_area[None, :] - self.intersection

    def iou(self) -> torch.Tensor:
        """``(U, K)`` float64; 0 where the union is empty."""
        union = self.union()
        iou = self.intersection.double() / union.clamp(min=1).double()
        return torch.where(union > 0, iou, torch.zeros_like(iou))

    def _merge_same(self, other: "PairOverlap") -> None:
        self.intersection += other.intersection.to(self.intersection.device)
        self.unit_area += other.unit_area.to(self.unit_area.device)
        self.concept_area += other.concept_area.to(self.concept_area.device)
        self.count += other.count

    def _state(self) -> dict[str, Any]:
        return {"count": self.count, "intersection": self.intersection.cpu().numpy().copy(),
                "unit_area": self.unit_area.cpu().numpy().copy(),
                "concept_area": self.concept_area.cpu().numpy().copy()}

    def _load(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        for name in self._tensor_names:
            setattr(self, name, torch.as_tensor(np.asarray(state[name]), dtype=torch.int64).clone())
