"""Where a layer's unit looks in the image: the theoretical receptive field as a square window.

The window of output position ``i`` (along one axis) is the input pixels
``[i * stride + start, i * stride + start + size)``; ``start`` is negative
when the layers pad.  Code that occludes or crops around a unit (the
empirical receptive fields) only needs this window, so it accepts the
geometry from anywhere: an :class:`RFWindow`, a ``(size, stride, start)``
tuple, or the :class:`~unitscope.models.receptive_field.ReceptiveField` that
:func:`~unitscope.models.receptive_field.receptive_field` computes from the
network's graph (the one implementation of the geometry; branches are
handled).
"""

from __future__ import annotations

from torch import nn

from unitscope.hooks import resolve_layer
from unitscope.models.receptive_field import receptive_field
from unitscope.results.receptive_fields import RFWindow

__all__ = ["RFWindow", "as_window", "theoretical_window", "whole_image_window"]


def as_window(rf) -> RFWindow:
    """Convert ``rf`` (RFWindow, ``(size, stride, start)``, or a models ``ReceptiveField``) to an RFWindow."""
    if isinstance(rf, RFWindow):
        return rf
    if isinstance(rf, (tuple, list)) and len(rf) == 3:
        return RFWindow(int(rf[0]), int(rf[1]), int(rf[2]))
    if getattr(rf, "is_global", False):
        raise ValueError(f"the receptive field covers the whole input ({rf!r}): no spatial window to occlude")
    size = getattr(rf, "size_hw", None) or getattr(rf, "size", None)
    stride = getattr(rf, "stride_hw", None) or getattr(rf, "stride", None)
    if size is None or stride is None:
        raise ValueError(f"cannot read a receptive field from {rf!r}: expected size, stride and start")
    if getattr(rf, "start_hw", None) is not None:
        start = rf.start_hw
    elif hasattr(rf, "start"):
        start = rf.start
    elif hasattr(rf, "padding"):
        start = -_first(rf.padding)
    elif hasattr(rf, "offset"):
        # ``offset``: input coordinate of the centre of output position 0's window.
        offset = getattr(rf, "offset_hw", None) or rf.offset
        start = _first(offset) - (_first(size) - 1) / 2
    else:
        raise ValueError(f"cannot read the window start of {rf!r}")
    start = float(_first(start))
    if start != int(start):
        raise ValueError(f"receptive field {rf!r} does not start on a pixel (start {start})")
    return RFWindow(int(_first(size)), int(_first(stride)), int(start))


def _first(value):
    if isinstance(value, (tuple, list)):
        if len(set(value)) > 1:
            raise ValueError(f"only square receptive fields are supported, got {value!r}")
        return value[0]
    return value


def whole_image_window(input_shape: tuple[int, int], grid: tuple[int, int], note: str, *,
                       layer: str = "") -> RFWindow:
    """A frame for units that see the whole input: centred on each position's cell, wide enough for any offset.

    Position ``i`` of an ``h``-row grid over ``H`` input rows is the cell of
    ``H / h`` pixels (a transformer's patch); its centre is the cell's, and
    the window reaches ``max(H, W) - 1`` pixels either side, so every
    occluder position of the image falls inside the map.

    Raises
    ------
    ValueError
        When the grid does not divide the input into square cells.
    """
    (height, width), (h, w) = input_shape, grid
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"layer {layer!r} sees the whole input ({note}) on a {h}x{w} grid that does not cut "
                         f"the {height}x{width} input into square cells: there is no position to centre "
                         "its occlusion maps on")
    cell, reach = height // h, max(height, width) - 1
    return RFWindow(size=2 * reach + 1, stride=cell, start=(cell - 1) // 2 - reach, note=note)


def theoretical_window(model: nn.Module, layer: str, *, input_shape: tuple[int, int] | None = None,
                       grid: tuple[int, int] | None = None) -> RFWindow:
    """The layer's theoretical receptive field (:func:`receptive_field`) as a window.

    Parameters
    ----------
    model : nn.Module
    layer : str
    input_shape : (int, int), keyword-only
        ``(H, W)`` of the input, for the shapes of the dummy forward pass
        (they decide what adaptive pooling does).
    grid : (int, int), keyword-only
        The layer's map size.  Given, a layer whose units see the whole
        input (after attention) gets a :func:`whole_image_window`; else it
        is refused.

    Raises
    ------
    LookupError
        If ``model`` has no such layer.
    ValueError
        For a layer that sees the whole input (without ``grid``), or whose
        receptive field is unknown or not square.
    """
    resolve_layer(model, layer)
    rf = receptive_field(model, layer, input_size=input_shape)
    if rf.is_global and grid is not None and input_shape is not None:
        return whole_image_window(input_shape, grid, rf.note or "global", layer=layer)
    if rf.is_global:
        raise ValueError(
            f"layer {layer!r} sees the whole input ({rf.note or 'global'}): occlusion maps are centred "
            "and bounded by the theoretical window, which such a layer does not have; choose a layer "
            "before the first attention or global pooling (a transformer's patch embedding, say)")
    return as_window(rf)
