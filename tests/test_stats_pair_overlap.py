"""PairOverlap (sparse pairs) gives exactly RunningConceptOverlap's counts, and merges exactly."""

import numpy as np
import torch

from reference_stats import RunningConceptOverlap
from unitscope.stats import PairOverlap


def random_batch(seed, n=6, u=5, k=7, p=40, layers=2):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(n, u, p, generator=g) > 0.7
    masks[:, 0] = False  # a silent unit
    # as in real annotations, each label layer holds its own concepts (a category each)
    labels = torch.stack([torch.randint(-1, 4, (n, p), generator=g),
                          torch.where(torch.rand(n, p, generator=g) > 0.5,
                                      torch.randint(4, k, (n, p), generator=g), -1)], dim=1)
    valid = torch.rand(n, k, generator=g) > 0.2
    return masks, labels, valid


def add_sparse(stat, masks, labels, valid):
    image, unit = torch.nonzero(masks.any(dim=2), as_tuple=True)
    stat.add(image, unit, masks[image, unit], labels, valid)


def test_sparse_pairs_equal_dense_counts():
    dense, sparse = RunningConceptOverlap(), PairOverlap(5, 7)
    for seed in range(3):
        masks, labels, valid = random_batch(seed)
        dense.add_labels(masks, labels, num_concepts=7, concept_valid=valid)
        add_sparse(sparse, masks, labels, valid)
    np.testing.assert_array_equal(sparse.intersection.numpy(), dense.intersection.numpy())
    np.testing.assert_array_equal(sparse.unit_area.numpy(), dense.unit_area.numpy())
    np.testing.assert_array_equal(sparse.concept_area.numpy(), dense.concept_area.numpy())
    np.testing.assert_allclose(sparse.iou().numpy(), dense.iou().numpy())
    assert (sparse.iou()[0] == 0).all()


def test_merge_of_shards_and_state_round_trip():
    whole, a, b = PairOverlap(5, 7), PairOverlap(5, 7), PairOverlap(5, 7)
    for seed, shard in ((0, a), (1, a), (2, b)):
        batch = random_batch(seed)
        add_sparse(whole, *batch)
        add_sparse(shard, *batch)
    merged = PairOverlap.from_state_dict(a.state_dict()).merge(PairOverlap.from_state_dict(b.state_dict()))
    np.testing.assert_array_equal(merged.iou().numpy(), whole.iou().numpy())
    assert merged.count == whole.count == 18


def test_masks_given_image_by_image_equal_one_batch():
    from unitscope.stats.pair_overlap import batch_concepts

    masks, labels, valid = random_batch(5)
    whole, parts = PairOverlap(5, 7), PairOverlap(5, 7)
    add_sparse(whole, masks, labels, valid)
    concepts = batch_concepts(labels, valid, 7)
    parts.add_images(concepts)
    for i in range(masks.shape[0]):
        unit = torch.nonzero(masks[i].any(dim=1), as_tuple=True)[0]
        inter = parts.add_masks(torch.full_like(unit, i), unit, masks[i, unit], concepts)
        # the returned overlaps are per concept of the image's own row
        for row, u in zip(inter, unit.tolist()):
            for j, c in enumerate(concepts.concepts[i].tolist()):
                if c >= 0:
                    usable = (labels[i] == c).any(dim=0) & valid[i, c]
                    assert row[j] == (masks[i, u] & usable).sum()
    for name in ("intersection", "unit_area", "concept_area"):
        np.testing.assert_array_equal(getattr(parts, name).numpy(), getattr(whole, name).numpy())


def test_compact_labels_indexes_each_image_over_its_own_concepts():
    from unitscope.stats.pair_overlap import compact_labels

    labels = torch.tensor([[[0, 0, 3, -1]], [[5, 5, 5, 2]]])  # (N=2, L=1, P=4)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, 2] = False  # concept 2 is not annotated on image 1
    concepts, index, area = compact_labels(labels, valid, 6)
    assert concepts.tolist() == [[0, 3], [5, -1]]
    assert index.tolist() == [[[0, 0, 1, 2]], [[0, 0, 0, 2]]]
    assert area.tolist() == [[2, 1], [3, 0]]
