"""IndexMaskPool on hand-made masks, and the real CamVid pool (../shared/realdata/camvid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from unitscope.data import CorruptFileError, IndexMaskPool, camvid_pool, collate


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name in ("x", "y"):
        Image.new("RGB", (4, 3), (10, 20, 30)).save(root / "images" / f"{name}.jpg")
    x = np.array([[0, 1, 1, 2], [0, 0, 255, 2], [3, 3, 3, 3]], np.uint8)
    Image.fromarray(x, mode="L").save(root / "labels" / "x.png")
    y = Image.fromarray(np.full((3, 4), 2, np.uint8), mode="L").convert("P")  # palette index = class
    y.save(root / "labels" / "y.png")
    return root


CLASSES = ("sky", "car", "tree", "void")


def test_index_mask_numbers_categories_and_ignore(tmp_path: Path):
    pool = IndexMaskPool(_dataset(tmp_path / "toy"), classes=CLASSES, categories={"sky": "material"},
                         ignore=(255, "void"))
    assert pool.ids == ["x", "y"] and pool.source == "toy"
    assert [(c.number, c.name, c.category) for c in pool.concepts] == [
        (1, "sky", "material"), (2, "car", "object"), (3, "tree", "object")]
    assert pool.categories == ["material", "object"]
    a = pool.annotation(0)
    assert a.masks["material"][0].tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert a.masks["object"][0].tolist() == [[0, 2, 2, 3], [0, 0, 0, 3], [0, 0, 0, 0]]
    assert pool.annotation(1).masks["object"][0].tolist() == [[3] * 4] * 3
    assert pool.mask_shape(0) == (3, 4)
    assert pool.concept_frequency() == {1: 1, 2: 1, 3: 2}


def test_index_mask_errors(tmp_path: Path):
    root = _dataset(tmp_path / "toy")
    with pytest.raises(CorruptFileError, match=r"x\.png.*\[255\]"):
        IndexMaskPool(root, classes=CLASSES).annotation(0)  # 255 not ignored
    with pytest.raises(ValueError, match="unknown class"):
        IndexMaskPool(root, classes=CLASSES, ignore=("cloud",))
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "labels" / "y.png")
    with pytest.raises(ValueError, match=r"y\.png.*5x5.*3x4"):
        IndexMaskPool(root, classes=CLASSES, ignore=(255,)).annotation(1)
    (root / "labels" / "y.png").unlink()
    with pytest.raises(CorruptFileError, match=r"y\.png"):
        IndexMaskPool(root, classes=CLASSES)
    pool = IndexMaskPool(root, classes=CLASSES, skip_bad=True)
    assert pool.ids == ["x"] and [Path(p).name for p, _ in pool.skipped] == ["y.png"]


def test_camvid_real(realdata: Path):
    root = realdata / "camvid"
    if not root.is_dir():
        pytest.skip(f"CamVid assets not found at {root}")
    pool = camvid_pool(root, source="scenes")
    assert len(pool) == 101 and pool.source == "scenes"
    assert pool.ids[0] == "0016E5_07959"
    assert pool.categories == ["material", "object"]
    assert [c.name for c in pool.concepts.in_category("material")] == ["sky", "road", "pavement"]
    assert len(pool.concepts) == 11 and 12 not in pool.concepts  # "unlabelled" is ignored
    for i in (0, 50, 100):
        assert pool.mask_shape(i) == (360, 480)
        assert pool.raw_image(i).shape == (360, 480, 3)
    a = pool.annotation(0)
    assert [m.shape for m in a.masks["object"]] == [(360, 480)]
    # Pixel counts of the first label file (values 0..11 counted with numpy by hand).
    assert int((a.masks["material"][0] == 1).sum()) == 15008  # sky
    assert int((a.masks["object"][0] == 2).sum()) == 52841  # building
    assert a.concepts() == set(range(1, 12))
    assert pool.concept_frequency() == {n: 101 for n in range(1, 12)}


def test_camvid_dataloader(realdata: Path):
    root = realdata / "camvid"
    if not root.is_dir():
        pytest.skip(f"CamVid assets not found at {root}")
    from types import SimpleNamespace

    pre = SimpleNamespace(input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3)
    pool = camvid_pool(root, preprocessing=pre).shard(0, 10)
    loader = DataLoader(pool.with_annotation(), batch_size=4, num_workers=2, collate_fn=collate)
    shapes, n = set(), 0
    for images, metas in loader:
        assert images.shape[1:] == (3, 64, 64)
        shapes |= {m["annotation"].mask_shape for m in metas}
        n += len(metas)
    assert n == 10 and shapes == {(360, 480)}
