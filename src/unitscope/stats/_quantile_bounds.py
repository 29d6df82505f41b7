"""Quantile levels and the error bounds of :class:`~unitscope.stats.quantile.RunningQuantile` at them.

Levels are checked here for every query of the sketch.  Both bounds are on ``rank error / n`` for one quantile level and one unit,
holding with probability at least ``1 - delta`` (Azuma-Hoeffding over the
compactions; the proof is sketched in ``RunningQuantile``'s notes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["quantile_levels", "bound_from_history", "closed_form_bound"]


def quantile_levels(q: Any) -> tuple[bool, np.ndarray]:
    """``(scalar, levels)``: ``q`` as a 1-D float64 array of levels in [0, 1], and whether it was one number."""
    if isinstance(q, torch.Tensor):
        q = q.detach().cpu().numpy()
    levels = np.asarray(q, dtype=np.float64)
    scalar = levels.ndim == 0
    levels = levels.reshape(-1)
    if levels.size == 0:
        raise ValueError("q must hold at least one quantile level")
    if not np.all((levels >= 0) & (levels <= 1)):
        raise ValueError(f"quantile levels must lie in [0, 1]; got {levels.tolist()}")
    return scalar, levels


def bound_from_history(compactions: Sequence[int], *, count: int, protect: int, above: np.ndarray,
                       delta: float) -> np.ndarray:
    """The bound from the compactions a sketch actually did.

    Parameters
    ----------
    compactions : sequence of int
        Number of compactions done at each level.
    count : int
        Values added per unit ``n``.
    protect : int
        Items protected at the top of each level ``p``.
    above : ndarray of int
        Per quantile level, ``n - k``: how many values lie above the exact answer.
    delta : float
        Failure probability.

    Returns
    -------
    ndarray of float, one per entry of ``above``
    """
    n, p = count, protect
    log_term = 2.0 * math.log(2.0 / delta)
    sq_weights = [m * 4.0**h for h, m in enumerate(compactions)]
    uniform = math.sqrt(log_term * sum(sq_weights))
    bounds = []
    for above in np.asarray(above).tolist():
        if above < p:
            bounds.append(0.0)
            continue
        error = 0.0
        for _ in range(64 + len(sq_weights)):
            reach = above + 1 + 2.0 * error
            var = sum(v for h, v in enumerate(sq_weights) if 2.0**h * (p + 1) <= reach)
            new_error = min(uniform, math.sqrt(log_term * var))
            if new_error <= error:
                break
            error = new_error
        bounds.append(error / n)
    return np.asarray(bounds)


def closed_form_bound(levels: np.ndarray, *, count: int, resolution: int, delta: float) -> np.ndarray:
    """``epsilon(q)`` of the class notes for each quantile level, before any data is seen."""
    r, p, n = resolution, resolution // 2, count
    log_term = math.log(2.0 / delta)
    uniform = 2.0 * math.sqrt(log_term) / (r - p)
    a = 4.0 * log_term * n / ((r - p) * (p + 1))
    above = n - (np.floor(levels * (n - 1)) + 1)
    tail = (a + np.sqrt(a * a + a * (above + 1))) / n
    return np.where(above < p, 0.0, np.minimum(uniform, tail))
