"""Checks of the values a user gives: names, lists of layers and units, devices, ranges, patterns.

Each function takes the value as text (or number), returns it parsed, and
raises ``ValueError`` saying what is accepted.  The command line runs them
as option callbacks while it parses (``unitscope.cli._options.checked``
turns the ``ValueError`` into one line, ``unitscope: error: Invalid value
for '--x': ...``, that names the option), before a network is built or a
pool opened; a notebook user may call them on the same values.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Optional

__all__ = [
    "NAME_PATTERN",
    "check_name",
    "choice",
    "device_option",
    "float_range",
    "layer_list",
    "name_option",
    "pattern_option",
    "spec_list",
    "step_checkpoints",
    "unit_list",
]

#: A network or pool name: it becomes a folder under ``--out``, so no separators, no leading dot.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,99}$")

_NAME_RULE = "a plain name of letters, digits and . _ + - (no '/' or '..', not starting with '.')"


def float_range(low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> Callable[[Optional[float]], Optional[float]]:
    """A check accepting finite numbers in the interval; ``nan`` and ``inf`` are refused.

    (Click's ``FloatRange`` lets ``nan`` through: every comparison with it is false.)
    """
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    interval = f"{left}{low:g}, {high:g}{right}"

    def check(value: Optional[float]) -> Optional[float]:
        if value is None:
            return None
        inside = (math.isfinite(value) and (value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
        if not inside:
            raise ValueError(f"{value:g} is not in {interval}")
        return value

    return check


def choice(*accepted: str) -> Callable[[Optional[str]], Optional[str]]:
    """A check accepting one of ``accepted`` (named in the message)."""

    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and value not in accepted:
            raise ValueError(f"{value!r} is not one of {', '.join(accepted)}")
        return value

    return check


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a safe single folder name, else raise ``ValueError``."""
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be {_NAME_RULE}")
    return value


def name_option(value: Optional[str]) -> Optional[str]:
    """Check of ``--name``: the results go to ``OUT/NAME``, never outside ``--out``."""
    return None if value is None else check_name(value)


def _items(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not any(items):
        raise ValueError(f"expected a comma-separated list of {what}, got {value!r}")
    if "" in items:
        raise ValueError(f"empty item in the list {value!r}")
    repeated = sorted({v for v in items if items.count(v) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} named more than once in {value!r}")
    return items


def layer_list(value: Optional[str]) -> Optional[list[str]]:
    """Check of ``--layers``: distinct, non-empty dotted layer names."""
    return None if value is None else _items(value, "layer names")


def unit_list(value: Optional[str]) -> Optional[list[int]]:
    """Check of ``--units``: distinct unit (channel) indices >= 0."""
    if value is None:
        return None
    items = _items(value, "unit indices")
    bad = [v for v in items if not v.isdigit()]
    if bad:
        raise ValueError(f"unit indices are integers >= 0, got {', '.join(repr(v) for v in bad)}")
    return [int(v) for v in items]


def device_option(value: str) -> str:
    """Check of ``--device``: a device torch knows and this machine has."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{value!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{value!r}: no CUDA device is available here; use cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{value!r}: this machine has cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{value!r}: MPS is not available here; use cpu")
    elif device.type != "cpu":
        raise ValueError(f"{value!r}: use cpu, cuda or cuda:N")
    return value


def pattern_option(value: Optional[str]) -> Optional[str]:
    """Check of ``--label-pattern``: a regular expression with a group for the class index."""
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
    if compiled.groups < 1:
        raise ValueError(f"{value!r} has no group: put the class index in parentheses, "
                                 r"e.g. '^(\d+)_'")
    return value


def spec_list(form: str) -> Callable[[Optional[list[str]]], Optional[list[tuple[str, str]]]]:
    """A check of a repeated ``NAME=VALUE`` option: ``[(name, value), ...]`` with distinct names.

    ``form`` is how the option is written (``"NAME=ARCH[:WEIGHTS]"``), for messages.
    """
    what = form.split("=")[0].lower()

    def check(values: Optional[list[str]]) -> Optional[list[tuple[str, str]]]:
        if values is None:
            return None
        pairs = []
        for spec in values:
            name, sep, rest = spec.partition("=")
            if not sep or not rest:
                raise ValueError(f"expected {form}, got {spec!r}")
            pairs.append((check_name(name, what), rest))
        names = [name for name, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{what} {', '.join(repr(n) for n in repeated)} given more than once; "
                                     f"each {form} needs its own {what}")
        return pairs

    return check


def step_checkpoints(values: Optional[list[str]]) -> Optional[list[tuple[int, str]]]:
    """A repeated ``STEP=PATH`` option (the snapshots of a training run): ``[(step, path), ...]``.

    Steps are positive integers, each given once; the paths are checked when they are opened.
    """
    if not values:
        return None
    pairs = []
    for spec in values:
        step, sep, path = spec.partition("=")
        if not sep or not path or not step.strip().isdigit() or int(step) < 1:
            raise ValueError(f"expected STEP=PATH with STEP a positive integer (training steps), got {spec!r}")
        pairs.append((int(step), path))
    steps = [s for s, _ in pairs]
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise ValueError(f"step(s) {', '.join(map(str, repeated))} given more than once")
    return pairs
