"""Snapshots at log-spaced steps, and a training run interrupted and resumed ending with the same bytes."""

import hashlib
import json

import pytest
import torch

from unitscope.models import create_model, model_info
from unitscope.training import log_spaced_steps, read_snapshots, scene_steps, train_network, training_config
from unitscope.training.cache import config_key
from unitscope.training.resume import partial_dir

from toys import counting, interrupt_after, tiny_world

# 24 images, batches of 8: 3 steps an epoch, 9 steps in all; snapshots at 1, 2, 4, 8, 9.
FAST = dict(epochs=3, width=4, batch_size=8, num_threads=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory)


@pytest.fixture(scope="module")
def uninterrupted(world, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return train_network(world.root, objective="scene", cache_dir=cache, snapshots=True, **FAST)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stop_at(step):
    """Ctrl-C right after ``step`` (a fresh run reports 0, 1, ..., step)."""
    return interrupt_after(step + 1)


def test_snapshots_are_saved_at_exactly_the_promised_steps(uninterrupted):
    net = uninterrupted
    assert [s.step for s in net.snapshots] == log_spaced_steps(9) == [1, 2, 4, 8, 9]
    folder = net.path.parent / "snapshots"
    assert sorted(p.name for p in folder.glob("*.pt")) == [f"step-{s:08d}.pt" for s in (1, 2, 4, 8, 9)]
    manifest = json.loads((folder / "snapshots.json").read_text())
    assert manifest["network"] == "scenenet" and manifest["total_steps"] == 9
    assert [s.step for s in read_snapshots(folder)] == [1, 2, 4, 8, 9]
    # each is an ordinary checkpoint, and the last one holds the final weights
    first = create_model(None, weights=net.snapshots[0].path)
    last = create_model(None, weights=net.snapshots[-1].path)
    assert model_info(first).class_names == model_info(net.model).class_names
    final = net.model.state_dict()
    assert all(torch.equal(v, final[k]) for k, v in last.state_dict().items())
    assert not all(torch.equal(v, final[k]) for k, v in first.state_dict().items())
    assert not partial_dir(net.path.parents[2], "scenenet", net.key).exists()  # the run cleaned up after itself


def test_snapshots_do_not_change_the_final_weights(world, uninterrupted, tmp_path):
    plain = train_network(world.root, objective="scene", cache_dir=tmp_path, **FAST)
    assert plain.key == uninterrupted.key and plain.snapshots == []
    assert _sha(plain.path) == _sha(uninterrupted.path)
    # the cached entry has no snapshots: asked for them, it trains again, to the same weights
    again = train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=True, **FAST)
    assert not again.cached and [s.step for s in again.snapshots] == [1, 2, 4, 8, 9]
    assert _sha(again.path) == _sha(plain.path)
    assert train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=True, **FAST).cached


@pytest.mark.parametrize("snapshots, stop", [(True, 5), (True, 8), (False, 5)])
def test_a_resumed_run_equals_an_uninterrupted_one(world, uninterrupted, tmp_path, snapshots, stop):
    with pytest.raises(KeyboardInterrupt):
        train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=snapshots,
                      progress=_stop_at(stop), **FAST)
    partial = partial_dir(tmp_path, "scenenet", uninterrupted.key)
    assert (partial / "state.pt").is_file()
    seen, progress = counting()
    resumed = train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=snapshots,
                            progress=progress, **FAST)
    assert seen[0] > 0  # it did continue, not start over
    assert _sha(resumed.path) == _sha(uninterrupted.path)
    if snapshots:
        assert [_sha(s.path) for s in resumed.snapshots] == [_sha(s.path) for s in uninterrupted.snapshots]
    assert not partial.exists()


def test_a_partial_run_of_another_configuration_is_refused(world, uninterrupted, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train_network(world.root, objective="scene", cache_dir=tmp_path, progress=_stop_at(4), **FAST)
    with pytest.raises(ValueError, match=r"partial training with other arguments \(option 'snapshots'"):
        train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=True, **FAST)
    # retrain starts over
    fresh = train_network(world.root, objective="scene", cache_dir=tmp_path, snapshots=True, retrain=True, **FAST)
    assert _sha(fresh.path) == _sha(uninterrupted.path)


def test_objective_keys(world):
    scene = training_config(world.root, task="scene")
    assert "objective" not in scene and training_config(world.root, objective="scene") == scene
    rotation = training_config(world.root, objective="rotation")
    assert rotation["objective"] == "rotation" and config_key(rotation) != config_key(scene)
    assert "steps" not in scene and training_config(world.root, task="scene", steps=7)["steps"] == 7
    with pytest.raises(ValueError, match="unknown training option"):
        training_config(world.root, objective="scene", permutations=4)
    with pytest.raises(ValueError, match="differ"):
        training_config(world.root, task="scene", objective="object")


def test_object_gets_the_scene_budget_by_steps(world, tmp_path):
    assert scene_steps(world.root) == 24 // 24 * 14  # 24 images: one batch an epoch, 14 epochs
    assert scene_steps(world.root, batch_size=8, epochs=3) == 9
    budget = scene_steps(world.root, batch_size=8, epochs=3)
    net = train_network(world.root, objective="object", cache_dir=tmp_path, steps=budget, width=4, batch_size=8,
                        num_threads=1)
    assert net.metrics["steps"] == 9 and net.metrics["n_train"] == 18  # 2 steps an epoch: 5 epochs, the last cut
    assert len(net.metrics["history"]) == 5


def test_steps_cycle_over_a_smaller_data_set(world, tmp_path):
    steps = []
    net = train_network(world.root, objective="rotation", cache_dir=tmp_path, steps=7, width=4, batch_size=8,
                        num_threads=1, snapshots=True, progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (7, 7) and net.metrics["steps"] == 7
    assert [s.step for s in net.snapshots] == [1, 2, 4, 7]
    assert len(net.metrics["history"]) == 3  # 3 + 3 + 1 steps
    assert model_info(net.model).class_names == ["rot0", "rot90", "rot180", "rot270"]


@pytest.mark.parametrize("objective", ["multitask", "jigsaw", "colorization", "shuffled"])
def test_every_head_trains_and_loads_as_a_checkpoint(world, tmp_path, objective):
    net = train_network(world.root, objective=objective, cache_dir=tmp_path, steps=2, width=4, batch_size=8,
                        num_threads=1, snapshots=True, permutations=4 if objective == "jigsaw" else None)
    assert net.name == f"{objective}net" and [s.step for s in net.snapshots] == [1, 2]
    again = create_model(None, weights=net.path)
    assert model_info(again).arch == net.config["arch"]
    assert model_info(again).class_names == model_info(net.model).class_names
    assert 0.0 <= net.metrics["val_top1"] <= 1.0
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(again(x), net.model(x))
    if objective == "shuffled":
        assert 0.0 <= net.metrics["train_top1"] <= 1.0


def test_the_train_command(world, tmp_path):
    from typer.testing import CliRunner

    from unitscope.cli.main import app

    runner = CliRunner()
    done = runner.invoke(app, ["train", "--world", str(world.root), "--cache", str(tmp_path), "--objective",
                               "rotation", "--snapshots", "--threads", "1"])
    assert done.exit_code == 0, done.output
    # 24 images in batches of 24, SceneNet's 14 epochs: 14 steps, snapshots at 1, 2, 4, 8, 14
    assert "rotationnet: top-1" in done.output and "(chance 25.0%)" in done.output and "5 snapshots" in done.output
    again = runner.invoke(app, ["train", "--world", str(world.root), "--cache", str(tmp_path), "--objective",
                                "rotation", "--snapshots"])
    assert "(cached)" in again.output
    both = runner.invoke(app, ["train", "--world", str(world.root), "--task", "scene", "--objective", "rotation"])
    assert both.exit_code != 0 and "give --task or --objective, not both" in both.output
    bad = runner.invoke(app, ["train", "--world", str(world.root), "--objective", "colour"])
    assert bad.exit_code != 0 and "objective must be one of" in bad.output
