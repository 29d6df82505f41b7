"""End to end on the default world: SceneNet and ObjectNet reach their targets in minutes,
and SceneNet needs the objects (an image with its objects removed is classified at chance).

Targets (issue "Foundation", item 6): SceneNet top-1 >= 80 %, ObjectNet top-1 >= 90 % on
held-out images.  The time budget (each trained in <= 5 minutes on a 2-core CPU) is checked by
``benchmarks/training_time.py``, not here: a loaded machine makes a timed assertion fail for
reasons that have nothing to do with the code.
"""

import pytest

from unitscope.data.world import generate_world, load_world
from unitscope.training import evaluate_image_folder, train_reference_networks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    world = generate_world(tmp_path_factory.mktemp("world") / "default")
    nets = train_reference_networks(world.root, cache_dir=tmp_path_factory.mktemp("cache"))
    return world, nets


def test_scenenet_target(reference):
    _, nets = reference
    m = nets["scenenet"].metrics
    print(f"\nSceneNet: top-1 {m['val_top1']:.3f} (resize+crop {m['val_top1_resize_crop']:.3f}), "
          f"trained in {m['train_seconds']:.0f} s, total {m['total_seconds']:.0f} s")
    assert m["val_top1"] >= 0.80


def test_objectnet_target(reference):
    _, nets = reference
    m = nets["objectnet"].metrics
    print(f"\nObjectNet: top-1 {m['val_top1']:.3f} (resize+crop {m['val_top1_resize_crop']:.3f}), "
          f"trained in {m['train_seconds']:.0f} s, total {m['total_seconds']:.0f} s")
    assert m["val_top1"] >= 0.90


def test_objects_removed_control_is_near_chance(reference):
    world, nets = reference
    defn, _ = load_world(world.root)
    chance = 1 / len(defn.scenes)
    acc = evaluate_image_folder(nets["scenenet"].model, world.scenes_noobjects_val)
    print(f"\nSceneNet on scenes with objects removed: {acc:.3f} (chance {chance:.3f})")
    assert acc == pytest.approx(nets["scenenet"].metrics["noobjects_top1"])
    assert acc <= chance + 0.10
