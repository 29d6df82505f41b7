"""Atomic writes of experiment results: a temporary file in the same folder, then ``os.replace``.

A run interrupted while saving leaves either the old file or the new one,
never half a file.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

__all__ = [
    "atomic_write_bytes",
    "write_json",
    "read_json",
    "write_csv",
    "write_npz",
    "write_png",
    "read_png",
    "colorize",
    "safe_name",
]


def safe_name(text: str) -> str:
    """A file-name-safe version of an image id or layer name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "_"


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy values converted, NaN written as null)."""
    text = json.dumps(_plain(obj), indent=2, sort_keys=False)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV without its index."""
    return atomic_write_bytes(path, frame.to_csv(index=False).encode("utf-8"))


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write arrays to a compressed ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def read_png(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def colorize(values: np.ndarray, *, cmap: str = "viridis") -> np.ndarray:
    """Map a 2-D float array to an ``(H, W, 3)`` uint8 image, scaled to its own range."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    lo = values[finite].min() if finite.any() else 0.0
    hi = values[finite].max() if finite.any() else 1.0
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    scaled = np.where(finite, scaled, 0.0)
    rgba = colormaps[cmap](scaled)
    return np.round(rgba[..., :3] * 255).astype(np.uint8)
