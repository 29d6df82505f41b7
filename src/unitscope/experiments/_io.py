"""Run state that loads without running code (result files are written by :mod:`unitscope.results.writing`).

:func:`write_state` / :func:`read_state` keep the state of a long run
(nested dicts and lists of numpy arrays, tensors and python scalars, as
the statistics' ``state_dict()`` gives them) in one ``.npz`` file: the
structure as JSON with a placeholder for each array, and the arrays
beside it.  It is read with ``allow_pickle=False``, so a planted or
tampered file can at worst be refused, never run code, unlike ``pickle``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from unitscope._files import atomic_write, atomic_write_bytes
# Result files are written by unitscope.results (torch-free); named here for the writers that import them from _io.
from unitscope.results.layout import safe_name
from unitscope.results.writing import write_csv, write_json, write_npz

__all__ = ["write_state", "read_state", "read_json"]


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a file that is not JSON is a ``ValueError`` naming it."""
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None


# ---------------------------------------------------------------------------
# Run state: JSON structure + arrays in one .npz, read without unpickling
# ---------------------------------------------------------------------------
_STATE_FORMAT = "unitscope-state"
_STATE_VERSION = 1
_STRUCTURE = "__structure__"
#: Markers of the values JSON has no form for; a dict whose keys are not all plain
#: strings (or start with "__", like these) is stored as a list of pairs.
_ARRAY, _SCALAR, _TENSOR, _BYTES, _TUPLE, _FLOAT, _ITEMS = (
    "__array__", "__scalar__", "__tensor__", "__bytes__", "__tuple__", "__float__", "__items__")


def write_state(path: str | Path, state: Any) -> Path:
    """Save a nested state (see the module docstring) to one ``.npz`` file, atomically.

    Parameters
    ----------
    path : path
        The file (``.npz``); parent folders are created.
    state : object
        None, bool, int, float (NaN and infinities too), str, bytes, numpy
        arrays and scalars (any dtype but ``object``), tensors (saved on the
        CPU), and tuples, lists and dicts of these (keys of those types too).

    Returns
    -------
    Path
        The file written (``path``).

    Raises
    ------
    TypeError
        For a value of another type (it could not be read back without pickle).
    """
    import torch

    arrays: dict[str, np.ndarray] = {}

    def stash(array: np.ndarray, where: str) -> str:
        if array.dtype.hasobject:
            raise TypeError(f"cannot save an object array in a run state (at {where})")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return name

    def encode(value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return value
        if isinstance(value, float) and not isinstance(value, np.floating):
            return value if np.isfinite(value) else {_FLOAT: repr(value)}
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: keep its bits
                return {_TENSOR: stash(tensor.view(torch.int16).numpy(), where), "bfloat16": True}
            return {_TENSOR: stash(tensor.numpy(), where)}
        if isinstance(value, np.ndarray):
            return {_ARRAY: stash(value, where)}
        if isinstance(value, np.generic):
            return {_SCALAR: stash(np.asarray(value), where)}
        if isinstance(value, bytes):
            return {_BYTES: stash(np.frombuffer(value, dtype=np.uint8), where)}
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
            return {_ITEMS: [[encode(k, where), encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        raise TypeError(f"cannot save a {type(value).__name__} in a run state (at {where}); "
                        "only None, bool, int, float, str, bytes, arrays, tensors, tuples, lists and dicts")

    structure = {"format": _STATE_FORMAT, "version": _STATE_VERSION, "state": encode(state, "state")}
    text = json.dumps(structure, separators=(",", ":"), allow_nan=False).encode("utf-8")
    arrays[_STRUCTURE] = np.frombuffer(text, dtype=np.uint8)
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def read_state(path: str | Path) -> Any:
    """Read a state written by :func:`write_state` (arrays come back as numpy, tensors as CPU tensors).

    Nothing in the file is executed: it is opened with ``allow_pickle=False``
    and its structure is plain JSON.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not a state file of this format (corrupt, truncated,
        a pickle, another program's file).
    """
    import zipfile

    import torch

    from unitscope._files import one_line

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved state at {path}")

    def decode(value: Any, arrays) -> Any:
        if isinstance(value, list):
            return [decode(v, arrays) for v in value]
        if not isinstance(value, dict):
            return value
        if _ARRAY in value:
            return arrays[value[_ARRAY]]
        if _SCALAR in value:
            return arrays[value[_SCALAR]][()]
        if _TENSOR in value:
            tensor = torch.from_numpy(np.ascontiguousarray(arrays[value[_TENSOR]]))
            return tensor.view(torch.bfloat16) if value.get("bfloat16") else tensor
        if _BYTES in value:
            return arrays[value[_BYTES]].tobytes()
        if _TUPLE in value:
            return tuple(decode(v, arrays) for v in value[_TUPLE])
        if _FLOAT in value:
            if value[_FLOAT] not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float {value[_FLOAT]!r}")
            return float(value[_FLOAT])
        if _ITEMS in value:
            return {decode(k, arrays): decode(v, arrays) for k, v in value[_ITEMS]}
        return {k: decode(v, arrays) for k, v in value.items()}

    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:1] == b"\x80":
        raise ValueError(f"{path} is a pickle, which unitscope never loads (unpickling can run code)")
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path} is not a unitscope state file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if _STRUCTURE not in arrays.files:
                raise ValueError("no structure record")
            structure = json.loads(arrays[_STRUCTURE].tobytes().decode("utf-8"))
            if (not isinstance(structure, dict) or structure.get("format") != _STATE_FORMAT
                    or structure.get("version") != _STATE_VERSION):
                raise ValueError("not this version's state format")
            return decode(structure.get("state"), arrays)
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable unitscope state file ({one_line(exc)})") from None
