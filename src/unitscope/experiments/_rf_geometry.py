"""Where a layer's unit looks in the image: the theoretical receptive field as a window.

The window of output position ``i`` (along one axis) is the input pixels
``[i * stride + start, i * stride + start + size)``; ``start`` is negative
when the layers pad.  The empirical-RF code only needs this window, so it
accepts the geometry from anywhere: an :class:`RFWindow`, a
``(size, stride, start)`` tuple, or the ``ReceptiveField`` of
:func:`unitscope.models.receptive_field` (preferred: it follows the graph with
torch.fx, so branches are handled).  When that module is not available the
fallback here folds the convolutions and poolings in the order they run,
which is exact for chains (AlexNet, VGG, SqueezeNet's fire modules) and not
for residual networks.
"""

from __future__ import annotations

import torch
from torch import nn

from unitscope.hooks import Trace, resolve_layer
from unitscope.results.receptive_fields import RFWindow

__all__ = ["RFWindow", "as_window", "theoretical_window", "chain_window", "whole_image_window"]


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
    """The layer's theoretical receptive field, from ``unitscope.models`` when available.

    Parameters
    ----------
    model : nn.Module
    layer : str
    input_shape : (int, int), keyword-only
        ``(H, W)`` of the input, for the fallback's probe forward pass.
    grid : (int, int), keyword-only
        The layer's map size.  Given, a layer whose units see the whole
        input (after attention) gets a :func:`whole_image_window`; else it
        is refused.
    """
    resolve_layer(model, layer)
    try:
        from unitscope.models import receptive_field  # type: ignore[attr-defined]
    except ImportError:
        receptive_field = None
    if receptive_field is not None:
        rf = receptive_field(model, layer, input_size=input_shape)
        if rf.is_global and grid is not None and input_shape is not None:
            return whole_image_window(input_shape, grid, rf.note or "global", layer=layer)
        if rf.is_global:
            raise ValueError(
                f"layer {layer!r} sees the whole input ({rf.note or 'global'}): occlusion maps are centred "
                "and bounded by the theoretical window, which such a layer does not have; choose a layer "
                "before the first attention or global pooling (a transformer's patch embedding, say)")
        return as_window(rf)
    return chain_window(model, layer, input_shape=input_shape)


def _pair(value) -> int:
    if isinstance(value, (tuple, list)):
        return int(_first(tuple(value)))
    return int(value)


def chain_window(model: nn.Module, layer: str, *, input_shape: tuple[int, int] | None = None) -> RFWindow:
    """Fold every Conv2d / MaxPool2d / AvgPool2d that runs before ``layer``'s output, in run order.

    Exact for chains of layers; a branch that runs beside the main path
    (a residual shortcut) would be folded as if it followed it.
    """
    order: list[nn.Module] = []
    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            handles.append(module.register_forward_hook(lambda m, i, o: order.append(m)))
    size, stride, start = 1, 1, 0
    h, w = input_shape or (224, 224)
    try:
        param = next(iter(model.parameters()), None)
        probe = torch.zeros(1, 3, h, w, device=param.device if param is not None else "cpu",
                            dtype=param.dtype if param is not None and param.is_floating_point() else torch.float32)
        with torch.no_grad(), Trace(model, layer, stop=True):
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
    for module in order:
        kernel = _pair(module.kernel_size)
        step = _pair(module.stride if module.stride is not None else module.kernel_size)
        dilation = _pair(getattr(module, "dilation", 1))
        padding = module.padding
        if padding == "same":
            padding = dilation * (kernel - 1) // 2
        elif padding == "valid":
            padding = 0
        padding = _pair(padding)
        size += (kernel - 1) * dilation * stride
        start -= padding * stride
        stride *= step
    return RFWindow(size, stride, start)
