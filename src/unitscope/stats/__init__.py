"""Streaming statistics: one pass over huge data, bounded memory, exact merges.

Every statistic follows one protocol (STYLE.md, convention 3):

- ``add(batch, ...)`` -- accumulate a batch, on whatever device it lives;
- ``merge(other)`` -- fold in a statistic of another shard or an earlier run;
  the result equals one pass over all the data (exactly for counts and top-k,
  within the stated bound for quantiles);
- ``state_dict()`` -- plain numpy arrays and python scalars (picklable, and
  writable with ``np.savez``); ``load_state_dict(state)`` and
  ``Statistic.from_state_dict(state)`` restore it;
- ``to(device)`` -- move the accumulated state.

Statistics know nothing of networks or images: they see ``(N, C)`` matrices
(one column per unit) and boolean masks.

The dense references the tests check these against (``RunningConceptOverlap``,
``RunningMoments``, ``RunningMean``) are used by no product code and live in
``tests/reference_stats.py``.
"""

from ._base import Statistic
from .pair_overlap import PairOverlap
from .quantile import RunningQuantile
from .topk import RunningTail, RunningTopK

__all__ = [
    "Statistic",
    "RunningTopK",
    "RunningTail",
    "RunningQuantile",
    "PairOverlap",
]
