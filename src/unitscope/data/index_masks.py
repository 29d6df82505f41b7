"""Index-mask pools: images with one mask file each whose pixel values are classes of a class list.

:class:`IndexMaskPool` is the generic "image + index-mask file + class list"
reader (CamVid, ADE20K, Pascal VOC, Cityscapes: the layouts are in
:mod:`unitscope.data.layouts`, class lists and mask decoding in
:mod:`unitscope.data.classlist`); :func:`camvid_pool` opens CamVid with its
32 classes.  It is an :class:`~unitscope.data.annotated.AnnotatedPool`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from unitscope.concepts import Annotation, Concept, ConceptTable

from .annotated import AnnotatedPool, file_stamp, image_size
from .classlist import ClassList, decode_class_mask
from .decode import check_file
from .errors import CorruptFileError
from .pools import PoolItem, _unique_ids, check_header, existing_folder, scan_images

__all__ = ["IndexMaskPool", "camvid_pool", "CAMVID_CLASSES", "CAMVID_CATEGORIES"]


CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree",
    "signsymbol", "fence", "car", "pedestrian", "bicyclist", "unlabelled",
)

#: Category of each CamVid class.  Sky, road and pavement are "stuff":
#: surfaces with no outline, which the synthetic world (SPEC section 1) also
#: treats as surfaces/materials, so they go to ``material``; the countable
#: things -- including building and tree, the paper's classic detectors --
#: go to ``object``.  (Real Broden files sky and road under object because
#: ADE20K does; pass ``categories=`` to follow that instead.)
CAMVID_CATEGORIES = {
    "sky": "material", "road": "material", "pavement": "material",
    "building": "object", "pole": "object", "tree": "object", "signsymbol": "object",
    "fence": "object", "car": "object", "pedestrian": "object", "bicyclist": "object",
}


class IndexMaskPool(AnnotatedPool):
    """Images with one index-mask file each (pixel = class value), plus a class list.

    ``root/images/NAME.jpg`` goes with ``root/labels/NAME.png`` by default;
    the folders and file-name suffixes are options, so the same reader serves
    CamVid, ADE20K, Pascal VOC and Cityscapes (see :mod:`unitscope.data.layouts`).
    Class value ``v`` becomes concept number ``v + 1`` (0 stays "none");
    ignored values become 0 and are not concepts.  Each category gets one
    label map per image holding that category's classes.

    Parameters
    ----------
    root : str or Path
    classes : ClassList or sequence of str
        What each mask value means: a :class:`~unitscope.data.classlist.ClassList`
        (from a class file or a built-in list), or class names by pixel value
        ``0, 1, ...`` (then ``category``, ``categories`` and ``ignore`` apply).
    images, masks : str, optional
        Sub-folders of ``root`` with the images and the masks.
    category : str, optional
        Category of every class not in ``categories`` (default ``"object"``).
    categories : mapping of str to str, optional
        Category per class name.
    ignore : sequence of int or str, optional
        Pixel values (or class names) that mean "no label", e.g. ``(255,)`` or
        ``("unlabelled",)``.  Any other value outside ``classes`` is an error.
    image_suffix, mask_suffix : str, optional
        The mask of ``images/a/b`` + ``image_suffix`` + ``.jpg`` is
        ``masks/a/b`` + ``mask_suffix`` (Cityscapes: ``"_leftImg8bit"`` and
        ``"_gtFine_labelIds.png"``).
    unmasked_images : {"refuse", "leave"}, optional
        An image with no mask is an error (default), or is left out of the
        pool (Pascal VOC, whose image folder holds every image and whose
        mask folder only the segmented ones).
    source : str, optional
        Pool name; defaults to the folder name of ``root``.
    transform, preprocessing, skip_bad :
        As for :class:`~unitscope.data.pools.PlainPool` (``preprocessing``
        resizes without cropping here).
    include_annotation : bool, optional
        Put each item's :class:`Annotation` in its meta.

    Raises
    ------
    FileNotFoundError
        If ``root`` or its image or mask folder is missing.
    ValueError
        On an empty image folder, an unknown class in ``categories`` or
        ``ignore`` (or those options beside a ``ClassList``), or (without
        ``skip_bad``) an image with no mask (:class:`CorruptFileError`) or a
        mask with no image.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        classes: ClassList | Sequence[str],
        images: str = "images",
        masks: str = "labels",
        category: str = "object",
        categories: Mapping[str, str] | None = None,
        ignore: Sequence[int | str] = (),
        image_suffix: str = "",
        mask_suffix: str = ".png",
        unmasked_images: str = "refuse",
        source: str | None = None,
        transform: Callable | None = None,
        preprocessing: Any = None,
        skip_bad: bool = False,
        include_annotation: bool = False,
    ) -> None:
        self.root = existing_folder(root, "annotated pool folder")
        if unmasked_images not in ("refuse", "leave"):
            raise ValueError(f"unmasked_images must be 'refuse' or 'leave', got {unmasked_images!r}")
        self.image_dir = self.root / images
        self.mask_dir = self.root / masks
        for what, folder in (("image", self.image_dir), ("mask", self.mask_dir)):
            if not folder.is_dir():
                raise FileNotFoundError(f"{what} folder {folder} does not exist")
        if not isinstance(classes, ClassList):
            classes = ClassList.from_names(classes, category=category, categories=categories, ignore=ignore)
        elif categories or ignore or category != "object":
            raise ValueError("category, categories and ignore go with class names; a ClassList carries its own")
        self.class_list = classes
        self.classes = [c.name for c in classes.classes]
        self.ignored = classes.ignored
        self._concepts = ConceptTable([Concept(c.value + 1, c.name, c.category) for c in classes.classes])
        self._categories = self._concepts.categories
        # Lookup tables from class value to "known" and to category index (-1: ignored).
        size = classes.entries[-1].value + 1
        self._lut_valid = np.zeros(size, dtype=bool)
        self._lut_category = np.full(size, -1, dtype=np.int32)
        for c in classes.entries:
            self._lut_valid[c.value] = True
            if not c.ignore:
                self._lut_category[c.value] = self._categories.index(c.category)

        items, skipped = self._pair(image_suffix, mask_suffix, unmasked_images == "leave", skip_bad)
        super().__init__(items, source=self.root.name if source is None else source, transform=transform,
                         preprocessing=preprocessing, skip_bad=skip_bad, skipped=skipped,
                         include_annotation=include_annotation)

    def _pair(self, image_suffix: str, mask_suffix: str, leave_unmasked: bool, skip_bad: bool):
        """Items (image, mask) in image order, and the ``(path, reason)`` of those skipped."""
        relpaths = scan_images(self.image_dir)
        if not relpaths:
            raise ValueError(f"no images found in {self.image_dir}")
        mask_files = {p for p in scan_images(self.mask_dir) if p.endswith(mask_suffix)}
        items, skipped, matched = [], [], set()
        for relpath, image_id in zip(relpaths, _unique_ids(relpaths)):
            path = self.image_dir / relpath
            stem = relpath.rsplit(".", 1)[0]
            mask_rel = (stem[: -len(image_suffix)] if image_suffix and stem.endswith(image_suffix) else stem) + mask_suffix
            mask = self.mask_dir / mask_rel
            reason = None
            if mask_rel not in mask_files or (image_suffix and not stem.endswith(image_suffix)):
                if leave_unmasked:
                    continue
                if not skip_bad:
                    raise CorruptFileError(mask, f"mask file is missing (for image {path})")
                reason = (str(mask), "mask file is missing")
            elif not skip_bad:
                for f in (path, mask):  # one stat each: empty files are refused before any work
                    bad = check_file(f)
                    if bad is not None:
                        raise CorruptFileError(f, bad)
            else:
                for f in (path, mask):
                    bad = check_header(f)
                    if bad is not None:
                        reason = (str(f), bad)
                        break
            matched.add(mask_rel)
            if reason is not None:
                skipped.append(reason)
                continue
            items.append(PoolItem(image_id, path, -1, mask))
        orphans = sorted(mask_files - matched)
        if orphans and not skip_bad:
            example = orphans[0][: -len(mask_suffix)] + image_suffix
            raise ValueError(f"mask {self.mask_dir / orphans[0]} has no image ({len(orphans)} mask(s) without "
                             f"one; expected {self.image_dir / example}.jpg or another image extension)")
        skipped += [(str(self.mask_dir / m), "image file is missing") for m in orphans]
        if not items:
            raise ValueError(f"none of the {len(relpaths)} images in {self.image_dir} has a usable mask "
                             f"(*{mask_suffix} in {self.mask_dir})")
        return items, skipped

    def mask_shape(self, index: int) -> tuple[int, int]:
        return image_size(self._items[self._check_index(index)].extra, what="mask")

    def mask_path(self, index: int) -> Path:
        """The index-mask file of image ``index``."""
        return self._items[self._check_index(index)].extra

    def annotation_key(self, index: int) -> str | None:
        item = self._items[self._check_index(index)]
        return "|".join([file_stamp(item.extra), file_stamp(item.path), repr(self.class_list.key()),
                         repr(self._concepts.to_records())])

    def labels_key(self) -> list:
        return [self._concepts.to_records(), self.class_list.key()]

    def class_values(self, index: int) -> np.ndarray:
        """The mask of image ``index`` decoded to class values, ``(sh, sw)`` int32.

        Raises
        ------
        CorruptFileError
            If the mask is unreadable, not the size of its image, or holds a
            value (or colour) that is not in the class list -- the message
            names the file, the values and the class list.
        """
        return self._class_values(self._check_index(index))

    def _class_values(self, index: int) -> np.ndarray:
        item = self._items[index]
        mask_file = item.extra
        values = decode_class_mask(mask_file, self.class_list)
        expected = image_size(item.path)
        if values.shape != expected:
            raise CorruptFileError(
                mask_file,
                f"mask is {values.shape[0]}x{values.shape[1]} (h x w) but its image {item.path} "
                f"is {expected[0]}x{expected[1]}",
            )
        outside = (values < 0) | (values >= len(self._lut_valid))
        if outside.any() or not self._lut_valid[values[~outside]].all():
            clipped = np.clip(values, 0, len(self._lut_valid) - 1)
            bad = np.unique(values[outside | ~self._lut_valid[clipped]])
            raise CorruptFileError(
                mask_file,
                f"pixel values {bad[:10].tolist()} are not in {self.class_list.describe()} "
                "(wrong --layout or --classes?)",
            )
        return values

    def check_masks(self, progress: Callable[[int, int], None] | None = None, *, threads: int | None = None) -> None:
        """Decode every mask once and refuse the pool if any is unreadable or off its class list.

        Commands call this before any work, so a wrong class list stops them
        up front instead of part-way through a run.  PNG decoding releases
        the GIL, so ``threads`` (default: up to 8, one per CPU) share the work.

        Raises
        ------
        CorruptFileError
            For the first bad mask in pool order (see :meth:`class_values`).
        """
        from concurrent.futures import ThreadPoolExecutor

        threads = threads or min(8, os.cpu_count() or 1)
        executor = ThreadPoolExecutor(max_workers=threads)
        try:
            # map yields in pool order, so the error raised is the first bad mask's, as in a plain loop
            for done, _ in enumerate(executor.map(lambda i: self._class_values(i).shape, range(len(self))), 1):
                if progress is not None:
                    progress(done, len(self))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)  # a bad mask stops the rest at once

    def _read_annotation(self, index: int) -> Annotation:
        values = self._class_values(index)
        category_of = self._lut_category[values]
        masks = {}
        for c, name in enumerate(self._categories):
            masks[name] = [np.where(category_of == c, values + 1, 0).astype(np.int32)]
        return Annotation(masks=masks, image_labels={name: [] for name in self._categories})


def camvid_pool(root: str | Path, **options: Any) -> IndexMaskPool:
    """The CamVid layout (``images/*.jpg``, ``labels/*.png`` mode L) as an annotated pool.

    Classes are :data:`CAMVID_CLASSES` (value 11, "unlabelled", is ignored),
    categories :data:`CAMVID_CATEGORIES`; ``options`` go to
    :class:`IndexMaskPool` and may override any of these.

    Examples
    --------
    >>> pool = camvid_pool("../shared/realdata/camvid", source="scenes")  # doctest: +SKIP
    """
    if "classes" not in options:
        options["classes"] = ClassList.from_names(
            CAMVID_CLASSES, category=options.pop("category", "object"),
            categories=options.pop("categories", CAMVID_CATEGORIES),
            ignore=options.pop("ignore", ("unlabelled",)), source="the built-in CamVid class list")
    return IndexMaskPool(root, **options)
