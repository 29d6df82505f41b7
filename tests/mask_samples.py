"""Tiny hand-made samples of the dataset layouts unitscope reads (images + masks written with PIL).

Each builder writes a folder laid out as the real dataset is on disk, with
masks of a few pixels whose values the tests know exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from unitscope.data.classlist import voc_classes

#: ADE20K's first classes as objectInfo150.csv names them (the rest are filled in).
ADE_NAMES = {1: "wall", 2: "building;edifice", 3: "sky", 8: "bed", 9: "windowpane;window", 150: "flag"}


def image(path: Path, shape: tuple[int, int], color=(90, 120, 150)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (shape[1], shape[0]), color).save(path)
    return path


def grey_mask(path: Path, values) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, dtype=np.uint8), mode="L").save(path)
    return path


def palette_mask(path: Path, indices, palette: dict[int, tuple[int, int, int]]) -> Path:
    """A mode-P mask whose palette gives ``palette[i]`` to index ``i`` (others black)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = [0] * 768
    for i, rgb in palette.items():
        flat[3 * i:3 * i + 3] = rgb
    im = Image.fromarray(np.asarray(indices, dtype=np.uint8), mode="P")
    im.putpalette(flat)
    im.save(path)
    return path


def rgb_mask(path: Path, colors) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(colors, dtype=np.uint8), mode="RGB").save(path)
    return path


def object_info(path: Path) -> Path:
    """ADE20K's objectInfo150.csv, as the CSAIL code ships it (names joined by ';')."""
    rows = ["Idx,Ratio,Train,Val,Stuff,Name"]
    rows += [f"{i},0.0010,10,1,0,{ADE_NAMES.get(i, f'class{i}')}" for i in range(1, 151)]
    path.write_text("\n".join(rows) + "\n")
    return path


CAMVID_MASK = [[0, 1, 2, 3], [8, 8, 11, 5]]


def camvid(root: Path) -> Path:
    """images/ + labels/ with CamVid's own file names (as ../shared/realdata/camvid)."""
    for name in ("0016E5_07959", "Seq05VD_f00000"):
        image(root / "images" / f"{name}.jpg", (2, 4))
        grey_mask(root / "labels" / f"{name}.png", CAMVID_MASK)
    return root


ADE_MASK = [[0, 1, 2, 3], [8, 9, 11, 150]]


def ade20k(root: Path, mask=ADE_MASK, *, info: bool = True, masks: str = "annotations") -> Path:
    """ADEChallengeData2016: images/validation/ADE_val_*.jpg, annotations/validation/*.png, objectInfo150.csv."""
    for name in ("ADE_val_00000001", "ADE_val_00000002"):
        image(root / "images" / "validation" / f"{name}.jpg", (2, 4))
        grey_mask(root / masks / "validation" / f"{name}.png", mask)
    if info:
        object_info(root / "objectInfo150.csv")
    return root


VOC_MASK = [[0, 1, 15, 255], [20, 20, 0, 255]]


def voc(root: Path) -> Path:
    """JPEGImages/ (three images) + SegmentationClass/ (two palette masks: only those are segmented)."""
    colors = {c.value: c.color for c in voc_classes().entries}
    for name in ("2007_000032", "2007_000033", "2007_000039"):
        image(root / "JPEGImages" / f"{name}.jpg", (2, 4))
    for name in ("2007_000032", "2007_000039"):
        palette_mask(root / "SegmentationClass" / f"{name}.png", VOC_MASK, colors)
    return root


CITYSCAPES_MASK = [[0, 7, 8, 26], [23, 24, 9, 33]]


def cityscapes(root: Path) -> Path:
    """leftImg8bit/val/CITY/*_leftImg8bit.png + gtFine/val/CITY/*_gtFine_labelIds.png (and the colour files)."""
    stem = "frankfurt_000000_000294"
    image(root / "leftImg8bit" / "val" / "frankfurt" / f"{stem}_leftImg8bit.png", (2, 4))
    grey_mask(root / "gtFine" / "val" / "frankfurt" / f"{stem}_gtFine_labelIds.png", CITYSCAPES_MASK)
    rgb_mask(root / "gtFine" / "val" / "frankfurt" / f"{stem}_gtFine_color.png", np.zeros((2, 4, 3)))
    return root


INDEX_CLASSES = """value,name,category,color
0,void,ignore,#000000
1,cat,object,#ff0000
2,whisker,part,#00ff00
7,fur,material,10 20 30
"""
RED, GREEN, FUR, BLACK = (255, 0, 0), (0, 255, 0), (10, 20, 30), (0, 0, 0)
INDEX_RGB = [[RED, RED, GREEN, BLACK], [FUR, FUR, RED, GREEN]]


def index_rgb(root: Path, *, masks: str = "masks", class_file: bool = True) -> Path:
    """images/ + masks/ RGB colour masks + classes.csv with colours."""
    image(root / "images" / "a.jpg", (2, 4))
    rgb_mask(root / masks / "a.png", INDEX_RGB)
    if class_file:
        (root / "classes.csv").write_text(INDEX_CLASSES)
    return root
