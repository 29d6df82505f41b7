"""Temporary sibling folders for atomic writes, and the clean-up of those a killed run left.

Exports (the world, a Broden directory) are built in a hidden sibling of
their target, ``.<name>.tmp-XXXX``, and moved into place at the end, so an
interrupted export never leaves a half-written target.  A run killed by
SIGKILL cannot remove its sibling, though, and a world's is tens of
megabytes.  So each such folder holds a marker file naming the process that
made it, and the next export to the same target removes the siblings whose
process is gone.

A folder is removed only when all of these hold: its name has our pattern
(``.<name>.tmp-*`` or ``.<name>.old-*``), it is a real folder (not a link),
it holds our marker file, the marker names this machine, and the process it
names no longer runs.  A user's folder that merely looks like ours is never
touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

from unitscope._files import process_alive, replace_folder, share_with_umask

__all__ = ["make_staging_dir", "move_into_place", "remove_stale_staging", "release_staging_dir", "STAGING_MARKER"]

#: The marker file inside every temporary folder unitscope makes here.
STAGING_MARKER = ".unitscope-temporary.json"

_KINDS = ("tmp", "old")


def make_staging_dir(target: Path, *, kind: str = "tmp") -> Path:
    """Create ``.<target name>.<kind>-XXXX`` beside ``target``, with the marker inside.

    Parameters
    ----------
    target : Path
        The folder the staging folder will replace (need not exist).
    kind : {"tmp", "old"}, keyword-only
        ``"tmp"``: the new content being built; ``"old"``: where the previous
        content is set aside during the swap.

    Returns
    -------
    Path
        The new, empty (but for the marker) folder.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    target = Path(target)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))
    share_with_umask(folder, directory=True)  # mkdtemp's 0700 would hide the data from the user's group
    marker = {"made_by": "unitscope", "pid": os.getpid(), "host": socket.gethostname(), "target": target.name}
    (folder / STAGING_MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def release_staging_dir(folder: Path) -> Path:
    """Remove the marker from a finished staging folder (before it is moved into place); return it."""
    (Path(folder) / STAGING_MARKER).unlink(missing_ok=True)
    return Path(folder)


def move_into_place(folder: Path, target: Path, *, overwrite: bool = False) -> None:
    """Release a finished staging folder and rename it to ``target``, replacing what is there.

    Parameters
    ----------
    folder : Path
        Made by :func:`make_staging_dir` beside ``target``.
    target : Path
    overwrite : bool, keyword-only
        Replace a non-empty ``target`` (set aside in a marked ``.old-``
        sibling, then removed); otherwise only a missing or empty one.

    Raises
    ------
    FileExistsError
        If ``target`` is not empty and ``overwrite`` is false.
    """
    release_staging_dir(folder)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(folder, target)
        return
    if not overwrite:
        raise FileExistsError(f"{target} appeared while writing; pass overwrite=True to replace it")
    # Set aside in a marked folder: a run killed here leaves a leftover the next export removes.
    trash = make_staging_dir(target, kind="old")
    try:
        replace_folder(folder, target, aside=trash / "old")
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _is_stale(folder: Path, target_name: str) -> bool:
    if folder.is_symlink() or not folder.is_dir():
        return False
    marker = folder / STAGING_MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
        ours = info.get("made_by") == "unitscope" and info.get("target") == target_name
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not ours or host != socket.gethostname():
        return False  # another machine's run on a shared disk may be alive: leave it
    return not process_alive(pid)  # (our own pid: a staging folder still in use)


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the staging folders of ``target`` left by runs that were killed.

    Parameters
    ----------
    target : Path
        The export's target folder; its siblings are examined.

    Returns
    -------
    list of Path
        The folders removed (see the module docstring for what qualifies).
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    removed = []
    prefixes = tuple(f".{target.name}.{kind}-" for kind in _KINDS)
    for entry in sorted(parent.iterdir()):
        if entry.name.startswith(prefixes) and _is_stale(entry, target.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
