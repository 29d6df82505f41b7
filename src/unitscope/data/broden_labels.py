"""Broden's concept tables: ``label.csv`` (the concepts) and ``category.csv`` (the category order).

In ``label.csv`` the category column lists every category a concept occurs
in with its image count, ``object(123);part(4)``; the concept's category is
the one with the largest count.  See :mod:`unitscope.data.broden` for the
whole layout.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from unitscope.concepts import Concept, ConceptTable

__all__ = ["LabelTable", "read_label_csv", "parse_category_cell"]


_CATEGORY_ENTRY = re.compile(r"^\s*([^()]+?)\s*(?:\(\s*(\d*)\s*\))?\s*$")


def parse_category_cell(cell: str) -> dict[str, int | None]:
    """Parse label.csv's category cell: ``"object(123);part(4)"`` -> ``{"object": 123, "part": 4}``.

    A bare name (``"object"``) maps to ``None``.

    Raises
    ------
    ValueError
        If an entry is not ``name`` or ``name(count)``.
    """
    result: dict[str, int | None] = {}
    for entry in cell.split(";"):
        if not entry.strip():
            continue
        match = _CATEGORY_ENTRY.match(entry)
        if match is None:
            raise ValueError(f"cannot parse category entry {entry!r} (expected 'name' or 'name(count)')")
        name, count = match.group(1), match.group(2)
        result[name] = int(count) if count else None
    return result


def _primary_category(listed: Mapping[str, int | None]) -> str:
    """The category with the largest count; ties (and missing counts) go to the first listed."""
    best, best_count = None, -1
    for name, count in listed.items():
        count = -1 if count is None else count
        if best is None or count > best_count:
            best, best_count = name, count
    return best


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    return int(float(text))


@dataclass(frozen=True)
class LabelTable:
    """What label.csv says: the concepts, where each is listed, and its image frequency."""

    concepts: ConceptTable
    listed: dict[int, dict[str, int | None]]
    frequency: dict[int, int | None]


def read_label_csv(path: str | Path) -> LabelTable:
    """Read a Broden ``label.csv``.

    Row ``0`` (``"-"``) is skipped if present.  A concept's category is the
    one with the largest count in its category cell.  Two concepts with the
    same name in the same category (possible in hand-made files) are told
    apart by appending ``-<number>`` to the later one.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        On a missing column or an unreadable row (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a Broden directory needs label.csv")
    concepts, listed, frequency, seen = [], {}, {}, set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("number", "name", "category") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                number = int(row["number"])
                if number == 0:
                    continue
                cats = parse_category_cell(row["category"] or "")
                if not cats:
                    raise ValueError("empty category")
                freq = _int_or_none(row.get("frequency"))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line}: cannot read label row {row!r} ({exc})") from exc
            name = (row["name"] or "").strip()
            category = _primary_category(cats)
            if (name, category) in seen:
                name = f"{name}-{number}"
            seen.add((name, category))
            concepts.append(Concept(number, name, category))
            listed[number] = cats
            frequency[number] = freq
    return LabelTable(ConceptTable(concepts), listed, frequency)


def _read_category_order(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "name" not in (reader.fieldnames or []):
            raise ValueError(f"{path}: missing column 'name'; found {reader.fieldnames}")
        return [row["name"].strip() for row in reader if (row["name"] or "").strip()]
