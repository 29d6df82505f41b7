"""One set of rules for an answer, wherever it comes from.

The web app (``POST /api/answers``) and ``unitscope label import`` pass every
answer through :func:`check_answer`, so a file cannot put into the database
what an annotator could not have typed into the page: the unit must be one the
results directory offers for labeling, the label a short line of text, the
type one of the paper's six, the marked images some of those the annotator
was shown. Reports computed from the database can then trust it.

Text is refused when it holds characters that change how it is displayed
rather than what it says: control characters (``\\x00``, newlines, tabs),
unpaired surrogates (which no encoder can write), line and paragraph
separators and the bidirectional overrides of "Trojan Source" attacks.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

from .catalog import Catalog, UnitEntry, UnitKey
from .taxonomy import check_type

__all__ = [
    "MAX_LABEL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_IMAGE_ID_LENGTH",
    "MAX_MARKED",
    "MAX_UNIT",
    "CheckedAnswer",
    "check_answer",
    "check_text",
    "check_unit",
]

MAX_LABEL_LENGTH = 100
MAX_NAME_LENGTH = 200
MAX_IMAGE_ID_LENGTH = 300
MAX_MARKED = 1000
#: Units are channel numbers; SQLite stores them as 64-bit integers, a layer has far fewer.
MAX_UNIT = 2**31 - 1

_HIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class CheckedAnswer:
    """An answer that passed :func:`check_answer`: the unit it is about and the cleaned fields."""

    entry: UnitEntry
    label: str
    type: str
    marked: tuple[str, ...]
    n_images: int

    @property
    def key(self) -> UnitKey:
        return self.entry.key


def _short(value: Any) -> str:
    text = repr(value)  # repr escapes control characters and surrogates: the message stays one printable line
    return text if len(text) <= 40 else text[:37] + "..."


def check_text(value: Any, *, field: str, max_length: int) -> str:
    """Return ``value`` with surrounding white space removed, if it is acceptable text.

    Raises
    ------
    ValueError
        If ``value`` is not a string, is empty once stripped, is longer than
        ``max_length`` characters or holds control characters, unpaired
        surrogates, line separators or bidirectional overrides.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field} must be text, got {type(value).__name__}")
    if any(unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _BIDI_CONTROLS for char in value):
        raise ValueError(f"{field} contains control characters (line breaks, NUL, bidirectional overrides, ...)")
    value = value.strip()
    if not value:
        raise ValueError(f"{field} is empty")
    if len(value) > max_length:
        raise ValueError(f"{field} has {len(value)} characters; at most {max_length} are accepted")
    return value


def check_unit(value: Any) -> int:
    """Return ``value`` if it is a unit number: an ``int`` (not a bool) in ``0..MAX_UNIT``.

    Raises
    ------
    ValueError
        Otherwise, naming the accepted range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIT:
        raise ValueError(f"unit must be an integer in 0..{MAX_UNIT}, got {_short(value)}")
    return value


def _check_marked(marked: Any) -> tuple[str, ...]:
    if not isinstance(marked, (list, tuple)) or not all(isinstance(item, str) for item in marked):
        raise ValueError("marked must be a list of image ids")
    if len(marked) > MAX_MARKED:
        raise ValueError(f"{len(marked)} marked images; at most {MAX_MARKED} are accepted")
    for item in marked:
        if len(item) > MAX_IMAGE_ID_LENGTH or any(unicodedata.category(char) in _HIDDEN_CATEGORIES for char in item):
            raise ValueError(f"marked image id {_short(item)} is not an image id of this results directory")
    if len(set(marked)) != len(marked):
        raise ValueError("marked images contain duplicates")
    return tuple(marked)


def check_answer(
    catalog: Catalog,
    *,
    network: Any,
    layer: Any,
    unit: Any,
    label: Any,
    type: Any,
    marked: Sequence[str] = (),
    n_images: int | None = None,
) -> CheckedAnswer:
    """Check one answer against the rules of the labeling task and the units of ``catalog``.

    Parameters
    ----------
    catalog : Catalog
        The units that can be labelled (:func:`~unitscope.label.catalog.load_catalog`).
    network, layer, unit : str, str, int
        The unit answered; it must be in ``catalog``.
    label : str
        The concept named; 1-100 characters once stripped, no control characters.
    type : str
        One of :data:`~unitscope.label.taxonomy.TYPES`.
    marked : sequence of str, optional
        Ids of the shown images marked as not fitting; distinct.
    n_images : int, optional
        How many of the unit's top segmentations were shown. None: all those
        of the catalog entry (what the app shows now); otherwise it must be in
        ``1..len(entry.images)`` (an import made with another ``--images``).

    Returns
    -------
    CheckedAnswer
        The catalog entry, the stripped label and the other fields as given.

    Raises
    ------
    ValueError
        For a field that breaks a rule; the message names the field and what
        is accepted.
    LookupError
        If the unit is not in ``catalog``.
    """
    network = check_text(network, field="network", max_length=MAX_NAME_LENGTH)
    layer = check_text(layer, field="layer", max_length=MAX_NAME_LENGTH)
    unit = check_unit(unit)
    label = check_text(label, field="the concept label", max_length=MAX_LABEL_LENGTH)
    type = check_type(type) if isinstance(type, str) else check_type(repr(type))
    marked = _check_marked(marked)
    key = UnitKey(network, layer, unit)
    entry = catalog.get(key)
    if entry is None:
        raise LookupError(f"unknown unit {key}: not a unit to label in {catalog.results_dir}")
    available = len(entry.images)
    if n_images is None:
        n_images = available
    elif isinstance(n_images, bool) or not isinstance(n_images, int) or not 1 <= n_images <= available:
        raise ValueError(f"n_images of unit {key} must be in 1..{available} (its segmentations), got {_short(n_images)}")
    shown = {image.image_id for image in entry.images[:n_images]}
    unknown = [item for item in marked if item not in shown]
    if unknown:
        raise ValueError(f"marked images not shown for unit {key}: {unknown[:5]}")
    return CheckedAnswer(entry=entry, label=label, type=type, marked=marked, n_images=n_images)
