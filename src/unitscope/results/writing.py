"""Writing result files: JSON that any reader parses, CSV without an index, compressed arrays (and reading those back).

Every file goes through :func:`unitscope._files.atomic_write_bytes`, so a
run interrupted while saving leaves the old file or the new one, never half
a file.  JSON holds plain values only: numpy scalars and arrays become
numbers and lists, NaN and infinities become ``null``, paths become strings.
Arrays are read back with ``allow_pickle=False`` (:func:`read_npz`), so a
planted file can at worst be refused, never run code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope._files import atomic_write_bytes

__all__ = ["write_json", "write_csv", "write_npz", "read_npz"]


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


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV without its index."""
    return atomic_write_bytes(path, frame.to_csv(index=False).encode("utf-8"))


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write arrays to a compressed ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


def read_npz(path: str | Path, *, what: str = "arrays") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (read without pickle).

    Parameters
    ----------
    path : path
    what : str, keyword-only
        What the file holds, for the error message (``"the thumbnails"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist: one line naming it and what is missing.
    ValueError
        If it is not a readable ``.npz`` file (or holds objects, which need pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it holds {what}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name].copy() for name in arrays.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz file of {what} ({exc})") from None
