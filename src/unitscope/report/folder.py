"""The report folder: which folders may hold a report, and how a new one replaces the old.

A report is built in a temporary folder beside its target (same parent, so
the same filesystem and the same relative links to the results) and swapped
in whole when it is complete: with Linux's ``renameat2(RENAME_EXCHANGE)`` the
swap is one atomic step, elsewhere two renames.  A killed build therefore
leaves the previous report as it was (plus a hidden ``.NAME.unitscope-tmp-*``
folder that the next build removes), never an index pointing at pages that
are gone.

Every report holds a manifest, ``.unitscope-report`` (JSON), listing each
file the build wrote.  A folder is replaced only when everything in it is
listed there, so a file the user put in a report folder (``plots/thesis.txt``)
is never deleted: such a folder, and any non-empty folder that is not a
report, is refused with one line naming what unitscope did not write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path
from typing import Iterator

from unitscope._files import process_alive, replace_folder
from unitscope.results.layout import NETWORK_FOLDERS, REPORT_MANIFEST

__all__ = ["MANIFEST", "check_report_folder", "staged_folder", "write_manifest"]

#: The manifest file of a report folder (also what marks a folder of RESULTS as a report, not a network).
MANIFEST = REPORT_MANIFEST
_WRITER = "unitscope report"
_LEGACY_MARKER = "written by unitscope.report.build_report"
#: What builds before the manifest wrote (their marker held one line of text, not a file list).
_LEGACY_FILES = re.compile(r"^(index\.html|summary\.json|static/report\.(css|js)|plots/[^/]+\.png|"
                           r"units/.+\.html|files/.+)$")
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.unitscope-(tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")


# --------------------------------------------------------------------------- what a folder holds
def _entries(folder: Path) -> tuple[list[str], list[str]]:
    """Relative paths of the files (and links) and of the folders under ``folder``; links are not followed."""
    files, dirs = [], []
    for top, subdirs, names in os.walk(folder):
        rel = Path(top).relative_to(folder)
        for d in subdirs:
            (files if os.path.islink(os.path.join(top, d)) else dirs).append((rel / d).as_posix())
        files += [(rel / n).as_posix() for n in names]
    return files, dirs


def _manifest(folder: Path) -> set[str] | None:
    """The files a report build wrote in ``folder`` (from its manifest), or None if it is not a report."""
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if text.startswith(_LEGACY_MARKER):
        files, _ = _entries(folder)
        return {f for f in files if _LEGACY_FILES.match(f)}
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not (isinstance(document, dict) and document.get("written_by") == _WRITER
            and isinstance(document.get("files"), list)):
        return None
    return {str(f) for f in document["files"]}


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` a report build did not write (empty for a report folder or an empty folder)."""
    files, dirs = _entries(folder)
    listed = _manifest(folder)
    if listed is None:
        return sorted(f for f in files + dirs if "/" not in f)
    listed = listed | {MANIFEST}
    parents = {p.as_posix() for f in listed for p in Path(f).parents}
    return sorted([f for f in files if f not in listed] + [d for d in dirs if d not in parents])


def check_report_folder(out: Path, results_dir: Path) -> Path:
    """Refuse an ``--out`` that must not hold a report; return it as an absolute path.

    Refused: a file; a symbolic link; the results directory itself or a
    folder that contains it; a folder inside a network's results (or
    ``preference/``), where the report's files would be read as results;
    a folder holding anything a report build did not write.

    Raises
    ------
    ValueError
        Naming ``--out`` and what is wrong with it.
    """
    out = Path(os.path.abspath(out))
    for folder in (out, *out.parents):
        if folder.exists() or folder.is_symlink():
            if folder.is_symlink() and folder == out:
                raise ValueError(f"--out {out} is a symbolic link; give the folder it points to")
            if not folder.is_dir():
                raise ValueError(f"--out {out}: {folder} is a file, not a folder")
            break
    real, root = Path(os.path.realpath(out)), Path(os.path.realpath(results_dir))
    if real == root or root.is_relative_to(real):
        raise ValueError(f"--out {out} would hold the results directory {results_dir}; "
                         f"give the report a folder of its own, such as {Path(results_dir) / 'report'}")
    if real.is_relative_to(root):
        first = real.relative_to(root).parts[0]
        if first == "preference" or any((root / first / sub).is_dir() for sub in NETWORK_FOLDERS):
            raise ValueError(f"--out {out} lies inside the results of {first}, where the report's files would "
                             f"be read as results; choose a folder such as {Path(results_dir) / 'report'}")
    if out.is_dir():
        foreign = foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise ValueError(f"--out {out} holds files unitscope did not write ({shown}); the report replaces "
                             "its folder whole, so move them away or choose another --out")
    return out


# --------------------------------------------------------------------------- building and swapping
def write_manifest(folder: Path) -> None:
    """List every file under ``folder`` in its manifest (sorted: the same build gives the same bytes)."""
    files, _ = _entries(folder)
    document = {"written_by": _WRITER, "note": "unitscope replaces this folder whole on the next build",
                "files": sorted(f for f in files if f != MANIFEST)}
    (folder / MANIFEST).write_text(json.dumps(document, indent=0) + "\n", encoding="utf-8")


def _remove_leftovers(parent: Path, name: str) -> None:
    """Remove the temporary folders of earlier builds of ``name`` that were killed (their process is gone)."""
    for path in parent.iterdir():
        match = _LEFTOVER.match(path.name)
        if match and match["name"] == name and path.is_dir() and not path.is_symlink() \
                and not process_alive(int(match["pid"]), this_one=False):
            shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(staged: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staged, out)
        return
    # The folder keeps its own permissions (a group-shared report folder stays shared).
    os.chmod(staged, stat.S_IMODE(out.stat().st_mode))
    if _exchange(staged, out):
        shutil.rmtree(staged)  # now the previous report
        return
    old = staged.with_name(staged.name.replace("-tmp-", "-old-"))
    replace_folder(staged, out, aside=old)
    shutil.rmtree(old)


@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` to build in; swapped in for ``out`` when the block completes.

    On any exception (``KeyboardInterrupt`` included) the temporary folder
    is removed and ``out`` is left as it was.  The folder is made with the
    process's umask, like every file written in it.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out.parent, out.name)
    staged = out.parent / f".{out.name}.unitscope-tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(staged)
    try:
        yield staged
        _swap_in(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
