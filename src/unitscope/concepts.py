"""Concept vocabularies and per-image annotations, shared by every annotated pool.

Numbering follows Broden's ``label.csv``: concept ``0`` is ``"-"`` (no
concept), real concepts are numbered from 1, and each belongs to one
category (``color``, ``object``, ``part``, ``material``, ``scene``,
``texture``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = ["BRODEN_CATEGORIES", "INDEX_FIXED_COLUMNS", "MAX_MASK_NUMBER", "Concept", "ConceptTable", "Annotation"]

#: Category columns of Broden's index.csv, in file order.
BRODEN_CATEGORIES = ("color", "object", "material", "part", "scene", "texture")

#: The non-category columns of index.csv.
INDEX_FIXED_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")

#: Largest concept number a mask can hold (R + 256 * G with 8-bit channels).
MAX_MASK_NUMBER = 255 + 256 * 255


@dataclass(frozen=True)
class Concept:
    """One concept: its number (>= 1), name and category."""

    number: int
    name: str
    category: str


class ConceptTable:
    """An ordered, numbered vocabulary of concepts.

    Parameters
    ----------
    concepts : sequence of Concept
        Numbers must be unique and >= 1; ``0`` is reserved for "no concept".

    Raises
    ------
    ValueError
        On a duplicate or non-positive number, or a duplicate (name, category).
    """

    def __init__(self, concepts: Sequence[Concept]) -> None:
        self._by_number: dict[int, Concept] = {}
        self._by_key: dict[tuple[str, str], Concept] = {}
        for c in concepts:
            if c.number < 1:
                raise ValueError(f"concept numbers start at 1 (0 means none): {c}")
            if c.number in self._by_number:
                raise ValueError(f"duplicate concept number {c.number}: {c.name!r}")
            if (c.name, c.category) in self._by_key:
                raise ValueError(f"duplicate concept {c.name!r} in category {c.category!r}")
            self._by_number[c.number] = c
            self._by_key[(c.name, c.category)] = c
        self._sorted = sorted(self._by_number.values(), key=lambda c: c.number)

    @classmethod
    def from_names(cls, names_by_category: dict[str, Iterable[str]]) -> "ConceptTable":
        """Number concepts 1, 2, ... in the order given, category by category."""
        concepts, n = [], 1
        for category, names in names_by_category.items():
            for name in names:
                concepts.append(Concept(n, name, category))
                n += 1
        return cls(concepts)

    def __len__(self) -> int:
        return len(self._sorted)

    def __iter__(self):
        return iter(self._sorted)

    def __getitem__(self, number: int) -> Concept:
        try:
            return self._by_number[number]
        except KeyError:
            raise KeyError(f"no concept numbered {number}") from None

    def __contains__(self, number: object) -> bool:
        return number in self._by_number

    @property
    def max_number(self) -> int:
        return self._sorted[-1].number if self._sorted else 0

    @property
    def categories(self) -> list[str]:
        """Category names in order of first appearance."""
        return list(dict.fromkeys(c.category for c in self._sorted))

    def find(self, name: str, category: str | None = None) -> Concept:
        """Return the concept called ``name`` (in ``category`` when given).

        Raises
        ------
        LookupError
            If there is no such concept, or the name is ambiguous across categories.
        """
        if category is not None:
            try:
                return self._by_key[(name, category)]
            except KeyError:
                raise LookupError(f"no concept {name!r} in category {category!r}") from None
        hits = [c for c in self._sorted if c.name == name]
        if len(hits) != 1:
            what = "no concept" if not hits else "ambiguous concept"
            raise LookupError(f"{what} named {name!r}")
        return hits[0]

    def in_category(self, category: str) -> list[Concept]:
        return [c for c in self._sorted if c.category == category]

    def names(self) -> list[str]:
        return [c.name for c in self._sorted]

    def to_records(self) -> list[dict]:
        return [{"number": c.number, "name": c.name, "category": c.category} for c in self._sorted]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConceptTable) and self._sorted == other._sorted

    def __repr__(self) -> str:
        return f"ConceptTable({len(self)} concepts, categories={self.categories})"


@dataclass
class Annotation:
    """The concepts of one image.

    Attributes
    ----------
    masks : dict of str to list of ndarray
        Per category, a list of integer label maps of shape ``(sh, sw)``:
        each pixel holds a concept number (0 = none).  Several maps per
        category allow overlapping labels (an object and its part).
    image_labels : dict of str to list of int
        Per category, concepts that hold for the whole image (e.g. the scene).
    """

    masks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    image_labels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def mask_shape(self) -> tuple[int, int] | None:
        for maps in self.masks.values():
            for m in maps:
                return tuple(m.shape)
        return None

    def concepts(self) -> set[int]:
        """Every concept number present in the image (pixel or image level)."""
        found: set[int] = set()
        for maps in self.masks.values():
            for m in maps:
                found.update(int(v) for v in np.unique(m) if v)
        for labels in self.image_labels.values():
            found.update(int(v) for v in labels if v)
        return found

    def concept_mask(self, number: int, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Boolean mask of one concept, ``(sh, sw)``; image-level labels cover the image."""
        shape = shape or self.mask_shape
        if shape is None:
            raise ValueError("annotation has no pixel masks; pass the mask shape")
        out = np.zeros(shape, dtype=bool)
        for maps in self.masks.values():
            for m in maps:
                out |= m == number
        for labels in self.image_labels.values():
            if number in labels:
                out[:] = True
        return out
