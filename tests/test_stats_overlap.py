"""RunningConceptOverlap against per-image numpy loops, label maps, shards, bad input."""

import os
import pickle

import numpy as np
import pytest
import torch

from reference_stats import RunningConceptOverlap

DEVICE = os.environ.get("UNITSCOPE_TEST_DEVICE", "cpu")


def reference(units: np.ndarray, concepts: np.ndarray, valid: np.ndarray):
    """Plain loops over images, units and concepts."""
    n, u_count, _ = units.shape
    k_count = concepts.shape[1]
    inter = np.zeros((u_count, k_count), np.int64)
    unit_area = np.zeros((u_count, k_count), np.int64)
    concept_area = np.zeros(k_count, np.int64)
    for i in range(n):
        for k in range(k_count):
            if not valid[i, k]:
                continue
            concept_area[k] += concepts[i, k].sum()
            for u in range(u_count):
                inter[u, k] += (units[i, u] & concepts[i, k]).sum()
                unit_area[u, k] += units[i, u].sum()
    return inter, unit_area, concept_area


def random_batch(n=6, u=5, k=4, p=50, seed=0):
    rng = np.random.default_rng(seed)
    units = rng.random((n, u, p)) < rng.uniform(0.05, 0.5, size=(1, u, 1))
    labels = rng.integers(-1, k, size=(n, 2, p))  # two label layers, -1 = none
    assert (labels[:, 0] == labels[:, 1]).any()  # a concept twice at a pixel counts once
    concepts = np.stack([(labels == c).any(axis=1) for c in range(k)], axis=1)
    valid = rng.random((n, k)) < 0.7
    return units, concepts, labels, valid


def test_known_answer():
    units = torch.tensor([[[True, True, False, False]], [[True, False, False, False]]])
    concepts = torch.tensor([[[False, True, True, False]], [[True, True, True, True]]])
    overlap = RunningConceptOverlap()
    overlap.add(units, concepts, concept_valid=torch.tensor([[True], [False]]))
    assert overlap.intersection.tolist() == [[1]]
    assert overlap.unit_area.tolist() == [[2]]  # the second image does not count
    assert overlap.concept_area.tolist() == [2]
    assert overlap.union().tolist() == [[3]]
    assert overlap.iou().tolist() == [[1 / 3]]
    assert overlap.valid_images.tolist() == [1] and overlap.count == 2


def test_matches_reference_loops():
    units, concepts, _, valid = random_batch()
    overlap = RunningConceptOverlap()
    overlap.add(torch.from_numpy(units).to(DEVICE), torch.from_numpy(concepts).to(DEVICE),
                concept_valid=torch.from_numpy(valid).to(DEVICE))
    inter, unit_area, concept_area = reference(units, concepts, valid)
    assert np.array_equal(overlap.intersection.cpu().numpy(), inter)
    assert np.array_equal(overlap.unit_area.cpu().numpy(), unit_area)
    assert np.array_equal(overlap.concept_area.cpu().numpy(), concept_area)
    union = unit_area + concept_area[None] - inter
    want_iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    np.testing.assert_array_equal(overlap.iou().cpu().numpy(), want_iou)


def test_label_maps_equal_masks():
    units, concepts, labels, valid = random_batch(seed=1)
    from_masks, from_labels = RunningConceptOverlap(), RunningConceptOverlap()
    from_masks.add(torch.from_numpy(units), torch.from_numpy(concepts),
                   concept_valid=torch.from_numpy(valid))
    from_labels.add_labels(torch.from_numpy(units).to(DEVICE), torch.from_numpy(labels).to(DEVICE),
                           concept_valid=torch.from_numpy(valid).to(DEVICE))
    for name in ("intersection", "unit_area", "concept_area", "valid_images"):
        assert torch.equal(getattr(from_labels, name).cpu(), getattr(from_masks, name)), name
    plain = RunningConceptOverlap()
    plain.add_labels(torch.from_numpy(units), torch.from_numpy(labels), num_concepts=4)
    assert torch.equal(plain.valid_images, torch.full((4,), 6))


def test_merge_of_shards_equals_one_pass_exactly():
    batches = [random_batch(n=3, seed=s) for s in range(4)]
    one = RunningConceptOverlap()
    shards = [RunningConceptOverlap(), RunningConceptOverlap()]
    for i, (units, concepts, _, valid) in enumerate(batches):
        args = (torch.from_numpy(units), torch.from_numpy(concepts))
        one.add(*args, concept_valid=torch.from_numpy(valid))
        shards[i % 2].add(*args, concept_valid=torch.from_numpy(valid))
    merged = RunningConceptOverlap().merge(shards[0]).merge(shards[1])
    for name in ("intersection", "unit_area", "concept_area", "valid_images"):
        assert torch.equal(getattr(merged, name), getattr(one, name))
    assert torch.equal(merged.iou(), one.iou()) and merged.count == 12


def test_state_round_trip(tmp_path):
    units, concepts, _, valid = random_batch(seed=2)
    overlap = RunningConceptOverlap()
    overlap.add(torch.from_numpy(units), torch.from_numpy(concepts), concept_valid=torch.from_numpy(valid))
    np.savez(tmp_path / "o.npz", **overlap.state_dict())
    with np.load(tmp_path / "o.npz") as saved:
        back = RunningConceptOverlap.from_state_dict(saved)
    again = RunningConceptOverlap().load_state_dict(pickle.loads(pickle.dumps(overlap.state_dict())))
    for other in (back, again):
        assert torch.equal(other.iou(), overlap.iou()) and other.count == overlap.count
    assert overlap.to("cpu") is overlap


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_counts_equal_cpu_on_large_images():
    gen = torch.Generator().manual_seed(0)
    units = torch.rand(4, 32, 112 * 112, generator=gen) < 0.05
    labels = torch.randint(-1, 300, (4, 2, 112 * 112), generator=gen)
    concepts = torch.stack([(labels == c).any(dim=1) for c in range(300)], dim=1)
    cpu, cuda, cuda_labels = RunningConceptOverlap(), RunningConceptOverlap(), RunningConceptOverlap()
    cpu.add(units, concepts)
    cuda.add(units.cuda(), concepts.cuda())
    cuda_labels.add_labels(units.cuda(), labels.cuda(), num_concepts=300)
    assert torch.equal(cuda.intersection.cpu(), cpu.intersection)
    assert torch.equal(cuda_labels.intersection.cpu(), cpu.intersection)
    assert torch.equal(cuda.union().cpu(), cpu.union())


def test_bad_input():
    overlap = RunningConceptOverlap()
    units = torch.zeros(2, 3, 10, dtype=torch.bool)
    concepts = torch.zeros(2, 4, 10, dtype=torch.bool)
    with pytest.raises(ValueError, match="bool tensor"):
        overlap.add(units.float(), concepts)
    with pytest.raises(ValueError, match="3-D tensor"):
        overlap.add(units[0], concepts)
    with pytest.raises(ValueError, match="N and P must match"):
        overlap.add(units, concepts[:, :, :9])
    with pytest.raises(ValueError, match=r"concept_valid must have shape \(N, K\)"):
        overlap.add(units, concepts, concept_valid=torch.ones(2, 5, dtype=torch.bool))
    overlap.add(units, concepts)
    with pytest.raises(ValueError, match="2 units but"):
        overlap.add(units[:, :2], concepts)
    with pytest.raises(ValueError, match="5 concepts but"):
        overlap.add(units, torch.zeros(2, 5, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="only 4 concepts"):
        overlap.add_labels(units, torch.full((2, 1, 10), 4))
    with pytest.raises(ValueError, match="integers"):
        overlap.add_labels(units, torch.zeros(2, 1, 10))
    with pytest.raises(ValueError, match="num_concepts"):
        RunningConceptOverlap().add_labels(units, torch.zeros(2, 1, 10, dtype=torch.int64))
    with pytest.raises(ValueError, match="no data"):
        RunningConceptOverlap().iou()
    other = RunningConceptOverlap()
    other.add(units[:, :1], concepts)
    with pytest.raises(ValueError, match="1 units x 4 concepts"):
        overlap.merge(other)
