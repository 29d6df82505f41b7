"""Export and import answers as CSV or JSON.

Both formats hold the same fields as the database, one answer per row:
``annotator, network, layer, unit, label, type, marked, n_images, shown_at,
submitted_at``. In CSV, ``marked`` is a JSON array of image ids (an id may
hold any character, so a separator could be ambiguous) and a missing
``shown_at`` is an empty cell. Exporting, importing into an empty database
and exporting again gives the same file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .storage import Answer, ImportCounts, LabelStore, check_annotator_name
from .taxonomy import check_type

__all__ = ["FIELDS", "export_answers", "import_answers", "read_answers"]

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


def export_answers(store: LabelStore, path: str | Path, *, format: str | None = None) -> int:
    """Write every stored answer to ``path`` (CSV or JSON, from the suffix).

    Returns
    -------
    int
        Number of answers written.
    """
    path = Path(path)
    chosen = _format_of(path, format)
    records = [_record(answer) for answer in store.answers()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "json":
        text = json.dumps({"format": _FORMAT, "version": 1, "answers": records}, indent=1, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            row = dict(record, marked=json.dumps(record["marked"], ensure_ascii=False))
            row["shown_at"] = row["shown_at"] or ""
            writer.writerow(row)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    return len(records)


def _answer(record: dict[str, Any], where: str) -> Answer:
    try:
        missing = [field for field in FIELDS if field not in record]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        marked = record["marked"]
        if isinstance(marked, str):
            marked = json.loads(marked)
        if not isinstance(marked, list) or not all(isinstance(item, str) for item in marked):
            raise ValueError("marked must be a list of image ids")
        n_images = int(record["n_images"])
        if n_images < 1 or len(marked) > n_images or len(set(marked)) != len(marked):
            raise ValueError(f"{len(marked)} marked images out of {n_images}")
        label = str(record["label"])
        if not label.strip():
            raise ValueError("empty label")
        shown_at = record["shown_at"] or None
        return Answer(
            annotator=check_annotator_name(str(record["annotator"])),
            network=str(record["network"]),
            layer=str(record["layer"]),
            unit=int(record["unit"]),
            label=label,
            type=check_type(str(record["type"])),
            marked=tuple(marked),
            n_images=n_images,
            shown_at=str(shown_at) if shown_at is not None else None,
            submitted_at=str(record["submitted_at"]),
        )
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{where}: {error}") from None


def read_answers(path: str | Path, *, format: str | None = None) -> list[Answer]:
    """Parse an export file into answers, checking every field.

    Raises
    ------
    ValueError
        Naming the file and row of the first bad record.
    """
    path = Path(path)
    chosen = _format_of(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if chosen == "json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a unitscope labels export (missing \"format\": \"{_FORMAT}\")")
        return [_answer(record, f"{path} answer {i}") for i, record in enumerate(document.get("answers", []))]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [_answer(record, f"{path}:{line}") for line, record in enumerate(reader, start=2)]


def import_answers(store: LabelStore, path: str | Path, *, format: str | None = None) -> ImportCounts:
    """Add the answers of an export file to ``store`` (all or nothing).

    Returns
    -------
    ImportCounts
        Answers added, already present unchanged, and conflicting with a
        stored answer of the same annotator and unit (the stored one is kept).
    """
    return store.insert_answers(read_answers(path, format=format))
