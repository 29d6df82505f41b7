"""Bad masks, class lists and layouts: every command that takes --data refuses them up front, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mask_samples as S
from unitscope.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bad_masks") / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), path)
    return path


def _classes(text: str):
    """An index pool (grey masks 0..2) whose classes.csv is ``text``."""
    def make(root: Path):
        S.image(root / "images" / "a.jpg", (1, 3))
        S.grey_mask(root / "masks" / "a.png", [[0, 1, 2]])
        (root / "classes.csv").write_text(text)
    return make


def _index(masks: dict, images=("a",), classes="value,name\n0,void\n1,cat\n2,whisker\n"):
    def make(root: Path):
        for name in images:
            S.image(root / "images" / f"{name}.jpg", (1, 4))
        for name, mask in masks.items():
            S.grey_mask(root / "masks" / f"{name}.png", mask)
        (root / "classes.csv").write_text(classes)
    return make


def _foreign_voc_palette(root: Path):
    S.voc(root)
    S.palette_mask(root / "SegmentationClass" / "2007_000039.png", S.VOC_MASK, {1: (1, 2, 3)})


def _rgb_without_colours(root: Path):
    S.index_rgb(root)
    (root / "classes.csv").write_text("value,name\n0,void\n1,cat\n")


def _ambiguous(root: Path):
    S.voc(root)
    (root / "index.csv").write_text("image,split\n")


def _broden(root: Path):
    root.mkdir(parents=True)
    (root / "index.csv").write_text("image,split\n")


# (id, pool builder, extra arguments, fragments the error must name)
CASES = [
    ("unknown-layout-name", S.camvid, ["--layout", "coco"], ["--layout", "auto", "cityscapes", "'coco'"]),
    ("class-file-missing-columns", _classes("id,label\n1,cat\n"), [],
     ["classes.csv", "lacks column(s) value, name", "value,name[,category][,color]"]),
    ("duplicate-class-values", _classes("value,name\n0,void\n1,cat\n1,dog\n2,w\n"), [],
     ["classes.csv", "value 1 is listed twice", "'cat' and 'dog'"]),
    ("class-value-not-integer", _classes("value,name\ncat,1\n"), [], ["classes.csv line 2", "'cat' is not an integer"]),
    ("unknown-category", _classes("value,name,category\n0,void,ignore\n1,cat,animal\n2,w,part\n"), [],
     ["line 3", "'animal'", "object", "material", "ignore"]),
    ("bad-colour", _classes("value,name,color\n0,void,#000000\n1,cat,red\n2,w,#00ff00\n"), [],
     ["line 3", "'red'", "#rrggbb"]),
    ("duplicate-colours", _classes("value,name,color\n0,void,#000000\n1,cat,#ff0000\n2,w,#FF0000\n"), [],
     ["#ff0000", "values 1 and 2"]),
    ("mask-values-out-of-list", _index({"a": [[0, 1, 3, 9]]}), [],
     ["a.png", "pixel values [3, 9]", "classes.csv (3 classes, values 0..2; ignored none)"]),
    ("palette-mask-unknown-colours", _foreign_voc_palette, [],
     ["2007_000039.png", "palette colours ['#010203']", "VOC class list (21 classes, values 0..20; ignored 255)"]),
    ("rgb-mask-without-palette", _rgb_without_colours, [], ["a.png", "colour (RGB) mask", "--classes", "color"]),
    ("image-without-mask", _index({"a": [[0, 1, 1, 2]]}, images=("a", "b")), [], ["b.png", "mask file is missing"]),
    ("mask-without-image", _index({"a": [[0, 1, 1, 2]], "c": [[0, 0, 0, 0]]}), [], ["c.png", "has no image", "c.jpg"]),
    ("mask-size-differs", _index({"a": [[0, 1], [1, 2]]}), [], ["a.png", "2x2", "1x4"]),
    ("ambiguous-layout", _ambiguous, [], ["several layouts (broden, voc)", "--layout", "--classes"]),
    ("ade-masks-in-labels-no-class-list", lambda r: S.ade20k(r, S.CAMVID_MASK, info=False, masks="labels"), [],
     ["no class list", "camvid (", "--layout", "--classes"]),
    ("ade20k-without-objectinfo", lambda r: S.ade20k(r, info=False), ["--layout", "ade20k"],
     ["objectInfo150.csv", "--classes"]),
    ("index-without-class-list", lambda r: S.ade20k(r, info=False), ["--layout", "index"],
     ["index layout needs a class list", "--classes"]),
    ("layout-folders-missing", S.camvid, ["--layout", "voc"], ["not a voc folder", "JPEGImages/"]),
    ("class-file-missing", S.camvid, ["--classes", "{tmp}/nope.csv"], ["nope.csv", "does not exist"]),
    ("classes-for-broden", _broden, ["--classes", "{tmp}/mine.csv"], ["--classes", "label.csv"]),
]


@pytest.mark.parametrize("make, extra, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dissect_refuses(refuse, weights, tmp_path, make, extra, mentions):
    data, out = tmp_path / "pool", tmp_path / "out"
    make(data)
    (tmp_path / "mine.csv").write_text("value,name\n1,cat\n")
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--layers", "conv5",
            "--data", data, "--out", out, "--label-cache", "none", *extra],
           mentions=mentions, unchanged=[data, out, tmp_path / "mine.csv"])


# The other commands that take --data share the same options and checks.
OTHERS = [
    ("rf", ["rf", "--layers", "conv5"]),
    ("minimal", ["minimal", "--segmentation", "masks"]),
    ("localize", ["localize", "--layer", "conv5", "--dissection", "{tmp}/none"]),
]


@pytest.mark.parametrize("command", [c[1] for c in OTHERS], ids=[c[0] for c in OTHERS])
def test_every_data_command_refuses_out_of_list_masks(refuse, weights, tmp_path, command):
    data, out = tmp_path / "pool", tmp_path / "out"
    _index({"a": [[0, 1, 3, 9]]})(data)
    command = [a.replace("{tmp}", str(tmp_path)) for a in command]
    refuse([*command, "--model", "mini_alexnet", "--weights", weights, "--data", data, "--out", out],
           mentions=["a.png", "pixel values [3, 9]", "classes.csv"], unchanged=[data, out])


def test_ablate_refuses_a_pool_without_class_labels(refuse, weights, tmp_path):
    data, out = S.camvid(tmp_path / "camvid"), tmp_path / "out"
    refuse(["ablate", "--model", "mini_alexnet", "--weights", weights, "--data", data, "--out", out,
            "--layer", "conv5", "--dissection", tmp_path / "none"],
           mentions=["--label-category", "pixel masks only"], unchanged=[data, out])
