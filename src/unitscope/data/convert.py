"""Convert any annotated pool into a Broden directory (SPEC section 8).

Network Dissection's own code, and every tool built on it, reads the Broden
layout; :func:`convert_to_broden` writes one from any pool unitscope opens --
CamVid, ADE20K, Pascal VOC, Cityscapes, an index-mask folder with a class
list, or a Broden directory (to resize it) -- with the pool's class list
(names and categories) as ``label.csv`` and ``c_<category>.csv``, and each
concept's frequency and coverage counted on the *converted* masks.

Images may be resized (``image_size``, bilinear, as the pools' own
preprocessing does, so a network sees the same pixels whether it reads the
converted pool or resizes the original on the fly); masks are resized by
nearest neighbour to ``mask_size``, by default half the image size as in
Network Dissection's ``broden1_224`` (224 px images, 112 px masks).  The
writer is :func:`~unitscope.data.broden.write_broden`; this module only plans
the sizes, checks everything up front, and moves the result into place with
a marker file (:data:`MARKER`) so that a later ``overwrite`` replaces only
what a conversion wrote.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from .annotated import image_size as header_size
from .broden import BrodenRecord, read_label_csv, write_broden
from .staging import make_staging_dir, move_into_place, remove_stale_staging
from unitscope.concepts import Annotation, ConceptTable

__all__ = ["MARKER", "ConvertResult", "convert_to_broden", "parse_size", "resize_nearest", "check_output_folder"]

#: The file that marks a folder as written by :func:`convert_to_broden` (provenance, options, counts).
MARKER = "unitscope_convert.json"
#: Largest side accepted for ``image_size`` / ``mask_size``.
MAX_SIDE = 16384
_FORMAT_VERSION = 1
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


def parse_size(text: str | int | tuple[int, int], *, option: str = "size") -> tuple[int, int]:
    """``"224"`` -> ``(224, 224)``; ``"240,320"`` -> ``(240, 320)`` (height, width).

    Parameters
    ----------
    text : str, int or (int, int)
        ``N`` (a square) or ``H,W``.
    option : str, optional
        The option's name, for the error message (``"--image-size"``).

    Raises
    ------
    ValueError
        Unless the value is one or two whole numbers from 1 to :data:`MAX_SIDE`.
    """
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        parts = [str(int(text))]
    elif isinstance(text, (tuple, list)):
        parts = [str(p).strip() for p in text]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if len(parts) in (1, 2) and all(re.fullmatch(r"\d+", p) for p in parts):
        sides = [int(p) for p in parts]
        if all(1 <= s <= MAX_SIDE for s in sides):
            return (sides[0], sides[-1])
    raise ValueError(f"{option} takes N or H,W, whole numbers of pixels from 1 to {MAX_SIDE}; got {text!r}")


def resize_nearest(label_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize by pixel centres, exact in integers.

    Output pixel ``(r, c)`` of an ``(h, w)`` result takes input pixel
    ``((2r + 1) * sh // (2h), (2c + 1) * sw // (2w))``: the input pixel under
    its centre, the alignment of a bilinear image resize, so masks stay on
    their objects.  Label values are copied, never blended.

    Parameters
    ----------
    label_map : ndarray, shape (sh, sw)
    shape : (int, int)
        ``(h, w)`` of the result.

    Returns
    -------
    ndarray, shape (h, w), same dtype
    """
    label_map = np.asarray(label_map)
    sh, sw = label_map.shape
    h, w = shape
    if (h, w) == (sh, sw):
        return label_map.copy()
    rows = (2 * np.arange(h, dtype=np.int64) + 1) * sh // (2 * h)
    cols = (2 * np.arange(w, dtype=np.int64) + 1) * sw // (2 * w)
    return label_map[rows[:, None], cols[None, :]]


def check_output_folder(out: str | Path, *, overwrite: bool = False, source: str | Path | None = None) -> Path:
    """Refuse an ``out`` that a conversion may not write; return it resolved.

    ``out`` may be missing or an empty folder.  A non-empty folder is
    replaced only with ``overwrite`` and only if it holds :data:`MARKER`
    (a folder unitscope did not write is never touched).

    Raises
    ------
    FileExistsError
        If ``out`` is a file, or a non-empty folder that is not an earlier
        conversion, or one without ``overwrite``.
    ValueError
        If ``out`` and ``source`` (the pool's folder) are the same or one holds the other.
    """
    out = Path(out).expanduser().resolve()
    if source is not None:
        source = Path(source).expanduser().resolve()
        if out == source or source in out.parents or out in source.parents:
            raise ValueError(f"--out {out} and --data {source} overlap; write the Broden folder outside the pool")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder to create")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise FileExistsError(f"--out {out} is not empty and was not written by unitscope convert (no {MARKER}); "
                                  "choose a new or empty folder")
        if not overwrite:
            raise FileExistsError(f"--out {out} holds an earlier conversion; pass --overwrite to replace it")
    return out


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_to_broden` wrote.

    Attributes
    ----------
    out : Path
        The Broden directory.
    images : int
    image_size, mask_size : (int, int) or None
        ``(h, w)`` of every image / mask; None where sizes were kept per image
        (images) or are half of each image's (masks).
    concepts : ConceptTable
        Every concept of the class list, as written to ``label.csv``.
    frequency : dict of int to int
        Images holding each concept in the converted masks.
    """

    out: Path
    images: int
    image_size: tuple[int, int] | None
    mask_size: tuple[int, int] | None
    concepts: ConceptTable
    frequency: dict[int, int]

    def present(self) -> dict[str, int]:
        """Per category, how many concepts occur in at least one converted image."""
        counts = {category: 0 for category in self.concepts.categories}
        for concept in self.concepts:
            if self.frequency.get(concept.number, 0):
                counts[concept.category] += 1
        return counts


def _target_sizes(pool, count: int, image_size, mask_size) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per image, ``((ih, iw), (sh, sw))`` after conversion; refuses masks larger than their image up front."""
    sizes = []
    for i in range(count):
        ih, iw = image_size if image_size is not None else header_size(pool.paths[i])
        sh, sw = mask_size if mask_size is not None else (max(1, ih // 2), max(1, iw // 2))
        if sh > ih or sw > iw:
            raise ValueError(f"--mask-size {sh},{sw} is larger than image {pool.paths[i]} converted to {ih},{iw}; "
                             "masks may be at most the image size")
        sizes.append(((ih, iw), (sh, sw)))
    return sizes


def _record_ids(ids: list[str]) -> tuple[list[str], dict[str, str]]:
    """Ids usable as Broden file names (unsafe characters become ``_``, clashes get ``-2``, ``-3``...).

    Returns the ids and ``{new: original}`` for those that changed.
    """
    safe, renamed, taken = [], {}, set()
    for original in ids:
        parts = [_ID_UNSAFE.sub("_", p) for p in original.split("/") if p not in ("", ".", "..")]
        base = "/".join(parts) or "image"
        new, k = base, 1
        while new in taken:
            k += 1
            new = f"{base}-{k}"
        taken.add(new)
        safe.append(new)
        if new != original:
            renamed[new] = original
    return safe, renamed


def convert_to_broden(
    data,
    out: str | Path,
    *,
    image_size: int | tuple[int, int] | str | None = None,
    mask_size: int | tuple[int, int] | str | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> ConvertResult:
    """Write an annotated pool as a Broden directory.

    Parameters
    ----------
    data : AnnotatedPool
        Any pool with masks (:func:`~unitscope.data.open.open_annotated_pool`).
    out : str or Path
        The folder to create (see :func:`check_output_folder`).
    image_size : int, (int, int) or str, optional
        ``(h, w)`` of every written image (``N`` for a square), resized
        bilinearly without cropping; default: each image keeps its size.
    mask_size : int, (int, int) or str, optional
        ``(h, w)`` of every written mask, resized by nearest neighbour
        (:func:`resize_nearest`); default: half of each image's size (floor),
        as Network Dissection.  At most the image size.
    limit : int, optional
        Convert only the first ``limit`` images, in pool order.
    overwrite : bool, optional
        Replace ``out`` if it holds an earlier conversion.
    provenance : mapping, optional
        Plain values recorded in :data:`MARKER` (the CLI's layout and class file).
    progress : callable, optional
        ``progress(done, total)`` after each image.

    Returns
    -------
    ConvertResult

    Raises
    ------
    ValueError
        On a pool without masks, a bad size or ``limit``, masks larger than
        their image, or ``out`` overlapping the pool; before anything is written.
    FileExistsError
        See :func:`check_output_folder`.
    CorruptFileError
        If an image or mask cannot be read; nothing is left behind.

    Notes
    -----
    Concepts keep the pool's numbers, names and categories; ``label.csv``
    lists every concept of the class list, those absent from the converted
    masks with frequency 0.  Images are written as PNG (lossless), ids are
    the pool's (characters other than letters, digits, ``_ - . /`` become
    ``_``; renamed ids are listed in the marker), the split is the pool's
    where it has one, else ``train``.  The same pool and options give the
    same bytes: the marker records no time.
    """
    if not hasattr(data, "annotation") or not hasattr(data, "concepts"):
        raise ValueError(f"convert needs an annotated pool (images with concept masks); {data!r} has none")
    image_size = None if image_size is None else parse_size(image_size, option="--image-size")
    mask_size = None if mask_size is None else parse_size(mask_size, option="--mask-size")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"--limit takes a whole number of images, at least 1; got {limit!r}")
    out = check_output_folder(out, overwrite=overwrite, source=getattr(data, "root", None))
    count = len(data) if limit is None else min(int(limit), len(data))
    sizes = _target_sizes(data, count, image_size, mask_size)
    ids, renamed = _record_ids(data.ids[:count])

    def records():
        for i, ((ih, iw), (sh, sw)) in enumerate(sizes):
            pixels = data.raw_image(i)
            if pixels.shape[:2] != (ih, iw):
                pixels = np.asarray(Image.fromarray(pixels).resize((iw, ih), Image.BILINEAR))
            annotation = data.annotation(i)
            masks = {cat: [resize_nearest(m, (sh, sw)) for m in maps] for cat, maps in annotation.masks.items()}
            split = data.meta(i).get("split") or "train"
            yield BrodenRecord(ids[i], pixels, Annotation(masks, annotation.image_labels), split)

    marker = {
        "format": "unitscope.convert",
        "format_version": _FORMAT_VERSION,
        "source": str(getattr(data, "root", data.source)),
        "source_name": data.source,
        "images": count,
        "limit": limit,
        "image_size": list(image_size) if image_size else "kept",
        "image_resize": "bilinear (PIL), whole image, no crop",
        "mask_size": list(mask_size) if mask_size else "half the image size",
        "mask_resize": "nearest neighbour by pixel centres",
        "renamed_ids": renamed,
        **dict(provenance or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)  # (a killed conversion's folder, recognised by its marker)
    tmp = make_staging_dir(out)
    try:
        written = write_broden(tmp / "broden", records(), data.concepts,
                               progress=None if progress is None else (lambda n: progress(n, count)))
        (written / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        move_into_place(written, out, overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    labels = read_label_csv(out / "label.csv")
    return ConvertResult(out, count, image_size, mask_size, labels.concepts,
                         {n: f or 0 for n, f in labels.frequency.items()})
