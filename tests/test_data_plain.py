"""PlainPool: ImageFolder labels and order, source names, bad files, subset/shard, DataLoader."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from unitscope.data import CorruptFileError, PlainPool, SkippedItem, collate


def _save(path: Path, value: int, size=(6, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    _save(root / "dog" / "b.png", 10)
    _save(root / "dog" / "a.png", 20)
    _save(root / "cat" / "z.jpg", 30)
    _save(root / "cat" / "sub" / "c.png", 40)
    (root / "cat" / "notes.txt").write_text("not an image")
    _save(root / ".hidden" / "x.png", 50)
    return root


def test_imagefolder_labels_order_and_source(folder: Path):
    pool = PlainPool(folder)
    assert pool.ids == ["cat/sub/c", "cat/z", "dog/a", "dog/b"]
    assert pool.class_names == ["cat", "dog"]
    assert pool.labels == [0, 0, 1, 1]
    assert pool.source == "objects"
    assert len(pool) == 4
    image, meta = pool[2]
    assert image.shape == (3, 4, 6)
    assert meta == {
        "index": 2, "global_index": 2, "id": "dog/a", "source": "objects", "label": 1,
        "path": str(folder.resolve() / "dog" / "a.png"),
    }
    assert float(image[0, 0, 0]) == pytest.approx(20 / 255)
    raw = pool.raw_image(3)
    assert raw.dtype == np.uint8 and raw.shape == (4, 6, 3) and int(raw[0, 0, 0]) == 10
    assert PlainPool(folder, source="scenes")[0][1]["source"] == "scenes"


def test_flat_folder_and_non_recursive(tmp_path: Path):
    _save(tmp_path / "p" / "b.jpg", 1)
    _save(tmp_path / "p" / "a.png", 2)
    _save(tmp_path / "p" / "deep" / "c.png", 3)
    flat = PlainPool(tmp_path / "p", recursive=False)
    assert flat.ids == ["a", "b"] and flat.labels == [-1, -1] and flat.class_names == []
    mixed = PlainPool(tmp_path / "p")
    assert mixed.ids == ["a", "b", "deep/c"] and mixed.labels == [-1, -1, 0]


def test_preprocessing_resizes(folder: Path):
    pre = SimpleNamespace(input_size=8, mean=(0, 0, 0), std=(1, 1, 1))
    assert PlainPool(folder, preprocessing=pre)[0][0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="either transform or preprocessing"):
        PlainPool(folder, preprocessing=pre, transform=lambda im: im)


def test_empty_and_missing_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        PlainPool(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PlainPool(tmp_path / "nowhere")


def test_corrupt_file_raises_naming_it(folder: Path):
    bad = folder / "dog" / "c.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    pool = PlainPool(folder)
    index = pool.ids.index("dog/c")
    with pytest.raises(CorruptFileError, match="c.png") as info:
        pool[index]
    assert isinstance(info.value, ValueError) and info.value.path == bad.resolve()


def test_skip_bad_at_construction_and_at_read(folder: Path):
    (folder / "dog" / "c.png").write_bytes(b"not a png at all")
    # A valid header with a truncated body passes the construction check and fails on decode.
    full = folder / "cat" / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    full.write_bytes(full.read_bytes()[:200])
    pool = PlainPool(folder, skip_bad=True)
    assert [Path(p).name for p, _ in pool.skipped] == ["c.png"]
    assert len(pool) == 5
    index = pool.ids.index("cat/big")
    item = pool[index]
    assert isinstance(item, SkippedItem) and item.path.endswith("big.png")
    assert len(pool.skipped) == 2
    assert pool.ids == ["cat/big", "cat/sub/c", "cat/z", "dog/a", "dog/b"]
    images, metas = collate([pool[1], item, pool[4]])
    assert images.shape == (2, 3, 4, 6)
    assert [m["index"] for m in metas] == [1, 4]
    assert [Path(p).name for p, _ in metas.skipped] == ["big.png"]


def test_subset_and_shard_partition(folder: Path):
    for k in range(7):
        _save(folder / "fox" / f"{k}.png", k)
    pool = PlainPool(folder)
    n = len(pool)
    assert n == 11
    for mode in ("contiguous", "strided"):
        for world in (1, 2, 3, 4, 11, 13):
            shards = [pool.shard(r, world, mode=mode) for r in range(world)]
            got = np.concatenate([s.global_indices for s in shards])
            assert sorted(got.tolist()) == list(range(n))
            for s in shards:  # each shard keeps the pool's order
                assert list(s.global_indices) == sorted(s.global_indices)
            if mode == "contiguous":
                assert got.tolist() == list(range(n))
    shard = pool.shard(1, 3)
    assert shard.global_indices.tolist() == [3, 4, 5, 6]
    assert [shard[i][1]["id"] for i in range(len(shard))] == pool.ids[3:7]
    assert shard[0][1]["index"] == 0 and shard[0][1]["global_index"] == 3
    assert pool.shard(2, 3, mode="strided").global_indices.tolist() == [2, 5, 8]
    sub = pool.subset([5, 0])
    assert sub.ids == [pool.ids[5], pool.ids[0]] and sub.subset([1]).global_indices.tolist() == [0]
    with pytest.raises(ValueError, match="rank"):
        pool.shard(3, 3)
    with pytest.raises(ValueError, match="mode"):
        pool.shard(0, 2, mode="random")
    with pytest.raises(IndexError):
        pool.subset([n])


def test_dataloader_with_workers(folder: Path):
    pool = PlainPool(folder)
    loader = DataLoader(pool, batch_size=3, num_workers=2, collate_fn=collate)
    ids, total = [], 0
    for images, metas in loader:
        assert images.shape[1:] == (3, 4, 6) and images.dtype == torch.float32
        ids += [m["id"] for m in metas]
        total += images.shape[0]
    assert ids == pool.ids and total == 4
