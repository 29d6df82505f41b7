"""Each training objective's targets on a tiny batch, and the objects recomputed for the world's images."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unitscope.data import BrodenPool
from unitscope.data.world import load_world
from unitscope.training import OBJECTIVE_DESCRIPTIONS, OBJECTIVES, get_objective, network_name
from unitscope.training.data import load_image_folder
from unitscope.training.objectives import assemble_jigsaw, jigsaw_permutations, rotate, shuffled_labels
from unitscope.training.presence import scene_objects, scene_presence

from toys import tiny_world



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory, n_dissect=8)


def _batch(n=5, size=48):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_every_objective_is_named_and_described():
    assert OBJECTIVES == ("scene", "object", "multilabel", "multitask", "rotation", "jigsaw", "shuffled",
                          "colorization")
    assert set(OBJECTIVE_DESCRIPTIONS) == set(OBJECTIVES)
    assert [network_name(o) for o in ("scene", "object", "rotation")] == ["scenenet", "objectnet", "rotationnet"]
    with pytest.raises(ValueError, match="objective must be one of scene, object"):
        get_objective("colour")


def test_rotation_labels_are_the_rotation_applied():
    x = _batch()
    inputs, turns = get_objective("rotation").batch(x, torch.zeros(5, dtype=torch.int64),
                                                    torch.Generator().manual_seed(0))
    assert turns.dtype == torch.int64 and set(turns.tolist()) <= {0, 1, 2, 3}
    assert len(set(turns.tolist())) > 1  # the seeded draw mixes rotations
    for n in range(5):
        back = torch.rot90(inputs[n], -int(turns[n]), dims=(1, 2))  # undo: clockwise by the label
        assert torch.equal(back, x[n])
    # one quarter turn of a known 2x2 picture, counter-clockwise
    tiny = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    assert rotate(tiny, torch.tensor([1])).flatten().tolist() == [2.0, 4.0, 1.0, 3.0]
    assert get_objective("rotation").class_names([], []) == ["rot0", "rot90", "rot180", "rot270"]


def test_jigsaw_permutations_are_fixed_distinct_and_far_apart():
    perms = jigsaw_permutations(12, seed=0)
    assert perms.shape == (12, 9)
    assert torch.equal(perms, jigsaw_permutations(12, seed=0))
    assert not torch.equal(perms, jigsaw_permutations(12, seed=1))
    assert all(sorted(p.tolist()) == list(range(9)) for p in perms)
    distances = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    off_diagonal = distances[~torch.eye(12, dtype=torch.bool)]
    assert int(off_diagonal.min()) >= 6  # the greedy max-min choice keeps them apart


def test_jigsaw_tiles_reassembled_by_the_inverse_permutation_give_the_original():
    x = _batch(size=48)
    perms = jigsaw_permutations(8, seed=0)
    index = torch.tensor([0, 3, 5, 7, 1])
    shuffled = assemble_jigsaw(x, perms[index], gap=0)
    assert not torch.equal(shuffled, x)
    inverse = torch.argsort(perms[index], dim=1)
    assert torch.equal(assemble_jigsaw(shuffled, inverse, gap=0), x)


def test_jigsaw_tiles_with_a_gap_hold_the_jittered_source_cell():
    x = _batch(n=2, size=48)  # cells of 16 px, tiles of 12 px
    perms = jigsaw_permutations(4, seed=0)
    inputs, index = get_objective("jigsaw").batch(x, torch.zeros(2, dtype=torch.int64),
                                                  torch.Generator().manual_seed(1), permutations=perms, gap=4)
    assert index.shape == (2,) and int(index.max()) < 4
    for n in range(2):
        for i in range(9):
            s = int(perms[index[n], i])
            tile = inputs[n, :, (i // 3) * 16 + 2:(i // 3) * 16 + 14, (i % 3) * 16 + 2:(i % 3) * 16 + 14]
            # the tile is a 12 px crop of source cell s at some offset in [0, 4]
            cell = x[n, :, (s // 3) * 16:(s // 3) * 16 + 16, (s % 3) * 16:(s % 3) * 16 + 16]
            assert any(torch.equal(tile, cell[:, dy:dy + 12, dx:dx + 12]) for dy in range(5) for dx in range(5))
        ring = inputs[n, :, 0:2, :]  # the gap around the top row of tiles is empty (the mean)
        assert float(ring.abs().max()) == 0.0


def test_shuffled_labels_are_one_fixed_seeded_permutation():
    labels = torch.arange(40) % 4
    once = shuffled_labels(labels, 0)
    assert torch.equal(once, shuffled_labels(labels, 0))  # every epoch, every run: the same
    assert not torch.equal(once, labels) and not torch.equal(once, shuffled_labels(labels, 1))
    assert torch.equal(torch.bincount(once), torch.bincount(labels))  # a permutation of the labels
    objective = get_objective("shuffled")
    assert torch.equal(objective.image_targets(labels, None, seed=0), once)
    # scene training keeps the true labels
    assert torch.equal(get_objective("scene").image_targets(labels, None, seed=0), labels)


def test_multitask_targets_and_loss_are_the_scene_and_presence_ones():
    labels = torch.tensor([0, 2])
    presence = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    objective = get_objective("multitask")
    targets = objective.image_targets(labels, presence, seed=0)
    assert torch.equal(targets["scene"], labels) and torch.equal(targets["objects"], presence)
    assert objective.class_names(["a", "b", "c"], ["x", "y", "z"]) == ["a", "b", "c", "x", "y", "z"]
    outputs = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    expected = F.cross_entropy(outputs[:, :3], labels) + F.binary_cross_entropy_with_logits(outputs[:, 3:], presence)
    torch.testing.assert_close(objective.loss(outputs, targets), expected)
    with pytest.raises(ValueError, match="needs the objects"):
        objective.image_targets(labels, None, seed=0)


def test_recomputed_objects_equal_the_broden_masks(world):
    """The dissection images' object masks were written by the world: the redraw must list the same objects."""
    defn, _ = load_world(world.root)
    pool = BrodenPool(world.broden)
    first = defn.concepts().find(defn.object_names[0], "object").number
    ids = [pool[i][1]["id"] for i in range(len(pool))]
    indices = [int(i.rsplit("_", 1)[1]) for i in ids]
    presence, _ = scene_objects(world.root, "dissect", indices)
    for row, i in enumerate(range(len(pool))):
        drawn = set(np.unique(np.concatenate([m.ravel() for m in pool.annotation(i).masks["object"]])).tolist())
        expected = {c - first for c in drawn if c >= first}
        assert set(np.flatnonzero(presence[row]).tolist()) == expected
    assert presence.any(1).all()  # every scene image shows some object


def test_train_presence_matches_the_rendered_images_and_world_counts(world, tmp_path):
    defn, doc = load_world(world.root)
    train = load_image_folder(world.root / "scenes" / "train", defn.scene_names)
    table = scene_presence(world.root, "train", train.paths, train.images, cache_dir=tmp_path)
    assert table.shape == (24, 6) and table.dtype == torch.float32
    counts = doc["statistics"]["object_image_counts"]["scenes/train"]
    assert table.sum(0).tolist() == [counts[name] for name in defn.object_names]
    cached = scene_presence(world.root, "train", train.paths, train.images, cache_dir=tmp_path)
    assert torch.equal(cached, table)
    multilabel = get_objective("multilabel")
    assert torch.equal(multilabel.image_targets(train.labels, table, seed=0), table)
    # a world whose pixels are not what its definition draws is refused
    altered = train.images.clone()
    altered[0] ^= 1
    with pytest.raises(ValueError, match="differs from the image its world definition draws"):
        scene_presence(world.root, "train", train.paths, altered, cache_dir=tmp_path)


def test_colorization_sees_grey_and_predicts_each_cells_binned_chroma():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    rgb = torch.zeros(1, 3, 16, 16)
    rgb[0, :, :, :8] = 0.5                            # left cells grey: chroma (0, 0) -> bins (4, 4)
    rgb[0, 0, :, 8:] = 1.0                            # right cells pure red: Cb -0.169 -> 2, Cr 0.5 -> 7 (clamped)
    x = (rgb - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    objective = get_objective("colorization")
    grey, classes = objective.batch(x, None, torch.Generator(), mean=mean, std=std)
    assert classes.tolist() == [[[36, 23], [36, 23]]]
    back = grey * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    torch.testing.assert_close(back[:, 0], back[:, 1])
    torch.testing.assert_close(back[:, 0], back[:, 2])
    torch.testing.assert_close(back[0, 0, 0, 12], torch.tensor(0.299))  # luma of red
    assert objective.arch == "mini_alexnet_dense" and len(objective.class_names([], [])) == 64
    outputs = torch.zeros(1, 64, 2, 2)
    outputs[0, 36, :, 0] = 1.0
    assert objective.scores(outputs, classes)["val_top1"] == 0.5
