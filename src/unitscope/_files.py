"""How unitscope creates files: atomically, with the user's umask, and without leftovers.

Every result, checkpoint and cache file is written to a temporary file in
the same folder, flushed to disk and moved into place with
:func:`os.replace`, so a reader (or a run killed mid-write) sees the old
file or the new one, never half a file.  :func:`tempfile.mkstemp` and
:func:`tempfile.mkdtemp` create private files (0600) and folders (0700);
results are meant to be shared (a report on a group server), so their
mode is set from the umask, as ``open()`` and ``mkdir()`` would.

A temporary file is named ``.<name>.<pid>.<random>.tmp`` after the file it
becomes and the process writing it.  A process killed while writing leaves
it behind; the next write of the same file removes such leftovers whose
process is gone (never a file of a live writer, never a name unitscope
would not have made).

This module is a leaf (standard library only), so that ``models``,
``training`` and ``experiments`` share it without importing each other.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, IO

__all__ = [
    "current_umask",
    "share_with_umask",
    "atomic_write",
    "atomic_write_bytes",
    "make_temp_dir",
    "replace_folder",
    "remove_dead_temps",
    "one_line",
]

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by
    setting and restoring it under a lock (the only portable way).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def share_with_umask(path: str | Path, *, directory: bool = False, fd: int | None = None) -> None:
    """Give a file made by mkstemp (or a folder made by mkdtemp) the mode ``open``/``mkdir`` would.

    ``0o666 & ~umask`` for files, ``0o777 & ~umask`` for folders.
    """
    mode = (0o777 if directory else 0o666) & ~current_umask()
    if fd is not None:
        os.fchmod(fd, mode)
    else:
        os.chmod(path, mode)


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _temp_pattern(name: str) -> re.Pattern:
    """``.<name>.<pid>.<8 random characters>.tmp`` (files and folders), or the older form
    ``.<name>.<8 random>.tmp`` that carried no process id."""
    return re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{{8}}\.tmp$")


def process_alive(pid: int, *, this_one: bool = True) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts); ``this_one``: the answer for our own pid.

    A leftover named after our own pid was made by this process: alive for a file still being
    written (the default), dead for a folder of a build that already finished.
    """
    if pid == os.getpid():
        return this_one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_dead_temps(folder: str | Path, name: str) -> list[Path]:
    """Remove ``folder``'s temporary files and folders of ``name`` left by processes that are gone.

    Only names this module makes are touched (see the module docstring);
    temporaries of a live process, this one included, are kept.

    Returns
    -------
    list of Path
        What was removed.
    """
    folder = Path(folder)
    removed = []
    prefix, pattern = f".{name}.", _temp_pattern(name)
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        if match.group("pid") is not None and process_alive(int(match.group("pid"))):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object], *, clean: bool = True,
                 durable: bool = True) -> Path:
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file that then replaces it.

    Parameters
    ----------
    path : path
        Parent folders are created.
    write : callable
        Called with the open binary file.
    clean : bool, keyword-only
        Also remove temporaries of ``path`` left by killed processes.  Off
        for folders of thousands of files written one by one (it lists
        the folder).
    durable : bool, keyword-only
        Flush the file to the disk before it replaces the old one, so that
        not even a power cut leaves it empty.  Off for bulk files that can
        be made again (one image tile, one batch of decoded labels): an
        fsync costs milliseconds, thousands of them minutes.

    Returns
    -------
    Path
        ``path``, with the mode ``open()`` would give it under the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        share_with_umask(tmp, fd=fd)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if clean:
        remove_dead_temps(path.parent, path.name)
    return path


def atomic_write_bytes(path: str | Path, payload: bytes, *, clean: bool = True, durable: bool = True) -> Path:
    """Write ``payload`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(payload), clean=clean, durable=durable)


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A new folder ``parent/.<name>.<pid>.<random>.tmp`` with the umask's mode.

    It is meant to be filled and renamed to ``parent/name``; one left by a
    killed process is removed by :func:`remove_dead_temps`.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=_temp_prefix(name), suffix=".tmp", dir=parent))
    share_with_umask(folder, directory=True)
    return folder


def replace_folder(new: str | Path, target: str | Path, *, aside: str | Path) -> None:
    """Rename folder ``new`` to ``target``, whose folder is first renamed to ``aside``.

    A rename cannot replace a non-empty folder, so the old one is set aside
    (on the same file system: both are renames); if ``new`` cannot be moved
    in, the old one is put back.  The caller removes ``aside``.
    """
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise


def one_line(error: BaseException | str) -> str:
    """An error message on one line (library messages such as torch's span several)."""
    return " ".join(str(error).split())
