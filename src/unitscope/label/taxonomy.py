"""The paper's taxonomy of unit types and how labels are compared.

Zhou et al. (2015) asked annotators to put each unit's concept into one of six
types. The keys below are used everywhere in unitscope (automatic ``type``
column, human answers, report tables), always in this order.
"""

from __future__ import annotations

import re

from unitscope.taxonomy import TYPE_NAMES, TYPES  # shared with the dissection and the report

__all__ = ["TYPES", "TYPE_NAMES", "normalize_label", "label_key", "labels_match", "check_type"]

_SPACE = re.compile(r"\s+")
# Broden names a few concepts with a category suffix (``street-s`` is the
# scene, ``red-c`` the colour); a person writes ``street`` and ``red``.
_BRODEN_SUFFIX = re.compile(r"-[sc]$")


def check_type(value: str) -> str:
    """Return ``value`` if it is one of :data:`TYPES`.

    Raises
    ------
    ValueError
        If ``value`` is not a type key.
    """
    if value not in TYPES:
        raise ValueError(f"unknown unit type {value!r}; expected one of {', '.join(TYPES)}")
    return value


def normalize_label(label: str) -> str:
    """Canonical form of a concept label, used to count votes and compare.

    Lower case, ``_`` read as a space, runs of white space collapsed, Broden's
    ``-s`` / ``-c`` category suffix dropped.

    Examples
    --------
    >>> normalize_label("  Street-s ")
    'street'
    >>> normalize_label("Coffee_Table")
    'coffee table'
    """
    text = _SPACE.sub(" ", label.replace("_", " ")).strip().lower()
    return _BRODEN_SUFFIX.sub("", text).strip()


def label_key(label: str) -> str:
    """The key under which labels are counted as the same concept.

    :func:`normalize_label`, then one plural ``s`` dropped (not from ``ss``
    endings, not from words of three letters or fewer): ``beds`` and ``bed``
    share a key, ``glass`` and ``bus`` keep theirs.

    Examples
    --------
    >>> label_key("Beds"), label_key("glass"), label_key("bus")
    ('bed', 'glass', 'bus')
    """
    text = normalize_label(label)
    if len(text) > 3 and text.endswith("s") and not text.endswith("ss"):
        return text[:-1]
    return text


def labels_match(first: str, second: str) -> bool:
    """Whether two labels name the same concept (same :func:`label_key`).

    Examples
    --------
    >>> labels_match("Beds", "bed")
    True
    >>> labels_match("bed", "sofa")
    False
    """
    a, b = label_key(first), label_key(second)
    return bool(a) and a == b
