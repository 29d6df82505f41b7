"""The labeling database of a results directory, opened as the commands open it.

``RESULTS/labels.sqlite`` unless another file is named; a database is only
created for a results directory (a typo leaves no stray file), and commands
that read answers refuse a missing one instead of creating it.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import network_dirs
from .storage import LabelStore, check_annotator_name

__all__ = ["add_annotator", "default_db_path", "open_store"]


def default_db_path(results_dir: str | Path) -> Path:
    """Where the labeling database lives unless told otherwise: ``RESULTS/labels.sqlite``."""
    return Path(results_dir) / "labels.sqlite"


def open_store(results_dir: str | Path, db: str | Path | None = None, *, existing: bool = False) -> LabelStore:
    """The labeling database of ``results_dir``: ``db``, else :func:`default_db_path`.

    Raises
    ------
    FileNotFoundError
        With ``existing``, when there is no database there (nothing is created).
    """
    path = Path(db) if db is not None else default_db_path(results_dir)
    if existing and not path.is_file():
        raise FileNotFoundError(f"no labeling database at {path}")
    return LabelStore(path)


def add_annotator(results_dir: str | Path, name: str, *, db: str | Path | None = None,
                  replace_token: bool = False) -> str:
    """Create annotator ``name`` in the database of ``results_dir`` and return its token (shown only now).

    The name and the results directory are checked before the database is
    created, so a typo leaves no stray database behind.
    """
    check_annotator_name(name)
    network_dirs(results_dir)
    return open_store(results_dir, db).add_annotator(name, replace_token=replace_token)
