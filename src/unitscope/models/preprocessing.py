"""How images are prepared for a network: size, geometry, channel order, scale, mean and std.

A network's weights were trained on inputs prepared one particular way, and
a network fed other inputs gives numbers that look fine and are wrong (a
SqueezeNet expecting mean/std 0.5 loses 15 points of top-1 on the ImageNet
defaults).  :class:`Preprocessing` states that way in full; the presets are
the conventions researchers know:

========== ===== ======= ============================== ===================== =====
preset     order scale   mean                           std                   size
========== ===== ======= ============================== ===================== =====
imagenet   RGB   [0, 1]  0.485, 0.456, 0.406            0.229, 0.224, 0.225   224
inception  RGB   [0, 1]  0.5, 0.5, 0.5                  0.5, 0.5, 0.5         299
caffe      BGR   [0,255] 103.939, 116.779, 123.68 (BGR) 1, 1, 1               224
========== ===== ======= ============================== ===================== =====

A pixel ``p`` (RGB in ``[0, 1]``) becomes ``(reorder(p) * scale - mean) / std``:
``mean`` and ``std`` are in the units and channel order of the network's
input.  A preset's input size is used only for a model that has none of its
own (a registry model keeps its architecture's size unless ``input_size`` is
given).

Where each value came from is recorded in :attr:`Preprocessing.sources`
(``"option"``, ``"preset inception"``, ``"checkpoint"``, ``"registry"``,
``"default"``); :func:`resolve_preprocessing` applies the precedence
*explicit options > checkpoint > registry default*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = [
    "Preprocessing",
    "PRESETS",
    "RESIZE_MODES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "preset",
    "resolve_preprocessing",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Geometries: ``None`` lets the pool choose (centre crop for plain pools, a
#: stretch of the whole image for annotated pools).
RESIZE_MODES = ("stretch", "shorter-side+center-crop", "pad")
CHANNEL_ORDERS = ("rgb", "bgr")
SCALES = (1.0, 255.0)
FIELDS = ("input_size", "mean", "std", "resize", "channel_order", "scale")

#: The named presets (see the module docstring).
PRESETS: dict[str, dict[str, Any]] = {
    "imagenet": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "rgb", "scale": 1.0,
                 "input_size": 224},
    "inception": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "channel_order": "rgb", "scale": 1.0,
                  "input_size": 299},
    "caffe": {"mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0), "channel_order": "bgr",
              "scale": 255.0, "input_size": 224},
}


def _three(value: Any, name: str) -> tuple[float, float, float]:
    """One float for every channel, or exactly three."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,) * 3
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 3 numbers (one per channel) or one for all, got {value!r}") from None
    if len(values) != 3:
        raise ValueError(f"{name} must be 3 numbers (one per channel) or one for all, got {len(values)}: "
                         f"{list(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers, got {list(values)}")
    return values


def _input_size(value: Any) -> int | tuple[int, int] | str:
    if value == "native":
        return "native"
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = value[0]
        elif len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            return (int(value[0]), int(value[1])) if value[0] != value[1] else int(value[0])
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ValueError(f"input_size must be a positive int N, a pair (H, W) or 'native', got {value!r}")


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a network.

    Attributes
    ----------
    input_size : int, (int, int) or "native"
        Side of the square input, ``(H, W)``, or ``"native"`` (no resize:
        each image at its own size, so batches of one image).
    mean, std : tuple of float
        Per-channel normalisation, in the units (``scale``) and channel
        order (``channel_order``) of the network's input.
    resize : {None, "stretch", "shorter-side+center-crop", "pad"}
        Geometry.  None: the pool's default (centre crop for plain pools,
        stretch for annotated pools).  Annotated pools apply the same crop
        or padding to their masks.
    channel_order : {"rgb", "bgr"}
    scale : {1.0, 255.0}
        Pixels in ``[0, 1]`` or ``[0, 255]`` before the normalisation.
    sources : mapping of str to str
        Where each field's value came from (not part of equality).
    """

    input_size: int | tuple[int, int] | str = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str | None = None
    channel_order: str = "rgb"
    scale: float = 1.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", _input_size(self.input_size))
        object.__setattr__(self, "mean", _three(self.mean, "mean"))
        std = _three(self.std, "std")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive (it divides), got {list(std)}")
        object.__setattr__(self, "std", std)
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be rgb or bgr, got {self.channel_order!r}")
        if isinstance(self.scale, bool) or float(self.scale) not in SCALES:
            raise ValueError(f"scale must be 1 (pixels in [0, 1]) or 255 (pixels in [0, 255]), got {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "sources", dict(self.sources))

    @property
    def size_hw(self) -> tuple[int, int] | None:
        """``(H, W)`` of the input, None for ``"native"``."""
        if self.input_size == "native":
            return None
        if isinstance(self.input_size, tuple):
            return self.input_size
        return (self.input_size, self.input_size)

    @property
    def nominal_side(self) -> int:
        """One side length for what needs one (default mask size, dummy inputs): the longest, 224 if native."""
        hw = self.size_hw
        return max(hw) if hw else 224

    @property
    def preset(self) -> str | None:
        """The name of the preset these values equal (size and geometry aside), else None."""
        for name, values in PRESETS.items():
            if all(getattr(self, k) == (tuple(v) if isinstance(v, tuple) else v)
                   for k, v in values.items() if k != "input_size"):
                return name
        return None

    def to_dict(self) -> dict:
        """Plain values for JSON files, result metadata and cache keys."""
        size = list(self.input_size) if isinstance(self.input_size, tuple) else self.input_size
        return {"input_size": size, "mean": list(self.mean), "std": list(self.std),
                "resize": self.resize, "channel_order": self.channel_order, "scale": self.scale,
                "preset": self.preset, "sources": dict(self.sources)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str | None = None) -> "Preprocessing":
        """Read :meth:`to_dict` output (also the three-key dicts of older checkpoints).

        ``source`` names where every value given came from (``"checkpoint"``).
        """
        known = {k: values[k] for k in FIELDS if values.get(k) is not None}
        if "input_size" in known and isinstance(known["input_size"], list):
            known["input_size"] = tuple(known["input_size"])
        sources = dict(values.get("sources") or {})
        if source is not None:
            sources.update({k: source for k in known})
        return cls(**known, sources=sources)


def preset(name: str) -> Preprocessing:
    """The preset called ``name`` as a :class:`Preprocessing`.

    Raises
    ------
    LookupError
        For an unknown name (the message lists the presets).
    """
    if name not in PRESETS:
        raise LookupError(f"unknown preprocessing preset {name!r}; presets are {', '.join(PRESETS)}")
    return Preprocessing(**PRESETS[name], sources={k: f"preset {name}" for k in PRESETS[name]})


def resolve_preprocessing(
    base: Preprocessing,
    *,
    preset_name: str | None = None,
    input_size: int | Sequence[int] | str | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    resize: str | None = None,
    channel_order: str | None = None,
    scale: float | None = None,
) -> Preprocessing:
    """The preprocessing a run uses: ``base`` (the model's), then a preset, then single options.

    Parameters
    ----------
    base : Preprocessing
        The model's own (from its checkpoint, else its registry entry), with
        its ``sources``.
    preset_name : str, keyword-only
        A name in :data:`PRESETS`: replaces mean, std, channel order and
        scale; its input size replaces ``base``'s only when the model has
        no size of its own (``sources["input_size"] == "default"``).
    input_size, mean, std, resize, channel_order, scale : keyword-only
        Each given value overrides the preset and ``base``.

    Returns
    -------
    Preprocessing
        With ``sources`` saying where each value came from.

    Raises
    ------
    LookupError
        For an unknown preset.
    ValueError
        For an invalid value.

    Examples
    --------
    >>> pre = resolve_preprocessing(Preprocessing(), preset_name="inception", std=0.25)
    >>> pre.mean, pre.std, pre.sources["mean"], pre.sources["std"]
    ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 'preset inception', 'option')
    """
    values = {k: getattr(base, k) for k in FIELDS}
    sources = {k: base.sources.get(k, "default") for k in FIELDS}
    if preset_name is not None:
        chosen = preset(preset_name)
        for key in PRESETS[preset_name]:
            if key == "input_size" and sources["input_size"] != "default":
                continue
            values[key] = getattr(chosen, key)
            sources[key] = f"preset {preset_name}"
    given = {"input_size": input_size, "mean": mean, "std": std, "resize": resize,
             "channel_order": channel_order, "scale": scale}
    for key, value in given.items():
        if value is not None:
            values[key] = value
            sources[key] = "option"
    return Preprocessing(**values, sources=sources)

