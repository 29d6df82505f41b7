"""Export and import answers as CSV or JSON.

Both formats hold the same fields as the database, one answer per row:
``annotator, network, layer, unit, label, type, marked, n_images, shown_at,
submitted_at``. In CSV, ``marked`` is a JSON array of image ids (an id may
hold any character, so a separator could be ambiguous) and a missing
``shown_at`` is an empty cell. Exporting, importing into an empty database
and exporting again gives the same file.

A CSV export is opened in spreadsheets, which run a cell that starts with
``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) as a formula: a
label typed as ``=HYPERLINK(...)`` would become a live link. Following
OWASP's advice on CSV injection, such a cell is written with a leading
apostrophe, which spreadsheets take as "this is text" and do not show; a
cell that already starts with an apostrophe gets one too, so that import can
remove exactly one and give back what was typed. The database and the JSON
export keep every answer as typed.

An import is checked row by row by
:func:`~unitscope.label.validation.check_answer`, the function the web app
uses, against the units of the results directory: a file cannot add what an
annotator could not have typed. The first bad row stops the import, and
nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .records import Answer, ImportCounts
from .storage import LabelStore, check_annotator_name
from .validation import check_answer

__all__ = ["FIELDS", "export_answers", "import_answers", "read_answers", "neutralise_formula", "restore_formula"]

FIELDS: tuple[str, ...] = (
    "annotator",
    "network",
    "layer",
    "unit",
    "label",
    "type",
    "marked",
    "n_images",
    "shown_at",
    "submitted_at",
)
_FORMAT = "unitscope-labels"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_INTEGER = re.compile(r"^-?[0-9]{1,20}$")  # ASCII only: int() would also read "٣" and " 3 "


def neutralise_formula(cell: str) -> str:
    """``cell`` as a spreadsheet will show it as text (OWASP's rule, plus an apostrophe for an apostrophe).

    Examples
    --------
    >>> neutralise_formula('=HYPERLINK("http://x")'), neutralise_formula("bed"), neutralise_formula("'s")
    ('\\'=HYPERLINK("http://x")', 'bed', "''s")
    """
    return "'" + cell if cell.startswith(_FORMULA_START + ("'",)) else cell


def restore_formula(cell: str) -> str:
    """The inverse of :func:`neutralise_formula`."""
    return cell[1:] if cell.startswith("'") else cell


def _format_of(path: Path, format: str | None) -> str:
    chosen = (format or path.suffix.lstrip(".")).lower()
    if chosen not in ("csv", "json"):
        raise ValueError(f"cannot tell the format of {path}: use a .csv or .json file, or pass format='csv'/'json'")
    return chosen


def _record(answer: Answer) -> dict[str, Any]:
    return {
        "annotator": answer.annotator,
        "network": answer.network,
        "layer": answer.layer,
        "unit": answer.unit,
        "label": answer.label,
        "type": answer.type,
        "marked": list(answer.marked),
        "n_images": answer.n_images,
        "shown_at": answer.shown_at,
        "submitted_at": answer.submitted_at,
    }


def _is_export(path: Path) -> bool:
    """Whether ``path`` looks like a file :func:`export_answers` wrote (so it may be replaced)."""
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(200)
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith(",".join(FIELDS) + "\n") or (head.startswith("{") and f'"format": "{_FORMAT}"' in head)


def export_answers(store: LabelStore, path: str | Path, *, format: str | None = None) -> int:
    """Write every stored answer to ``path`` (CSV or JSON, from the suffix).

    The file is written beside ``path`` and renamed into place, so a reader
    never sees half of it. An existing ``path`` is replaced only if it is an
    earlier export.

    Returns
    -------
    int
        Number of answers written.

    Raises
    ------
    ValueError
        If the format cannot be told from the suffix.
    FileExistsError
        If ``path`` exists and is not an export of unitscope's.
    """
    path = Path(path)
    chosen = _format_of(path, format)
    if path.is_dir() or (path.exists() and not _is_export(path)):
        raise FileExistsError(f"{path} exists and is not a unitscope labels export; choose another file to export to")
    records = [_record(answer) for answer in store.answers()]
    if chosen == "json":
        text = json.dumps({"format": _FORMAT, "version": 1, "answers": records}, indent=1, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            row = dict(record, marked=json.dumps(record["marked"], ensure_ascii=False))
            row["shown_at"] = row["shown_at"] or ""
            writer.writerow({key: neutralise_formula(value) if isinstance(value, str) else value for key, value in row.items()})
        text = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # open(), not mkstemp: the umask applies
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return len(records)


def _integer(value: Any, *, field: str, from_text: bool) -> int:
    if from_text and isinstance(value, str) and _INTEGER.match(value):
        return int(value)  # the range is check_answer's business
    if not from_text and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"{field} must be a whole number (digits 0-9), got {str(value)[:40]!r}")


def _timestamp(value: Any, *, field: str) -> str:
    if isinstance(value, str) and _TIMESTAMP.match(value):
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
            return value
        except ValueError:
            pass
    raise ValueError(f"{field} must be a UTC time like 2025-01-31T12:00:00.000000Z, got {str(value)[:40]!r}")


def _answer(record: dict[Any, Any], where: str, catalog: Catalog, *, from_text: bool) -> Answer:
    try:
        unknown = [str(field) for field in record if field not in FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)[:200]}")
        missing = [field for field in FIELDS if field not in record]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        if from_text:
            record = {key: restore_formula(value) if isinstance(value, str) else value for key, value in record.items()}
        marked = record["marked"]
        if from_text and isinstance(marked, str):
            marked = json.loads(marked)
        checked = check_answer(
            catalog,
            network=record["network"],
            layer=record["layer"],
            unit=_integer(record["unit"], field="unit", from_text=from_text),
            label=record["label"],
            type=record["type"],
            marked=marked,
            n_images=_integer(record["n_images"], field="n_images", from_text=from_text),
        )
        shown_at = record["shown_at"] or None
        return Answer(
            annotator=check_annotator_name(record["annotator"]),
            network=checked.key.network,
            layer=checked.key.layer,
            unit=checked.key.unit,
            label=checked.label,
            type=checked.type,
            marked=checked.marked,
            n_images=checked.n_images,
            shown_at=_timestamp(shown_at, field="shown_at") if shown_at is not None else None,
            submitted_at=_timestamp(record["submitted_at"], field="submitted_at"),
        )
    except LookupError as error:
        raise LookupError(f"{where}: {error}") from None
    except (ValueError, TypeError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{where}: {error}") from None


def read_answers(path: str | Path, *, catalog: Catalog, format: str | None = None) -> list[Answer]:
    """Parse an export file into answers, checking every row as the web app checks an answer.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`export_answers`.
    catalog : Catalog
        The units that may be answered, from the results directory the
        answers go with (``load_catalog(results, n_images=None)``: all
        segmentations, so that an export made with another ``--images`` fits).
    format : {'csv', 'json'}, optional
        Default: from the suffix.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError, LookupError
        Naming the file and row of the first bad record (LookupError: a unit
        that is not in ``catalog``).
    """
    path = Path(path)
    chosen = _format_of(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    try:
        if chosen == "json":
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, RecursionError) as error:
                raise ValueError(f"{path}: not valid JSON ({str(error)[:200]})") from None
            if not isinstance(document, dict) or document.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a unitscope labels export (missing \"format\": \"{_FORMAT}\")")
            records = document.get("answers", [])
            if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
                raise ValueError(f"{path}: \"answers\" must be a list of objects")
            return [_answer(record, f"{path} answer {i}", catalog, from_text=False) for i, record in enumerate(records)]
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != FIELDS:
                missing = [field for field in FIELDS if field not in (reader.fieldnames or ())]
                if missing:
                    raise ValueError(f"{path}:2: missing field(s) {', '.join(missing)}")
            return [_answer(record, f"{path}:{line}", catalog, from_text=True) for line, record in enumerate(reader, 2)]
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None


def import_answers(store: LabelStore, path: str | Path, *, catalog: Catalog, format: str | None = None) -> ImportCounts:
    """Add the answers of an export file to ``store`` (all or nothing).

    Every row is checked first (:func:`read_answers`); the database is
    touched only if all of them pass.

    Returns
    -------
    ImportCounts
        Answers added, already present unchanged, and conflicting with a
        stored answer of the same annotator and unit (the stored one is kept).
    """
    return store.insert_answers(read_answers(path, catalog=catalog, format=format))
