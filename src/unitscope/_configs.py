"""What differs between a saved run's configuration and this one, in words (torch-free).

One wording for every resumable run: experiments (``experiments.resume``)
and training (``training.resume``) refuse a partial run saved under other
arguments with the same sentence parts, e.g. ``option 'seed' (3, now 4)``
or ``other weights``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["plain", "differences"]

#: configuration entries that name what was run on, not how: said as "other weights" / "other data"
_WHAT = {"weights": "other weights", "data": "other data", "pools": "other data", "labels": "other data",
         "preprocessing": "other preprocessing", "version": "another unitscope version"}


def plain(config: Any) -> Any:
    """``config`` as JSON gives it back (tuples as lists, other objects as text)."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def differences(saved: Any, config: dict[str, Any]) -> str:
    """What differs between a saved run's configuration and this one, in words.

    ``"other weights"``, ``"other data"``, ``"option 'seed' (3, now 4)"``;
    ``"other arguments"`` when the saved state does not say (an earlier version's).
    """
    if not isinstance(saved, dict):
        return "other arguments"
    config = plain(config)
    found = []
    for name in sorted(set(saved) | set(config)):
        if saved.get(name) == config.get(name):
            continue
        if name in _WHAT:
            found.append(_WHAT[name])
            continue
        before, now = (json.dumps(v, sort_keys=True) for v in (saved.get(name), config.get(name)))
        found.append(f"option {name!r} ({before}, now {now})" if len(before) + len(now) < 80
                     else f"option {name!r}")
    return ", ".join(dict.fromkeys(found)) or "other arguments"
