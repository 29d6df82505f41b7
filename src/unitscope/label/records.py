"""The records of the labeling database: annotators, answers, progress, and why an answer is refused.

Plain frozen dataclasses, read and written by
:class:`~unitscope.label.storage.LabelStore`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import UnitKey

__all__ = ["Annotator", "Answer", "Progress", "ImportCounts", "AnswerRefused", "DuplicateAnswer", "UnitFull"]


class AnswerRefused(ValueError):
    """An answer that the assignment rules do not allow."""


class DuplicateAnswer(AnswerRefused):
    """The annotator already answered this unit."""


class UnitFull(AnswerRefused):
    """The unit already has its ``k`` annotations."""


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str


@dataclass(frozen=True)
class Answer:
    """One annotator's answer for one unit.

    ``marked`` holds the image ids the annotator marked as *not* fitting the
    concept, out of the ``n_images`` shown.
    """

    annotator: str
    network: str
    layer: str
    unit: int
    label: str
    type: str
    marked: tuple[str, ...]
    n_images: int
    shown_at: str | None
    submitted_at: str

    @property
    def key(self) -> UnitKey:
        return UnitKey(self.network, self.layer, self.unit)

    @property
    def precision(self) -> float:
        """Share of the shown images that fit: ``1 - len(marked) / n_images``."""
        return 1.0 - len(self.marked) / self.n_images


@dataclass(frozen=True)
class Progress:
    """How far the labeling is, overall and for one annotator."""

    mine: int
    available: int
    units_total: int
    units_complete: int
    annotations_done: int
    annotations_needed: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportCounts:
    """What :meth:`LabelStore.insert_answers` did: rows added, rows already
    present unchanged, rows that differ from a stored answer (kept as stored)."""

    added: int
    unchanged: int
    conflicting: int
