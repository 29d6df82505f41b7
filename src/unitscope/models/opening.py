"""Opening a network as a user names it: the model, its weights and its preprocessing.

The parsers turn the text of ``--mean``, ``--input-size``... into values
with a clear error naming the option (the same text a notebook user may
pass); :func:`open_network` loads the model and fixes the preprocessing
the run uses (explicit options > the checkpoint's > the registry's);
:func:`parse_net` reads one ``NAME=MODEL[:WEIGHTS]`` specification.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

__all__ = ["preprocessing_options", "open_network", "parse_net", "parse_floats", "parse_input_size"]


def parse_floats(text: str | None, option: str, *, positive: bool = False) -> tuple[float, ...] | None:
    """``"0.5"`` or ``"0.485,0.456,0.406"`` -> three floats; ValueError naming ``option`` otherwise."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{option} takes 3 comma-separated numbers or one number, got {text!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ValueError(f"{option} takes 3 comma-separated numbers (one per channel) or one number, "
                         f"got {len(values)}: {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{option} takes finite numbers, got {text!r}")
    if positive and any(v <= 0 for v in values):
        raise ValueError(f"{option} values must be > 0 (they divide), got {text!r}")
    return values


def parse_input_size(text: str | None) -> int | tuple[int, int] | str | None:
    """``"224"``, ``"240,320"`` (H,W) or ``"native"``; ValueError naming ``--input-size`` otherwise."""
    if text is None:
        return None
    text = str(text).strip()
    if text.lower() == "native":
        return "native"
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v < 1 or v > 16384 for v in values):
        raise ValueError(f"--input-size takes N, H,W (whole numbers from 1 to 16384) or native, got {text!r}")
    return values[0] if len(values) == 1 else (values[0], values[1])


def preprocessing_options(*, preprocess: str | None = None, mean: str | None = None, std: str | None = None,
                          input_size: str | None = None, resize: str | None = None,
                          channel_order: str | None = None, scale: str | None = None) -> dict:
    """Check the option texts and return keyword arguments for ``resolve_preprocessing``."""
    from unitscope.models.preprocessing import PRESETS, RESIZE_MODES

    if preprocess is not None and preprocess not in PRESETS:
        raise ValueError(f"--preprocess must be one of {', '.join(PRESETS)}, got {preprocess!r}")
    if resize is not None and resize not in RESIZE_MODES:
        raise ValueError(f"--resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if channel_order is not None and channel_order.lower() not in ("rgb", "bgr"):
        raise ValueError(f"--channel-order must be rgb or bgr, got {channel_order!r}")
    scale_value = None
    if scale is not None:
        try:
            scale_value = float(scale)
        except ValueError:
            scale_value = None
        if scale_value not in (1.0, 255.0):
            raise ValueError(f"--scale must be 1 (pixels in [0, 1]) or 255 (pixels in [0, 255]), got {scale!r}")
    return {"preset_name": preprocess, "mean": parse_floats(mean, "--mean"),
            "std": parse_floats(std, "--std", positive=True), "input_size": parse_input_size(input_size),
            "resize": resize, "channel_order": channel_order.lower() if channel_order else None,
            "scale": scale_value}


def open_network(model: str, weights: Optional[Path], preprocessing: dict, *, num_classes: int | None = None,
                 batch_size: int | None = None, native: bool = True, command: str = "this command",
                 seed: int | None = None):
    """Load ``--model``/``--weights`` and fix the preprocessing the run uses (on ``model_info(net)``).

    Parameters
    ----------
    model, weights : the options' values
    preprocessing : dict
        :func:`preprocessing_options`' result.
    num_classes : int, optional
        For registry models.
    batch_size : int, optional
        ``--input-size native`` needs batches of one image.
    native : bool
        Whether the command works at each image's own size at all.
    command : str
        Its name, for messages.
    seed : int, optional
        ``--seed``: random weights (a network without ``--weights``) are the same every run.
    """
    from unitscope.models.loading import load_model

    if preprocessing.get("input_size") == "native":
        if not native:
            raise ValueError(f"--input-size native is not supported by {command}, which needs one input size "
                             "for every image; give N or H,W")
        if batch_size is not None and batch_size != 1:
            raise ValueError(f"--input-size native needs --batch-size 1 (images of different sizes cannot share "
                             f"a batch), got --batch-size {batch_size}")
    return load_model(model, weights=weights, num_classes=num_classes, preprocessing=preprocessing, seed=seed)


def parse_net(name: str, rest: str, preprocessing: dict | None = None, *, batch_size: int | None = None,
              seed: int = 0):
    """``NAME=MODEL[:WEIGHTS]`` (already split at ``=``) -> (name, model).

    MODEL may be ``file.py:factory`` or ``pkg.mod:factory``; random weights
    (no WEIGHTS) are seeded by ``seed``.
    """
    parts = rest.split(":")
    # registry names have no dot: a dotted first part is a file.py or package.module with its factory
    if "." in parts[0] and not parts[0].endswith(".pt2") and len(parts) > 1:
        arch, weights = ":".join(parts[:2]), ":".join(parts[2:])
    else:
        arch, weights = parts[0], ":".join(parts[1:])
    return name, open_network(arch or None, Path(weights) if weights else None, preprocessing or {},
                              batch_size=batch_size, command="preference", seed=seed)
