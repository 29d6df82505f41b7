"""Per-layer metadata read off the real modules: channels, spatial size, stride, receptive field.

Downstream code reads these numbers instead of guessing them (timm's
``feature_info`` in spirit): the channels and spatial size come from one
dummy forward pass with every requested layer traced, the stride and
receptive field from :mod:`unitscope.models.receptive_field`.

Examples
--------
>>> import torchvision
>>> net = torchvision.models.alexnet(weights=None)
>>> info = layer_info(net, "features.12")
>>> info.channels, info.spatial, info.stride, info.rf_size
(256, (6, 6), 32, 195)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import pandas as pd
import torch
from torch import nn

from unitscope.hooks import TraceDict, extra_tokens_of, layer_names, resolve_layer, spatial_layout
from unitscope.models._rf_propagation import input_channels
from unitscope.models.info import model_info
from unitscope.models.receptive_field import ReceptiveField, theoretical_receptive_fields

__all__ = ["LayerInfo", "describe_layers", "layer_info", "layers_frame"]


@dataclass(frozen=True)
class LayerInfo:
    """What a layer produces, for an input of the model's size.

    Made by :func:`layer_info` (one layer) and :func:`describe_layers`
    (several); :func:`layers_frame` puts them in a table.

    Attributes
    ----------
    name : str
        Dotted module name.
    kind : str
        Module class name (``"Conv2d"``, ``"ReLU"``, ``"Sequential"``...).
    channels : int or None
        Units of the layer: dim 1 of the output, the last dim of a token
        grid ``(N, T, C)``; None if the layer does not run in the forward
        pass or does not return a tensor.
    spatial : (int, int) or None
        ``(H, W)`` of the map the analyses read (:func:`unitscope.hooks.spatial_layout`):
        a 4-D output's, or a token grid's patches; None for other outputs.
    stride : int or None
        Total down-sampling factor from the input to this layer (timm's
        ``reduction``): the RF stride when the RF is finite, else
        ``round(input_size / H)`` for spatial outputs, else None.
    rf_size, rf_stride : int or None
        Theoretical receptive field side and stride in input pixels
        (:class:`~unitscope.models.receptive_field.ReceptiveField`); None
        when the RF is not known, or a unit of a layer without positions
        sees the whole input.  A spatial layer whose units see the whole
        input (after self-attention, say) has ``rf_size`` = the input side
        and ``rf_note`` saying so: not a window, the whole image.
    rf_offset : float or None
        Centre of the first unit's RF (pixel ``i`` centred at ``i``).
    tokens : int or None
        For a token grid, its extra leading tokens (class token...); None
        for other outputs.
    rf_note : str or None
        ``"global: attention"`` (or ``"global"``) for a spatial layer whose
        RF is the whole input.
    """

    name: str
    kind: str
    channels: int | None
    spatial: tuple[int, int] | None
    stride: int | None
    rf_size: int | None
    rf_stride: int | None
    rf_offset: float | None
    tokens: int | None = None
    rf_note: str | None = None

    def to_dict(self) -> dict:
        """Plain values; ``spatial`` split into ``height`` and ``width``."""
        row = asdict(self)
        spatial = row.pop("spatial")
        row["height"], row["width"] = spatial if spatial is not None else (None, None)
        return row


def describe_layers(
    model: nn.Module,
    *,
    layers: Iterable[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
) -> list[LayerInfo]:
    """Metadata of the layers of ``model``, in the order asked.

    Parameters
    ----------
    model : nn.Module
        Not modified (its train/eval mode is restored).
    layers : iterable of str, keyword-only
        Dotted layer names.  Default: every module (``layer_names(model)``).
    input_size : int or (int, int), keyword-only
        Side of the square dummy input, or its ``(H, W)``.  Default: the
        model's preprocessing input size (224 for models not made by the
        registry, and for ``"native"``).

    Returns
    -------
    list of LayerInfo

    Raises
    ------
    LookupError
        For an unknown layer name (the message lists close matches).
    ValueError
        If the dummy forward pass fails at this input size.

    Notes
    -----
    Receptive fields need :func:`torch.fx.symbolic_trace`; for a model it
    cannot trace, ``rf_*`` are None and ``stride`` falls back to the ratio
    of input to output size.
    """
    names = layer_names(model) if layers is None else list(layers)
    for name in names:
        resolve_layer(model, name)
    if input_size is None:
        input_size = model_info(model).preprocessing.size_hw or 224
    height, width = (int(input_size),) * 2 if isinstance(input_size, int) else (int(v) for v in input_size)
    size = (height, width) if height != width else height
    modules = dict(model.named_modules())
    try:
        rfs = theoretical_receptive_fields(model, input_size=size)
    except ValueError:
        rfs = {}
    outputs: dict[str, object] = {}
    if names:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        dummy = torch.zeros(1, input_channels(model), height, width, device=device, dtype=dtype)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), TraceDict(model, names, stop=True) as traces:
                model(dummy)
        except Exception as exc:
            raise ValueError(
                f"a forward pass of {type(model).__name__} on a {height}x{width} input failed "
                f"(pass input_size= the network accepts): {exc}"
            ) from exc
        finally:
            model.train(was_training)
        outputs = {name: traces[name].output for name in names}
    out = []
    for name in names:
        value = outputs.get(name)
        channels = spatial = tokens = None
        if isinstance(value, torch.Tensor) and value.dim() >= 2:
            channels = int(value.shape[1])
            if value.dim() == 4:
                spatial = (int(value.shape[2]), int(value.shape[3]))
            elif value.dim() == 3:
                try:
                    layout = spatial_layout(value, layer=name, image_size=(height, width),
                                            extra_tokens=extra_tokens_of(model))
                except ValueError:  # a sequence, but not a patch grid
                    layout = None
                if layout is not None:
                    channels, spatial, tokens = layout.channels, (layout.height, layout.width), layout.extra_tokens
        rf: ReceptiveField | None = rfs.get(name)
        if rf is not None and not rf.is_global:
            stride = rf.stride
        elif spatial is not None:
            stride = max(1, round(height / spatial[0]))
        else:
            stride = None
        finite = rf is not None and not rf.is_global
        # a map whose units all see the whole image: its RF is the image, said so in words
        whole = rf is not None and rf.is_global and spatial is not None
        out.append(LayerInfo(
            name=name,
            kind=type(modules[name]).__name__,
            channels=channels,
            spatial=spatial,
            stride=stride,
            rf_size=rf.size if finite else (max(height, width) if whole else None),  # (the input's longer side)
            rf_stride=rf.stride if finite else None,
            rf_offset=rf.offset if finite else None,
            tokens=tokens,
            rf_note=(rf.note or "global") if whole else None,
        ))
    return out


def layer_info(model: nn.Module, layer: str, *, input_size: int | None = None) -> LayerInfo:
    """Metadata of one layer; see :func:`describe_layers`.

    Raises
    ------
    LookupError
        If ``model`` has no such layer (the message lists close matches).
    """
    return describe_layers(model, layers=[layer], input_size=input_size)[0]


def layers_frame(
    model: nn.Module,
    *,
    layers: Iterable[str] | None = None,
    input_size: int | None = None,
) -> pd.DataFrame:
    """:func:`describe_layers` as a table, one row per layer.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer, kind, channels, height, width, stride, rf_size,
        rf_stride, rf_offset, tokens, rf_note`` (nullable integer columns, so a missing
        value reads as ``<NA>`` rather than turning the column to floats).
    """
    rows = []
    for info in describe_layers(model, layers=layers, input_size=input_size):
        row = info.to_dict()
        row["layer"] = row.pop("name")
        rows.append(row)
    columns = [
        "layer", "kind", "channels", "height", "width", "stride", "rf_size", "rf_stride", "rf_offset",
        "tokens", "rf_note",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("channels", "height", "width", "stride", "rf_size", "rf_stride", "tokens"):
        frame[column] = frame[column].astype("Int64")
    frame["rf_offset"] = frame["rf_offset"].astype("Float64")
    frame["rf_note"] = frame["rf_note"].astype("string")
    return frame
