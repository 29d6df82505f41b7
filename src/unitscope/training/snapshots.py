"""Snapshots of a network over training: which steps, and the folder that holds them.

A training run asked for snapshots saves the network at log-spaced
optimizer steps, as Network Dissection's Places snapshots do: steps 1, 2,
4, 8, ... and the last step.  The folder holds one ordinary unitscope
checkpoint per step (``step-00000001.pt``, readable by
``create_model(None, weights=...)`` / ``load_model``) and a manifest,
``snapshots.json``::

    {"format": "unitscope-snapshots", "version": 1, "network": "scenenet",
     "total_steps": 1092, "steps": [1, 2, 4, ..., 1024, 1092],
     "files": ["step-00000001.pt", ...], "training": {...}}

:func:`read_snapshots` is the one reader (``unitscope emergence`` uses it);
it refuses a manifest that is not this format or names a missing file, in
one line naming the file.

Examples
--------
>>> log_spaced_steps(20)
[1, 2, 4, 8, 16, 20]
>>> snapshot_file(16)
'step-00000016.pt'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from unitscope._files import atomic_write_bytes

__all__ = ["SNAPSHOTS_FORMAT", "MANIFEST", "Snapshot", "log_spaced_steps", "snapshot_file", "write_manifest",
           "read_snapshots"]

SNAPSHOTS_FORMAT = "unitscope-snapshots"
SNAPSHOTS_VERSION = 1
#: The manifest's file name inside a snapshot folder.
MANIFEST = "snapshots.json"


@dataclass(frozen=True)
class Snapshot:
    """One saved step: ``step`` (optimizer steps taken, 1-based) and its checkpoint ``path``."""

    step: int
    path: Path


def log_spaced_steps(total_steps: int) -> list[int]:
    """Steps 1, 2, 4, ... below ``total_steps``, then ``total_steps`` itself."""
    if int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    steps, s = [], 1
    while s < total_steps:
        steps.append(s)
        s *= 2
    return steps + [int(total_steps)]


def snapshot_file(step: int) -> str:
    """The checkpoint's file name for ``step``."""
    return f"step-{int(step):08d}.pt"


def write_manifest(folder: str | Path, *, steps: Sequence[int], total_steps: int, network: str,
                   training: dict[str, Any] | None = None) -> Path:
    """Write ``folder/snapshots.json`` (atomically) for checkpoints already saved there."""
    folder = Path(folder)
    doc = {"format": SNAPSHOTS_FORMAT, "version": SNAPSHOTS_VERSION, "network": network,
           "total_steps": int(total_steps), "steps": [int(s) for s in steps],
           "files": [snapshot_file(s) for s in steps], "training": training or {}}
    return atomic_write_bytes(folder / MANIFEST, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())


def read_snapshots(folder: str | Path) -> list[Snapshot]:
    """The snapshots of ``folder`` in step order.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``snapshots.json`` or a checkpoint it names is missing.
    ValueError
        If the manifest is not a unitscope snapshot manifest (names the file and what is wrong).
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder} holds no snapshots: {MANIFEST} is missing "
                                "(train with snapshots, e.g. `unitscope train --snapshots`)")
    try:
        doc = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest} is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOTS_FORMAT:
        raise ValueError(f"{manifest} is not a unitscope snapshot manifest (format is not {SNAPSHOTS_FORMAT!r})")
    if doc.get("version") != SNAPSHOTS_VERSION:
        raise ValueError(f"{manifest} has version {doc.get('version')!r}; this unitscope reads {SNAPSHOTS_VERSION}")
    steps, files = doc.get("steps"), doc.get("files")
    if (not isinstance(steps, list) or not isinstance(files, list) or len(steps) != len(files) or not steps
            or not all(isinstance(s, int) and s >= 1 for s in steps) or steps != sorted(set(steps))
            or not all(isinstance(f, str) and Path(f).name == f for f in files)):
        raise ValueError(f"{manifest} must list increasing positive 'steps' and one plain file name per step")
    out = []
    for s, f in zip(steps, files):
        path = folder / f
        if not path.is_file():
            raise FileNotFoundError(f"{manifest} names {f} (step {s}), which is missing")
        out.append(Snapshot(s, path))
    return out
