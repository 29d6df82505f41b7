"""Plumbing shared by the experiments: batches, eval mode, device, normalisation.

Nothing here knows about a particular experiment.  Data sets are any
``torch.utils.data.Dataset`` whose item is ``(image (3, H, W), meta dict)``
(the pool contract of ``docs/ARCHITECTURE.md``); items that are not such a
pair (a pool's ``SkippedItem`` for an unreadable file) are dropped and
counted.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import TraceDict, extra_tokens_of, layer_names, resolve_layer, spatial_layout

__all__ = [
    "Progress",
    "eval_mode",
    "model_device",
    "model_dtype",
    "iter_batches",
    "check_dataset",
    "check_positive_int",
    "normalisation",
    "check_labels",
    "check_layers",
    "check_spatial_layers",
    "spatial_size",
    "weights_record",
    "preprocessing_record",
    "preprocessing_key",
    "input_channel_order",
]

#: ``progress(done, total)``: called as work completes (the CLI passes a tqdm bar).
Progress = Callable[[int, int], None]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every sub-module of ``model`` in eval mode; restore each one's flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when none)."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def weights_record(model: nn.Module, fingerprint: str | None = None) -> dict:
    """What a result records of the weights it saw: ``weights`` (fingerprint) and ``weights_seed``.

    ``weights_seed`` is the seed of a random initialisation (None for weights
    read from a file), so a random-weights result says how to make it again.
    """
    from unitscope.experiments.resume import weights_fingerprint
    from unitscope.models.info import model_info

    return {"weights": fingerprint or weights_fingerprint(model), "weights_seed": model_info(model).seed}


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_dataset(data: Dataset, name: str = "data") -> int:
    """Return ``len(data)``; raise ValueError for an empty or unsized data set."""
    try:
        n = len(data)
    except TypeError:
        raise ValueError(f"{name} must be a sized Dataset (with __len__), got {type(data).__name__}") from None
    if n == 0:
        raise ValueError(f"{name} is empty: no images to analyse")
    return n


def check_labels(data: Dataset, n_classes: int | None) -> None:
    """Refuse a pool whose class labels (``data.labels``, -1 = none) do not fit ``n_classes`` outputs.

    Checked before any forward pass: an out-of-range label would otherwise
    fail deep inside the run, or worse, score another class.  Pools without
    a ``labels`` list, and models of unknown size, are not checked here.
    """
    labels = getattr(data, "labels", None)
    if not n_classes or labels is None:
        return
    top = max((int(label) for label in labels), default=-1)
    if top >= n_classes:
        raise ValueError(f"the pool has class index {top}, out of range for a model with {n_classes} "
                         f"classes (0 to {n_classes - 1}); check how the pool's labels are read "
                         "(--label-pattern, --label-category)")


def check_layers(model: nn.Module, layers: Iterable[str]) -> list[str]:
    """Return the layer names as a list (duplicates dropped); LookupError for unknown names."""
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("no layers given")
    for layer in layers:
        resolve_layer(model, layer)
    return layers


def spatial_size(output, *, extra_tokens=None) -> tuple[int, int] | None:
    """``(H, W)`` of a layer output read as a spatial map (feature map or token grid), else None.

    What counts as a map of positions is decided in one place,
    :func:`unitscope.hooks.spatial_layout`; this is its yes/no form.
    """
    try:
        layout = spatial_layout(output, layer="?", extra_tokens=extra_tokens)
    except ValueError:
        return None
    return layout.height, layout.width


def _probe_image(model: nn.Module, data: Dataset | None, input_size: int | None) -> torch.Tensor:
    """One input ``(1, 3, H, W)``: the first readable image of ``data``, else zeros of the model's size."""
    if data is not None:
        for position in range(min(len(data), 8)):  # a few unreadable files of a skip_bad pool are dropped
            item = data[position]
            if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], torch.Tensor):
                return item[0].unsqueeze(0)
    if input_size is None:
        from unitscope.models.info import model_info

        input_size = model_info(model).preprocessing.input_size
    return torch.zeros(1, 3, int(input_size), int(input_size))


def _output_shapes(model: nn.Module, layers: Sequence[str], image: torch.Tensor) -> dict[str, object]:
    device, dtype = model_device(model), model_dtype(model)
    try:
        with eval_mode(model), torch.inference_mode(), TraceDict(model, layers, stop=True) as traces:
            model(image.to(device=device, dtype=dtype))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"a forward pass of one {tuple(image.shape[1:])} image failed: {exc}") from exc
    return {name: traces[name].output for name in layers}


def check_spatial_layers(model: nn.Module, layers: Iterable[str], data: Dataset | None = None, *,
                         input_size: int | None = None,
                         purpose: str = "this analysis") -> dict[str, tuple[int, int, int]]:
    """Refuse layers whose output is not a spatial map with more than one position.

    A unit of a layer without spatial extent (a fully connected layer, a
    global pool, a ``1x1`` map) has one activation per image: thresholding
    it at a top quantile and comparing with concept masks makes nonsense
    look like detectors (a random network's classifier gave 835 of 1000).
    One forward pass of one image answers for every layer.

    Parameters
    ----------
    model : nn.Module
    layers : iterable of str
        Dotted layer names (already resolved).
    data : Dataset, optional
        The pool the analysis will read: its first readable image is the
        probe, so the sizes are those of the real run.
    input_size : int, keyword-only
        Side of a zero probe when ``data`` is None (default: the model's
        preprocessing size).
    purpose : str, keyword-only
        What needs the maps, for the message (``"dissection"``).

    Returns
    -------
    dict of str to (int, int, int)
        Each layer's ``(C, H, W)``, in the order given.

    Raises
    ------
    ValueError
        Naming the layer, its output shape, and spatial layers of the model
        to choose instead.
    """
    layers = list(dict.fromkeys(layers))
    if not layers:
        return {}
    image = _probe_image(model, data, input_size)
    outputs = _output_shapes(model, layers, image)
    allowed = extra_tokens_of(model)
    shapes = {}
    for layer in layers:
        try:
            layout = spatial_layout(outputs[layer], layer=layer, batch=1, image_size=tuple(image.shape[-2:]),
                                    extra_tokens=allowed)
        except ValueError as exc:
            raise ValueError(f"{exc}; {purpose} needs one: spatial layers of this network: "
                             f"{_spatial_examples(model, image)}") from None
        shapes[layer] = (layout.channels, layout.height, layout.width)
    return shapes


def _spatial_examples(model: nn.Module, image: torch.Tensor, n: int = 5) -> str:
    """A few layers with spatial maps, deepest first (the model's default layers before others)."""
    from unitscope.models.info import model_info

    names = layer_names(model)
    outputs = _output_shapes(model, names, image)
    spatial = [name for name in names if spatial_size(outputs[name], extra_tokens=extra_tokens_of(model)) is not None]
    preferred = [name for name in reversed(model_info(model).default_layers) if name in spatial]
    chosen = list(dict.fromkeys(preferred + spatial[::-1]))[:n]
    return ", ".join(chosen) if chosen else "none"


class _Indexed(Dataset):
    """Pairs each item with its position, so dropped items do not shift the rest."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, position: int):
        return position, self.data[position]


def _collate(batch):
    positions, images, metas, dropped = [], [], [], 0
    for position, item in batch:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], torch.Tensor)):
            dropped += 1
            continue
        image, meta = item
        positions.append(position)
        images.append(image)
        metas.append(dict(meta) if isinstance(meta, dict) else {"label": meta})
    if images:
        shapes = {tuple(im.shape) for im in images}
        if len(shapes) > 1:
            raise ValueError(
                f"cannot batch images of different shapes {sorted(shapes)}; give the pool a "
                "transform that resizes them to one size"
            )
        stacked = torch.stack(images)
    else:
        stacked = torch.empty(0)
    return positions, stacked, metas, dropped


def iter_batches(
    data: Dataset,
    batch_size: int,
    *,
    indices: Sequence[int] | None = None,
    num_workers: int = 0,
) -> Iterator[tuple[list[int], torch.Tensor, list[dict], int]]:
    """Yield ``(positions, images (B, 3, H, W), metas, dropped)`` batches of ``data``.

    ``positions`` are the items' indices in ``data`` (what ``raw_image`` and
    ``annotation`` take); ``dropped`` counts items of the batch that were not
    ``(image, meta)`` pairs (unreadable files of a ``skip_bad`` pool).
    """
    from unitscope.data.workers import worker_batches

    sampler = list(range(len(data))) if indices is None else [int(i) for i in indices]
    # A worker's error (an unreadable file) is raised here as itself, not as torch's wrapped traceback.
    yield from worker_batches(_Indexed(data), batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                              collate_fn=_collate)


def normalisation(
    model: nn.Module,
    data: Dataset | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``(mean, std)`` that turned pixels in ``[0, 1]`` into the network's input.

    Taken from the arguments when given, else from the data set's transform
    (a pool's transform carries ``mean``/``std``), else from the model's
    preprocessing metadata (``model_info(model).preprocessing``); values for
    pixels in ``[0, 255]`` (``scale`` 255) are divided by 255.  They are in
    the input's channel order (BGR for a ``caffe`` network).

    Returns
    -------
    mean, std : Tensor
        Shape ``(3, 1, 1)``, float32, on the CPU.
    """
    # A transform or preprocessing that scales pixels to [0, 255] has its mean and std in those
    # units: divided by the scale they undo the normalisation back to [0, 1].
    if mean is None or std is None:
        transform = getattr(data, "transform", None)
        t_mean, t_std = getattr(transform, "mean", None), getattr(transform, "std", None)
        if t_mean is not None and t_std is not None:
            scale = float(getattr(transform, "scale", 1.0))
            mean = [m / scale for m in t_mean] if mean is None else mean
            std = [s / scale for s in t_std] if std is None else std
    if mean is None or std is None:
        from unitscope.models.info import model_info

        pre = model_info(model).preprocessing
        mean = [m / pre.scale for m in pre.mean] if mean is None else mean
        std = [s / pre.scale for s in pre.std] if std is None else std
    mean_t = torch.as_tensor([float(m) for m in mean], dtype=torch.float32)
    std_t = torch.as_tensor([float(s) for s in std], dtype=torch.float32)
    if mean_t.numel() != 3 or std_t.numel() != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {list(mean)} and {list(std)}")
    if bool((std_t <= 0).any()):
        raise ValueError(f"std values must be positive, got {list(std)}")
    return mean_t.view(3, 1, 1), std_t.view(3, 1, 1)


def input_channel_order(model: nn.Module, data: Dataset | None = None) -> str:
    """``"rgb"`` or ``"bgr"``: the channel order of the network's inputs (the data's transform's, else the model's)."""
    order = getattr(getattr(data, "transform", None), "channel_order", None)
    if order is None:
        from unitscope.models.info import model_info

        order = model_info(model).preprocessing.channel_order
    return order


def to_uint8(image: torch.Tensor | np.ndarray, mean: torch.Tensor | None = None,
             std: torch.Tensor | None = None, *, channel_order: str = "rgb") -> np.ndarray:
    """A displayable ``(H, W, 3)`` uint8 array from a ``(3, H, W)`` tensor or an ``(H, W, 3)`` array.

    A tensor is de-normalised with ``mean``/``std`` when given (else taken as
    pixels in ``[0, 1]``) and put back in RGB order when its channels are
    ``channel_order="bgr"``; an array of uint8 is returned as is, a float
    array is taken as ``[0, 1]``.
    """
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if mean is not None and std is not None:
            x = x * std + mean
        if channel_order == "bgr":
            x = x.flip(0)
        array = x.clamp(0, 1).permute(1, 2, 0).numpy()
        return np.round(array * 255).astype(np.uint8)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.dtype == np.uint8:
        return array
    return np.round(np.clip(array.astype(np.float64), 0, 1) * 255).astype(np.uint8)


def class_names(model: nn.Module, data: Dataset, given: Sequence[str] | None = None) -> list[str] | None:
    """Class names for reading labels: ``given``, else the model's, else the data set's (None if none)."""
    if given is not None:
        return [str(c) for c in given]
    from unitscope.models.info import model_info

    names = model_info(model).class_names
    if names:
        return list(names)
    names = getattr(data, "class_names", None)
    return list(names) if names else None


def preprocessing_record(model: nn.Module, data: Dataset | None = None) -> dict:
    """The preprocessing a run used, for its result and its resume key.

    The data set's transform says what was done to the images (size,
    geometry, channel order, scale, mean, std); the model's preprocessing
    says where each value came from (``sources``) and which preset it
    matches.  A transform that cannot describe itself is named by its type.
    """
    from unitscope.models.info import model_info

    pre = model_info(model).preprocessing
    transform = getattr(data, "transform", None)
    describe = getattr(transform, "describe", None)
    if callable(describe):
        record = dict(describe())
    elif transform is not None:
        record = {"transform": f"{type(transform).__module__}.{type(transform).__qualname__}"}
    else:
        record = {k: v for k, v in pre.to_dict().items() if k not in ("preset", "sources")}
    record["preset"] = pre.preset if _matches(record, pre) else None
    record["sources"] = dict(pre.sources) if _matches(record, pre) else {"all": "the pool's own transform"}
    return record


def preprocessing_key(record: dict) -> dict:
    """The values of a :func:`preprocessing_record` without where they came from (for resume keys)."""
    return {k: v for k, v in record.items() if k not in ("sources", "preset")}


def _matches(record: dict, pre) -> bool:
    """Whether a transform's description has the model preprocessing's values."""
    return (record.get("mean") == list(pre.mean) and record.get("std") == list(pre.std)
            and record.get("channel_order") == pre.channel_order and record.get("scale") == pre.scale)
