"""Answers on disk: an SQLite database in WAL mode.

One row per answer (annotator, unit, label, type, images marked as not
fitting, timestamps). Every write is one ``BEGIN IMMEDIATE`` transaction with
``synchronous=FULL``, committed before the web app acknowledges it: an answer
that got an HTTP 200 survives the server being killed, and annotators who
submit at the same moment are serialised by SQLite's write lock (each
connection waits up to ``timeout`` seconds for it).

Annotator tokens are random (``secrets.token_urlsafe``) and only their SHA-256
is stored; the token itself is shown once, by :meth:`LabelStore.add_annotator`.

A file that is not a labeling database (another program's database, a text
file) is refused as a :class:`ValueError` and never modified; a disk that is
full, read-only or failing is a :class:`StorageError` that says so
(:mod:`unitscope.label.sqlite_file`).  The records it reads and writes
(:class:`~unitscope.label.records.Answer`, ...) are in :mod:`unitscope.label.records`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .assignment import choose_unit
from .catalog import UnitKey
from .records import Annotator, Answer, DuplicateAnswer, ImportCounts, Progress, UnitFull
from .sqlite_file import StorageError, create_file, sqlite_errors
from .taxonomy import check_type

__all__ = [
    "StorageError",
    "LabelStore",
    "hash_token",
    "utc_timestamp",
    "check_annotator_name",
]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    network TEXT NOT NULL,
    layer TEXT NOT NULL,
    unit INTEGER NOT NULL,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    marked TEXT NOT NULL,
    n_images INTEGER NOT NULL,
    shown_at TEXT,
    submitted_at TEXT NOT NULL,
    UNIQUE (annotator_id, network, layer, unit)
);
CREATE INDEX IF NOT EXISTS answers_by_unit ON answers (network, layer, unit);
CREATE TABLE IF NOT EXISTS leases (
    annotator_id INTEGER PRIMARY KEY REFERENCES annotators(id),
    network TEXT NOT NULL,
    layer TEXT NOT NULL,
    unit INTEGER NOT NULL,
    leased_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

_NAME = re.compile(r"^[\w][\w .@+-]{0,63}$")


def check_annotator_name(name: str) -> str:
    """Return ``name`` if it is a valid annotator name.

    Raises
    ------
    ValueError
        Unless ``name`` is 1-64 letters, digits, spaces or ``. @ + - _``,
        starting with a letter, digit or ``_`` and not ending in a space.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
        shown = repr(name) if len(repr(name)) <= 70 else repr(name)[:67] + "..."
        raise ValueError(f"invalid annotator name {shown}: use 1-64 letters, digits, spaces or . @ + - _")
    return name


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utc_timestamp(seconds: float | None = None) -> str:
    """ISO 8601 UTC time with microseconds, e.g. ``2025-01-31T12:00:00.000000Z``."""
    moment = datetime.fromtimestamp(time.time() if seconds is None else seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LabelStore:
    """The labeling database.

    Parameters
    ----------
    path : str or Path
        SQLite file; created (with its folder) if missing.
    timeout : float, optional
        Seconds a writer waits for the lock held by another writer.
    clock : callable, optional
        Returns the time in seconds since the epoch (tests pass a fake one).

    Examples
    --------
    >>> store = LabelStore(tmp / "labels.sqlite")            # doctest: +SKIP
    >>> token = store.add_annotator("ada")                   # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.timeout = timeout
        self.clock = clock
        if self.path.is_dir():
            raise IsADirectoryError(f"the labeling database {self.path} is a directory; give a file (--db FILE)")
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"{self.path} is not a labeling database (not a regular file)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = create_file(self.path)
        except OSError as error:
            raise StorageError(f"cannot create the labeling database {self.path}: {error.strerror}") from None
        try:
            self._initialise()
        except BaseException:
            if created:  # a database that could not be set up is not left behind
                for leftover in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                    leftover.unlink(missing_ok=True)
            raise

    def _initialise(self) -> None:
        with self._read() as con:
            # Look before writing anything: another program's database must stay as it is.
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise ValueError(
                    f"{self.path} is not a labeling database (an SQLite database of another program, tables: "
                    f"{', '.join(sorted(tables)[:5])})"
                )
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ValueError(f"could not put {self.path} in WAL mode (got {mode})")
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                found = row[0] if row else "none"
                raise ValueError(f"{self.path} has schema version {found}, this unitscope reads {SCHEMA_VERSION}")

    # -- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with sqlite_errors(self.path):
            con = self._connect()
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with sqlite_errors(self.path):
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    # -- annotators --------------------------------------------------------

    def add_annotator(self, name: str, *, replace_token: bool = False) -> str:
        """Create annotator ``name`` and return its token (shown only now).

        Parameters
        ----------
        name : str
            1-64 characters: letters, digits, space, ``. @ + - _``.
        replace_token : bool, optional
            If the annotator exists, issue a new token (the old one stops
            working) instead of refusing. An annotator created by an import
            has no token until this is done.

        Raises
        ------
        ValueError
            If the name is invalid, or exists and ``replace_token`` is False.
        """
        check_annotator_name(name)
        token = secrets.token_urlsafe(24)
        with self._write() as con:
            row = con.execute("SELECT id, token_hash FROM annotators WHERE name = ?", (name,)).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO annotators (name, token_hash, created_at) VALUES (?, ?, ?)",
                    (name, hash_token(token), utc_timestamp(self.clock())),
                )
            elif replace_token or row[1] is None:
                con.execute("UPDATE annotators SET token_hash = ? WHERE id = ?", (hash_token(token), row[0]))
            else:
                raise ValueError(
                    f"annotator {name!r} already exists (replace_token=True, or --replace-token, issues a new token)"
                )
        return token

    def annotator_for_token(self, token: str | None) -> Annotator | None:
        """The annotator holding ``token``, or None for a missing or unknown token."""
        if not token or len(token) > 256:
            return None
        with self._read() as con:
            row = con.execute("SELECT id, name FROM annotators WHERE token_hash = ?", (hash_token(token),)).fetchone()
        return Annotator(*row) if row else None

    def annotators(self) -> list[Annotator]:
        """Every annotator, in creation order."""
        with self._read() as con:
            return [Annotator(*row) for row in con.execute("SELECT id, name FROM annotators ORDER BY id")]

    # -- assignment --------------------------------------------------------

    def lease_next(
        self, annotator: Annotator, units: Sequence[UnitKey], *, k: int, lease_seconds: float = 1800.0
    ) -> UnitKey | None:
        """The unit ``annotator`` should label now, leased to them.

        The unit they already hold is returned again (a page reload shows the
        same unit) until they answer it or the lease expires; otherwise a new
        unit is chosen by :func:`~unitscope.label.assignment.choose_unit`.
        Returns None when nothing is left for them.
        """
        now = self.clock()
        unit_set = set(units)
        with self._write() as con:
            answered = {
                UnitKey(*row)
                for row in con.execute(
                    "SELECT network, layer, unit FROM answers WHERE annotator_id = ?", (annotator.id,)
                )
            }
            counts = {
                UnitKey(n, l, u): c
                for n, l, u, c in con.execute(
                    "SELECT network, layer, unit, COUNT(*) FROM answers GROUP BY network, layer, unit"
                )
            }
            held = con.execute(
                "SELECT network, layer, unit FROM leases WHERE annotator_id = ? AND expires_at > ?",
                (annotator.id, now),
            ).fetchone()
            if held is not None:
                key = UnitKey(*held)
                if key in unit_set and key not in answered and counts.get(key, 0) < k:
                    con.execute(
                        "UPDATE leases SET expires_at = ? WHERE annotator_id = ?", (now + lease_seconds, annotator.id)
                    )
                    return key
            leased = Counter(
                UnitKey(*row)
                for row in con.execute(
                    "SELECT network, layer, unit FROM leases WHERE annotator_id != ? AND expires_at > ?",
                    (annotator.id, now),
                )
            )
            key = choose_unit(units, k=k, answered_by_me=answered, answer_counts=counts, leased_by_others=leased)
            con.execute("DELETE FROM leases WHERE annotator_id = ?", (annotator.id,))
            if key is not None:
                con.execute(
                    "INSERT INTO leases (annotator_id, network, layer, unit, leased_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (annotator.id, key.network, key.layer, key.unit, utc_timestamp(now), now + lease_seconds),
                )
            return key

    def submit(
        self,
        annotator: Annotator,
        key: UnitKey,
        *,
        label: str,
        type: str,
        marked: Sequence[str],
        n_images: int,
        k: int,
    ) -> Answer:
        """Store one answer, committed to disk before this returns.

        Raises
        ------
        DuplicateAnswer
            If ``annotator`` already answered ``key``.
        UnitFull
            If ``key`` already has ``k`` answers.
        ValueError
            If ``type`` is not a type key, or ``marked`` has repeats or more
            entries than ``n_images``.
        """
        check_type(type)
        marked = tuple(marked)
        if len(set(marked)) != len(marked):
            raise ValueError("marked images contain duplicates")
        if n_images < 1 or len(marked) > n_images:
            raise ValueError(f"{len(marked)} marked images out of {n_images} shown")
        now = self.clock()
        with self._write() as con:
            if con.execute(
                "SELECT 1 FROM answers WHERE annotator_id = ? AND network = ? AND layer = ? AND unit = ?",
                (annotator.id, *key),
            ).fetchone():
                raise DuplicateAnswer(f"{annotator.name} already answered unit {key}")
            (count,) = con.execute(
                "SELECT COUNT(*) FROM answers WHERE network = ? AND layer = ? AND unit = ?", tuple(key)
            ).fetchone()
            if count >= k:
                raise UnitFull(f"unit {key} already has its {k} annotations")
            lease = con.execute(
                "SELECT leased_at FROM leases WHERE annotator_id = ? AND network = ? AND layer = ? AND unit = ?",
                (annotator.id, *key),
            ).fetchone()
            shown_at = lease[0] if lease else None
            submitted_at = utc_timestamp(now)
            con.execute(
                "INSERT INTO answers (annotator_id, network, layer, unit, label, type, marked, n_images,"
                " shown_at, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (annotator.id, *key, label, type, json.dumps(list(marked)), n_images, shown_at, submitted_at),
            )
            if lease:
                con.execute("DELETE FROM leases WHERE annotator_id = ?", (annotator.id,))
        return Answer(annotator.name, *key, label, type, marked, n_images, shown_at, submitted_at)

    # -- reading -----------------------------------------------------------

    def answers(self, *, network: str | None = None, annotator: Annotator | None = None) -> list[Answer]:
        """Stored answers in submission order (optionally of one network / annotator)."""
        query = (
            "SELECT a.name, s.network, s.layer, s.unit, s.label, s.type, s.marked, s.n_images, s.shown_at,"
            " s.submitted_at FROM answers s JOIN annotators a ON a.id = s.annotator_id"
        )
        clauses, params = [], []
        if network is not None:
            clauses.append("s.network = ?")
            params.append(network)
        if annotator is not None:
            clauses.append("s.annotator_id = ?")
            params.append(annotator.id)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY s.id"
        with self._read() as con:
            rows = con.execute(query, params).fetchall()
        return [Answer(r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6])), r[7], r[8], r[9]) for r in rows]

    def progress(self, annotator: Annotator, units: Sequence[UnitKey], *, k: int) -> Progress:
        """Counts for the progress bar, over the units of the current catalog."""
        unit_set = set(units)
        with self._read() as con:
            counts = {
                UnitKey(n, l, u): c
                for n, l, u, c in con.execute(
                    "SELECT network, layer, unit, COUNT(*) FROM answers GROUP BY network, layer, unit"
                )
            }
            mine = {
                UnitKey(*row)
                for row in con.execute(
                    "SELECT network, layer, unit FROM answers WHERE annotator_id = ?", (annotator.id,)
                )
            }
        counts = {key: c for key, c in counts.items() if key in unit_set}
        mine &= unit_set
        return Progress(
            mine=len(mine),
            available=sum(1 for key in units if key not in mine and counts.get(key, 0) < k),
            units_total=len(unit_set),
            units_complete=sum(1 for c in counts.values() if c >= k),
            annotations_done=sum(min(c, k) for c in counts.values()),
            annotations_needed=len(unit_set) * k,
        )

    # -- import ------------------------------------------------------------

    def insert_answers(self, answers: Iterable[Answer]) -> ImportCounts:
        """Add answers made elsewhere (an export), in one transaction.

        Annotators are matched by name and created, without a token, when
        missing. An answer for an (annotator, unit) pair already stored is
        not written: it counts as unchanged when identical, else conflicting.
        """
        added = unchanged = conflicting = 0
        with self._write() as con:
            ids: dict[str, int] = {}
            for answer in answers:
                if answer.annotator not in ids:
                    row = con.execute("SELECT id FROM annotators WHERE name = ?", (answer.annotator,)).fetchone()
                    if row is None:
                        cursor = con.execute(
                            "INSERT INTO annotators (name, token_hash, created_at) VALUES (?, NULL, ?)",
                            (answer.annotator, utc_timestamp(self.clock())),
                        )
                        ids[answer.annotator] = cursor.lastrowid
                    else:
                        ids[answer.annotator] = row[0]
                annotator_id = ids[answer.annotator]
                stored = con.execute(
                    "SELECT label, type, marked, n_images, shown_at, submitted_at FROM answers"
                    " WHERE annotator_id = ? AND network = ? AND layer = ? AND unit = ?",
                    (annotator_id, answer.network, answer.layer, answer.unit),
                ).fetchone()
                values = (
                    answer.label,
                    answer.type,
                    json.dumps(list(answer.marked)),
                    answer.n_images,
                    answer.shown_at,
                    answer.submitted_at,
                )
                if stored is None:
                    con.execute(
                        "INSERT INTO answers (annotator_id, network, layer, unit, label, type, marked, n_images,"
                        " shown_at, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (annotator_id, answer.network, answer.layer, answer.unit, *values),
                    )
                    added += 1
                elif tuple(stored) == values:
                    unchanged += 1
                else:
                    conflicting += 1
        return ImportCounts(added, unchanged, conflicting)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ('ok' for a sound file)."""
        with self._read() as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0]
