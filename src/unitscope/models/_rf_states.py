"""The states a receptive field takes as it travels through a traced network (see :mod:`._rf_propagation`).

Per axis a window is ``(size, stride, start)``, all integers, so the
arithmetic is exact; where tensors meet their states are united
(:func:`_union`: the largest window wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------
# Propagation state.  Per axis: (size, stride, start), all integers, so the
# arithmetic is exact.  A node's state is one of
#   _Window(h, w, axes)   a finite window; ``axes`` are the (negative) dims
#                         holding the image rows and columns, (-2, -1) for
#                         NCHW and (-3, -2) for channels-last (ConvNeXt);
#   _Tokens(window, ...)  a finite window whose image grid has been flattened
#                         into one token axis (a transformer's patches);
#   _GLOBAL               the whole input (_GLOBAL_ATTENTION: through attention);
#   _Unknown(reason)      something this module does not model;
#   None                  not an image-derived tensor (shapes, ints, weights).


@dataclass(frozen=True)
class _Window:
    h: tuple[int, int, int]
    w: tuple[int, int, int]
    axes: tuple[int, int] = (-2, -1)

    def compose(self, kernel, stride, padding, dilation) -> "_Window":
        axes = []
        for (size, jump, start), k, s, p, d in zip(
            (self.h, self.w), _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
        ):
            axes.append((size + d * (k - 1) * jump, jump * s, start - p * jump))
        return _Window(axes[0], axes[1], (-2, -1))

    def fields(self) -> dict:
        """The keyword arguments of a ``ReceptiveField`` for this window."""
        offsets = tuple(start + (size - 1) / 2 for size, _, start in (self.h, self.w))
        offsets = tuple(int(o) if float(o).is_integer() else o for o in offsets)
        axis = 0 if self.h[0] >= self.w[0] else 1
        return dict(
            size=(self.h, self.w)[axis][0],
            stride=(self.h, self.w)[axis][1],
            offset=offsets[axis],
            size_hw=(self.h[0], self.w[0]),
            stride_hw=(self.h[1], self.w[1]),
            offset_hw=offsets,
        )


@dataclass(frozen=True)
class _Tokens:
    """Patches of an image grid as tokens: ``axis`` holds ``count`` tokens, the first ``extra`` not patches."""

    window: _Window
    axis: int
    count: int
    extra: int = 0


class _Global:
    def __init__(self, name: str = "GLOBAL") -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_GLOBAL = _Global()
_GLOBAL_ATTENTION = _Global("GLOBAL_ATTENTION")  # global because tokens attend to each other


@dataclass(frozen=True)
class _Unknown:
    reason: str


def _union(states: list) -> Any:
    """Combine the states of tensors that meet in one op (the largest RF wins)."""
    states = [s for s in states if s is not None]
    if not states:
        return None
    if any(s is _GLOBAL_ATTENTION for s in states):
        return _GLOBAL_ATTENTION
    if any(s is _GLOBAL for s in states):
        return _GLOBAL
    unknown = [s for s in states if isinstance(s, _Unknown)]
    if unknown:
        return unknown[0]
    if len(states) == 1:
        return states[0]
    tokens = [s for s in states if isinstance(s, _Tokens)]
    if tokens:
        layouts = {(t.axis, t.count, t.extra) for t in tokens}
        if len(tokens) < len(states) or len(layouts) > 1:
            return _Unknown("token grids of different layouts (or a token grid and a feature map) meet")
        return _Tokens(_union([t.window for t in tokens]), *layouts.pop())
    axes = []
    for axis in ("h", "w"):
        items = [getattr(s, axis) for s in states]
        first = min(start for _, _, start in items)
        last = max(start + size - 1 for size, _, start in items)
        # Tensors that meet elementwise share one grid, hence one stride;
        # should they differ the coarser one is kept.
        axes.append((last - first + 1, max(jump for _, jump, _ in items), first))
    return _Window(axes[0], axes[1], states[0].axes)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[-2]), int(value[-1]))
    return (int(value), int(value))
