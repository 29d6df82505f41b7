"""Writing a Broden directory (SPEC section 8), streaming and atomically.

:func:`write_broden` turns :class:`BrodenRecord` items (an image and its
annotation) into the layout :class:`~unitscope.data.broden.BrodenPool`
reads: images and mask PNGs under ``images/``, ``index.csv``,
``label.csv``, ``category.csv`` and one ``c_<category>.csv`` per category.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from unitscope.concepts import BRODEN_CATEGORIES, INDEX_FIXED_COLUMNS, MAX_MASK_NUMBER, Annotation, ConceptTable
from .staging import make_staging_dir, move_into_place, remove_stale_staging

__all__ = ["BrodenRecord", "write_broden"]


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
    remove_stale_staging(out_dir)  # what a killed export of the same directory left
    tmp = make_staging_dir(out_dir)
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
        move_into_place(tmp, out_dir, overwrite=overwrite)
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
