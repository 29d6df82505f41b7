"""Per-unit running top-k: the k largest values of every column, with their ids.

Good for finding each unit's top images: add a batch of per-image scores
``(N, C)`` with the images' ids, and at the end read, for every unit, the k
best images in order. Memory is ``C * k`` values and ids, however many items
are added. Ties are broken by the lower id, so the result is one total order:
merging shards gives exactly the one-pass result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._base import Statistic, as_tensor, check_matrix, check_no_nan, float_dtype

__all__ = ["RunningTail", "RunningTopK"]


class _KeepsK(Statistic):
    """What the statistics that keep ``k`` values per column share: the option, its check, the count."""

    def __init__(self, k: int = 100):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        self.k = int(k)
        self._count = 0
        self._device: torch.device | None = None

    @classmethod
    def _config_keys(cls) -> tuple[str, ...]:
        return ("k",)

    def _config(self) -> dict[str, Any]:
        return {"k": self.k}

    @property
    def count(self) -> int:
        """Number of items (rows) added so far."""
        return self._count


class RunningTopK(_KeepsK):
    """Running top-k of every column of a stream of ``(N, C)`` values.

    Parameters
    ----------
    k : int, optional
        How many values to keep per column (unit). Default 100.

    Notes
    -----
    Items are ordered by value (largest first), then by id (lowest first). This
    is a total order when ids are unique, so the top-k of a union is the top-k
    of the shards' top-k: ``merge`` is exact and the result does not depend on
    batch sizes or the order of the batches. Memory: ``C * k`` values and
    ``C * k`` int64 ids.

    Examples
    --------
    >>> import torch
    >>> topk = RunningTopK(2)
    >>> topk.add(torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0]]), torch.tensor([10, 11, 12]))
    >>> values, ids = topk.result()
    >>> values.tolist(), ids.tolist()
    ([[3.0, 2.0], [5.0, 5.0]], [[11, 12], [10, 11]])
    """

    _tensor_names = ("_values", "_ids")

    def __init__(self, k: int = 100):
        super().__init__(k)
        self._values: torch.Tensor | None = None  # (C, m), m = min(k, count)
        self._ids: torch.Tensor | None = None  # (C, m) int64

    @property
    def num_units(self) -> int | None:
        """Number of columns C, or None before the first ``add``."""
        return None if self._values is None else int(self._values.shape[0])

    def add(self, values: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Add a batch of items.

        Parameters
        ----------
        values : torch.Tensor, shape (N, C)
            One row per item (e.g. per image), one column per unit. NaN is
            rejected; +/-inf is allowed.
        ids : torch.Tensor, shape (N,), integer, optional
            The items' ids (e.g. dataset indices). Default: a running counter
            ``count, count + 1, ...`` -- pass explicit ids for sharded runs so
            ``merge`` can reproduce the one-pass result.

        Raises
        ------
        ValueError
            If `values` is not 2-D, has another number of columns than earlier
            batches, holds NaN, or `ids` does not match.
        """
        values = check_matrix(values, "values", expected_columns=self.num_units, what="unit")
        n = values.shape[0]
        if ids is None:
            ids = torch.arange(self._count, self._count + n, dtype=torch.int64)
        else:
            ids = as_tensor(ids, "ids")
            if ids.dim() != 1 or ids.shape[0] != n:
                raise ValueError(
                    f"ids must be a 1-D tensor (N,) with N={n} like values; got shape {tuple(ids.shape)}"
                )
            if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
                raise ValueError(f"ids must be integers, not {ids.dtype}")
        check_no_nan(values, "values")
        values = self._place(values)
        dtype = self._values.dtype if self._values is not None else float_dtype(values)
        values = values.to(dtype)
        ids = ids.to(device=values.device, dtype=torch.int64)
        self._count += n
        if n == 0:
            if self._values is None:
                self._values = values.new_empty((values.shape[1], 0))
                self._ids = ids.new_empty((values.shape[1], 0))
            return
        # Rows in id order, so one stable sort by value gives (value desc, id asc).
        order = torch.argsort(ids, stable=True)
        values, ids = values[order].t(), ids[order]
        top = torch.argsort(values, dim=1, descending=True, stable=True)[:, : self.k]
        values, ids = values.gather(1, top), ids[top]
        if self._values is None:
            self._values, self._ids = values, ids
        else:
            self._values, self._ids = _top_of_union(
                self._values, self._ids, values, ids, self.k
            )

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The top values and their ids.

        Returns
        -------
        values : torch.Tensor, shape (C, m)
            Per unit, the ``m = min(k, count)`` largest values, descending.
        ids : torch.Tensor, shape (C, m), int64
            The ids of those items; among equal values the lower id comes first.

        Raises
        ------
        ValueError
            If nothing has been added yet.
        """
        if self._values is None:
            raise ValueError("RunningTopK has no data yet: call add() first")
        return self._values.clone(), self._ids.clone()

    def _merge_same(self, other: RunningTopK) -> None:
        if other._values is None:
            return
        if self._values is None:
            device = self._device if self._device is not None else other.device
            self._values = other._values.to(device).clone()
            self._ids = other._ids.to(device).clone()
            self._count = other._count
            return
        if other.num_units != self.num_units:
            raise ValueError(
                f"cannot merge a RunningTopK of {other.num_units} units into one of {self.num_units}"
            )
        values = other._values.to(device=self.device, dtype=self._values.dtype)
        ids = other._ids.to(self.device)
        self._values, self._ids = _top_of_union(self._values, self._ids, values, ids, self.k)
        self._count += other._count

    def _state(self) -> dict[str, Any]:
        if self._values is None:
            return {"count": self._count, "num_units": -1, "dtype": "float32",
                    "values": np.zeros((0, 0), np.float32), "ids": np.zeros((0, 0), np.int64)}
        return {
            "count": self._count,
            "num_units": self.num_units,
            "dtype": str(self._values.dtype).removeprefix("torch."),
            "values": self._values.cpu().numpy(),
            "ids": self._ids.cpu().numpy(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        if int(state["num_units"]) < 0:
            self._values = self._ids = None
            return
        dtype = getattr(torch, str(state["dtype"]))
        self._values = torch.as_tensor(np.asarray(state["values"])).to(dtype)
        self._ids = torch.as_tensor(np.asarray(state["ids"])).to(torch.int64)
        if self._values.shape != self._ids.shape or self._values.shape[0] != int(state["num_units"]):
            raise ValueError("state is inconsistent: values, ids and num_units disagree")


def _top_of_union(
    values_a: torch.Tensor, ids_a: torch.Tensor, values_b: torch.Tensor, ids_b: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the k first of the union in (value desc, id asc) order."""
    values = torch.cat([values_a, values_b], dim=1)
    ids = torch.cat([ids_a, ids_b], dim=1)
    order = torch.argsort(ids, dim=1, stable=True)
    values, ids = values.gather(1, order), ids.gather(1, order)
    order = torch.argsort(values, dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, order), ids.gather(1, order)


class RunningTail(_KeepsK):
    """The k largest values of every column of a stream of ``(N, C)`` values (values only).

    Good for exact upper quantiles: the ``1 - q`` quantile of ``n`` values,
    whatever its interpolation, depends only on the largest ``q n + 2`` of
    them.  Batches are kept as they come until they hold ``2 k`` values per
    column, then cut back to the ``k`` largest by one partial sort
    (``numpy.partition`` on the CPU, ``torch.topk`` elsewhere): memory is at
    most ``C * (2 k + N)`` values and the work per value added is constant,
    with no ids to order (far cheaper than :class:`RunningTopK` for
    per-position values).  ``merge`` is exact.

    Parameters
    ----------
    k : int
        How many values to keep per column.

    Examples
    --------
    >>> import torch
    >>> tail = RunningTail(2)
    >>> tail.add(torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0]]))
    >>> tail.result().tolist()
    [[3.0, 2.0], [5.0, 5.0]]
    """

    _tensor_names = ("_blocks",)

    def __init__(self, k: int = 100):
        super().__init__(k)
        self._blocks: list[torch.Tensor] = []  # (C, w_i) blocks, in no particular order
        self._width = 0
        self._num_units: int | None = None
        self._dtype = torch.float32

    @property
    def num_units(self) -> int | None:
        """Number of columns C, or None before the first ``add``."""
        return self._num_units

    def add(self, values: torch.Tensor) -> None:
        """Add a batch ``(N, C)``; NaN is rejected."""
        values = check_matrix(values, "values", expected_columns=self._num_units, what="unit")
        check_no_nan(values, "values")
        values = self._place(values)
        if self._num_units is None:
            self._num_units, self._dtype = int(values.shape[1]), float_dtype(values)
        self._append(values.to(self._dtype).t().contiguous())
        self._count += int(values.shape[0])

    def result(self) -> torch.Tensor:
        """``(C, min(k, count))``: each column's largest values, descending (``ValueError`` before any :meth:`add`)."""
        if self._num_units is None:
            raise ValueError("RunningTail has no data yet: call add() first")
        self._compact(0)
        if not self._blocks:
            return torch.empty((self._num_units, 0), dtype=self._dtype, device=self.device)
        return torch.sort(self._blocks[0], dim=1, descending=True).values

    def _append(self, block: torch.Tensor) -> None:
        self._blocks.append(block)
        self._width += int(block.shape[1])
        self._compact(2 * self.k)

    def _compact(self, limit: int) -> None:
        """Cut the blocks back to the k largest values per column once they hold more than ``limit``."""
        if len(self._blocks) > 1 or self._width > limit:
            if self._width > limit:
                columns = self._blocks[0] if len(self._blocks) == 1 else torch.cat(self._blocks, dim=1)
                self._blocks = [_largest(columns, self.k)]
                self._width = int(self._blocks[0].shape[1])

    def _merge_same(self, other: "RunningTail") -> None:
        if other._num_units is None:
            return
        if self._num_units is None:
            self._num_units, self._dtype = other._num_units, other._dtype
        elif other._num_units != self._num_units:
            raise ValueError(f"cannot merge a RunningTail of {other._num_units} units into one of "
                             f"{self._num_units}")
        device = self.device if self._blocks or self._device is not None else other.device
        for block in other._blocks:
            self._append(block.to(device=device, dtype=self._dtype).clone())
        self._count += other._count

    def _state(self) -> dict[str, Any]:
        if self._num_units is None:
            return {"count": self._count, "num_units": -1, "dtype": "float32",
                    "values": np.zeros((0, 0), np.float32)}
        # sorted, so that equal statistics have equal states
        return {"count": self._count, "num_units": self._num_units,
                "dtype": str(self._dtype).removeprefix("torch."), "values": self.result().cpu().numpy()}

    def _load(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._blocks, self._width = [], 0
        if int(state["num_units"]) < 0:
            self._num_units = None
            return
        self._num_units = int(state["num_units"])
        self._dtype = getattr(torch, str(state["dtype"]))
        values = torch.as_tensor(np.asarray(state["values"])).to(self._dtype)
        if values.dim() != 2 or values.shape[0] != self._num_units:
            raise ValueError("state is inconsistent: values and num_units disagree")
        self._blocks, self._width = [values], int(values.shape[1])


def _largest(columns: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the ``k`` largest values (all of them when fewer), in no particular order."""
    width = columns.shape[1]
    if width <= k:
        return columns.contiguous()
    if columns.device.type == "cpu":  # a linear-time selection; torch.topk sorts on the CPU
        return torch.from_numpy(np.partition(columns.numpy(), width - k, axis=1)[:, width - k:].copy())
    return torch.topk(columns, k, dim=1, sorted=False).values
