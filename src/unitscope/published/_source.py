"""What the readers of published files share: finding the file, reading MATLAB, refusing in one line.

Every refusal is a :class:`MalformedFile` (a ``ValueError``) whose message
starts with the file's path and says what is wrong, so the command line can
print it as it is.  MATLAB files are read with :func:`scipy.io.loadmat`
(arrays only; nothing is unpickled); v7.3 files (HDF5) are refused by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

__all__ = ["MalformedFile", "existing_file", "load_mat", "mat_text"]


class MalformedFile(ValueError):
    """A published file that does not have the structure its reader expects."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        super().__init__(f"{path}: {what}")


def existing_file(path: str | Path) -> Path:
    """``path`` as a :class:`~pathlib.Path`, if it names a file.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def load_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB v5 file (scipy builds arrays; it never unpickles)."""
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy says so for MATLAB v7.3 (HDF5) files
        raise MalformedFile(path, "a MATLAB v7.3 (HDF5) file; save it with -v7 or older") from None
    except Exception as error:  # scipy raises several types for bytes it cannot parse
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MalformedFile(path, f"not a MATLAB file scipy.io.loadmat can read ({reason})") from None


def mat_text(cell: Any) -> str | None:
    """A MATLAB char array as a str (``''`` for an empty one), else None."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, np.ndarray) and cell.dtype.kind == "U" and cell.size <= 1:
        return str(cell.item()) if cell.size else ""
    return None
