"""RunningTopK against an exact lexsort, shards, state round-trips, bad input."""

import os
import pickle

import numpy as np
import pytest
import torch

from unitscope.stats import RunningTopK

DEVICE = os.environ.get("UNITSCOPE_TEST_DEVICE", "cpu")


def exact_topk(values: np.ndarray, ids: np.ndarray, k: int):
    """Reference: per column, sort by (value desc, id asc) with numpy.lexsort."""
    out_values, out_ids = [], []
    for c in range(values.shape[1]):
        order = np.lexsort((ids, -values[:, c]))[:k]
        out_values.append(values[order, c])
        out_ids.append(ids[order])
    return np.stack(out_values), np.stack(out_ids)


def tied_data(n=500, c=7, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 12, size=(n, c)).astype(np.float32)  # many ties
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    return values, ids


def test_known_answer_with_ties():
    topk = RunningTopK(2)
    topk.add(torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0]]), torch.tensor([10, 11, 12]))
    topk.add(torch.tensor([[3.0, 5.0]]), torch.tensor([4]))
    values, ids = topk.result()
    assert values.tolist() == [[3.0, 3.0], [5.0, 5.0]]
    assert ids.tolist() == [[4, 11], [4, 10]]
    assert topk.count == 4


@pytest.mark.parametrize("batch", [1, 13, 64, 500])
def test_matches_exact_lexsort_for_any_batch_size(batch):
    values, ids = tied_data()
    topk = RunningTopK(20)
    for start in range(0, len(values), batch):
        topk.add(
            torch.from_numpy(values[start : start + batch]).to(DEVICE),
            torch.from_numpy(ids[start : start + batch]).to(DEVICE),
        )
    got_values, got_ids = topk.result()
    want_values, want_ids = exact_topk(values, ids, 20)
    np.testing.assert_array_equal(got_values.cpu().numpy(), want_values)
    np.testing.assert_array_equal(got_ids.cpu().numpy(), want_ids)


def test_merge_of_shards_equals_one_pass_exactly():
    values, ids = tied_data(n=900, seed=1)
    one_pass = RunningTopK(50)
    one_pass.add(torch.from_numpy(values), torch.from_numpy(ids))
    rng = np.random.default_rng(2)
    shard_of = rng.integers(0, 4, size=len(values))
    shards = []
    for s in range(4):
        rows = np.flatnonzero(shard_of == s)
        rng.shuffle(rows)
        stat = RunningTopK(50)
        for chunk in np.array_split(rows, 3):
            stat.add(torch.from_numpy(values[chunk]), torch.from_numpy(ids[chunk]))
        shards.append(stat)
    merged = RunningTopK(50)
    for stat in reversed(shards):
        merged.merge(stat)
    for got, want in zip(merged.result(), one_pass.result()):
        assert torch.equal(got, want)
    assert merged.count == 900


def test_default_ids_count_rows():
    topk = RunningTopK(1)
    topk.add(torch.tensor([[1.0], [2.0]]))
    topk.add(torch.tensor([[0.5], [2.0]]))
    values, ids = topk.result()
    assert values.tolist() == [[2.0]] and ids.tolist() == [[1]]


def test_fewer_items_than_k():
    topk = RunningTopK(10)
    topk.add(torch.tensor([[1.0, -1.0], [2.0, float("-inf")]]), torch.tensor([0, 1]))
    values, ids = topk.result()
    assert values.shape == (2, 2)
    assert values.tolist() == [[2.0, 1.0], [-1.0, float("-inf")]]
    assert ids.tolist() == [[1, 0], [0, 1]]


def test_state_round_trip_through_savez_and_pickle(tmp_path):
    values, ids = tied_data(n=300, seed=3)
    topk = RunningTopK(15)
    topk.add(torch.from_numpy(values[:200]), torch.from_numpy(ids[:200]))
    np.savez(tmp_path / "topk.npz", **topk.state_dict())
    with np.load(tmp_path / "topk.npz") as saved:
        resumed = RunningTopK.from_state_dict(saved)
    unpickled = pickle.loads(pickle.dumps(topk.state_dict()))
    resumed_pickle = RunningTopK(15).load_state_dict(unpickled)
    for stat in (topk, resumed, resumed_pickle):
        stat.add(torch.from_numpy(values[200:]), torch.from_numpy(ids[200:]))
    for other in (resumed, resumed_pickle):
        for got, want in zip(other.result(), topk.result()):
            assert torch.equal(got, want)
    assert resumed.count == 300


def test_to_cpu_and_float64_kept():
    topk = RunningTopK(2)
    topk.add(torch.tensor([[1.0], [2.0]], dtype=torch.float64))
    assert topk.to("cpu") is topk
    assert topk.device == torch.device("cpu")
    assert topk.result()[0].dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    values, ids = tied_data(n=700, seed=4)
    cpu, cuda = RunningTopK(30), RunningTopK(30)
    for chunk in np.array_split(np.arange(700), 5):
        cpu.add(torch.from_numpy(values[chunk]), torch.from_numpy(ids[chunk]))
        cuda.add(torch.from_numpy(values[chunk]).cuda(), torch.from_numpy(ids[chunk]).cuda())
    assert cuda.device.type == "cuda"
    for got, want in zip(cuda.result(), cpu.result()):
        assert torch.equal(got.cpu(), want)


@pytest.mark.parametrize(
    "values, ids, message",
    [
        (torch.zeros(3), None, "2-D tensor"),
        (torch.zeros(3, 2, 1), None, "2-D tensor"),
        (torch.zeros(3, 5), None, "5 columns"),
        (torch.tensor([[float("nan")] * 4]), None, "NaN"),
        (torch.zeros(2, 4), torch.zeros(3, dtype=torch.int64), "N=2"),
        (torch.zeros(2, 4), torch.zeros(2), "integers"),
    ],
)
def test_bad_input(values, ids, message):
    topk = RunningTopK(3)
    topk.add(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=message):
        topk.add(values, ids)


def test_bad_configuration_and_merges():
    with pytest.raises(ValueError, match="positive integer"):
        RunningTopK(0)
    with pytest.raises(ValueError, match="no data"):
        RunningTopK(3).result()
    a, b = RunningTopK(3), RunningTopK(3)
    a.add(torch.zeros(2, 4))
    b.add(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="4 units"):
        b.merge(a)
    with pytest.raises(ValueError, match="different configurations"):
        a.merge(RunningTopK(4))


def test_running_tail_is_exact_across_batches_merges_and_ties():
    from unitscope.stats import RunningTail

    values = torch.round(torch.randn(5000, 7, generator=torch.Generator().manual_seed(0)), decimals=1)
    left, right = RunningTail(300), RunningTail(300)
    for chunk in values[:2600].split(170):
        left.add(chunk)
    for chunk in values[2600:].split(333):
        right.add(chunk)
    left.merge(right)
    expected = torch.sort(values.t(), dim=1, descending=True).values[:, :300]
    assert torch.equal(left.result(), expected) and left.count == 5000
    assert torch.equal(RunningTail.from_state_dict(left.state_dict()).result(), expected)
