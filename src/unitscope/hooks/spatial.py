"""What counts as a spatial map of units, and how a layer's output is read as one.

Dissection, receptive fields, localisation and ablation all read a layer's
output as maps ``(N, C, H, W)``: one unit per channel, one activation per
position.  Two kinds of output qualify:

* a convolutional feature map ``(N, C, H, W)`` with more than one position;
* a transformer's *token grid* ``(N, T, C)`` (batch first, channels last, as
  torchvision's ``VisionTransformer`` and timm's ViTs produce): ``T = k + h*w``
  with ``k`` extra *leading* tokens (a class token, distillation or register
  tokens) followed by the ``h x w`` patch tokens in row-major order.  The
  extra tokens are dropped and the patches become the map ``(N, C, h, w)``.

Everything else is refused with a ``ValueError`` that names the layer and its
output shape: a 2-D ``(N, C)`` output or a ``1 x 1`` map has one activation
per image, and thresholding that at a top quantile against concept masks
makes nonsense look like detectors.

How the token count is split
----------------------------
``k`` is chosen among ``extra_tokens`` (default ``(0, 1)``: none, or a class
token) so that ``T - k`` patches form the grid: a perfect square by default,
or, given the input's ``image_size``, an ``h x w`` grid of patches of one
side ``p`` (``h = H // p`` or ``ceil(H / p)``, the same for ``w``) — so a
non-square input works too.  Exactly one choice must fit; two (possible with
several allowed ``k`` and tiny grids) is refused as ambiguous rather than
guessed.  A model declares other counts with the attribute
``model.unitscope_extra_tokens`` (an int or a tuple of ints; read by
:func:`extra_tokens_of`), e.g. ``2`` for DeiT's class and distillation tokens,
``5`` for a class token and four registers.

Sequence-first outputs ``(T, N, C)`` (``nn.MultiheadAttention`` without
``batch_first``) cannot be told from batch-first ones by their shape alone,
so only batch-first is read: given the batch size, an output whose first dim
differs from it is refused.  Tokens after the patches (rather than before)
are not recognised; nor are channels-last maps ``(N, H, W, C)`` (Swin).

Examples
--------
>>> x = torch.zeros(2, 1 + 14 * 14, 768)          # ViT-B/16: class token + 14x14 patches
>>> spatial_map(x, layer="encoder").shape
torch.Size([2, 768, 14, 14])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

from unitscope.hooks.trace import TraceDict, resolve_layer

__all__ = [
    "DEFAULT_EXTRA_TOKENS",
    "SpatialLayout",
    "check_spatial",
    "extra_tokens_of",
    "keep_units",
    "spatial_layout",
    "spatial_map",
]

#: Extra leading tokens tried by default: none, or one class token.
DEFAULT_EXTRA_TOKENS: tuple[int, ...] = (0, 1)

_ACCEPTED = ("a feature map (N, C, H, W) with H*W > 1, or a batch-first token grid (N, T, C) "
             "of k extra leading tokens and h*w patches")


@dataclass(frozen=True)
class SpatialLayout:
    """How a layer's output is laid out as units and positions.

    Attributes
    ----------
    channels : int
        Units of the layer.
    height, width : int
        The grid of positions.
    extra_tokens : int or None
        None for a feature map ``(N, C, H, W)``; for a token grid ``(N, T, C)``
        the number of leading tokens that are not patches (dropped).
    """

    channels: int
    height: int
    width: int
    extra_tokens: int | None = None

    @property
    def is_token_grid(self) -> bool:
        """True for a ``(N, T, C)`` token output."""
        return self.extra_tokens is not None

    def describe(self) -> str:
        """One phrase for results and messages (``"tokens: 1 extra + 14x14 patches"``)."""
        if not self.is_token_grid:
            return f"map {self.height}x{self.width}"
        return f"tokens: {self.extra_tokens} extra + {self.height}x{self.width} patches"

    def to_dict(self) -> dict:
        """Plain values for JSON."""
        return {"channels": self.channels, "height": self.height, "width": self.width,
                "extra_tokens": self.extra_tokens}


def _allowed(extra_tokens) -> tuple[int, ...]:
    if extra_tokens is None:
        return DEFAULT_EXTRA_TOKENS
    values = (extra_tokens,) if isinstance(extra_tokens, int) else tuple(extra_tokens)
    if not values or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in values):
        raise ValueError(f"extra_tokens must be a non-negative int or a tuple of them, got {extra_tokens!r}")
    return tuple(sorted(set(values)))


def extra_tokens_of(model: nn.Module) -> tuple[int, ...]:
    """The extra leading token counts ``model`` declares (``model.unitscope_extra_tokens``), else (0, 1)."""
    return _allowed(getattr(model, "unitscope_extra_tokens", None))


def _grids(patches: int, image_size: Sequence[int] | None) -> list[tuple[int, int]]:
    """The ``(h, w)`` grids of ``patches`` positions an input of ``image_size`` can give."""
    if patches < 2:
        return []
    if image_size is None or int(image_size[0]) == int(image_size[1]):
        side = math.isqrt(patches)
        return [(side, side)] if side * side == patches else []
    height, width = (int(s) for s in image_size)
    found = []
    for h in range(1, patches + 1):
        if patches % h:
            continue
        w = patches // h
        # a patch side p with h = H // p or ceil(H / p), and w likewise
        for p in range(1, max(height, width) + 1):
            if h in (height // p, -(-height // p)) and w in (width // p, -(-width // p)):
                found.append((h, w))
                break
    return found


def _shape_text(output) -> str:
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if output is None:
        return "nothing (the layer does not run in the forward pass)"
    return f"a {type(output).__name__}, not a tensor"


def spatial_layout(output, *, layer: str, batch: int | None = None,
                   image_size: Sequence[int] | None = None,
                   extra_tokens: int | Sequence[int] | None = None) -> SpatialLayout:
    """Read how ``output`` holds units and positions, or refuse it.

    Parameters
    ----------
    output : object
        What the layer returned (a tensor to be accepted).
    layer : str, keyword-only
        The layer's name, for messages.
    batch : int, keyword-only
        Images in the forward pass: the output's first dim must match (this
        is what refuses a sequence-first ``(T, N, C)`` output).
    image_size : (int, int), keyword-only
        ``(H, W)`` of the input, to split a token count into a non-square grid.
    extra_tokens : int or sequence of int, keyword-only
        Allowed numbers of leading non-patch tokens (default ``(0, 1)``).

    Returns
    -------
    SpatialLayout

    Raises
    ------
    ValueError
        Naming the layer, its output shape and what is accepted.
    """
    allowed = _allowed(extra_tokens)
    shape = _shape_text(output)

    def refuse(why: str) -> ValueError:
        return ValueError(f"layer {layer!r} outputs {shape}: {why}; units need {_ACCEPTED} "
                          f"(k in {list(allowed)})")

    if not isinstance(output, torch.Tensor):
        raise refuse("not a spatial map")
    if batch is not None and output.dim() >= 2 and output.shape[0] != batch:
        raise refuse(f"its first dim is not the batch of {batch} images (sequence-first (T, N, C) "
                     "outputs are not read)")
    if output.dim() == 4:
        c, h, w = (int(s) for s in output.shape[1:])
        if h * w < 2:
            raise refuse("a 1x1 map has one activation per image, not a spatial map")
        return SpatialLayout(c, h, w)
    if output.dim() != 3:
        raise refuse(f"a {output.dim()}-D output is not a spatial map")
    tokens, channels = int(output.shape[1]), int(output.shape[2])
    fits = [(k, grid) for k in allowed if k < tokens for grid in _grids(tokens - k, image_size)]
    if not fits:
        grid_rule = ("a perfect square" if image_size is None or image_size[0] == image_size[1]
                     else f"a patch grid of the {image_size[0]}x{image_size[1]} input")
        raise refuse(f"{tokens} tokens minus k extra leading tokens is not {grid_rule}")
    if len(fits) > 1:
        options = ", ".join(f"{k} extra + {h}x{w}" for k, (h, w) in fits)
        raise refuse(f"{tokens} tokens split several ways ({options}); declare the count with "
                     "model.unitscope_extra_tokens")
    k, (h, w) = fits[0]
    return SpatialLayout(channels, h, w, extra_tokens=k)


def spatial_map(output, *, layer: str, batch: int | None = None,
                image_size: Sequence[int] | None = None,
                extra_tokens: int | Sequence[int] | None = None) -> torch.Tensor:
    """``output`` as maps ``(N, C, H, W)``: feature maps pass through, token grids are reshaped.

    Parameters are those of :func:`spatial_layout`.  A token grid's extra
    leading tokens are dropped; the result is a new contiguous tensor (the
    layer's own output is not modified).

    Raises
    ------
    ValueError
        When the output is not spatial (see :func:`spatial_layout`).
    """
    layout = spatial_layout(output, layer=layer, batch=batch, image_size=image_size,
                            extra_tokens=extra_tokens)
    if not layout.is_token_grid:
        return output
    patches = output[:, layout.extra_tokens:, :]
    return patches.transpose(1, 2).reshape(output.shape[0], layout.channels, layout.height, layout.width)


def keep_units(output: torch.Tensor, keep: torch.Tensor, layout: SpatialLayout) -> torch.Tensor:
    """Zero the units (channels) where ``keep`` is False, at every position of the grid.

    Parameters
    ----------
    output : torch.Tensor
        ``(N, C, H, W)`` or ``(N, T, C)`` as described by ``layout``.
    keep : torch.Tensor of bool, shape (N, C)
        Per image, which units stay.
    layout : SpatialLayout

    Returns
    -------
    torch.Tensor
        A new tensor.  In a token grid the channel is zeroed in every patch
        token; the extra tokens (class, distillation, registers) are left as
        they are: they are not positions of the map that was dissected, and
        the network's later attention layers read them unchanged.
    """
    zero = torch.zeros((), dtype=output.dtype, device=output.device)
    if not layout.is_token_grid:
        return torch.where(keep.view(keep.shape[0], keep.shape[1], *([1] * (output.dim() - 2))), output, zero)
    mask = keep.view(keep.shape[0], 1, keep.shape[1]).expand(-1, output.shape[1], -1).clone()
    mask[:, :layout.extra_tokens, :] = True
    return torch.where(mask, output, zero)


def check_spatial(model: nn.Module, layers: str | Iterable[str], sample: torch.Tensor, *,
                  extra_tokens: int | Sequence[int] | None = None) -> dict[str, SpatialLayout]:
    """Refuse, before any work, layers whose outputs are not spatial maps.

    One forward pass of ``sample`` (stopped after the last layer) answers for
    every layer.

    Parameters
    ----------
    model : nn.Module
    layers : str or iterable of str
        Dotted layer names.
    sample : torch.Tensor, shape (N, 3, H, W)
        Input of the size the analysis will use (one image is enough), on
        the model's device and dtype.
    extra_tokens : int or sequence of int, keyword-only
        Default: what the model declares (:func:`extra_tokens_of`).

    Returns
    -------
    dict of str to SpatialLayout
        In the order given.

    Raises
    ------
    LookupError
        For an unknown layer.
    ValueError
        For a layer that is not spatial (see :func:`spatial_layout`) or a
        forward pass that fails.
    """
    layers = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    for layer in layers:
        resolve_layer(model, layer)
    if not layers:
        return {}
    allowed = extra_tokens_of(model) if extra_tokens is None else extra_tokens
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), TraceDict(model, layers, stop=True, clone=False) as traces:
            model(sample)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"a forward pass of a {tuple(sample.shape)} input failed: {exc}") from exc
    finally:
        model.train(was_training)
    return {layer: spatial_layout(traces[layer].output, layer=layer, batch=int(sample.shape[0]),
                                  image_size=tuple(sample.shape[-2:]), extra_tokens=allowed)
            for layer in layers}
