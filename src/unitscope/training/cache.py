"""Trained weights on disk, keyed by the full training configuration.

A cache entry is a folder ``<cache_dir>/networks/<name>-<key16>/`` holding
``model.pt`` (weights + :class:`~unitscope.models.info.ModelInfo`, written
by :func:`~unitscope.models.save_checkpoint`), ``metrics.json`` (held-out
accuracy, training time, history) and ``config.json`` (the configuration
the key was computed from) and, for a run asked for them, ``snapshots/``
(:mod:`unitscope.training.snapshots`).  The folder is built under a temporary name and
renamed into place, so an entry is either complete or absent (the
temporary folder of a killed training is removed by the next write of that
entry), and gets the mode the umask gives new folders.  An entry
that exists but cannot be read, or whose stored key differs, is an error
(:class:`CacheCorruptError`): never a silent retrain.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from unitscope._files import make_temp_dir, one_line, remove_dead_temps

__all__ = ["CacheCorruptError", "config_key", "entry_dir", "read_entry", "write_entry"]


class CacheCorruptError(RuntimeError):
    """A cache entry exists but is unreadable or does not match its key."""


def config_key(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``config``."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_dir(cache_dir: str | Path, name: str, key: str) -> Path:
    return Path(cache_dir).expanduser() / "networks" / f"{name}-{key[:16]}"


def read_entry(folder: Path, key: str) -> dict[str, Any]:
    """Read ``metrics.json`` of an entry and check its key and files.

    Raises
    ------
    CacheCorruptError
        If a file is missing or unreadable, or the key differs.
    """
    hint = f"delete {folder} to train again"
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheCorruptError(f"cached network at {folder} is corrupt ({one_line(exc)}); {hint}") from None
    if not isinstance(metrics, dict) or metrics.get("key") != key or config_key(config) != key:
        raise CacheCorruptError(
            f"cached network at {folder} does not match its configuration key {key[:16]}; {hint}"
        )
    if not (folder / "model.pt").is_file():
        raise CacheCorruptError(f"cached network at {folder} has no model.pt; {hint}")
    return metrics


def write_entry(folder: Path, *, save_model, metrics: dict[str, Any], config: dict[str, Any],
                folders: dict[str, Path] | None = None) -> None:
    """Write an entry atomically; ``save_model(path)`` writes the weights file.

    ``folders`` (name -> existing folder, e.g. the run's snapshots) are
    moved into the entry as ``<entry>/<name>``, last, so that a failure
    before leaves them where they were.
    """
    remove_dead_temps(folder.parent, folder.name)
    for leftover in folder.parent.glob(f".{folder.name}.[to][ml][pd]-????????"):  # earlier versions' names
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = make_temp_dir(folder.parent, folder.name)
    moved: list[tuple[Path, Path]] = []
    try:
        save_model(tmp / "model.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        for name, source in (folders or {}).items():
            os.replace(source, tmp / name)
            moved.append((tmp / name, source))
        if folder.exists():
            # Only reached by an explicit retrain: set the old entry aside first.
            old = make_temp_dir(folder.parent, folder.name)
            os.replace(folder, old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        for inside, source in moved:
            if inside.exists():
                os.replace(inside, source)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
