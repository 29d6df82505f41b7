"""Per-unit running moments (count, mean, variance, min, max) and running means.

Good for summarising a unit's activation over a whole pool in one pass: the
moments of every column of a stream of ``(N, C)`` values, combined across
batches and shards with Chan et al.'s parallel update, in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._base import Statistic, as_tensor, check_matrix, check_no_nan

__all__ = ["RunningMoments", "RunningMean"]


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
