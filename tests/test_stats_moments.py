"""RunningMoments and RunningMean against numpy, shard merges, round-trips, bad input."""

import os
import pickle

import numpy as np
import pytest
import torch

from reference_stats import RunningMean, RunningMoments

DEVICE = os.environ.get("UNITSCOPE_TEST_DEVICE", "cpu")


def test_known_answer():
    m = RunningMoments()
    m.add(torch.tensor([[1.0, 0.0], [3.0, 4.0]]))
    m.add(torch.tensor([[2.0, -4.0]]))
    assert m.count == 3
    assert m.mean().tolist() == [2.0, 0.0]
    assert m.variance(ddof=0).tolist() == pytest.approx([2 / 3, 32 / 3])
    assert m.variance().tolist() == [1.0, 16.0]
    assert m.std().tolist() == [1.0, 4.0]
    assert m.min().tolist() == [1.0, -4.0] and m.max().tolist() == [3.0, 4.0]


def test_matches_numpy_with_a_large_offset():
    rng = np.random.default_rng(0)
    data = 1e6 + rng.normal(size=(10_000, 6)) * np.arange(1, 7)  # catastrophic for sum of squares
    m = RunningMoments()
    for chunk in np.array_split(data, 17):
        m.add(torch.from_numpy(chunk).to(DEVICE))
    np.testing.assert_allclose(m.mean().cpu().numpy(), data.mean(0), rtol=1e-14)
    np.testing.assert_allclose(m.variance(ddof=1).cpu().numpy(), data.var(0, ddof=1), rtol=1e-9)
    assert np.array_equal(m.min().cpu().numpy(), data.min(0))
    assert np.array_equal(m.max().cpu().numpy(), data.max(0))


def test_merge_of_shards_equals_one_pass():
    data = torch.randn(3000, 5, generator=torch.Generator().manual_seed(1)) * 2 + 3
    one = RunningMoments()
    one.add(data)
    shards = [RunningMoments() for _ in range(4)]
    for i, chunk in enumerate(data.split(250)):
        shards[i % 4].add(chunk)
    merged = RunningMoments()
    for shard in shards:
        merged.merge(shard)
    assert merged.count == one.count == 3000
    torch.testing.assert_close(merged.mean(), one.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(merged.variance(), one.variance(), rtol=1e-12, atol=1e-12)
    assert torch.equal(merged.min(), one.min()) and torch.equal(merged.max(), one.max())


def test_state_round_trip(tmp_path):
    m = RunningMoments()
    m.add(torch.randn(100, 3))
    np.savez(tmp_path / "m.npz", **m.state_dict())
    with np.load(tmp_path / "m.npz") as saved:
        back = RunningMoments.from_state_dict(saved)
    again = RunningMoments().load_state_dict(pickle.loads(pickle.dumps(m.state_dict())))
    for other in (back, again):
        assert other.count == 100
        for name in ("mean", "variance", "min", "max"):
            assert torch.equal(getattr(other, name)(), getattr(m, name)())
    assert m.to("cpu") is m


def test_variance_of_one_item_is_nan():
    m = RunningMoments()
    m.add(torch.tensor([[5.0]]))
    assert torch.isnan(m.variance()).all() and m.variance(ddof=0).tolist() == [0.0]


@pytest.mark.parametrize(
    "values, message",
    [
        (torch.zeros(4), "2-D tensor"),
        (torch.zeros(4, 3), "3 columns"),
        (torch.tensor([[float("nan"), 0.0]]), "NaN"),
    ],
)
def test_moments_bad_input(values, message):
    m = RunningMoments()
    m.add(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=message):
        m.add(values)


def test_moments_bad_merge_and_empty():
    with pytest.raises(ValueError, match="no data"):
        RunningMoments().mean()
    a, b = RunningMoments(), RunningMoments()
    a.add(torch.zeros(1, 2))
    b.add(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="3 units"):
        a.merge(b)


def test_running_mean_of_maps_and_merge():
    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(6, 2, 2)
    whole = RunningMean()
    whole.add(maps.to(DEVICE))
    assert whole.mean().cpu().tolist() == [[10.0, 11.0], [12.0, 13.0]]
    a, b = RunningMean(), RunningMean()
    a.add(maps[:2])
    b.add(maps[2:])
    a.merge(b)
    assert torch.equal(a.mean(), whole.mean().cpu()) and a.count == 6
    back = RunningMean.from_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert torch.equal(back.mean(), a.mean()) and back.shape == (2, 2)


def test_running_mean_bad_input():
    m = RunningMean()
    m.add(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"item shape \(4,\)"):
        m.add(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        m.add(torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="batch dimension"):
        m.add(torch.tensor(1.0))
