"""Reference statistics: the dense oracles the tests compare unitscope's streaming statistics with.

No product code uses these two (network dissection counts its overlaps with
:class:`unitscope.stats.PairOverlap`, fed only the active (image, unit) pairs,
and keeps no moments), so they live here, beside the tests, and not in
``unitscope.stats``'s exports.  They follow the same protocol as the product
statistics (``add`` / ``merge`` / ``state_dict`` / ``load_state_dict`` / ``to``,
built on :class:`unitscope.stats._base.Statistic`), which is what lets
``tests/test_stats_protocol.py`` put them through the same round trips.

- :class:`RunningConceptOverlap` -- per-unit x per-concept overlap counts of
  dense binary masks, for IoU over a pool: every pixel of every (unit,
  concept) pair is counted, so it is the plain definition that
  ``PairOverlap``'s sparse counts must equal exactly
  (``tests/test_stats_pair_overlap.py``); it is itself checked against
  per-image numpy loops (``tests/test_stats_overlap.py``).
- :class:`RunningMoments`, :class:`RunningMean` -- per-column count, mean,
  variance, min and max (Chan et al.'s parallel update, float64) and running
  means of tensors of any shape, checked against numpy
  (``tests/test_stats_moments.py``).

Overlap counts
--------------
Good for Network Dissection: every unit's thresholded map and every concept's
mask, counted over a whole pool as exact integers, so that

    IoU(unit, concept) = |unit AND concept| / |unit OR concept|

is summed over the pool (not averaged per image), and sharded or resumed runs
merge exactly. Counts are per pixel; masks are given flattened, ``P`` pixels
per image.

Moments
-------
Good for summarising a unit's activation over a whole pool in one pass: the
moments of every column of a stream of ``(N, C)`` values, combined across
batches and shards with Chan et al.'s parallel update, in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unitscope.stats._base import Statistic, as_tensor, check_matrix, check_no_nan

__all__ = ["RunningConceptOverlap", "RunningMoments", "RunningMean"]

# Per image, float32 sums of 0/1 products are exact below 2**24; the image
# chunks keep temporary float copies of the masks near this many elements.
_EXACT_FLOAT32 = 1 << 24
_CHUNK_ELEMENTS = 1 << 25


class RunningConceptOverlap(Statistic):
    """Exact running intersection and union counts of unit masks and concept masks.

    For every unit ``u`` and concept ``k`` it counts, over all images added,

    - ``intersection[u, k]``: pixels in both the unit's mask and the concept's;
    - ``unit_area[u, k]``: pixels in the unit's mask, over the images where
      concept ``k`` is *valid* (annotated; Broden annotates each image for
      some categories only, and an image where a concept's category is not
      annotated must not count against it);
    - ``concept_area[k]``: pixels in the concept's mask (valid images only);
    - ``valid_images[k]``: images where the concept is valid;

    so that ``union = unit_area + concept_area - intersection``.

    Notes
    -----
    Counts are int64, so ``merge`` is exact and the result does not depend on
    batching. ``add`` takes dense concept masks and uses one batched float32
    matrix product per chunk of images (exact: per image the sums are below
    ``2**24``); ``add_labels`` takes integer label maps, as annotations are
    stored, and only touches the pixels inside unit masks, which is much
    cheaper when there are many concepts. Memory: ``(U, K)`` int64 twice.

    Examples
    --------
    >>> import torch
    >>> units = torch.tensor([[[True, True, False, False]]])      # (N=1, U=1, P=4)
    >>> concepts = torch.tensor([[[False, True, True, False]]])   # (N=1, K=1, P=4)
    >>> overlap = RunningConceptOverlap()
    >>> overlap.add(units, concepts)
    >>> overlap.intersection.tolist(), overlap.union().tolist(), overlap.iou().tolist()
    ([[1]], [[3]], [[0.3333333333333333]])
    """

    _tensor_names = ("_intersection", "_unit_area", "_concept_area", "_valid_images")

    def __init__(self) -> None:
        self._count = 0
        self._intersection: torch.Tensor | None = None  # (U, K) int64
        self._unit_area: torch.Tensor | None = None  # (U, K) int64
        self._concept_area: torch.Tensor | None = None  # (K,) int64
        self._valid_images: torch.Tensor | None = None  # (K,) int64
        self._device: torch.device | None = None

    # --- read-out ----------------------------------------------------------------
    @property
    def num_units(self) -> int | None:
        """Number of units U, or None before the first ``add``."""
        return None if self._intersection is None else int(self._intersection.shape[0])

    @property
    def num_concepts(self) -> int | None:
        """Number of concepts K, or None before the first ``add``."""
        return None if self._intersection is None else int(self._intersection.shape[1])

    @property
    def count(self) -> int:
        """Number of images added so far."""
        return self._count

    @property
    def intersection(self) -> torch.Tensor:
        """``(U, K)`` int64: pixels in both the unit's and the concept's mask."""
        return self._require_data()._intersection.clone()

    @property
    def unit_area(self) -> torch.Tensor:
        """``(U, K)`` int64: unit pixels, over the images where the concept is valid."""
        return self._require_data()._unit_area.clone()

    @property
    def concept_area(self) -> torch.Tensor:
        """``(K,)`` int64: concept pixels over the images where it is valid."""
        return self._require_data()._concept_area.clone()

    @property
    def valid_images(self) -> torch.Tensor:
        """``(K,)`` int64: number of images where each concept is valid."""
        return self._require_data()._valid_images.clone()

    def union(self) -> torch.Tensor:
        """``(U, K)`` int64: ``unit_area + concept_area - intersection``."""
        self._require_data()
        return self._unit_area + self._concept_area[None, :] - self._intersection

    def iou(self) -> torch.Tensor:
        """``(U, K)`` float64 intersection over union (0 where the union is empty)."""
        union = self.union()
        iou = self._intersection.to(torch.float64) / union.clamp(min=1).to(torch.float64)
        return torch.where(union > 0, iou, torch.zeros_like(iou))

    # --- adding ------------------------------------------------------------------
    def add(
        self,
        unit_masks: torch.Tensor,
        concept_masks: torch.Tensor,
        *,
        concept_valid: torch.Tensor | None = None,
    ) -> None:
        """Add a batch of images given dense concept masks.

        Parameters
        ----------
        unit_masks : torch.Tensor, shape (N, U, P), bool
            Per image and unit, the pixels where the unit is on (e.g. its
            upsampled activation above its threshold), flattened.
        concept_masks : torch.Tensor, shape (N, K, P), bool
            Per image and concept, the concept's pixels, flattened like
            `unit_masks`.
        concept_valid : torch.Tensor, shape (N, K), bool, optional
            Whether concept ``k`` is annotated in image ``n``. Default: all
            valid. Masks of invalid (image, concept) pairs are ignored.

        Raises
        ------
        ValueError
            If a shape or dtype is wrong, or U or K differ from earlier batches.
        """
        unit_masks = self._check_unit_masks(unit_masks)
        concept_masks = _check_bool(concept_masks, "concept_masks", 3, "(N, K, P)")
        n, _, p = unit_masks.shape
        if concept_masks.shape[0] != n or concept_masks.shape[2] != p:
            raise ValueError(
                f"concept_masks has shape {tuple(concept_masks.shape)} but unit_masks has "
                f"{tuple(unit_masks.shape)}: N and P must match"
            )
        k = int(concept_masks.shape[1])
        valid = self._check_valid(concept_valid, n, k)
        self._ensure(unit_masks.shape[1], k, unit_masks.device)
        unit_masks = unit_masks.to(self.device)
        concept_masks = concept_masks.to(self.device)
        valid = valid.to(self.device)

        for start, stop in _chunks(n, (unit_masks.shape[1] + k) * p):
            units = unit_masks[start:stop]
            concepts = concept_masks[start:stop] & valid[start:stop, :, None]
            inter = torch.zeros_like(self._intersection)
            for p0 in range(0, p, _EXACT_FLOAT32 - 1):
                p1 = min(p, p0 + _EXACT_FLOAT32 - 1)
                per_image = torch.bmm(
                    units[:, :, p0:p1].to(torch.float32),
                    concepts[:, :, p0:p1].to(torch.float32).transpose(1, 2),
                )
                inter += per_image.round_().to(torch.int64).sum(dim=0)
            self._intersection += inter
            self._concept_area += concepts.sum(dim=2, dtype=torch.int64).sum(dim=0)
            self._add_unit_area(units, valid[start:stop])
        self._valid_images += valid.sum(dim=0, dtype=torch.int64)
        self._count += n

    def add_labels(
        self,
        unit_masks: torch.Tensor,
        labels: torch.Tensor,
        *,
        num_concepts: int | None = None,
        concept_valid: torch.Tensor | None = None,
    ) -> None:
        """Add a batch of images given integer label maps instead of masks.

        Equivalent to ``add`` with ``concept_masks[n, k] = (labels[n, l] == k)``
        for any layer ``l``, but it only reads the labels under the unit
        masks, so it stays cheap with thousands of concepts.

        Parameters
        ----------
        unit_masks : torch.Tensor, shape (N, U, P), bool
            As in ``add``.
        labels : torch.Tensor, shape (N, L, P), integer
            ``L`` label maps per image (e.g. one per annotation category or
            file), flattened like `unit_masks`. A value in ``[0, K)`` is a
            concept index; a negative value means no concept. A concept found
            in several layers at one pixel counts once.
        num_concepts : int, optional
            K. Needed only for the first batch when `concept_valid` is not
            given.
        concept_valid : torch.Tensor, shape (N, K), bool, optional
            As in ``add``. Default: all valid.

        Raises
        ------
        ValueError
            If a shape or dtype is wrong, a label is ``>= K``, or U or K differ
            from earlier batches.
        """
        unit_masks = self._check_unit_masks(unit_masks)
        labels = as_tensor(labels, "labels")
        if labels.dim() != 3:
            raise ValueError(f"labels must be a 3-D tensor (N, L, P); got shape {tuple(labels.shape)}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integers, not {labels.dtype}")
        n, u, p = unit_masks.shape
        if labels.shape[0] != n or labels.shape[2] != p:
            raise ValueError(
                f"labels has shape {tuple(labels.shape)} but unit_masks has "
                f"{tuple(unit_masks.shape)}: N and P must match"
            )
        if concept_valid is not None:
            concept_valid = _check_bool(concept_valid, "concept_valid", 2, "(N, K)")
        k = self.num_concepts
        for name, value in (("num_concepts", num_concepts),
                            ("concept_valid", None if concept_valid is None else concept_valid.shape[1])):
            if value is not None:
                if k is not None and int(value) != k:
                    raise ValueError(f"{name} gives {int(value)} concepts but this statistic counts {k}")
                k = int(value)
        if k is None:
            raise ValueError("pass num_concepts (or concept_valid) with the first add_labels() batch")
        valid = self._check_valid(concept_valid, n, k)
        self._ensure(u, k, unit_masks.device)
        device = self.device
        unit_masks, valid = unit_masks.to(device), valid.to(device)
        labels = labels.to(device=device, dtype=torch.int64)
        if labels.numel() and int(labels.max()) >= k:
            raise ValueError(f"labels hold concept {int(labels.max())} but there are only {k} concepts")

        # Invalid pixels (no label, or concept not valid in the image) go to bin k.
        image = torch.arange(n, device=device)[:, None, None]
        known = labels >= 0
        usable = known & valid[image, labels.clamp(min=0)]
        binned = torch.where(usable, labels, torch.full_like(labels, k))
        # A concept found in several layers at one pixel counts once, as with masks.
        for layer in range(1, labels.shape[1]):
            repeated = (binned[:, layer : layer + 1] == binned[:, :layer]).any(dim=1)
            binned[:, layer].masked_fill_(repeated, k)
        self._concept_area += torch.bincount(binned.reshape(-1), minlength=k + 1)[:k]
        for start, stop in _chunks(n, u * p):
            units = unit_masks[start:stop]
            img, unit, pix = torch.nonzero(units, as_tuple=True)
            chunk_bins = binned[start:stop]
            for layer in range(labels.shape[1]):
                concept = chunk_bins[img, layer, pix]
                flat = unit * (k + 1) + concept
                counts = torch.bincount(flat, minlength=u * (k + 1)).reshape(u, k + 1)
                self._intersection += counts[:, :k]
            self._add_unit_area(units, valid[start:stop])
        self._valid_images += valid.sum(dim=0, dtype=torch.int64)
        self._count += n

    # --- internals ---------------------------------------------------------------
    def _require_data(self) -> RunningConceptOverlap:
        if self._intersection is None:
            raise ValueError("RunningConceptOverlap has no data yet: call add() first")
        return self

    def _check_unit_masks(self, unit_masks: Any) -> torch.Tensor:
        unit_masks = _check_bool(unit_masks, "unit_masks", 3, "(N, U, P)")
        if self.num_units is not None and unit_masks.shape[1] != self.num_units:
            raise ValueError(
                f"unit_masks has {unit_masks.shape[1]} units but this statistic counts {self.num_units}"
            )
        return unit_masks

    def _check_valid(self, concept_valid: Any, n: int, k: int) -> torch.Tensor:
        if self.num_concepts is not None and k != self.num_concepts:
            raise ValueError(f"got {k} concepts but this statistic counts {self.num_concepts}")
        if concept_valid is None:
            return torch.ones((n, k), dtype=torch.bool)
        valid = _check_bool(concept_valid, "concept_valid", 2, "(N, K)")
        if tuple(valid.shape) != (n, k):
            raise ValueError(f"concept_valid must have shape (N, K) = {(n, k)}; got {tuple(valid.shape)}")
        return valid

    def _ensure(self, u: int, k: int, device: torch.device) -> None:
        if self._intersection is not None:
            return
        device = self._device if self._device is not None else device
        self._intersection = torch.zeros((u, k), dtype=torch.int64, device=device)
        self._unit_area = torch.zeros((u, k), dtype=torch.int64, device=device)
        self._concept_area = torch.zeros(k, dtype=torch.int64, device=device)
        self._valid_images = torch.zeros(k, dtype=torch.int64, device=device)

    def _add_unit_area(self, units: torch.Tensor, valid: torch.Tensor) -> None:
        # (U, N) @ (N, K) in float64: exact for counts below 2**53.
        unit_pixels = units.sum(dim=2, dtype=torch.int64).to(torch.float64)
        area = unit_pixels.t() @ valid.to(torch.float64)
        self._unit_area += area.round_().to(torch.int64)

    def _merge_same(self, other: RunningConceptOverlap) -> None:
        if other._intersection is None:
            return
        if self._intersection is None:
            device = self._device if self._device is not None else other.device
            for name in self._tensor_names:
                setattr(self, name, getattr(other, name).to(device).clone())
            self._count = other._count
            return
        if (other.num_units, other.num_concepts) != (self.num_units, self.num_concepts):
            raise ValueError(
                f"cannot merge a RunningConceptOverlap of {other.num_units} units x "
                f"{other.num_concepts} concepts into one of {self.num_units} x {self.num_concepts}"
            )
        for name in self._tensor_names:
            getattr(self, name).add_(getattr(other, name).to(self.device))
        self._count += other._count

    def _state(self) -> dict[str, Any]:
        if self._intersection is None:
            empty = np.zeros((0, 0), np.int64)
            return {"count": self._count, "num_units": -1, "num_concepts": -1,
                    "intersection": empty, "unit_area": empty,
                    "concept_area": np.zeros(0, np.int64), "valid_images": np.zeros(0, np.int64)}
        return {
            "count": self._count,
            "num_units": self.num_units,
            "num_concepts": self.num_concepts,
            **{name.lstrip("_"): getattr(self, name).cpu().numpy() for name in self._tensor_names},
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        u, k = int(state["num_units"]), int(state["num_concepts"])
        if u < 0:
            for name in self._tensor_names:
                setattr(self, name, None)
            return
        shapes = {"intersection": (u, k), "unit_area": (u, k), "concept_area": (k,), "valid_images": (k,)}
        for name, shape in shapes.items():
            array = torch.as_tensor(np.asarray(state[name], dtype=np.int64))
            if tuple(array.shape) != shape:
                raise ValueError(f"state entry {name!r} has shape {tuple(array.shape)}, expected {shape}")
            setattr(self, "_" + name, array)


def _check_bool(tensor: Any, name: str, dim: int, shape: str) -> torch.Tensor:
    tensor = as_tensor(tensor, name)
    if tensor.dim() != dim:
        raise ValueError(f"{name} must be a {dim}-D tensor {shape}; got shape {tuple(tensor.shape)}")
    if tensor.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor, not {tensor.dtype}")
    return tensor


def _chunks(n: int, elements_per_image: int):
    """Image ranges whose temporary float copies stay near _CHUNK_ELEMENTS."""
    step = max(1, _CHUNK_ELEMENTS // max(1, elements_per_image))
    for start in range(0, n, step):
        yield start, min(n, start + step)


class RunningMoments(Statistic):
    """Running count, mean, variance, minimum and maximum of every column.

    Notes
    -----
    Each batch's mean and centred sum of squares are computed in float64 and
    combined with the running ones by the pairwise update of Chan, Golub and
    LeVeque (1979)::

        delta = mean_b - mean_a
        mean  = mean_a + delta * n_b / n
        M2    = M2_a + M2_b + delta**2 * n_a * n_b / n

    so ``merge`` of shards equals one pass up to float64 rounding. Memory:
    ``4 * C`` float64 values.

    References
    ----------
    .. [1] Chan, Golub, LeVeque. "Updating formulae and a pairwise algorithm
       for computing sample variances." Stanford CS report STAN-CS-79-773, 1979.

    Examples
    --------
    >>> import torch
    >>> m = RunningMoments()
    >>> m.add(torch.tensor([[1.0, 0.0], [3.0, 4.0]]))
    >>> m.mean().tolist(), m.variance(ddof=0).tolist()
    ([2.0, 2.0], [1.0, 4.0])
    """

    _tensor_names = ("_mean", "_m2", "_min", "_max")

    def __init__(self) -> None:
        self._count = 0
        self._num_units: int | None = None
        self._mean: torch.Tensor | None = None  # (C,) float64
        self._m2: torch.Tensor | None = None  # (C,) float64, centred sum of squares
        self._min: torch.Tensor | None = None
        self._max: torch.Tensor | None = None
        self._device: torch.device | None = None

    @property
    def num_units(self) -> int | None:
        """Number of columns C, or None before the first ``add``."""
        return self._num_units

    @property
    def count(self) -> int:
        """Number of rows added so far."""
        return self._count

    def add(self, values: torch.Tensor) -> None:
        """Add a batch of values.

        Parameters
        ----------
        values : torch.Tensor, shape (N, C)
            One row per observation, one column per unit.

        Raises
        ------
        ValueError
            If `values` is not 2-D, has another number of columns than earlier
            batches, or holds NaN.
        """
        values = check_matrix(values, "values", expected_columns=self._num_units, what="unit")
        check_no_nan(values, "values")
        values = self._place(values)
        if self._num_units is None:
            self._num_units = int(values.shape[1])
        n = int(values.shape[0])
        if n == 0:
            return
        values = values.to(torch.float64)
        mean = values.mean(dim=0)
        m2 = (values - mean).square_().sum(dim=0)
        self._combine(n, mean, m2, values.amin(dim=0), values.amax(dim=0))

    def mean(self) -> torch.Tensor:
        """Per-unit mean, shape (C,), float64."""
        self._require_data()
        return self._mean.clone()

    def variance(self, *, ddof: int = 1) -> torch.Tensor:
        """Per-unit variance ``M2 / (count - ddof)``, shape (C,), float64.

        Parameters
        ----------
        ddof : int, optional
            Delta degrees of freedom: 1 (default, like ``torch.var``) for the
            unbiased sample variance, 0 for the population variance.
            NaN when ``count <= ddof``.
        """
        self._require_data()
        denominator = self._count - ddof
        if denominator <= 0:
            return torch.full_like(self._m2, float("nan"))
        return self._m2 / denominator

    def std(self, *, ddof: int = 1) -> torch.Tensor:
        """Per-unit standard deviation, ``sqrt(variance(ddof=ddof))``."""
        return self.variance(ddof=ddof).sqrt()

    def min(self) -> torch.Tensor:
        """Per-unit minimum, shape (C,), float64."""
        self._require_data()
        return self._min.clone()

    def max(self) -> torch.Tensor:
        """Per-unit maximum, shape (C,), float64."""
        self._require_data()
        return self._max.clone()

    # --- internals ---------------------------------------------------------------
    def _require_data(self) -> None:
        if self._count == 0:
            raise ValueError("RunningMoments has no data yet: call add() first")

    def _combine(self, n: int, mean, m2, low, high) -> None:
        if self._count == 0:
            self._mean, self._m2, self._min, self._max = mean, m2, low, high
            self._count = n
            return
        total = self._count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2 + delta.square() * (self._count * n / total)
        self._min = torch.minimum(self._min, low)
        self._max = torch.maximum(self._max, high)
        self._count = total

    def _merge_same(self, other: RunningMoments) -> None:
        if other._num_units is None:
            return
        if self._num_units is not None and other._num_units != self._num_units:
            raise ValueError(
                f"cannot merge a RunningMoments of {other._num_units} units into one of "
                f"{self._num_units}"
            )
        self._num_units = other._num_units
        if other._count == 0:
            return
        device = self.device if (self._holds_tensors() or self._device is not None) else other.device
        self._combine(
            other._count,
            *(t.to(device).clone() for t in (other._mean, other._m2, other._min, other._max)),
        )

    def _state(self) -> dict[str, Any]:
        c = -1 if self._num_units is None else self._num_units
        if self._count == 0:
            zeros = np.zeros(max(c, 0), np.float64)
            arrays = {"mean": zeros, "m2": zeros, "min": zeros, "max": zeros}
        else:
            arrays = {
                "mean": self._mean.cpu().numpy(),
                "m2": self._m2.cpu().numpy(),
                "min": self._min.cpu().numpy(),
                "max": self._max.cpu().numpy(),
            }
        return {"count": self._count, "num_units": c, **arrays}

    def _load(self, state: dict[str, Any]) -> None:
        c = int(state["num_units"])
        self._num_units = None if c < 0 else c
        self._count = int(state["count"])
        if self._count == 0:
            self._mean = self._m2 = self._min = self._max = None
            return
        for name in ("mean", "m2", "min", "max"):
            array = torch.as_tensor(np.asarray(state[name], dtype=np.float64))
            if array.shape != (c,):
                raise ValueError(f"state entry {name!r} has shape {tuple(array.shape)}, expected ({c},)")
            setattr(self, "_" + name, array)


class RunningMean(Statistic):
    """Running mean of a stream of tensors of any shape ``(N, *shape)``.

    Good for mean images or mean activation maps ``(C, H, W)``: sums are kept
    in float64, so ``merge`` of shards equals one pass up to float64 rounding.

    Examples
    --------
    >>> import torch
    >>> m = RunningMean()
    >>> m.add(torch.ones(3, 2, 2))
    >>> m.add(torch.zeros(1, 2, 2))
    >>> m.mean().tolist()
    [[0.75, 0.75], [0.75, 0.75]]
    """

    _tensor_names = ("_sum",)

    def __init__(self) -> None:
        self._count = 0
        self._shape: tuple[int, ...] | None = None
        self._sum: torch.Tensor | None = None
        self._device: torch.device | None = None

    @property
    def count(self) -> int:
        """Number of items added so far."""
        return self._count

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of one item, or None before the first ``add``."""
        return self._shape

    def add(self, values: torch.Tensor) -> None:
        """Add a batch of items.

        Parameters
        ----------
        values : torch.Tensor, shape (N, *shape)
            A batch of items of one shape.

        Raises
        ------
        ValueError
            If `values` has no batch dimension, its item shape differs from
            earlier batches, or it holds NaN.
        """
        values = as_tensor(values, "values")
        if values.dim() < 1:
            raise ValueError("values must have a batch dimension (N, *shape); got a scalar")
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"values must hold real numbers, not {values.dtype}")
        shape = tuple(values.shape[1:])
        if self._shape is not None and shape != self._shape:
            raise ValueError(
                f"values have item shape {shape} but this RunningMean averages items of shape {self._shape}"
            )
        check_no_nan(values, "values")
        values = self._place(values)
        if self._sum is None:
            self._shape = shape
            self._sum = torch.zeros(shape, dtype=torch.float64, device=values.device)
        self._sum += values.to(torch.float64).sum(dim=0)
        self._count += int(values.shape[0])

    def mean(self) -> torch.Tensor:
        """The mean item, shape ``shape``, float64."""
        if self._count == 0:
            raise ValueError("RunningMean has no data yet: call add() first")
        return self._sum / self._count

    def _merge_same(self, other: RunningMean) -> None:
        if other._sum is None:
            return
        if self._sum is None:
            device = self._device if self._device is not None else other._sum.device
            self._shape, self._sum = other._shape, other._sum.to(device).clone()
            self._count = other._count
            return
        if other._shape != self._shape:
            raise ValueError(
                f"cannot merge a RunningMean of items {other._shape} into one of items {self._shape}"
            )
        self._sum += other._sum.to(self._sum.device)
        self._count += other._count

    def _state(self) -> dict[str, Any]:
        if self._sum is None:
            return {"count": 0, "shape": np.zeros(0, np.int64), "has_shape": False,
                    "sum": np.zeros(0, np.float64)}
        return {"count": self._count, "shape": np.asarray(self._shape, np.int64), "has_shape": True,
                "sum": self._sum.cpu().numpy()}

    def _load(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        if not bool(state["has_shape"]):
            self._shape, self._sum = None, None
            return
        self._shape = tuple(int(v) for v in np.asarray(state["shape"]).reshape(-1))
        total = torch.as_tensor(np.asarray(state["sum"], dtype=np.float64))
        if tuple(total.shape) != self._shape:
            raise ValueError(f"state entry 'sum' has shape {tuple(total.shape)}, expected {self._shape}")
        self._sum = total
