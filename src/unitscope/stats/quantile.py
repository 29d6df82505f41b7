"""Per-unit quantiles of a huge stream, with a mergeable sketch.

Good for computing quantiles of huge data without using much memory: e.g. the
0.995 quantile of a unit's activation over every spatial position of every
image of a pool (tens of millions of values per unit), for all units at once.

The sketch is a hierarchy of *compactors* (Manku-Rajagopalan-Lindsay, Karnin-
Lang-Liberty "KLL"), kept for all units in shared structure: level ``h`` is a
``(C, length_h)`` tensor whose items each stand for ``2**h`` values. Because
every unit sees the same number of values, all units share the lengths, the
compaction schedule and the coin flips; only the sorting is per unit, and it is
one sort along the last dimension (numpy's on CPU, ``torch.sort`` on other
devices). When a level holds more than
``resolution`` items it is *compacted*: sorted, its largest ``resolution // 2``
items stay (they are *protected*), and every other one of the rest (offset by a
coin flip) moves up a level with twice the weight. Protecting the top of every
level is the relative-error idea of Cormode et al. (2021) in its simplest form:
the largest values of the stream are never compacted, so the upper tail -- the
part Network Dissection's 0.995 threshold reads -- is exact for the top
``resolution // 2`` values and accurate well beyond them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._base import Statistic, check_matrix, check_no_nan, float_dtype
from ._compaction import coin, sort_and_split
from ._quantile_bounds import bound_from_history, closed_form_bound, quantile_levels

__all__ = ["RunningQuantile"]

class RunningQuantile(Statistic):
    r"""Running quantiles of every column of a stream of ``(N, C)`` values.

    Parameters
    ----------
    resolution : int, optional
        Capacity ``r`` of each level of the sketch, in items per unit (even,
        at least 8). Accuracy grows linearly with it; memory is at most
        ``C * r * (1 + log2(n / (r / 2)))`` values. Default 4096.
    seed : int, optional
        Seed of the coin flips, so runs are reproducible. The coins are a hash
        of ``(seed, level, compaction number)``, so a resumed run (state saved,
        loaded, continued) is bit-identical to an uninterrupted one. Give the
        shards of a sharded run different seeds (e.g. the rank) so that their
        errors are independent. Default 0.

    Notes
    -----
    **Error bound.** Let ``n`` be the number of values added per unit, ``r``
    the resolution, ``p = r // 2`` the number of protected items per level, and
    for a quantile ``q`` let ``k = floor(q * (n - 1)) + 1``: the exact answer
    is the ``k``-th smallest value (``torch.quantile(..., interpolation=
    'lower')``). The answer ``v`` returned has a true rank range
    ``[#{x < v} + 1, #{x <= v}]``; its *rank error* is the distance from ``k``
    to that range (0 when ``v`` is the exact answer, or ties with it). For a
    fixed ``q``, with probability at least ``1 - delta``,

    .. math::

        \frac{\text{rank error}}{n} \le \varepsilon(q) =
        \min\left(\frac{2\sqrt{\ln(2/\delta)}}{r - p},\;
        \frac{A + \sqrt{A^2 + A\,(n - k + 1)}}{n}\right),
        \qquad A = \frac{4 \ln(2/\delta)\, n}{(r - p)(p + 1)},

    and the rank error is 0 (the answer is exact) when ``n - k < p``. For
    ``p = r / 2`` this is about ``4 sqrt(ln(2/delta) * (1 - q)) / r``: with the
    default ``r = 4096`` and ``delta = 1e-6``, 2.6e-3 for the median and 2.8e-4
    at ``q = 0.995`` (5.5% of the 0.5% tail), whatever ``n``
    (``rank_error_bound_for`` evaluates it). Typical errors
    are several times smaller than this worst case; ``rank_error_bound``
    evaluates the (tighter) bound from the compactions actually done.

    Sketch of the proof: compacting a sorted run of items of weight ``w``
    changes the estimated count of values ``<= y`` by 0 or ``+/-w`` with
    equal probability, independently of earlier compactions, so the error is a
    martingale and Azuma-Hoeffding gives ``|E| <= sqrt(2 ln(2/delta) sum
    w_i^2)``. A level ``h`` compaction consumes at least ``r - p`` items of a
    total weight ``<= n`` that enters the level, so there are at most
    ``n / (2**h (r - p))`` of them. A compaction can only err for ``y`` if
    ``y`` lies inside the compacted (lower) part, i.e. if at least ``p + 1``
    items of weight ``2**h`` lie above ``y``; only levels with
    ``2**h (p + 1) <= n - k + 1 + 2|E|`` can contribute.

    Shards merged with ``merge`` keep the bound (the compaction counts add up
    and the argument is unchanged) provided their seeds differ.

    References
    ----------
    .. [1] Karnin, Lang, Liberty. "Optimal quantile approximation in streams."
       FOCS 2016.
    .. [2] Cormode, Karnin, Liberty, Thaler, Vesely. "Relative error streaming
       quantiles." PODS 2021.
    .. [3] Bau et al., ``RunningQuantile`` in *dissect* / *baukit* (the shared
       per-unit buffer layout).

    Examples
    --------
    >>> import torch
    >>> rq = RunningQuantile(resolution=64)
    >>> rq.add(torch.arange(1000.0).reshape(500, 2))
    >>> rq.quantiles([0.0, 1.0]).tolist()
    [[0.0, 998.0], [1.0, 999.0]]
    """

    _tensor_names = ("_levels", "_pending", "_min", "_max")

    def __init__(self, resolution: int = 4096, *, seed: int = 0):
        if (
            isinstance(resolution, bool)
            or not isinstance(resolution, (int, np.integer))
            or resolution < 8
            or resolution % 2
        ):
            raise ValueError(f"resolution must be an even integer >= 8, not {resolution!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, not {seed!r}")
        self.resolution = int(resolution)
        self.seed = int(seed)
        self._protect = self.resolution // 2
        # Level h holds items of weight 2**h as a list of (C, length) blocks,
        # and level 0 also the rows added since its last compaction, as given
        # ((N, C) blocks in ``_pending``). Concatenating (and transposing) them
        # is left to the sort of the next compaction, which copies anyway.
        self._levels: list[list[torch.Tensor]] = []
        self._pending: list[torch.Tensor] = []
        self._compactions: list[int] = []  # compactions done at each level
        self._count = 0
        self._num_units: int | None = None
        self._dtype = torch.float32
        self._min: torch.Tensor | None = None
        self._max: torch.Tensor | None = None
        self._device: torch.device | None = None

    @classmethod
    def _config_keys(cls) -> tuple[str, ...]:
        return ("resolution", "seed")

    def _config(self) -> dict[str, Any]:
        return {"resolution": self.resolution}

    @property
    def num_units(self) -> int | None:
        """Number of columns C, or None before the first ``add``."""
        return self._num_units

    @property
    def count(self) -> int:
        """Number of values added per unit (rows) so far."""
        return self._count

    @property
    def depth(self) -> int:
        """Number of levels of the sketch."""
        return len(self._levels)

    def add(self, values: torch.Tensor) -> None:
        """Add a batch of values.

        Parameters
        ----------
        values : torch.Tensor, shape (N, C)
            One row per observation (e.g. per image and spatial position),
            one column per unit. Moved to the sketch's device if needed.

        Raises
        ------
        ValueError
            If `values` is not 2-D, has another number of columns than earlier
            batches, or holds NaN.
        """
        values = check_matrix(values, "values", expected_columns=self._num_units, what="unit")
        values = self._place(values)
        if self._num_units is None:
            self._num_units = int(values.shape[1])
            self._dtype = float_dtype(values)
        if not self._levels:
            self._levels, self._compactions = [[]], [0]
        n = int(values.shape[0])
        if n == 0:
            return
        values = values.to(self._dtype)
        if self._level_size(0) + n <= self.resolution:
            check_no_nan(values, "values")
            self._update_extremes(values.amin(dim=0), values.amax(dim=0))
            self._pending.append(values.clone(memory_format=torch.contiguous_format))
            self._count += n
            return
        # Level 0 overflows: one sort gives the compaction, the NaN check and
        # the extremes (NaN sorts last in numpy and torch alike).
        low, high, kept, promoted = self._compaction_of(0, [*self._pending, values])
        if bool(torch.isnan(high).any()):
            check_no_nan(values, "values")
        self._update_extremes(low, high)
        self._pending = []
        self._commit(0, kept, promoted)
        self._count += n
        self._compress(start=1)

    def quantiles(self, q: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
        """Estimated quantiles of every unit.

        Parameters
        ----------
        q : float or sequence of float
            Quantile levels in [0, 1].

        Returns
        -------
        torch.Tensor
            Shape ``(C, len(q))`` for a sequence, ``(C,)`` for a scalar `q`
            (as ``torch.quantile``). Each entry is a value that occurred in the
            data: the ``floor(q (n - 1)) + 1``-th smallest up to the rank error
            stated in the class notes (``q = 0`` and ``q = 1`` give the exact
            minimum and maximum).

        Raises
        ------
        ValueError
            If nothing has been added yet or `q` is outside [0, 1].
        """
        scalar, levels = quantile_levels(q)
        sorted_values, cumulative = self._sorted_sketch()
        targets = torch.as_tensor(self._target_counts(levels), device=cumulative.device)
        targets = targets.expand(cumulative.shape[0], -1).contiguous()
        index = torch.searchsorted(cumulative, targets, side="left")
        index = index.clamp_(max=cumulative.shape[1] - 1)
        result = sorted_values.gather(1, index)
        ends = torch.as_tensor(levels, device=result.device)
        result = torch.where((ends == 0)[None, :], self._min[:, None], result)
        result = torch.where((ends == 1)[None, :], self._max[:, None], result)
        return result[:, 0] if scalar else result

    def cdf(self, values: torch.Tensor) -> torch.Tensor:
        """Estimated fraction of the data ``<= values``, per unit.

        Parameters
        ----------
        values : torch.Tensor, shape (M, C)
            Values to look up, one column per unit.

        Returns
        -------
        torch.Tensor, shape (M, C), float64
            The estimated ``#{x <= value} / n`` of each unit.
        """
        values = check_matrix(values, "values", expected_columns=self._num_units, what="unit")
        check_no_nan(values, "values")
        sorted_values, cumulative = self._sorted_sketch()
        lookup = values.to(device=sorted_values.device, dtype=sorted_values.dtype).t().contiguous()
        index = torch.searchsorted(sorted_values, lookup, side="right")
        padded = torch.nn.functional.pad(cumulative, (1, 0))
        counts = padded.gather(1, index)
        return (counts.to(torch.float64) / self._count).t()

    def rank_error_bound(
        self, q: float | Sequence[float], *, delta: float = 1e-6
    ) -> float | np.ndarray:
        """Bound on the normalised rank error of ``quantiles(q)``, from this sketch's history.

        Parameters
        ----------
        q : float or sequence of float
            Quantile levels in [0, 1].
        delta : float, optional
            Failure probability of the bound for one `q` and one unit.
            Default 1e-6.

        Returns
        -------
        float or numpy.ndarray
            ``rank error / n`` holds below this with probability >= 1 - delta
            (see the class notes). It uses the number of compactions actually
            done per level, so it is never larger than the closed form stated
            there.
        """
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), not {delta!r}")
        scalar, levels = quantile_levels(q)
        if self._count == 0:
            raise ValueError("RunningQuantile has no data yet: call add() first")
        bounds = bound_from_history(self._compactions, count=self._count, protect=self._protect,
                                    above=self._count - self._target_counts(levels), delta=delta)
        return float(bounds[0]) if scalar else bounds

    @staticmethod
    def rank_error_bound_for(
        q: float | Sequence[float],
        *,
        count: int,
        resolution: int = 4096,
        delta: float = 1e-6,
    ) -> float | np.ndarray:
        """The closed-form bound of the class notes, before any data is seen.

        Use it to choose `resolution`: e.g. ``rank_error_bound_for(0.995,
        count=10**7)`` is 2.8e-4 for the default resolution.

        Parameters
        ----------
        q : float or sequence of float
            Quantile levels in [0, 1].
        count : int
            Number of values per unit ``n``.
        resolution : int, optional
            The sketch's resolution ``r``. Default 4096.
        delta : float, optional
            Failure probability for one `q` and one unit. Default 1e-6.

        Returns
        -------
        float or numpy.ndarray
            ``epsilon(q)``: the bound on ``rank error / n``.
        """
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), not {delta!r}")
        if count < 1:
            raise ValueError(f"count must be positive, not {count!r}")
        scalar, levels = quantile_levels(q)
        bounds = closed_form_bound(levels, count=count, resolution=resolution, delta=delta)
        return float(bounds[0]) if scalar else bounds

    # --- internals ---------------------------------------------------------------
    def _target_counts(self, levels: np.ndarray) -> np.ndarray:
        if self._count == 0:
            raise ValueError("RunningQuantile has no data yet: call add() first")
        return (np.floor(levels * (self._count - 1)).astype(np.int64) + 1).clip(1, self._count)

    def _sorted_sketch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All items sorted per unit, and the cumulative weight (exact int64)."""
        if self._count == 0:
            raise ValueError("RunningQuantile has no data yet: call add() first")
        levels = [self._level_items(h) for h in range(self.depth)]
        items = torch.cat(levels, dim=1)
        device = items.device
        weights = torch.cat(
            [
                torch.full((level.shape[1],), 1 << h, dtype=torch.int64, device=device)
                for h, level in enumerate(levels)
            ]
        )
        if items.device.type == "cpu":  # numpy's sort is much faster (see _compaction.sort_and_split)
            order = torch.from_numpy(np.argsort(items.numpy(), axis=1))
            sorted_values = items.gather(1, order)
        else:
            sorted_values, order = torch.sort(items, dim=1)
        cumulative = weights[order].cumsum_(dim=1)
        return sorted_values, cumulative

    def _update_extremes(self, low: torch.Tensor, high: torch.Tensor) -> None:
        if self._min is None:
            self._min, self._max = low, high
        else:
            self._min, self._max = torch.minimum(self._min, low), torch.maximum(self._max, high)

    def _level_size(self, level: int) -> int:
        size = sum(int(block.shape[1]) for block in self._levels[level])
        if level == 0:
            size += sum(int(rows.shape[0]) for rows in self._pending)
        return size

    def _level_items(self, level: int) -> torch.Tensor:
        """All items of `level` as one (C, length) tensor."""
        blocks = list(self._levels[level])
        if level == 0:
            blocks += [rows.t() for rows in self._pending]
        if not blocks:
            return torch.empty((self._num_units, 0), dtype=self._dtype, device=self.device)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)

    def _append(self, level: int, items: torch.Tensor) -> None:
        if level == len(self._levels):
            self._levels.append([])
            self._compactions.append(0)
        self._levels[level].append(items)

    def _compress(self, *, start: int = 0) -> None:
        level = start
        while level < len(self._levels):
            if self._level_size(level) > self.resolution:
                pending, self._pending = (self._pending, []) if level == 0 else ([], self._pending)
                _, _, kept, promoted = self._compaction_of(level, pending)
                self._commit(level, kept, promoted)
            level += 1

    def _compaction_of(self, level: int, extra_rows: list[torch.Tensor]):
        """Sort `level` (plus `extra_rows`, (N_i, C)) per unit and split it.

        Returns each unit's smallest and largest item, the protected top items
        that stay and every other one of the rest (offset by the coin) that
        moves up. Nothing is modified.
        """
        blocks = self._levels[level]
        size = sum(int(b.shape[1]) for b in blocks) + sum(int(r.shape[0]) for r in extra_rows)
        keep = self._protect + (size - self._protect) % 2  # compact an even count
        offset = coin(self.seed, level, self._compactions[level])
        return sort_and_split(blocks, extra_rows, size - keep, offset)

    def _commit(self, level: int, kept: torch.Tensor, promoted: torch.Tensor) -> None:
        self._levels[level] = [kept]
        self._compactions[level] += 1
        self._append(level + 1, promoted)

    def _merge_same(self, other: RunningQuantile) -> None:
        if other._num_units is None:
            return
        if self._num_units is None:
            self._num_units, self._dtype = other._num_units, other._dtype
        elif other._num_units != self._num_units:
            raise ValueError(
                f"cannot merge a RunningQuantile of {other._num_units} units into one of "
                f"{self._num_units}"
            )
        if other._count == 0:
            return
        device = self.device if (self._holds_tensors() or self._device is not None) else other.device
        if not self._levels:
            self._levels, self._compactions = [[]], [0]
        self.to(device)
        for level in range(len(other._levels)):
            self._append(level, other._level_items(level).to(device=device, dtype=self._dtype))
            self._compactions[level] += other._compactions[level]
        low = other._min.to(device=device, dtype=self._dtype)
        high = other._max.to(device=device, dtype=self._dtype)
        self._update_extremes(low.clone(), high.clone())
        self._count += other._count
        self._compress()

    def _state(self) -> dict[str, Any]:
        if self._num_units is None:
            empty = np.zeros((0, 0), np.float32)
            return {"seed": self.seed, "count": 0, "num_units": -1, "dtype": "float32",
                    "items": empty, "level_lengths": np.zeros(0, np.int64),
                    "compactions": np.zeros(0, np.int64), "min": np.zeros(0, np.float32),
                    "max": np.zeros(0, np.float32)}
        c = self._num_units
        dtype = str(self._dtype).removeprefix("torch.")
        if self._levels:
            items = torch.cat([self._level_items(h) for h in range(self.depth)], dim=1).cpu().numpy()
        else:
            items = np.zeros((c, 0), dtype)
        return {
            "seed": self.seed,
            "count": self._count,
            "num_units": c,
            "dtype": dtype,
            "items": items,
            "level_lengths": np.asarray(
                [self._level_items(h).shape[1] for h in range(self.depth)], np.int64
            ),
            "compactions": np.asarray(self._compactions, np.int64),
            "min": self._min.cpu().numpy() if self._min is not None else np.zeros(c, dtype),
            "max": self._max.cpu().numpy() if self._max is not None else np.zeros(c, dtype),
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        num_units = int(state["num_units"])
        self._count = int(state["count"])
        if num_units < 0:
            self._num_units, self._levels, self._compactions = None, [], []
            self._pending = []
            self._min = self._max = None
            return
        self._num_units = num_units
        self._dtype = getattr(torch, str(state["dtype"]))
        items = torch.as_tensor(np.asarray(state["items"])).to(self._dtype)
        lengths = [int(v) for v in np.asarray(state["level_lengths"]).reshape(-1)]
        compactions = [int(v) for v in np.asarray(state["compactions"]).reshape(-1)]
        if (
            items.dim() != 2
            or items.shape[0] != num_units
            or sum(lengths) != items.shape[1]
            or len(compactions) != len(lengths)
        ):
            raise ValueError("state is inconsistent: items, level_lengths and num_units disagree")
        total_weight = sum(length << h for h, length in enumerate(lengths))
        if total_weight != self._count:
            raise ValueError(
                f"state is inconsistent: the sketch's weight {total_weight} != count {self._count}"
            )
        self._levels = [[chunk.contiguous()] for chunk in torch.split(items, lengths, dim=1)]
        self._pending = []
        self._compactions = compactions
        if self._count:
            self._min = torch.as_tensor(np.asarray(state["min"])).to(self._dtype)
            self._max = torch.as_tensor(np.asarray(state["max"])).to(self._dtype)
        else:
            self._min = self._max = None
