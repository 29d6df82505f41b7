"""The labeling database as a file: created under the user's umask, its failures told apart.

SQLite reports a full disk and a file that is not a database alike, as
``sqlite3.DatabaseError`` subclasses, yet they call for different actions:
the first is an :class:`OSError` (:class:`StorageError`: free space, check
the disk) and the second a :class:`ValueError` (wrong file: nothing of it is
changed). :func:`sqlite_errors` turns one into the other by SQLite's result
code.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["StorageError", "create_file", "sqlite_errors"]


class StorageError(OSError):
    """The database could not be read or written: disk full, read-only, I/O error, locked too long."""


# SQLite's primary result codes for "this file is not (or no longer) a database".
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _translated(path: Path, error: sqlite3.Error) -> Exception:
    """The error to raise for ``error``: ValueError for a file that is not a database, else StorageError."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        primary is None and not isinstance(error, sqlite3.OperationalError)
    ):
        return ValueError(f"{path} is not a labeling database ({error})")
    return StorageError(f"cannot use the labeling database {path}: {error} (is the disk full, read-only or failing?)")


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Run the block, raising SQLite's errors about ``path`` as ValueError (not a database) or StorageError."""
    try:
        yield
    except sqlite3.Error as error:
        raise _translated(path, error) from None


def create_file(path: Path) -> bool:
    """Create an empty database file with the permissions the umask allows.

    SQLite itself creates files with at most 0644, whatever the umask, so a
    group that shares a labeling database under umask 002 could not write it.
    The database holds answers, annotator names and SHA-256 hashes of random
    192-bit tokens, from which a token cannot be recovered: nothing that must
    be kept from the user's group, so the umask decides, as for every other
    result. (The -wal and -shm files get the database file's permissions.)

    Returns whether this call created it.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return False  # there already, or created by a concurrent process meanwhile: theirs is as good
    return True
