"""A finding of the report: one of the seed's questions, its answer in a sentence, and the numbers behind it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Finding", "pct"]


@dataclass
class Finding:
    """One question of the seed and its answer."""

    key: str
    question: str
    answer: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def pct(value: float, digits: int = 0) -> str:
    """``0.316 -> "32%"`` (``"n/a"`` for NaN)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{100 * value:.{digits}f}%"
