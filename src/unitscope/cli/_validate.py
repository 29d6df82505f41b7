"""Checks of option values that typer's own ``min=``/``max=`` cannot express.

Each factory here returns a typer option ``callback``: it runs while the
command line is parsed, before the command does any work, and a bad value
becomes one line, ``unitscope: error: Invalid value for '--x': ...``, that
names the option and what it accepts.  The library functions refuse the
same nonsense with ``ValueError`` for notebook users; these checks make the
command line refuse it before a network is built or a pool opened.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Optional

import typer

__all__ = [
    "NAME_PATTERN",
    "SEED_HELP",
    "check_name",
    "choice",
    "device_option",
    "float_range",
    "layer_list",
    "name_option",
    "pattern_option",
    "spec_list",
    "unit_list",
]

#: A network or pool name: it becomes a folder under ``--out``, so no separators, no leading dot.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,99}$")
#: The one help text of every ``--seed`` that seeds a network's random weights.
SEED_HELP = "Seed of the random weights (without --weights): the same seed gives the same network."

_NAME_RULE = "a plain name of letters, digits and . _ + - (no '/' or '..', not starting with '.')"


def float_range(low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> Callable[[Optional[float]], Optional[float]]:
    """A callback accepting finite numbers in the interval; ``nan`` and ``inf`` are refused.

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
            raise typer.BadParameter(f"{value:g} is not in {interval}")
        return value

    return check


def choice(*accepted: str) -> Callable[[Optional[str]], Optional[str]]:
    """A callback accepting one of ``accepted`` (named in the message)."""

    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and value not in accepted:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(accepted)}")
        return value

    return check


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a safe single folder name, else raise ``typer.BadParameter``."""
    if not NAME_PATTERN.match(value):
        raise typer.BadParameter(f"{what} {value!r} must be {_NAME_RULE}")
    return value


def name_option(value: Optional[str]) -> Optional[str]:
    """Callback for ``--name``: the results go to ``OUT/NAME``, never outside ``--out``."""
    return None if value is None else check_name(value)


def _items(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not any(items):
        raise typer.BadParameter(f"expected a comma-separated list of {what}, got {value!r}")
    if "" in items:
        raise typer.BadParameter(f"empty item in the list {value!r}")
    repeated = sorted({v for v in items if items.count(v) > 1})
    if repeated:
        raise typer.BadParameter(f"{', '.join(repeated)} named more than once in {value!r}")
    return items


def layer_list(value: Optional[str]) -> Optional[list[str]]:
    """Callback for ``--layers``: distinct, non-empty dotted layer names."""
    return None if value is None else _items(value, "layer names")


def unit_list(value: Optional[str]) -> Optional[list[int]]:
    """Callback for ``--units``: distinct unit (channel) indices >= 0."""
    if value is None:
        return None
    items = _items(value, "unit indices")
    bad = [v for v in items if not v.isdigit()]
    if bad:
        raise typer.BadParameter(f"unit indices are integers >= 0, got {', '.join(repr(v) for v in bad)}")
    return [int(v) for v in items]


def device_option(value: str) -> str:
    """Callback for ``--device``: a device torch knows and this machine has."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise typer.BadParameter(f"{value!r}: no CUDA device is available here; use cpu")
        if device.index is not None and device.index >= count:
            raise typer.BadParameter(f"{value!r}: this machine has cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise typer.BadParameter(f"{value!r}: MPS is not available here; use cpu")
    elif device.type != "cpu":
        raise typer.BadParameter(f"{value!r}: use cpu, cuda or cuda:N")
    return value


def pattern_option(value: Optional[str]) -> Optional[str]:
    """Callback for ``--label-pattern``: a regular expression with a group for the class index."""
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise typer.BadParameter(f"{value!r} is not a regular expression ({exc})") from None
    if compiled.groups < 1:
        raise typer.BadParameter(f"{value!r} has no group: put the class index in parentheses, "
                                 r"e.g. '^(\d+)_'")
    return value


def spec_list(form: str) -> Callable[[Optional[list[str]]], Optional[list[tuple[str, str]]]]:
    """A callback for a repeated ``NAME=VALUE`` option: ``[(name, value), ...]`` with distinct names.

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
                raise typer.BadParameter(f"expected {form}, got {spec!r}")
            pairs.append((check_name(name, what), rest))
        names = [name for name, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise typer.BadParameter(f"{what} {', '.join(repr(n) for n in repeated)} given more than once; "
                                     f"each {form} needs its own {what}")
        return pairs

    return check
