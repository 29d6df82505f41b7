"""Which unit an annotator sees next.

The rules, as in the paper's crowd task:

* every unit gets ``k`` annotations, each from a different annotator;
* an annotator never sees a unit twice (not one they answered, and the unit
  they hold is shown again only until they answer it);
* units already started come first, so that finished units (and results)
  accumulate early instead of every unit having one answer.

A unit shown to an annotator is *leased* to them for a while, and counts
towards its ``k`` until the lease expires; that is what keeps two annotators
who ask at the same moment from both taking the last slot of a unit. The
storage layer runs :func:`choose_unit` inside a write transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence, TypeVar

__all__ = ["choose_unit"]

Key = TypeVar("Key")


def choose_unit(
    units: Sequence[Key],
    *,
    k: int,
    answered_by_me: set[Key] | frozenset[Key],
    answer_counts: Mapping[Key, int],
    leased_by_others: Counter[Key] | Mapping[Key, int],
) -> Key | None:
    """Pick the next unit for one annotator.

    Parameters
    ----------
    units : sequence
        Every unit, in catalog order (the tie-break).
    k : int
        Annotations wanted per unit.
    answered_by_me : set
        Units this annotator already answered.
    answer_counts : mapping
        Number of stored answers per unit (missing means 0).
    leased_by_others : mapping
        Number of live leases held by *other* annotators per unit.

    Returns
    -------
    key or None
        The unit with the most answers among those with a free slot
        (answers + others' leases < k), earliest in catalog order on ties;
        None when nothing is left for this annotator.

    Examples
    --------
    >>> choose_unit(["a", "b"], k=2, answered_by_me=set(), answer_counts={"b": 1},
    ...             leased_by_others={})
    'b'
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    best, best_count = None, -1
    for key in units:
        if key in answered_by_me:
            continue
        count = answer_counts.get(key, 0)
        if count + leased_by_others.get(key, 0) >= k:
            continue
        if count > best_count:
            best, best_count = key, count
    return best
