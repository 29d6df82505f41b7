"""Reading and writing the Broden layout of Network Dissection (SPEC section 8).

A Broden directory holds::

    index.csv        image,split,ih,iw,sh,sw,color,object,material,part,scene,texture
    label.csv        number,name,category,frequency,coverage,syns
    category.csv     name,first,last,count,frequency
    c_<category>.csv code,number,name,frequency,coverage
    images/          the images and the masks named in index.csv

Each category cell of ``index.csv`` is a ``;``-separated list: an integer is
an image-level label (the scene), a file name is a PNG mask, relative to
``images/``, whose pixel holds the concept number ``R + 256 * G``.  Masks are
``sh x sw``, possibly smaller than the ``ih x iw`` image.  In
``label.csv`` the category column lists every category a concept occurs in
with its image count, ``object(123);part(4)``; the concept's category is the
one with the largest count (these two files are read by
:mod:`unitscope.data.broden_labels`).

:class:`BrodenPool` reads any such directory, including the real Broden
release (extra columns ignored, empty cells allowed).  :func:`write_broden`
(in :mod:`unitscope.data.broden_write`, importable from here) writes one,
streaming and atomically, e.g. from the synthetic world.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from .annotated import AnnotatedPool, decode_broden_mask, file_stamp, image_size
from .broden_write import BrodenRecord, write_broden
from unitscope.concepts import BRODEN_CATEGORIES, INDEX_FIXED_COLUMNS, MAX_MASK_NUMBER, Annotation, ConceptTable

from .broden_labels import _int_or_none, _read_category_order, read_label_csv
from .decode import check_file
from .errors import CorruptFileError
from .pools import IMAGE_EXTENSIONS, PoolItem, _unique_ids, check_header, existing_folder

__all__ = ["BrodenPool", "BrodenRecord", "write_broden"]


def _size_cell(text: str, name: str, index_path: Path, line: int) -> int | None:
    try:
        value = _int_or_none(text)
    except ValueError:
        value = 0
    if value is not None and value < 1:
        raise ValueError(f"{index_path}, line {line}: {name} must be a positive integer (pixels), got {text!r}")
    return value


_INTEGER = re.compile(r"^[+-]?\d+$")


def _label_cell(text: str, category: str, index_path: Path, line: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``(mask file names, image-level concept numbers)`` of one category cell of index.csv."""
    masks, numbers = [], []
    for token in (t.strip() for t in text.split(";")):
        if not token:
            continue
        if _INTEGER.match(token):
            numbers.append(int(token))
        elif token.lower().endswith(IMAGE_EXTENSIONS):
            masks.append(token)
        else:
            raise ValueError(
                f"{index_path}, line {line}: {category} entry {token!r} is neither a concept number "
                "(an integer) nor a mask file name (.png)"
            )
    return tuple(masks), tuple(numbers)


def _number_table(concepts: ConceptTable) -> np.ndarray:
    """Lookup table: ``table[n]`` is true for 0 and the numbers of ``concepts`` (up to 65535)."""
    table = np.zeros(MAX_MASK_NUMBER + 1, dtype=bool)
    table[0] = True
    table[[c.number for c in concepts if c.number <= MAX_MASK_NUMBER]] = True
    return table


def _is_known(table: np.ndarray, values):
    """``table[values]``, false for values outside the table (negative or beyond 16 bits)."""
    values = np.asarray(values)
    inside = (values >= 0) & (values < len(table))
    return inside & table[np.where(inside, values, 0)]


def _number_range(concepts: ConceptTable) -> str:
    numbers = [c.number for c in concepts]
    if not numbers:
        return "it has none"
    return f"{len(numbers)} concepts numbered {min(numbers)}..{max(numbers)}"


@dataclass(frozen=True)
class BrodenEntry:
    """One row of index.csv, restricted to the pool's categories."""

    image: str
    split: str
    ih: int | None
    iw: int | None
    sh: int | None
    sw: int | None
    masks: dict[str, tuple[str, ...]]
    labels: dict[str, tuple[int, ...]]
    line: int = 0
    mask_size_from: str = "sh x sw"


class BrodenPool(AnnotatedPool):
    """A Broden-layout directory as an annotated pool.

    Parameters
    ----------
    root : str or Path
        The directory holding ``index.csv``, ``label.csv`` and ``images/``.
    categories : sequence of str, optional
        Categories to read (default: every category column of index.csv that
        has concepts).  ``pool.concepts`` keeps the concepts listed in them.
    split : str or sequence of str, optional
        Keep only rows of these splits (``"train"``, ``"val"``).
    label_category : str, optional
        Give each item ``label`` = the position of its image-level concept of
        this category (e.g. ``"scene"``) among ``class_names``, the names of
        that category's concepts in number order; ``-1`` when it has none.
    source : str, optional
        Pool name; defaults to the directory's name.
    transform, preprocessing, skip_bad, include_annotation :
        See :class:`~unitscope.data.index_masks.IndexMaskPool`.

    Raises
    ------
    FileNotFoundError
        If ``root``, ``index.csv`` or ``label.csv`` is missing.
    LookupError
        If a requested category is not a column of index.csv.
    ValueError
        If the index is unreadable or keeps no row.

    Notes
    -----
    Ids are the image paths relative to ``images/`` without extension
    (``"ade20k/ADE_train_00000001"``).  Items carry ``meta["split"]``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        categories: Sequence[str] | None = None,
        split: str | Sequence[str] | None = None,
        label_category: str | None = None,
        source: str | None = None,
        transform: Callable | None = None,
        preprocessing: Any = None,
        skip_bad: bool = False,
        include_annotation: bool = False,
    ) -> None:
        self.root = existing_folder(root, "Broden directory")
        self.image_dir = self.root / "images"
        index_path = self.root / "index.csv"
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{self.root} is not a Broden directory: index.csv is missing "
                "(expected index.csv, label.csv, category.csv and images/)"
            )
        labels = read_label_csv(self.root / "label.csv")
        category_order = _read_category_order(self.root / "category.csv")
        listed_categories = {c for cats in labels.listed.values() for c in cats}

        with open(index_path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise ValueError(f"{index_path} is empty") from None
            if "image" not in header:
                raise ValueError(f"{index_path}: missing column 'image'; found {header}")
            known = set(BRODEN_CATEGORIES) | set(category_order) | listed_categories
            index_categories = [h for h in header if h in known and h not in INDEX_FIXED_COLUMNS]
            if categories is None:
                selected = [c for c in index_categories if c in listed_categories]
            else:
                selected = list(dict.fromkeys(categories))
                unknown = [c for c in selected if c not in index_categories]
                if unknown:
                    raise LookupError(
                        f"categories {unknown} are not columns of {index_path}; available: {index_categories}"
                    )
            splits = None if split is None else ({split} if isinstance(split, str) else set(split))
            column = {name: header.index(name) for name in header}
            if categories is None and not selected:
                raise ValueError(
                    f"{index_path} has no category column with concepts in label.csv (expected some of "
                    f"{', '.join(BRODEN_CATEGORIES)}); its columns are {header}"
                )
            rows, seen_splits = [], set()
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    # A dropped cell shifts every later one into the wrong column: never guess.
                    raise ValueError(
                        f"{index_path}, line {line}: {len(row)} cells but the header has {len(header)} "
                        f"columns ({','.join(header)})"
                    )
                get = lambda name: row[column[name]].strip() if name in column else ""  # noqa: E731
                row_split = get("split")
                seen_splits.add(row_split)
                if splits is not None and row_split not in splits:
                    continue
                image = get("image")
                if not image:
                    raise ValueError(f"{index_path}, line {line}: empty image cell")
                ih, iw, sh, sw = (_size_cell(get(c), c, index_path, line) for c in ("ih", "iw", "sh", "sw"))
                masks, image_labels = {}, {}
                for cat in selected:
                    masks[cat], image_labels[cat] = _label_cell(get(cat), cat, index_path, line)
                rows.append(BrodenEntry(
                    image, row_split, ih, iw,
                    sh if sh is not None else ih, sw if sw is not None else iw,
                    masks, image_labels, line,
                    "sh x sw" if sh is not None and sw is not None else "ih x iw",
                ))
        if not rows:
            if splits is not None:
                raise ValueError(f"{index_path} has no rows of split {sorted(splits)}; splits are {sorted(seen_splits)}")
            raise ValueError(f"{index_path} has no rows")

        selected_set = set(selected)
        self._concepts = ConceptTable(
            [c for c in labels.concepts if selected_set & set(labels.listed[c.number])]
        )
        self._categories = selected
        self._label_frequency = labels.frequency
        self._all_categories = categories is None or selected_set >= (set(index_categories) & listed_categories)

        class_names: list[str] = []
        class_of: dict[int, int] = {}
        if label_category is not None:
            if label_category not in selected:
                raise LookupError(f"label_category {label_category!r} is not among the pool's categories {selected}")
            for position, concept in enumerate(labels.concepts.in_category(label_category)):
                class_names.append(concept.name)
                class_of[concept.number] = position

        self._known_numbers = _number_table(self._concepts)
        for entry in rows:
            for cat, numbers in entry.labels.items():
                unknown = [n for n in numbers if not _is_known(self._known_numbers, n)]
                if unknown:
                    raise ValueError(
                        f"{index_path}, line {entry.line}: {cat} label {unknown[0]} is not a concept of "
                        f"label.csv in the pool's categories ({_number_range(self._concepts)})"
                    )
                # An object number in the scene column would label the whole image with it, silently.
                misplaced = [n for n in numbers if n and cat not in labels.listed.get(n, {})]
                if misplaced:
                    n = misplaced[0]
                    raise ValueError(
                        f"{index_path}, line {entry.line}: {cat} label {n} ({self._concepts[n].name}) is listed "
                        f"in label.csv under {', '.join(labels.listed[n])}, not {cat}"
                    )

        items, skipped = [], []
        for entry, image_id in zip(rows, _unique_ids([r.image for r in rows])):
            path = self.image_dir / entry.image
            if not skip_bad:
                for f in [path] + [self.image_dir / m for ms in entry.masks.values() for m in ms]:
                    reason = check_file(f)  # one stat: missing and empty files are refused before any work
                    if reason is not None:
                        raise CorruptFileError(f, f"{reason} (listed on line {entry.line} of {index_path})")
            label = -1
            if label_category is not None:
                label = next((class_of[n] for n in entry.labels[label_category] if n in class_of), -1)
            if skip_bad:
                reason = None
                for f in [path] + [self.image_dir / m for ms in entry.masks.values() for m in ms]:
                    bad = check_header(f)
                    if bad is not None:
                        reason = (str(f), bad)
                        break
                if reason is not None:
                    skipped.append(reason)
                    continue
            items.append(PoolItem(image_id, path, label, entry))
        if not items:
            raise ValueError(f"none of the {len(rows)} images of {self.root} is usable")
        self._whole = splits is None and not skipped
        super().__init__(items, source=self.root.name if source is None else source, class_names=class_names,
                         transform=transform, preprocessing=preprocessing, skip_bad=skip_bad, skipped=skipped,
                         include_annotation=include_annotation)

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self._whole = False

    def _meta(self, index: int) -> dict:
        meta = super()._meta(index)
        meta["split"] = self._items[index].extra.split
        return meta

    def _read(self, index: int) -> Image.Image:
        image = super()._read(index)
        entry = self._items[index].extra
        if entry.ih is not None and entry.iw is not None and image.size != (entry.iw, entry.ih):
            # The masks are aligned by fraction of the image: another size means misaligned masks.
            raise CorruptFileError(
                self._items[index].path,
                f"image is {image.size[1]}x{image.size[0]} (h x w) but line {entry.line} of index.csv gives "
                f"ih x iw = {entry.ih}x{entry.iw}",
            )
        return image

    def mask_paths(self, index: int) -> dict[str, list[Path]]:
        """Per category, the mask files of image ``index``."""
        entry = self._items[self._check_index(index)].extra
        return {cat: [self.image_dir / m for m in masks] for cat, masks in entry.masks.items()}

    def mask_shape(self, index: int) -> tuple[int, int]:
        item = self._items[self._check_index(index)]
        entry = item.extra
        if entry.sh is not None and entry.sw is not None:
            return entry.sh, entry.sw
        for masks in entry.masks.values():
            for m in masks:
                return image_size(self.image_dir / m, what="mask")
        return image_size(item.path)

    def annotation_key(self, index: int) -> str | None:
        entry = self._items[self._check_index(index)].extra
        parts = [f"{entry.sh}x{entry.sw}"]
        for cat in self._categories:
            parts.append(cat + ":" + ",".join(file_stamp(self.image_dir / m) for m in entry.masks[cat]))
            parts.append(cat + "=" + ",".join(str(n) for n in entry.labels[cat]))
        return "|".join(parts)

    def _read_annotation(self, index: int) -> Annotation:
        entry = self._items[index].extra
        expected = (entry.sh, entry.sw) if entry.sh is not None and entry.sw is not None else None
        masks: dict[str, list[np.ndarray]] = {}
        for cat in self._categories:
            maps = []
            for name in entry.masks[cat]:
                path = self.image_dir / name
                data = decode_broden_mask(path)
                if expected is None:
                    expected = data.shape
                if data.shape != expected:
                    raise CorruptFileError(
                        path,
                        f"mask is {data.shape[0]}x{data.shape[1]} (h x w) but line {entry.line} of index.csv "
                        f"gives {entry.mask_size_from} = {expected[0]}x{expected[1]}",
                    )
                known = _is_known(self._known_numbers, data)
                if not known.all():
                    values = np.unique(data[~known])
                    raise CorruptFileError(
                        path,
                        f"{cat} mask (line {entry.line} of index.csv) holds concept number(s) "
                        f"{values[:10].tolist()} not in label.csv for the pool's categories "
                        f"({_number_range(self._concepts)}; 0 = none)",
                    )
                maps.append(data)
            masks[cat] = maps
        image_labels = {cat: list(entry.labels[cat]) for cat in self._categories}
        return Annotation(masks=masks, image_labels=image_labels)

    def concept_frequency(self) -> dict[int, int]:
        """Number of images containing each concept.

        For the whole directory read with every category, the ``frequency``
        column of label.csv answers without decoding; otherwise (a split, a
        subset, some categories, skipped files) every mask is decoded once.
        """
        if self._whole and self._all_categories:
            freq = {c.number: self._label_frequency.get(c.number) for c in self._concepts}
            if all(v is not None for v in freq.values()):
                return freq
        return super().concept_frequency()
