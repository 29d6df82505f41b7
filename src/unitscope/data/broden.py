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
one with the largest count.

:class:`BrodenPool` reads any such directory, including the real Broden
release (extra columns ignored, empty cells allowed).  :func:`write_broden`
writes one, streaming and atomically, e.g. from the synthetic world.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from .annotated import AnnotatedPool, decode_broden_mask, file_stamp, image_size
from .concepts import BRODEN_CATEGORIES, Annotation, Concept, ConceptTable
from .errors import CorruptFileError
from .pools import PoolItem, _unique_ids, check_header

__all__ = ["BrodenPool", "BrodenRecord", "write_broden", "read_label_csv", "parse_category_cell"]

#: The non-category columns of index.csv.
INDEX_FIXED_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")

#: Largest concept number a mask can hold (R + 256 * G with 8-bit channels).
MAX_MASK_NUMBER = 255 + 256 * 255

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
        See :class:`~unitscope.data.annotated.IndexMaskPool`.

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
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"Broden directory {root} does not exist or is not a folder")
        self.root = root.resolve()
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
            rows, seen_splits = [], set()
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                row = row + [""] * (len(header) - len(row))
                get = lambda name: row[column[name]].strip() if name in column else ""  # noqa: E731
                row_split = get("split")
                seen_splits.add(row_split)
                if splits is not None and row_split not in splits:
                    continue
                image = get("image")
                if not image:
                    raise ValueError(f"{index_path}, line {line}: empty image cell")
                try:
                    ih, iw, sh, sw = (_int_or_none(get(c)) for c in ("ih", "iw", "sh", "sw"))
                except ValueError as exc:
                    raise ValueError(f"{index_path}, line {line}: bad image size ({exc})") from exc
                masks, image_labels = {}, {}
                for cat in selected:
                    tokens = [t.strip() for t in get(cat).split(";") if t.strip()]
                    image_labels[cat] = tuple(int(t) for t in tokens if t.isdigit())
                    masks[cat] = tuple(t for t in tokens if not t.isdigit())
                rows.append(BrodenEntry(
                    image, row_split, ih, iw,
                    sh if sh is not None else ih, sw if sw is not None else iw,
                    masks, image_labels,
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

        items, skipped = [], []
        for entry, image_id in zip(rows, _unique_ids([r.image for r in rows])):
            path = self.image_dir / entry.image
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
        super().__init__(
            items,
            source=self.root.name if source is None else source,
            transform=transform,
            preprocessing=preprocessing,
            class_names=class_names,
            skip_bad=skip_bad,
            skipped=skipped,
        )
        self.include_annotation = bool(include_annotation)
        self._frequency_cache = None

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self._whole = False

    def _meta(self, index: int) -> dict:
        meta = super()._meta(index)
        meta["split"] = self._items[index].extra.split
        return meta

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
                        f"mask is {data.shape[0]}x{data.shape[1]} (h x w) but index.csv gives "
                        f"sh x sw = {expected[0]}x{expected[1]}",
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


@dataclass
class BrodenRecord:
    """One image to write with :func:`write_broden`.

    Attributes
    ----------
    id : str
        Stable id; the image is written as ``images/<id>.png``.  Letters,
        digits, ``_ - .`` and ``/`` (sub-folders) only.
    image : ndarray of uint8, shape (H, W, 3)
    annotation : Annotation
        Masks ``(sh, sw)`` holding concept numbers; image-level labels.
    split : str
    """

    id: str
    image: np.ndarray
    annotation: Annotation = field(default_factory=Annotation)
    split: str = "train"


_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$")


def _check_id(record_id: str) -> None:
    if not isinstance(record_id, str) or not _ID_PATTERN.match(record_id) or any(
        part in (".", "..") for part in record_id.split("/")
    ):
        raise ValueError(
            f"record id {record_id!r} is not usable as a file name: use letters, digits, '_', '-', '.' "
            "and '/' between non-empty parts"
        )


def _encode_mask(mask: np.ndarray) -> np.ndarray:
    rgb = np.zeros(mask.shape + (3,), dtype=np.uint8)
    rgb[:, :, 0] = mask % 256
    rgb[:, :, 1] = mask // 256
    return rgb


def _fmt(value: float) -> str:
    return f"{value:.6f}"


class _Stats:
    """Running counts for label.csv / category.csv / c_*.csv."""

    def __init__(self) -> None:
        self.frequency: dict[int, int] = defaultdict(int)
        self.coverage: dict[int, float] = defaultdict(float)
        self.cat_frequency: dict[tuple[str, int], int] = defaultdict(int)
        self.cat_coverage: dict[tuple[str, int], float] = defaultdict(float)
        self.category_images: dict[str, int] = defaultdict(int)

    def add(self, masks: dict[str, list[np.ndarray]], image_labels: dict[str, list[int]], shape) -> None:
        pixels = float(shape[0] * shape[1]) if shape else 1.0
        union: dict[int, np.ndarray | float] = {}
        for cat in set(masks) | set(image_labels):
            cat_union: dict[int, np.ndarray | float] = {}
            for m in masks.get(cat, []):
                for number in np.unique(m):
                    number = int(number)
                    if number == 0:
                        continue
                    hit = m == number
                    prev = cat_union.get(number)
                    cat_union[number] = hit if prev is None else (prev | hit)
            for number in image_labels.get(cat, []):
                cat_union[int(number)] = 1.0
            if cat_union:
                self.category_images[cat] += 1
            for number, hit in cat_union.items():
                self.cat_frequency[(cat, number)] += 1
                self.cat_coverage[(cat, number)] += hit if isinstance(hit, float) else hit.sum() / pixels
                prev = union.get(number)
                if isinstance(hit, float) or isinstance(prev, float):
                    union[number] = 1.0
                else:
                    union[number] = hit if prev is None else (prev | hit)
        for number, hit in union.items():
            self.frequency[number] += 1
            self.coverage[number] += hit if isinstance(hit, float) else hit.sum() / pixels


def _validate_record(record: BrodenRecord, concepts: ConceptTable, columns: Sequence[str]):
    if not isinstance(record, BrodenRecord):
        raise ValueError(f"write_broden needs BrodenRecord items, got {type(record).__name__}")
    _check_id(record.id)
    image = np.asarray(record.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"record {record.id!r}: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
        )
    if not isinstance(record.split, str) or not record.split or any(ch in record.split for ch in ",;\n"):
        raise ValueError(f"record {record.id!r}: split must be a plain non-empty string, got {record.split!r}")
    annotation = record.annotation
    shape = None
    masks: dict[str, list[np.ndarray]] = {}
    for cat, maps in annotation.masks.items():
        if cat not in columns:
            raise ValueError(f"record {record.id!r}: category {cat!r} is not one of {list(columns)}")
        checked = []
        for m in maps:
            m = np.asarray(m)
            if m.ndim != 2 or not np.issubdtype(m.dtype, np.integer):
                raise ValueError(f"record {record.id!r}: {cat} masks must be 2-D integer arrays, got {m.dtype} {m.shape}")
            if shape is None:
                shape = m.shape
            elif m.shape != shape:
                raise ValueError(f"record {record.id!r}: masks have different shapes {shape} and {m.shape}")
            checked.append(m.astype(np.int64))
        masks[cat] = checked
    image_labels: dict[str, list[int]] = {}
    for cat, labels in annotation.image_labels.items():
        if cat not in columns:
            raise ValueError(f"record {record.id!r}: category {cat!r} is not one of {list(columns)}")
        image_labels[cat] = [int(n) for n in labels]
    used = set()
    for maps in masks.values():
        for m in maps:
            used.update(int(v) for v in np.unique(m))
    for labels in image_labels.values():
        used.update(labels)
    unknown = sorted(n for n in used if n != 0 and n not in concepts)
    if unknown:
        raise ValueError(f"record {record.id!r}: concept numbers {unknown[:10]} are not in the concept table")
    if 0 in {n for labels in image_labels.values() for n in labels}:
        raise ValueError(f"record {record.id!r}: image-level label 0 means no concept")
    return image, masks, image_labels, shape


def write_broden(
    out_dir: str | Path,
    records: Iterable[BrodenRecord],
    concepts: ConceptTable,
    *,
    overwrite: bool = False,
    progress: Callable[[int], Any] | None = None,
) -> Path:
    """Write images and their annotations as a Broden directory.

    Parameters
    ----------
    out_dir : str or Path
        The directory to create.  It may exist only if empty, unless
        ``overwrite``.
    records : iterable of BrodenRecord
        Consumed once, one record at a time (a generator is fine: images are
        written as they come and not kept).
    concepts : ConceptTable
        Every concept number used by the records; numbers up to 65535.
    overwrite : bool, optional
        Replace an existing ``out_dir``.
    progress : callable, optional
        Called as ``progress(n)`` after each record, ``n`` records written so far.

    Returns
    -------
    Path
        ``out_dir``, resolved.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists, is not empty and ``overwrite`` is false.
    ValueError
        On an invalid or duplicate record, a concept number not in
        ``concepts``, or no records at all.

    Notes
    -----
    Files: ``images/<id>.png`` (lossless, so a round trip is exact), masks
    ``images/<id>_<category>.png`` -- ``_<category>_<k>.png``, k = 1, 2, ...
    when a category has several -- with R = number % 256, G = number // 256;
    ``index.csv`` with the six Broden category columns plus any other category
    of ``concepts``.  ``label.csv``: frequency = images holding the concept,
    coverage = its mean fraction of the image over those images (an
    image-level label covers 1.0), category written ``name(count)``, the
    concept's own category first, as NetDissect's reader expects.
    ``category.csv``: first/last/count over the category's concepts,
    frequency = images with any label of the category.  ``c_<category>.csv``:
    the concepts of the category or occurring in it, code = 1, 2, ... in
    number order, with per-category frequency and coverage.

    The directory is built in a temporary sibling and moved into place with
    :func:`os.replace` at the end, so an interrupted export leaves nothing
    half-written behind.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not overwrite:
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} already exists; pass overwrite=True to replace it")
    if concepts.max_number > MAX_MASK_NUMBER:
        raise ValueError(f"concept numbers must be <= {MAX_MASK_NUMBER} to fit a mask PNG, got {concepts.max_number}")
    columns = list(BRODEN_CATEGORIES) + [c for c in concepts.categories if c not in BRODEN_CATEGORIES]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    from unitscope._files import share_with_umask

    share_with_umask(tmp, directory=True)  # mkdtemp's 0700 would hide the data from the user's group
    try:
        images = tmp / "images"
        images.mkdir()
        stats = _Stats()
        written: set[str] = set()
        ids: set[str] = set()
        count = 0
        with open(tmp / "index.csv", "w", newline="", encoding="utf-8") as index_file:
            index = csv.writer(index_file, lineterminator="\n")
            index.writerow(list(INDEX_FIXED_COLUMNS) + columns)
            for record in records:
                image, masks, image_labels, shape = _validate_record(record, concepts, columns)
                if record.id in ids:
                    raise ValueError(f"duplicate record id {record.id!r}")
                ids.add(record.id)
                ih, iw = image.shape[:2]
                sh, sw = shape if shape is not None else (ih, iw)
                image_name = f"{record.id}.png"
                cells = {}
                files = [(image_name, image)]
                for cat in columns:
                    maps = masks.get(cat, [])
                    names = [
                        f"{record.id}_{cat}.png" if len(maps) == 1 else f"{record.id}_{cat}_{k}.png"
                        for k in range(1, len(maps) + 1)
                    ]
                    files += [(name, _encode_mask(m)) for name, m in zip(names, maps)]
                    cells[cat] = ";".join(names + [str(n) for n in image_labels.get(cat, [])])
                for name, pixels in files:
                    if name in written:
                        raise ValueError(f"record {record.id!r}: file name {name} collides with an earlier record's file")
                    written.add(name)
                    target = images / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(pixels).save(target)
                index.writerow([image_name, record.split, ih, iw, sh, sw] + [cells[c] for c in columns])
                stats.add(masks, image_labels, (sh, sw))
                count += 1
                if progress is not None:
                    progress(count)
        if count == 0:
            raise ValueError("write_broden got no records")
        _write_tables(tmp, concepts, columns, stats)
        _move_into_place(tmp, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_tables(tmp: Path, concepts: ConceptTable, columns: Sequence[str], stats: _Stats) -> None:
    label_rows = []
    for c in concepts:
        used_in = [c.category] + [
            cat for cat in columns if cat != c.category and stats.cat_frequency.get((cat, c.number), 0)
        ]
        category = ";".join(f"{cat}({stats.cat_frequency.get((cat, c.number), 0)})" for cat in used_in)
        freq = stats.frequency.get(c.number, 0)
        coverage = stats.coverage.get(c.number, 0.0) / freq if freq else 0.0
        label_rows.append([c.number, c.name, category, freq, _fmt(coverage), ""])
    _write_csv(tmp / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"], label_rows)

    category_rows = []
    for cat in columns:
        own = concepts.in_category(cat)
        if not own:
            continue
        numbers = [c.number for c in own]
        category_rows.append([cat, min(numbers), max(numbers), len(numbers), stats.category_images.get(cat, 0)])
        members = sorted(
            {c.number for c in own} | {n for (k, n) in stats.cat_frequency if k == cat and n in concepts}
        )
        rows = []
        for code, number in enumerate(members, start=1):
            freq = stats.cat_frequency.get((cat, number), 0)
            coverage = stats.cat_coverage.get((cat, number), 0.0) / freq if freq else 0.0
            rows.append([code, number, concepts[number].name, freq, _fmt(coverage)])
        _write_csv(tmp / f"c_{cat}.csv", ["code", "number", "name", "frequency", "coverage"], rows)
    _write_csv(tmp / "category.csv", ["name", "first", "last", "count", "frequency"], category_rows)


def _move_into_place(tmp: Path, out_dir: Path, *, overwrite: bool) -> None:
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        os.replace(tmp, out_dir)
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} appeared while writing; pass overwrite=True to replace it")
    # os.replace cannot replace a non-empty directory: set the old one aside first.
    trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old = trash / "old"
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
