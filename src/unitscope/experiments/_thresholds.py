"""Thresholds that mean what they say, and the support a label needs (SPEC section 5).

A unit's mask is the positions where its (upsampled) activation is above its
threshold ``T``, the top ``quantile`` of its activations over the pool.  How
ties at ``T`` count decides what the mask means.  Where a layer saturates
(ReLU6 at 6.0, clipped outputs) thousands of positions tie at the ceiling;
if ties counted as "on", a unit whose top 0.5 % is its ceiling would light up
26 % of the pool and become a false "detector" of road or sky.  So:

``"unitscope"`` (default)
    ``T`` is the ``floor((1 - q)(n - 1)) + 1``-th smallest activation (the
    streaming sketch's order statistic), a position is on when ``A > T``:
    a unit's mask covers at most the nominal share of positions.
``"netdissect"``
    Network Dissection's convention: ``T`` is the ``1 - q`` quantile by
    linear interpolation between order statistics
    (``numpy.quantile(..., method="linear")``), on when ``A > T``.  ``T`` is
    computed exactly from each unit's largest ``q n + 2`` values, kept in
    memory during the first pass (``tail_size``; the sketch is used, with a
    warning, when they would take more than
    :data:`~unitscope.results.dissection_warnings.EXACT_TAIL_BYTES`).
``"inclusive"``
    unitscope's earlier rule, for comparisons only: on when ``A >= T``,
    except for units whose threshold is their minimum (a dead or mostly-zero
    unit), where ``A > T``.  Ties inflate saturated units' masks.

A unit whose threshold equals its maximum is *saturated* (a constant, dead
unit is too: every position ties).  Under the strict rules its mask is empty
by definition, so its IoU is 0, it has no label and it is never a detector;
under ``"inclusive"`` it keeps its tie-inflated mask (and whatever label that
gives), which is what that rule is kept to show.

Support.  A concept seen in a handful of images cannot be told apart from
chance: a unit whose few top positions happen to fall on those images gets a
high IoU.  Broden itself keeps only concepts with at least 10 images (Bau et
al., *Network Dissection*, CVPR 2017, section 2.1), so concepts with fewer
than :data:`DEFAULT_MIN_SUPPORT` images in the pool are not used as labels.
A threshold resting on fewer than :data:`~unitscope.results.dissection_warnings.MIN_TAIL_POSITIONS` positions per
unit is flagged: the count above it has a relative sampling error of about
``1 / sqrt(positions)``, over 20 % below 20 positions.
"""

from __future__ import annotations

import math
import numpy as np
import torch

from unitscope.results.dissection_warnings import EXACT_TAIL_BYTES, is_strict
from unitscope.stats import RunningQuantile, RunningTail

#: The tie rules (see the module notes), the default first.
THRESHOLD_RULES = ("unitscope", "netdissect", "inclusive")

#: Minimum images a concept needs in the pool to be used as a label (Broden's own filter).
DEFAULT_MIN_SUPPORT = 10

def check_threshold_rule(rule) -> str:
    """Return ``rule`` if it is one of :data:`THRESHOLD_RULES`, else raise ``ValueError``."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"--threshold-rule (--convention) must be one of {', '.join(THRESHOLD_RULES)}, not {rule!r}")
    return rule


def check_min_support(min_support) -> int:
    """Return ``min_support`` as an int ``>= 0``, else raise ``ValueError``.

    A value above the pool's size is allowed: no concept is then a label, and
    the result says so in its warnings.
    """
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or min_support < 0:
        raise ValueError(f"--min-support must be an integer >= 0 (images a concept needs to be a label), "
                         f"not {min_support!r}")
    return int(min_support)


def tail_index(count: int, quantile: float) -> int:
    """``j = floor((n - 1)(1 - q))``: the 0-based ascending index ``numpy.quantile`` interpolates from."""
    return int(math.floor((count - 1) * (1.0 - quantile)))


def tail_size(count: int, quantile: float) -> int:
    """How many of a unit's largest values give its ``"netdissect"`` threshold exactly: ``n - j``."""
    return min(count, count - tail_index(count, quantile) + 1)


def linear_quantile_from_top(top: np.ndarray, count: int, quantile: float) -> np.ndarray:
    """``numpy.quantile(values, 1 - quantile, method="linear")`` per unit, from its largest values.

    Parameters
    ----------
    top : ndarray, shape (U, m)
        Each unit's ``m >= tail_size(count, quantile) - 1`` largest values, descending.
    count : int
        ``n``, how many values each unit had.
    quantile : float
        The top share ``q``.

    Returns
    -------
    ndarray, shape (U,), float64
        The same numbers as numpy (its lerp, in the values' dtype).

    Raises
    ------
    ValueError
        If ``top`` holds too few values.
    """
    j = tail_index(count, quantile)
    gamma = (count - 1) * (1.0 - quantile) - j
    below, above = count - 1 - j, max(count - 2 - j, 0)  # descending positions of j and j + 1
    if top.shape[1] <= below:
        raise ValueError(f"{top.shape[1]} top values cannot give the quantile of {count} (need {below + 1})")
    return numpy_lerp(top[:, below], top[:, above], gamma)


def numpy_lerp(previous: np.ndarray, following: np.ndarray, gamma: float) -> np.ndarray:
    """numpy's quantile interpolation, bit for bit: ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` when ``t >= 0.5``.

    The arithmetic is done in the values' dtype (``gamma`` is a Python float,
    as in ``numpy.quantile`` with a scalar level); the result is float64.
    """
    gamma = float(gamma)
    diff = following - previous
    value = following - diff * (1.0 - gamma) if gamma >= 0.5 else previous + diff * gamma
    return np.asarray(value).astype(np.float64)


def cutoffs(thresholds: torch.Tensor, minima: torch.Tensor, saturated: torch.Tensor, rule: str) -> torch.Tensor:
    """Per-unit ``c`` such that a position is on when ``value >= c``, under ``rule``.

    Strict rules compare against the next float above ``T`` (``A > T``), and
    a saturated unit gets ``+inf`` (no position is on, whatever the
    upsampling's float rounding does at the ceiling).  ``"inclusive"``
    keeps ``T`` itself unless ``T`` is the unit's minimum.
    """
    above = torch.nextafter(thresholds, torch.full_like(thresholds, float("inf")))
    if is_strict(rule):
        return torch.where(saturated, torch.full_like(thresholds, float("inf")), above)
    return torch.where(thresholds > minima, thresholds, above)


def unit_masks(values: torch.Tensor, threshold: float, *, minimum: float | None, rule: str,
               saturated: bool = False) -> torch.Tensor:
    """A unit's on-positions in ``values`` under ``rule`` (for the tools that draw or localise masks)."""
    if is_strict(rule) and saturated:
        return torch.zeros_like(values, dtype=torch.bool)
    if is_strict(rule) or (minimum is not None and threshold <= minimum):
        return values > threshold
    return values >= threshold


def exact_tail(count: int, units: int, quantile: float, layers: int) -> RunningTail | None:
    """A statistic holding each unit's largest values, enough for an exact quantile of ``count``.

    None when the layers' tails would take more than :data:`EXACT_TAIL_BYTES`
    (float32, and up to twice as many again wait in batches before each cut
    back to the tail: 12 bytes per kept value).
    """
    size = tail_size(count, quantile)
    return RunningTail(size) if 12 * size * units * layers <= EXACT_TAIL_BYTES else None


def layer_thresholds(sketch: RunningQuantile, tail: RunningTail | None, quantile: float, rule: str) -> dict:
    """Per-unit thresholds, extremes and saturation of one layer under ``rule``, from merged statistics.

    Returns
    -------
    dict
        ``thresholds``, ``minima``, ``maxima`` (float64, shape (U,)),
        ``saturated`` (bool, (U,)), ``exact`` (whether the thresholds are
        exact quantiles) and ``positions`` (values per unit).
    """
    n = sketch.count
    low, lower_stat, high = sketch.quantiles([0.0, 1.0 - quantile, 1.0]).cpu().numpy().astype(np.float64).T
    thresholds, exact = lower_stat, False
    if rule == "netdissect":
        top = tail.result().cpu().numpy() if tail is not None else None
        if top is not None and top.shape[1] >= tail_size(n, quantile) - 1:
            thresholds, exact = linear_quantile_from_top(top, n, quantile), True
        else:  # the two order statistics from the sketch (approximate), interpolated the same way
            j = tail_index(n, quantile)
            levels = [(j + 0.5) / max(n - 1, 1), min(j + 1.5, n - 1) / max(n - 1, 1)]  # floor(l (n - 1)) = j, j + 1
            pair = sketch.quantiles(levels).cpu().numpy()
            thresholds = numpy_lerp(pair[:, 0], pair[:, 1], (n - 1) * (1.0 - quantile) - j)
    return {"thresholds": thresholds, "minima": low, "maxima": high, "saturated": thresholds >= high,
            "exact": exact, "positions": n}
