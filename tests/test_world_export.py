"""Writing the world: layout, determinism across runs and workers, Broden round trip, caching."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from unitscope.data import BrodenPool, PlainPool
from unitscope.data.world import (
    WorldPaths,
    compose_scene,
    default_world,
    generate_world,
    image_rng,
    load_world,
)

TINY = dict(n_scenes=4, n_objects=10, size=64, n_train=24, n_val=12, n_dissect=10,
            n_object_train=20, n_object_val=10)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> WorldPaths:
    return generate_world(tmp_path_factory.mktemp("world") / "w", workers=0, **TINY)


def test_layout(tiny_world):
    p = tiny_world
    defn, doc = load_world(p.root)
    assert doc["generation"]["n_train"] == 24 and doc["generation"]["size"] == 64
    assert sorted(x.name for x in p.scenes_train.iterdir()) == defn.scene_names
    assert sorted(x.name for x in p.objects_train.iterdir()) == defn.object_names
    assert len(list(p.scenes_train.rglob("*.png"))) == 24
    assert len(list(p.scenes_val.rglob("*.png"))) == 12
    assert len(list(p.objects_train.rglob("*.png"))) == 20
    assert len(list(p.objects_val.rglob("*.png"))) == 10
    val = sorted(x.relative_to(p.scenes_val) for x in p.scenes_val.rglob("*.png"))
    control = sorted(x.relative_to(p.scenes_noobjects_val) for x in p.scenes_noobjects_val.rglob("*.png"))
    assert val == control
    for name in ("index.csv", "label.csv", "category.csv", "c_object.csv"):
        assert (p.broden / name).is_file()
    counts = doc["statistics"]["object_image_counts"]["scenes/train"]
    assert set(counts) == set(defn.object_names)
    assert not list(p.root.parent.glob(".w.tmp-*")), "no temporary folder left behind"


def test_same_seed_identical_bytes_whatever_the_workers(tiny_world, tmp_path):
    again = generate_world(tmp_path / "again", workers=2, **TINY)
    assert _digest(again.root) == _digest(tiny_world.root)


def test_different_seed_different_images(tiny_world, tmp_path):
    other = generate_world(tmp_path / "other", workers=0, seed=1, **TINY)
    a, b = _digest(tiny_world.scenes_val), _digest(other.scenes_val)
    assert a.keys() != b.keys() or all(a[k] != b[k] for k in a)


def test_files_are_the_in_memory_renderings(tiny_world):
    from PIL import Image

    defn, _ = load_world(tiny_world.root)
    r = compose_scene(defn, image_rng(0, "scene/val", 5), 64, scene=5 % len(defn.scenes))
    scene = defn.scene_names[r.label]
    on_disk = np.asarray(Image.open(tiny_world.scenes_val / scene / "val_000005.png"))
    np.testing.assert_array_equal(on_disk, r.image)
    control = np.asarray(Image.open(tiny_world.scenes_noobjects_val / scene / "val_000005.png"))
    np.testing.assert_array_equal(control, r.background)


def test_broden_round_trip_identical_masks(tiny_world):
    defn, _ = load_world(tiny_world.root)
    pool = BrodenPool(tiny_world.broden, label_category="scene")
    assert len(pool) == 10
    assert pool.concepts == defn.concepts()
    for index in range(len(pool)):
        meta = pool.meta(index)
        i = int(meta["id"].split("_")[-1])
        r = compose_scene(defn, image_rng(0, "scene/dissect", i), 64, scene=i % len(defn.scenes))
        np.testing.assert_array_equal(pool.raw_image(index), r.image)
        got = pool.annotation(index)
        for cat, maps in r.annotation.masks.items():
            assert len(got.masks[cat]) == 1
            np.testing.assert_array_equal(got.masks[cat][0], maps[0])
        assert got.image_labels.get("scene") == r.annotation.image_labels["scene"]
        assert meta["label"] == r.label


def test_plain_pool_labels_follow_the_definition(tiny_world):
    defn, _ = load_world(tiny_world.root)
    pool = PlainPool(tiny_world.scenes_val, source="scenes")
    assert pool.class_names == defn.scene_names
    for index in range(len(pool)):
        meta = pool.meta(index)
        i = int(meta["id"].split("_")[-1])
        assert meta["label"] == i % len(defn.scenes)


def test_existing_world_is_reused(tiny_world):
    stamp = tiny_world.world_json.stat().st_mtime_ns
    again = generate_world(tiny_world.root, workers=0, **TINY)
    assert again.seconds == 0.0
    assert tiny_world.world_json.stat().st_mtime_ns == stamp


def test_other_configuration_needs_overwrite(tiny_world, tmp_path):
    target = tmp_path / "w"
    generate_world(target, workers=0, **TINY)
    changed = dict(TINY, n_train=30)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_world(target, workers=0, **changed)
    generate_world(target, workers=0, overwrite=True, **changed)
    assert json.loads((target / "world.json").read_text())["generation"]["n_train"] == 30
    assert len(list((target / "scenes" / "train").rglob("*.png"))) == 30
    assert sorted(x.name for x in tmp_path.iterdir()) == ["w"], "old copy and temporary folders removed"


def test_unrelated_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        generate_world(tmp_path / "mine", workers=0, **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_progress_reports_every_image(tmp_path):
    calls = []
    generate_world(tmp_path / "w", workers=0, progress=lambda done, total: calls.append((done, total)), **TINY)
    total = 24 + 12 + 10 + 20 + 10
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_object_centric_images_in_broden_when_asked(tmp_path):
    p = generate_world(tmp_path / "w", workers=0, n_dissect_objects=6, **TINY)
    pool = BrodenPool(p.broden)
    ids = [pool.meta(i)["id"] for i in range(len(pool))]
    assert sum(i.startswith("object_") for i in ids) == 6
    assert sum(i.startswith("scene_") for i in ids) == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 100}, "multiple of 16"),
    ({"n_train": 0}, "at least 1"),
    ({"n_val": -1}, "non-negative"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_world(tmp_path / "w", workers=0, **dict(TINY, **kwargs))


def test_load_world_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="world.json"):
        load_world(tmp_path)
    (tmp_path / "world.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        load_world(tmp_path)


def test_default_world_definition_is_stored(tiny_world):
    defn, _ = load_world(tiny_world.root)
    assert defn == default_world(4, 10, 0)
