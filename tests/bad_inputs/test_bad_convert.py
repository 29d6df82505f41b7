"""Bad sizes, output folders and pools: ``unitscope convert`` refuses them in one line and leaves every folder as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

import mask_samples as S
from unitscope.data.convert import MARKER


def _index(root: Path, mask=((0, 1, 1, 2), (2, 2, 0, 1))):
    """images/a.png (2 x 4) + masks/a.png + classes.csv."""
    S.image(root / "images" / "a.png", (2, 4))
    S.grey_mask(root / "masks" / "a.png", [list(r) for r in mask])
    (root / "classes.csv").write_text("value,name\n0,void\n1,cat\n2,whisker\n")
    return root


def _truncated_image(root: Path):
    """A PNG whose header reads (so the masks check passes) but whose pixels do not: found while writing."""
    _index(root)
    S.image(root / "images" / "b.png", (2, 4))
    S.grey_mask(root / "masks" / "b.png", [[0, 1, 1, 2], [2, 2, 0, 1]])
    path = root / "images" / "b.png"
    path.write_bytes(path.read_bytes()[:45])  # signature, IHDR, the IDAT header and 4 of its bytes


def _plain(root: Path):
    S.image(root / "cats" / "a.png", (2, 4))


def _out_file(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("mine")


def _out_not_ours(out: Path):
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")


def _out_earlier_conversion(out: Path):
    out.mkdir(parents=True)
    (out / MARKER).write_text("{}\n")
    (out / "index.csv").write_text("image,split\n")


def _nothing(out: Path):
    pass


# (id, pool builder, --out builder, arguments ({data}, {out} filled in), fragments the error must name)
CASES = [
    ("image-size-zero", _index, _nothing, ["--image-size", "0"], ["--image-size", "N or H,W", "1 to 16384", "'0'"]),
    ("image-size-three-numbers", _index, _nothing, ["--image-size", "224,224,3"], ["--image-size", "'224,224,3'"]),
    ("mask-size-not-a-number", _index, _nothing, ["--mask-size", "half"], ["--mask-size", "N or H,W", "'half'"]),
    ("mask-larger-than-resized-image", _index, _nothing, ["--image-size", "4", "--mask-size", "8"],
     ["--mask-size 8,8", "converted to 4,4", "at most the image size"]),
    ("mask-larger-than-kept-image", _index, _nothing, ["--mask-size", "3,3"],
     ["--mask-size 3,3", "a.png", "converted to 2,4", "at most the image size"]),
    ("limit-zero", _index, _nothing, ["--limit", "0"], ["--limit", "at least 1", "got 0"]),
    ("out-is-a-file", _index, _out_file, [], ["--out", "is a file"]),
    ("out-not-written-by-convert", _index, _out_not_ours, [], ["--out", "not written by unitscope convert", MARKER]),
    ("out-not-ours-even-with-overwrite", _index, _out_not_ours, ["--overwrite"],
     ["not written by unitscope convert", "choose a new or empty folder"]),
    ("earlier-conversion-without-overwrite", _index, _out_earlier_conversion, [],
     ["earlier conversion", "--overwrite"]),
    ("out-inside-data", _index, _nothing, ["--out", "{data}/broden"], ["--out", "--data", "overlap"]),
    ("out-is-data", _index, _nothing, ["--out", "{data}"], ["overlap", "outside the pool"]),
    ("plain-folder-has-no-masks", _plain, _nothing, [], ["holds no concept masks", "--layout", "--classes"]),
    ("data-missing", lambda root: None, _nothing, [], ["no such data folder"]),
    ("masks-off-the-class-list", lambda root: _index(root, [[0, 1, 3, 9], [0, 0, 0, 0]]), _nothing, [],
     ["a.png", "pixel values [3, 9]", "classes.csv"]),
    ("image-unreadable-while-writing", _truncated_image, _nothing, [], ["b.png", "not a readable image", "truncated"]),
]


@pytest.mark.parametrize("make_pool, make_out, extra, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_convert_refuses(refuse, tmp_path, make_pool, make_out, extra, mentions):
    data, out = tmp_path / "pool", tmp_path / "out"
    make_pool(data)
    make_out(out)
    extra = [a.replace("{data}", str(data)).replace("{out}", str(out)) for a in extra]
    args = ["convert", "--data", data, "--out", out, *extra]
    if "--out" in extra:  # the row names its own --out
        args = ["convert", "--data", data, *extra]
    # tmp_path whole: no temporary folder beside --out, no half-written --out
    refuse(args, mentions=mentions, unchanged=[tmp_path])
