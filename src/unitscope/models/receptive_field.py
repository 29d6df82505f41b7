"""Theoretical receptive fields, computed from a network's architecture.

The theoretical receptive field (RF) of a layer is the window of input pixels
that one of its units can depend on.  It follows from the kernel size,
stride, padding and dilation of every convolution and pooling on the path
from the input, composed exactly as in Araujo et al. (2019)::

    size_out   = size_in + (dilation * (kernel - 1)) * stride_in
    stride_out = stride_in * stride
    start_out  = start_in - padding * stride_in

where ``start`` is the image coordinate of the first (top-left) pixel of the
first unit's window.  The network is read with :func:`torch.fx.symbolic_trace`
and these triples are propagated through its graph, so branches are handled
too: when several tensors meet (a residual addition, a concatenation) the
window is the union of their windows, i.e. the largest RF.

Conventions
-----------
- Pixel ``i`` of the input has its centre at coordinate ``i``; the RF of unit
  ``(r, c)`` of a layer covers rows ``start + r * stride`` to
  ``start + r * stride + size - 1`` (inclusive), and the same for columns.
  Windows may extend beyond the image (into the zero padding).
- ``offset`` is the coordinate of the centre of the first unit's window,
  ``start + (size - 1) / 2``; a half-integer when ``size`` is even.
- A layer whose units see the whole image — after global (adaptive) pooling
  to one position, a flatten or a fully-connected layer — has a *global* RF,
  reported as ``size = stride = offset = None``.
- Ops that only act per position (ReLU, batch norm, dropout, additions,
  channel concatenation or shuffling, a ``Linear`` applied to the channels
  of a channels-last tensor) leave the RF unchanged; normalisation layers
  count as per position, as in eval mode.  Explicit padding (``ZeroPad2d``,
  ``F.pad``) moves the window.
- Adaptive pooling is read from the tensor shapes of a dummy forward pass:
  the identity when input and output sizes agree (AlexNet's ``avgpool`` at
  224 px), an ordinary pooling when they divide evenly, global otherwise.
- Self-attention (``nn.MultiheadAttention``, or any module whose class name
  ends in ``Attention``, as timm's and Hugging Face's, windowed attention
  excepted) mixes every token, so
  its output and every layer after it are global, with ``note = "global:
  attention"``.  A transformer's patch embedding is an ordinary convolution
  (RF = the patch).  Its flattening into tokens ``(N, C, h, w) -> (N, C,
  h*w)`` is followed: ops that keep every token (position embeddings, layer
  norms, ``Linear`` over the channels) keep the patch's RF, and a class
  token concatenated in front is an extra token, not a patch; any other
  change of the token axis makes the RF global (never smaller than what a
  unit can see).
- A squeeze-and-excitation gate (global pooling multiplied back into the
  feature map, as in MobileNet V3 or EfficientNet) makes every later layer
  global: each unit then truly depends on the whole image.
- Ops that change the spatial size in ways this module does not model
  (up-sampling, transposed convolutions, pixel shuffle, cropping) make the
  RF *unknown*; such layers are left out of
  :func:`theoretical_receptive_fields`, and :func:`receptive_field` raises
  ``ValueError`` for them.

References
----------
.. [1] A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of
   Convolutional Neural Networks", Distill, 2019.
   https://distill.pub/2019/computing-receptive-fields/

Examples
--------
>>> import torchvision
>>> net = torchvision.models.alexnet(weights=None)
>>> receptive_field(net, "features.12").size       # pool5
195
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unitscope.hooks import resolve_layer
from unitscope.models._rf_propagation import _propagate
from unitscope.models._rf_states import _GLOBAL, _GLOBAL_ATTENTION, _Tokens, _Unknown, _Window

__all__ = ["ReceptiveField", "theoretical_receptive_fields", "receptive_field"]


@dataclass(frozen=True)
class ReceptiveField:
    """Theoretical receptive field of a layer's units.

    Attributes
    ----------
    size : int or None
        Side of the window of input pixels one unit depends on (``None``:
        the whole input).  For a non-square RF, the larger side; see
        ``size_hw``.
    stride : int or None
        Distance in input pixels between the windows of neighbouring units
        (the layer's total down-sampling factor).
    offset : float or None
        Coordinate of the centre of the first unit's window, pixel ``i``
        having its centre at ``i``; negative or fractional values are normal.
    size_hw, stride_hw, offset_hw : tuple or None
        The same per axis, ``(height, width)``; ``size``, ``stride`` and
        ``offset`` are taken from the axis with the larger size (the height
        on a tie, so they equal both axes for every square network).
    note : str or None
        Why a global RF is global when that is worth saying
        (``"global: attention"``); None otherwise.
    """

    size: int | None
    stride: int | None
    offset: float | None
    size_hw: tuple[int, int] | None = None
    stride_hw: tuple[int, int] | None = None
    offset_hw: tuple[float, float] | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        for scalar, pair in (("size", "size_hw"), ("stride", "stride_hw"), ("offset", "offset_hw")):
            if getattr(self, pair) is None and getattr(self, scalar) is not None:
                value = getattr(self, scalar)
                object.__setattr__(self, pair, (value, value))

    @property
    def is_global(self) -> bool:
        """True when a unit sees the whole input (``size is None``)."""
        return self.size is None

    @property
    def start_hw(self) -> tuple[int, int] | None:
        """Coordinates (row, column) of the first pixel of the first unit's window."""
        if self.is_global:
            return None
        return tuple(int(round(o - (s - 1) / 2)) for o, s in zip(self.offset_hw, self.size_hw))

    def box(
        self, row: int, col: int, *, clip_to: tuple[int, int] | None = None
    ) -> tuple[int, int, int, int]:
        """Window of input pixels seen by unit ``(row, col)``.

        Parameters
        ----------
        row, col : int
            Position of the unit in the layer's ``(H, W)`` grid.
        clip_to : (height, width), keyword-only
            Clip the window to an image of this size.

        Returns
        -------
        (top, left, bottom, right) : tuple of int
            ``bottom`` and ``right`` are exclusive, so the window is
            ``image[..., top:bottom, left:right]`` (after clipping).

        Raises
        ------
        ValueError
            For a global RF, which has no window.
        """
        if self.is_global:
            raise ValueError("a global receptive field covers the whole input and has no window")
        (start_h, start_w), (size_h, size_w), (stride_h, stride_w) = (
            self.start_hw, self.size_hw, self.stride_hw,
        )
        top, left = start_h + row * stride_h, start_w + col * stride_w
        bottom, right = top + size_h, left + size_w
        if clip_to is not None:
            height, width = clip_to
            top, left = max(top, 0), max(left, 0)
            bottom, right = min(bottom, height), min(right, width)
        return top, left, bottom, right

    def to_dict(self) -> dict:
        """Plain values (``size``, ``stride``, ``offset``) for tables and JSON."""
        return {"size": self.size, "stride": self.stride, "offset": self.offset}


GLOBAL = ReceptiveField(size=None, stride=None, offset=None)
GLOBAL_ATTENTION = ReceptiveField(size=None, stride=None, offset=None, note="global: attention")


def theoretical_receptive_fields(
    model: nn.Module, *, input_size: int | tuple[int, int] | None = None
) -> dict[str, ReceptiveField]:
    """Theoretical receptive field of every layer of ``model``.

    Parameters
    ----------
    model : nn.Module
        Any CNN that :func:`torch.fx.symbolic_trace` can trace (every
        torchvision classification network can).  Not modified.
    input_size : int or (int, int), keyword-only
        Size of the dummy input used to learn tensor shapes (they decide what
        adaptive pooling does).  Default: the model's preprocessing input
        size, else 224.

    Returns
    -------
    dict
        ``{layer name: ReceptiveField}`` in the order the outputs are produced
        (a container after its children), for every module
        that produces a tensor, containers included (a container's RF is
        that of its output).  Layers whose RF is unknown (after an
        up-sampling op, say) are left out.

    Raises
    ------
    ValueError
        If the model cannot be traced, or the dummy forward pass fails.

    Examples
    --------
    >>> import torchvision
    >>> rfs = theoretical_receptive_fields(torchvision.models.resnet18(weights=None))
    >>> rfs["layer4"].size, rfs["layer4"].stride
    (435, 32)
    """
    states = _propagate(model, input_size)
    out = {}
    for name, state in states.items():
        if isinstance(state, _Tokens):
            state = state.window
        if isinstance(state, _Window):
            out[name] = ReceptiveField(**state.fields())
        elif state is _GLOBAL:
            out[name] = GLOBAL
        elif state is _GLOBAL_ATTENTION:
            out[name] = GLOBAL_ATTENTION
    return out


def receptive_field(
    model: nn.Module, layer: str, *, input_size: int | tuple[int, int] | None = None
) -> ReceptiveField:
    """Theoretical receptive field of one layer.

    Parameters
    ----------
    model : nn.Module
    layer : str
        Dotted module name, e.g. ``"features.12"``, ``"layer4"``.
    input_size : int or (int, int), keyword-only
        See :func:`theoretical_receptive_fields`.

    Returns
    -------
    ReceptiveField

    Raises
    ------
    LookupError
        If ``model`` has no such layer (the message lists close matches).
    ValueError
        If the layer is not used by the forward pass, does not produce a
        tensor, or follows an op whose effect on the RF is not modelled.
    """
    resolve_layer(model, layer)
    states = _propagate(model, input_size)
    if layer not in states:
        raise ValueError(
            f"layer {layer!r} is not called in the forward pass of {type(model).__name__}"
        )
    state = states[layer]
    if isinstance(state, _Tokens):
        state = state.window
    if isinstance(state, _Window):
        return ReceptiveField(**state.fields())
    if state is _GLOBAL:
        return GLOBAL
    if state is _GLOBAL_ATTENTION:
        return GLOBAL_ATTENTION
    if isinstance(state, _Unknown):
        raise ValueError(
            f"the receptive field of {layer!r} is unknown: it follows an op that is not modelled "
            f"({state.reason})"
        )
    raise ValueError(f"layer {layer!r} does not produce a tensor")
