"""Class lists of index-mask pools, and masks decoded to class values with them.

An index-mask pool's masks hold, per pixel, a *class value*: a byte of a
grey (mode ``L``) or 16-bit mask, the index of a palette (mode ``P``) mask,
or a colour of an RGB mask.  A :class:`ClassList` says what each value means
-- a name, a category (``object``, ``part``, ``material``, ...) and, for
colour masks, the colour that encodes it -- and which values mean "no label"
(VOC's 255 boundary, ADE20K's 0).  A mask pixel whose value is in neither is
an error, never read as something else: the same bytes mean different
things in different datasets (CamVid's 8 is a car, ADE20K's is a bed).

Class files (``--classes FILE``) are CSV files with a header:

* ``value,name[,category][,color]`` -- one row per value; ``category`` is one
  of :data:`MASK_CATEGORIES` (default ``object``) or ``ignore`` for a value
  that means "no label"; ``color`` (``#rrggbb`` or ``R G B``) is the colour
  of the value in palette or RGB masks;
* ADE20K's ``objectInfo150.csv`` / ``objectInfo150.txt`` (``Idx,...,Name``,
  comma- or tab-separated): value = ``Idx``, name = the first synonym of
  ``Name``, category ``object``, and 0 means "unlabelled".

The built-in lists of Pascal VOC and Cityscapes are here too
(:func:`voc_classes`, :func:`cityscapes_classes`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from unitscope.concepts import BRODEN_CATEGORIES
from .errors import CorruptFileError
from .pools import _DECODE_ERRORS

__all__ = [
    "MASK_CATEGORIES",
    "MaskClass",
    "ClassList",
    "read_class_file",
    "decode_class_mask",
    "voc_classes",
    "cityscapes_classes",
]

#: Categories a class file may give (Broden's), plus ``ignore`` for "no label".
MASK_CATEGORIES = BRODEN_CATEGORIES
_IGNORE = "ignore"
#: Largest class value a mask can hold (16-bit masks).
_MAX_VALUE = 65535


@dataclass(frozen=True)
class MaskClass:
    """One class value of a mask: its name, category and colour; or a "no label" value."""

    value: int
    name: str
    category: str = "object"
    color: tuple[int, int, int] | None = None
    ignore: bool = False


class ClassList:
    """What each value of an index mask means.

    Parameters
    ----------
    classes : sequence of MaskClass
        Values must be unique, between 0 and 65535; colours (when given) too.
    source : str
        Where the list comes from, for messages (``"classes.csv"``,
        ``"the built-in VOC class list"``).

    Raises
    ------
    ValueError
        On a duplicate value or colour, a value out of range, or no class
        that is not ignored.
    """

    def __init__(self, classes: Sequence[MaskClass], *, source: str) -> None:
        self.source = source
        self.entries = tuple(sorted(classes, key=lambda c: c.value))
        seen: dict[int, MaskClass] = {}
        colors: dict[tuple[int, int, int], int] = {}
        for c in self.entries:
            if not 0 <= c.value <= _MAX_VALUE:
                raise ValueError(f"{source}: class value {c.value} ({c.name!r}) is outside 0..{_MAX_VALUE}")
            if c.value in seen:
                raise ValueError(f"{source}: class value {c.value} is listed twice "
                                 f"({seen[c.value].name!r} and {c.name!r}); each value needs one class")
            seen[c.value] = c
            if c.color is not None:
                if c.color in colors:
                    raise ValueError(f"{source}: colour {_hex(c.color)} is given to values {colors[c.color]} "
                                     f"and {c.value}; each colour needs one class")
                colors[c.color] = c.value
        if not any(not c.ignore for c in self.entries):
            raise ValueError(f"{source}: lists no class (only ignored values)")
        self._colors = colors

    @classmethod
    def from_names(cls, names: Sequence[str], *, category: str = "object",
                   categories: Mapping[str, str] | None = None, ignore: Iterable[int | str] = (),
                   source: str = "the class list") -> "ClassList":
        """Classes by pixel value ``0, 1, ...``; ``ignore`` holds values or class names.

        Raises
        ------
        ValueError
            If ``categories`` or ``ignore`` names a class not in ``names``, or
            an ignored value is negative.
        """
        names = [str(n) for n in names]
        if not names:
            raise ValueError("classes must name at least one class")
        categories = dict(categories or {})
        unknown = sorted(set(categories) - set(names))
        if unknown:
            raise ValueError(f"categories name unknown classes {unknown}; classes are {names}")
        ignored: set[int] = set()
        for value in ignore:
            if isinstance(value, str):
                if value not in names:
                    raise ValueError(f"ignore names unknown class {value!r}; classes are {names}")
                ignored.add(names.index(value))
            elif int(value) < 0:
                raise ValueError(f"ignored pixel values must be >= 0, got {value}")
            else:
                ignored.add(int(value))
        entries = [MaskClass(v, n, categories.get(n, category), ignore=v in ignored) for v, n in enumerate(names)]
        entries += [MaskClass(v, "ignored", _IGNORE, ignore=True) for v in sorted(ignored) if v >= len(names)]
        return cls(entries, source=source)

    @property
    def classes(self) -> list[MaskClass]:
        """The classes that are labels (ignored values left out), by value."""
        return [c for c in self.entries if not c.ignore]

    @property
    def ignored(self) -> tuple[int, ...]:
        """The values that mean "no label"."""
        return tuple(c.value for c in self.entries if c.ignore)

    @property
    def has_colors(self) -> bool:
        """Whether palette and RGB masks are decoded by colour."""
        return bool(self._colors)

    def value_of_color(self, color: tuple[int, int, int]) -> int | None:
        return self._colors.get(tuple(int(x) for x in color))

    def describe(self) -> str:
        """``"SOURCE (N classes, values A..B; ignored X, Y)"``, for messages."""
        values = [c.value for c in self.classes]
        ignored = ", ".join(str(v) for v in self.ignored) or "none"
        return f"{self.source} ({len(values)} classes, values {values[0]}..{values[-1]}; ignored {ignored})"

    def key(self) -> list:
        """Plain values that change whenever decoding could (for cache keys)."""
        return [[c.value, c.name, c.category, c.color, c.ignore] for c in self.entries]

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"ClassList({self.describe()})"


def open_mask(path: Path) -> Image.Image:
    """Open and decode a mask file; a missing or unreadable file is a :class:`CorruptFileError`."""
    if not path.is_file():
        raise CorruptFileError(path, "mask file is missing")
    try:
        image = Image.open(path)
        image.load()
    except _DECODE_ERRORS as exc:
        raise CorruptFileError(path, f"not a readable mask image ({exc})") from exc
    if image.mode == "F":  # truncating floats to concept numbers would invent labels
        raise CorruptFileError(path, "mask is a floating-point image (mode 'F'); masks hold integer numbers "
                               "(8-bit or 16-bit grey, palette, or RGB)")
    return image


def _hex(color: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % tuple(color)


def _parse_color(text: str, where: str) -> tuple[int, int, int] | None:
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    parts = re.split(r"[\s;/]+", text)
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)
    raise ValueError(f"{where}: colour {text!r} is not '#rrggbb' or 'R G B' (0..255 each)")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"class file {path} is not UTF-8 text ({exc.reason})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"class file {path} is empty; it needs a header value,name[,category][,color]")
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    reader.fieldnames = header
    rows = [(n + 2, row) for n, row in enumerate(reader) if any((v or "").strip() for v in row.values()
                                                                  if isinstance(v, str))]
    return header, rows


def _int_cell(row: dict, column: str, where: str) -> int:
    text = (row.get(column) or "").strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: {column} {text!r} is not an integer") from None


def read_class_file(path: str | Path) -> ClassList:
    """Read a class file: ``value,name[,category][,color]`` or ADE20K's ``objectInfo150``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ClassList

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        On missing columns, a value that is not an integer, an empty name,
        an unknown category or colour, a duplicate value, colour or name.

    Examples
    --------
    A VOC-like list with 255 as the boundary::

        value,name,category,color
        0,background,object,#000000
        1,aeroplane,object,#800000
        255,boundary,ignore,#e0e0c0
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"class file {path} does not exist")
    header, rows = _read_rows(path)
    if "idx" in header and "name" in header:
        return _object_info(path, rows)
    missing = [c for c in ("value", "name") if c not in header]
    if missing:
        raise ValueError(f"class file {path} lacks column(s) {', '.join(missing)}: it needs a header "
                         "value,name[,category][,color] (or ADE20K's objectInfo150 Idx,...,Name); "
                         f"found {','.join(header)}")
    if not rows:
        raise ValueError(f"class file {path} lists no classes")
    entries, names = [], {}
    for line, row in rows:
        where = f"{path} line {line}"
        value = _int_cell(row, "value", where)
        name = (row.get("name") or "").strip()
        if not name:
            raise ValueError(f"{where}: empty name")
        category = (row.get("category") or "").strip().lower() or "object"
        if category not in MASK_CATEGORIES + (_IGNORE,):
            raise ValueError(f"{where}: category {category!r} is not one of "
                             f"{', '.join(MASK_CATEGORIES + (_IGNORE,))}")
        if category != _IGNORE:
            if (name, category) in names:
                raise ValueError(f"{where}: class {name!r} ({category}) is listed twice, "
                                 f"values {names[name, category]} and {value}")
            names[name, category] = value
        entries.append(MaskClass(value, name, category, _parse_color(row.get("color") or "", where),
                                 ignore=category == _IGNORE))
    return ClassList(entries, source=str(path))


def _object_info(path: Path, rows: list[tuple[int, dict]]) -> ClassList:
    """ADE20K SceneParse150's objectInfo150: Idx 1..150 and names; 0 is "unlabelled"."""
    entries = [MaskClass(0, "unlabelled", _IGNORE, ignore=True)]
    names: dict[str, int] = {}
    for line, row in rows:
        where = f"{path} line {line}"
        value = _int_cell(row, "idx", where)
        if value == 0:
            raise ValueError(f"{where}: Idx 0 is ADE20K's 'unlabelled'; classes start at 1")
        # "building, edifice" (the official .txt) or "building;edifice" (the .csv copies): the first synonym.
        name = re.split(r"[;,]", row.get("name") or "")[0].strip()
        if not name:
            raise ValueError(f"{where}: empty name")
        if name in names:  # a shared first synonym: keep both apart by their Idx
            name = f"{name} ({value})"
        names[name] = value
        entries.append(MaskClass(value, name))
    return ClassList(entries, source=str(path))


def voc_classes() -> ClassList:
    """Pascal VOC's 21 classes (0 = background) in VOC's palette; 255 (boundary) is ignored."""
    names = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor")
    entries = [MaskClass(v, n, color=_voc_color(v)) for v, n in enumerate(names)]
    entries.append(MaskClass(255, "boundary", _IGNORE, _voc_color(255), ignore=True))
    return ClassList(entries, source="the built-in VOC class list")


def _voc_color(value: int) -> tuple[int, int, int]:
    """VOC's palette (VOCdevkit's labelcolormap): the bits of the value spread over R, G, B."""
    r = g = b = 0
    for shift in range(8):
        r |= ((value >> 0) & 1) << (7 - shift)
        g |= ((value >> 1) & 1) << (7 - shift)
        b |= ((value >> 2) & 1) << (7 - shift)
        value >>= 3
    return r, g, b


#: Cityscapes label ids (cityscapesScripts' helpers/labels.py): name, category, ignoreInEval.
#: The flat ground, sky and terrain go to ``material`` (as CamVid's sky, road and pavement).
_CITYSCAPES = (
    ("unlabeled", "object", True), ("ego vehicle", "object", True), ("rectification border", "object", True),
    ("out of roi", "object", True), ("static", "object", True), ("dynamic", "object", True),
    ("ground", "material", True), ("road", "material", False), ("sidewalk", "material", False),
    ("parking", "material", True), ("rail track", "material", True), ("building", "object", False),
    ("wall", "object", False), ("fence", "object", False), ("guard rail", "object", True),
    ("bridge", "object", True), ("tunnel", "object", True), ("pole", "object", False),
    ("polegroup", "object", True), ("traffic light", "object", False), ("traffic sign", "object", False),
    ("vegetation", "object", False), ("terrain", "material", False), ("sky", "material", False),
    ("person", "object", False), ("rider", "object", False), ("car", "object", False),
    ("truck", "object", False), ("bus", "object", False), ("caravan", "object", True),
    ("trailer", "object", True), ("train", "object", False), ("motorcycle", "object", False),
    ("bicycle", "object", False),
)


def cityscapes_classes() -> ClassList:
    """Cityscapes label ids 0..33; the ids the official table ignores in evaluation are ignored."""
    entries = [MaskClass(v, n, _IGNORE if skip else cat, ignore=skip) for v, (n, cat, skip) in enumerate(_CITYSCAPES)]
    return ClassList(entries, source="the built-in Cityscapes label-id list")


def decode_class_mask(path: str | Path, classes: ClassList) -> np.ndarray:
    """Read a mask file as class values, ``(H, W)`` int32.

    Grey masks (``L``, ``I``, ``I;16``) hold the values; a palette (``P``)
    mask holds them as palette indices -- unless ``classes`` has colours, then
    each index's palette colour is looked up; an RGB mask needs ``classes``
    with colours (or three equal channels, read as grey).

    Raises
    ------
    CorruptFileError
        If the file is missing or unreadable, holds a colour that is not in
        ``classes``, or is a colour mask and ``classes`` has no colours.
    """
    path = Path(path)
    image = open_mask(path)
    if image.mode == "P":
        indices = np.asarray(image)
        if not classes.has_colors:
            return indices.astype(np.int32)
        palette = image.getpalette() or []
        lut = np.full(256, -1, dtype=np.int32)
        unknown = []
        for i in np.flatnonzero(np.bincount(indices.ravel(), minlength=256)):
            color = tuple(palette[3 * i:3 * i + 3])
            value = classes.value_of_color(color) if len(color) == 3 else None
            if value is None:
                unknown.append(_hex(color) if len(color) == 3 else f"index {i} (no palette entry)")
            else:
                lut[i] = value
        if unknown:
            raise CorruptFileError(path, f"palette colours {unknown[:8]} are not in {classes.describe()}")
        return lut[indices]
    data = np.asarray(image)
    if data.ndim == 2:
        return data.astype(np.int32)
    if data.shape[2] == 2:  # LA: the grey channel holds the value
        return data[:, :, 0].astype(np.int32)
    rgb = data[:, :, :3].astype(np.int32)
    if classes.has_colors:
        codes, inverse = np.unique((rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2], return_inverse=True)
        colors = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in codes.tolist()]
        values = [classes.value_of_color(c) for c in colors]
        unknown = [_hex(c) for c, v in zip(colors, values) if v is None]
        if unknown:
            raise CorruptFileError(path, f"colours {unknown[:8]} are not in {classes.describe()}")
        return np.asarray(values, dtype=np.int32)[inverse.reshape(rgb.shape[:2])]
    if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2]):
        return rgb[:, :, 0]
    raise CorruptFileError(path, f"is a colour ({image.mode}) mask but {classes.source} gives no colours: "
                                 "pass --classes FILE with a color column (#rrggbb) for each class")
