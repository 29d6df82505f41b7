"""Training on a tiny world: metrics, checkpoints, the configuration-keyed cache."""

import json

import pytest
import torch

from unitscope.data.world import generate_world
from unitscope.models import create_model, model_info
from unitscope.training import (
    CacheCorruptError,
    evaluate_image_folder,
    train_network,
    train_reference_networks,
    training_config,
)

TINY = dict(n_scenes=3, n_objects=6, size=64, n_train=24, n_val=12, n_dissect=4,
            n_object_train=18, n_object_val=12)
FAST = dict(epochs=1, width=4, batch_size=8, num_threads=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp("world") / "w", workers=0, **TINY)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, train_network(world.root, task="scene", cache_dir=cache, **FAST)


def test_metrics_and_checkpoint(trained, world):
    cache, net = trained
    assert net.name == "scenenet" and not net.cached
    m = net.metrics
    for key in ("val_top1", "val_top1_resize_crop", "noobjects_top1", "train_seconds", "total_seconds",
                "chance", "per_class_top1", "history", "key"):
        assert key in m
    assert 0.0 <= m["val_top1"] <= 1.0
    assert m["chance"] == pytest.approx(1 / 3)
    assert m["n_train"] == 24 and m["n_val"] == 12 and m["steps"] == 3
    on_disk = json.loads((net.path.parent / "metrics.json").read_text())
    assert on_disk["val_top1"] == m["val_top1"]
    info = model_info(net.model)
    assert info.arch == "mini_alexnet"
    assert info.class_names == ["art_gallery", "bedroom", "bookstore"]
    assert info.preprocessing.input_size == 64
    # The checkpoint rebuilds the same network from the file alone.
    again = create_model(None, weights=net.path)
    assert model_info(again).class_names == info.class_names
    assert model_info(again).preprocessing == info.preprocessing
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(again(x), net.model(x))


def test_second_call_loads_from_cache(trained, world):
    cache, net = trained
    again = train_network(world.root, task="scene", cache_dir=cache, **FAST)
    assert again.cached and again.key == net.key and again.path == net.path
    assert again.metrics["val_top1"] == net.metrics["val_top1"]
    for a, b in zip(again.model.state_dict().values(), net.model.state_dict().values()):
        assert torch.equal(a, b)
    # the trained network and the cached one carry the same metadata (where the preprocessing
    # came from included), so a first run and a rerun record the same bytes
    assert model_info(again.model) == model_info(net.model)
    assert model_info(net.model).preprocessing.sources == model_info(again.model).preprocessing.sources != {}


def test_any_configuration_change_gives_a_new_key(world, tmp_path):
    base = training_config(world.root, task="scene", **{k: v for k, v in FAST.items() if k != "num_threads"})
    changed = [
        training_config(world.root, task="scene", epochs=2, width=4, batch_size=8),
        training_config(world.root, task="scene", epochs=1, width=8, batch_size=8),
        training_config(world.root, task="scene", epochs=1, width=4, batch_size=8, seed=1),
        training_config(world.root, task="scene", epochs=1, width=4, batch_size=8, lr=1e-3),
        training_config(world.root, task="object", epochs=1, width=4, batch_size=8),
    ]
    from unitscope.training import config_key

    keys = {config_key(base)} | {config_key(c) for c in changed}
    assert len(keys) == 6
    other_world = generate_world(tmp_path / "w2", workers=0, seed=1, **TINY)
    assert training_config(other_world.root, task="scene", epochs=1, width=4, batch_size=8)["world"] != base["world"]


def test_threads_are_restored(world, tmp_path):
    before = torch.get_num_threads()
    train_network(world.root, task="object", cache_dir=tmp_path, **FAST)
    assert torch.get_num_threads() == before


def test_corrupt_cache_is_an_error_not_a_retrain(world, tmp_path):
    net = train_network(world.root, task="scene", cache_dir=tmp_path, **FAST)
    net.path.write_bytes(b"not a checkpoint")
    with pytest.raises(CacheCorruptError, match="corrupt"):
        train_network(world.root, task="scene", cache_dir=tmp_path, **FAST)
    assert net.path.read_bytes() == b"not a checkpoint", "nothing was retrained"
    (net.path.parent / "metrics.json").write_text("{")
    with pytest.raises(CacheCorruptError, match="delete"):
        train_network(world.root, task="scene", cache_dir=tmp_path, **FAST)
    # An explicit retrain replaces the bad entry.
    fresh = train_network(world.root, task="scene", cache_dir=tmp_path, retrain=True, **FAST)
    assert not fresh.cached
    assert train_network(world.root, task="scene", cache_dir=tmp_path, **FAST).cached


def test_reference_networks_and_folder_evaluation(world, tmp_path):
    nets = train_reference_networks(world.root, cache_dir=tmp_path, **FAST)
    assert set(nets) == {"scenenet", "objectnet"}
    assert model_info(nets["objectnet"].model).class_names == sorted(model_info(nets["objectnet"].model).class_names)
    assert len(model_info(nets["objectnet"].model).class_names) == 6
    acc = evaluate_image_folder(nets["objectnet"].model, world.objects_val)
    assert acc == pytest.approx(nets["objectnet"].metrics["val_top1"])
    assert "noobjects_top1" not in nets["objectnet"].metrics


def test_progress_and_bad_options(world, tmp_path):
    steps = []
    train_network(world.root, task="object", cache_dir=tmp_path, progress=lambda s, t: steps.append((s, t)),
                  **FAST)
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)
    with pytest.raises(ValueError, match="objective must be one of"):
        train_network(world.root, task="texture", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="positive"):
        train_network(world.root, task="scene", cache_dir=tmp_path, epochs=0)
    with pytest.raises(FileNotFoundError, match="world.json"):
        train_network(tmp_path / "nowhere", task="scene", cache_dir=tmp_path)
