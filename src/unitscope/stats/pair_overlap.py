"""Overlap counts fed by the (image, unit) pairs whose mask is not empty.

With a top-0.5 % threshold most units are silent on most images; counting
only the pairs that fire keeps network dissection's second pass cheap.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ._base import Statistic

__all__ = ["BatchConcepts", "PairOverlap", "batch_concepts", "compact_labels"]


class BatchConcepts(NamedTuple):
    """A batch's annotations in the form :meth:`PairOverlap.add_pairs` counts with.

    Each image's concepts get their own columns, so the one-hot labels are
    only as wide as the most varied image of the batch.

    Attributes
    ----------
    concepts : torch.Tensor, shape (N, J), int64
        Per image, the concept indices present (and annotated), ascending,
        padded with -1.
    onehot : torch.Tensor, shape (N, P, J + 1), float
        Per image and pixel, how many label layers hold each of its concepts;
        the last column is all ones (it gives a mask's area).
    area : torch.Tensor, shape (N, J), int64
        Pixels of each of them (0 for padding).
    valid : torch.Tensor, shape (N, K), bool
        Whether each concept's category is annotated in each image.
    """

    concepts: torch.Tensor
    onehot: torch.Tensor
    area: torch.Tensor
    valid: torch.Tensor

    def __len__(self) -> int:  # images
        return int(self.valid.shape[0])

    @classmethod
    def from_index(cls, concepts, index, area, valid) -> "BatchConcepts":
        """Build from the output of :func:`compact_labels` (and the ``valid`` it was given)."""
        n, _, p = index.shape
        j = concepts.shape[1]
        # float32 sums are exact below 2**24 pixels per mask
        dtype = torch.float32 if p < 2**24 else torch.float64
        onehot = torch.zeros(n, p, j + 1, dtype=dtype, device=index.device)
        order = index.long().transpose(1, 2)  # (N, P, L)
        onehot.scatter_add_(2, order, torch.ones(order.shape, dtype=dtype, device=index.device))
        onehot[:, :, -1] = 1.0  # the column of "no concept" becomes the area column
        return cls(concepts, onehot, area, valid)


def compact_labels(labels: torch.Tensor, valid: torch.Tensor, num_concepts: int):
    """A batch's label layers re-indexed, image by image, over the concepts each image contains.

    Parameters
    ----------
    labels : torch.Tensor, shape (N, L, P), int64
        Concept index per pixel and label layer, -1 for none.
    valid : torch.Tensor, shape (N, K), bool
        Whether each concept's category is annotated in each image; pixels of
        the others do not count.
    num_concepts : int
        K.

    Returns
    -------
    concepts : torch.Tensor, shape (N, J), int64
        Per image, the concepts present (and annotated), ascending, -1 padded;
        J is the most any image has.
    index : torch.Tensor, shape (N, L, P)
        Position of each pixel's concept in its image's row of ``concepts``,
        J for none; uint8 when J < 255, else int32.
    area : torch.Tensor, shape (N, J), int64
        Pixels of each.
    """
    k = int(num_concepts)
    device = labels.device
    n = labels.shape[0]
    rows = torch.arange(n, device=device)[:, None, None]
    binned = torch.where(labels >= 0, labels, torch.full_like(labels, k))  # none -> k
    counts = torch.bincount((binned + rows * (k + 1)).reshape(-1), minlength=n * (k + 1)).reshape(n, k + 1)
    counts[:, :k] *= valid.to(counts.dtype)  # concepts not annotated on an image count as none
    counts[:, k] = 0
    has = counts > 0
    rank = torch.cumsum(has, dim=1) - 1
    j = int(has.sum(1).max()) if n else 0
    lookup = torch.where(has, rank, torch.full_like(rank, j))  # the "none" column k -> j
    index = torch.gather(lookup, 1, binned.reshape(n, -1)).reshape(binned.shape)
    image, concept = torch.nonzero(has, as_tuple=True)
    concepts = torch.full((n, j), -1, dtype=torch.int64, device=device)
    area = torch.zeros((n, j), dtype=torch.int64, device=device)
    concepts[image, rank[image, concept]] = concept
    area[image, rank[image, concept]] = counts[image, concept]
    return concepts, index.to(torch.uint8 if j < 255 else torch.int32), area


def batch_concepts(labels: torch.Tensor, valid: torch.Tensor, num_concepts: int) -> BatchConcepts:
    """The one-hot form of a batch's label layers (memory: N x P x (J + 1) floats).

    Parameters are those of :func:`compact_labels`.
    """
    concepts, index, area = compact_labels(labels, valid, num_concepts)
    return BatchConcepts.from_index(concepts, index, area, valid)


class PairOverlap(Statistic):
    """Exact intersection / union counts of unit masks and concepts, fed by active (image, unit) pairs.

    The same counts as counting every pixel of every dense (unit, concept)
    mask pair, but only the pairs whose mask is not empty are given, which is
    what makes network dissection's second pass cheap (the tests check it
    against the dense reference, ``RunningConceptOverlap`` in
    ``tests/reference_stats.py``).  Counts are int64, so ``merge``
    is exact.

    Parameters
    ----------
    num_units, num_concepts : int
        U and K.
    """

    _tensor_names = ("intersection", "unit_area", "concept_area", "unit_pixels")

    def __init__(self, num_units: int, num_concepts: int) -> None:
        if int(num_units) < 1 or int(num_concepts) < 1:
            raise ValueError(f"num_units and num_concepts must be >= 1, got {num_units}, {num_concepts}")
        self.num_units, self.num_concepts = int(num_units), int(num_concepts)
        self.intersection = torch.zeros(self.num_units, self.num_concepts, dtype=torch.int64)
        self.unit_area = torch.zeros(self.num_units, self.num_concepts, dtype=torch.int64)
        self.concept_area = torch.zeros(self.num_concepts, dtype=torch.int64)
        # Each unit's on-pixels and all pixels seen, whatever is annotated: its mask coverage.
        self.unit_pixels = torch.zeros(self.num_units, dtype=torch.int64)
        self.pixels = 0
        self.count = 0
        self._device = None

    @classmethod
    def _config_keys(cls) -> tuple[str, ...]:
        return ("num_units", "num_concepts")

    def _config(self) -> dict[str, Any]:
        return {"num_units": self.num_units, "num_concepts": self.num_concepts}

    def add(self, image, unit, masks, labels, valid) -> None:
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
        """
        self.add_pairs(image, unit, masks, batch_concepts(labels, valid, self.num_concepts))

    def add_pairs(self, image, unit, masks, concepts: BatchConcepts) -> torch.Tensor:
        """Add a batch of images given as :func:`batch_concepts` and their non-empty unit masks.

        The same as :meth:`add_images` then :meth:`add_masks`.
        """
        self.add_images(concepts)
        return self.add_masks(image, unit, masks, concepts)

    def add_images(self, concepts: BatchConcepts) -> None:
        """Count a batch's images and concept areas (call once per batch; the masks may come in parts)."""
        target = self.unit_area.device
        known = concepts.concepts >= 0
        self.concept_area.index_add_(0, concepts.concepts[known].to(target), concepts.area[known].to(target))
        self.count += len(concepts)
        self.pixels += len(concepts) * int(concepts.onehot.shape[1])

    def add_masks(self, image, unit, masks, concepts: BatchConcepts) -> torch.Tensor:
        """Add unit masks on images of a batch counted with :meth:`add_images`.

        The overlaps are one matrix product per image: its masks ``(M_i, P)``
        times its one-hot labels ``(P, J + 1)``, whose last column of ones
        gives each mask's area.

        Parameters
        ----------
        image, unit : torch.Tensor, shape (M,), int64
            The (image in batch, unit) of each mask.
        masks : torch.Tensor, shape (M, P), bool or float
        concepts : BatchConcepts
            Computed once per batch and shared by every statistic fed with it.

        Returns
        -------
        torch.Tensor, shape (M, J), int64
            Pixels each mask shares with each concept of its image's row of
            ``concepts.concepts`` (0 for padding).
        """
        target = self.unit_area.device
        j = concepts.concepts.shape[1]
        if image.numel() == 0:
            return torch.zeros((0, j), dtype=torch.int64, device=masks.device)
        order = torch.argsort(image, stable=True)
        image, unit, masks = image[order], unit[order], masks[order]
        counts = torch.empty((image.numel(), j + 1), dtype=concepts.onehot.dtype, device=masks.device)
        start = 0
        for i, m in enumerate(torch.bincount(image, minlength=len(concepts)).tolist()):
            if m:
                torch.matmul(masks[start:start + m].to(counts.dtype), concepts.onehot[i],
                             out=counts[start:start + m])
                start += m
        counts = counts.round().long()
        inter, area = counts[:, :-1], counts[:, -1]
        self.unit_area.index_add_(0, unit.to(target), (area[:, None] * concepts.valid[image].long()).to(target))
        self.unit_pixels.index_add_(0, unit.to(target), area.to(target))
        columns = concepts.concepts[image].clamp(min=0)  # padding adds its zeros to concept 0
        self.intersection.index_put_((unit[:, None].to(target), columns.to(target)), inter.to(target),
                                     accumulate=True)
        return inter[torch.argsort(order)]

    def union(self) -> torch.Tensor:
        return self.unit_area + self.concept_area[None, :] - self.intersection

    def coverage(self) -> torch.Tensor:
        """``(U,)`` float64: each unit's share of all pixels that were on (0 before any image)."""
        return self.unit_pixels.double() / max(self.pixels, 1)

    def iou(self) -> torch.Tensor:
        """``(U, K)`` float64; 0 where the union is empty."""
        union = self.union()
        iou = self.intersection.double() / union.clamp(min=1).double()
        return torch.where(union > 0, iou, torch.zeros_like(iou))

    def _merge_same(self, other: "PairOverlap") -> None:
        self.intersection += other.intersection.to(self.intersection.device)
        self.unit_area += other.unit_area.to(self.unit_area.device)
        self.concept_area += other.concept_area.to(self.concept_area.device)
        self.unit_pixels += other.unit_pixels.to(self.unit_pixels.device)
        self.pixels += other.pixels
        self.count += other.count

    def _state(self) -> dict[str, Any]:
        return {"count": self.count, "pixels": self.pixels,
                "unit_pixels": self.unit_pixels.cpu().numpy().copy(),
                "intersection": self.intersection.cpu().numpy().copy(),
                "unit_area": self.unit_area.cpu().numpy().copy(),
                "concept_area": self.concept_area.cpu().numpy().copy()}

    def _load(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.pixels = int(state.get("pixels", 0))
        if "unit_pixels" not in state:  # a checkpoint from before coverage was counted
            state = dict(state, unit_pixels=np.zeros(self.num_units, np.int64))
        for name in self._tensor_names:
            setattr(self, name, torch.as_tensor(np.asarray(state[name]), dtype=torch.int64).clone())
