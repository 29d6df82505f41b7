"""RunningQuantile: exact answers where stated, rank error within the stated bound,
merges of shards, exact resumes, bad input.

The reference is the exact order statistic ``sorted(x)[floor(q (n - 1))]``, i.e.
``torch.quantile(x, q, interpolation="lower")`` with ``q (n - 1)`` computed in
float64 (``torch.quantile`` on float32 data rounds ``q`` to float32 first, which
moves 0.9999 * 49999 below 49994).
"""

import math
import os
import pickle

import numpy as np
import pytest
import torch

from unitscope.stats import RunningQuantile

DEVICE = os.environ.get("UNITSCOPE_TEST_DEVICE", "cpu")
LEVELS = [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.995, 0.999, 0.9995, 1.0]


def make_data(kind: str, n: int = 120_000, c: int = 12, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == "normal":
        return torch.randn(n, c, generator=gen) * 3 + 1
    if kind == "exponential":
        return torch.empty(n, c).exponential_(generator=gen)
    if kind == "relu":  # post-ReLU: 70% exact zeros, a heavy-ish tail
        x = torch.randn(n, c, generator=gen).exp_()
        x[torch.rand(n, c, generator=gen) < 0.7] = 0.0
        return x
    if kind == "discrete":  # few distinct values: ties everywhere
        return torch.randint(0, 5, (n, c), generator=gen).float()
    raise KeyError(kind)


def exact_lower(data: torch.Tensor, levels) -> torch.Tensor:
    """(C, Q) exact ``sorted(x)[floor(q (n - 1))]`` per column."""
    sorted_data = np.sort(data.numpy(), axis=0)
    n = sorted_data.shape[0]
    index = [math.floor(q * (n - 1)) for q in levels]
    return torch.from_numpy(sorted_data[index].T.copy())


def rank_errors(data: torch.Tensor, answers: torch.Tensor, levels) -> np.ndarray:
    """(C, Q) distance from the target rank to the answer's true rank range, / n."""
    sorted_data = np.sort(data.numpy(), axis=0)
    n = sorted_data.shape[0]
    answers = answers.cpu().numpy()
    errors = np.zeros(answers.shape)
    for j, q in enumerate(levels):
        target = math.floor(q * (n - 1)) + 1
        for c in range(sorted_data.shape[1]):
            below = np.searchsorted(sorted_data[:, c], answers[c, j], side="left")
            at_most = np.searchsorted(sorted_data[:, c], answers[c, j], side="right")
            errors[c, j] = max(below + 1 - target, target - at_most, 0) / n
    return errors


def fill(stat: RunningQuantile, data: torch.Tensor, batch: int) -> RunningQuantile:
    for chunk in data.split(batch):
        stat.add(chunk.to(DEVICE))
    return stat


def test_known_answer_without_compaction_is_exact():
    data = make_data("normal", n=1000, c=3)
    rq = fill(RunningQuantile(resolution=1024), data, 100)
    assert rq.depth == 1
    want = exact_lower(data, LEVELS)
    assert torch.equal(rq.quantiles(LEVELS).cpu(), want)
    torch_lower = torch.quantile(data.double(), torch.tensor(LEVELS, dtype=torch.float64), dim=0,
                                 interpolation="lower").t()
    assert torch.equal(want.double(), torch_lower)
    assert torch.equal(rq.quantiles(0.5).cpu(), want[:, 3])  # scalar q -> (C,)


def test_docstring_example_and_min_max():
    rq = RunningQuantile(resolution=64)
    rq.add(torch.arange(1000.0).reshape(500, 2))
    assert rq.quantiles([0.0, 1.0]).tolist() == [[0.0, 998.0], [1.0, 999.0]]
    assert rq.depth > 1  # it did compact


@pytest.mark.parametrize("kind", ["normal", "exponential", "relu", "discrete"])
def test_rank_error_within_stated_bound(kind):
    data = make_data(kind)
    rq = fill(RunningQuantile(resolution=512, seed=7), data, 5000)
    assert rq.depth >= 7  # deep enough for the bound to be exercised
    errors = rank_errors(data, rq.quantiles(LEVELS), LEVELS)
    bound = rq.rank_error_bound(LEVELS)
    closed_form = RunningQuantile.rank_error_bound_for(LEVELS, count=len(data), resolution=512)
    assert np.all(errors <= bound[None, :]), (errors.max(axis=0), bound)
    assert np.all(bound <= closed_form + 1e-15)
    # The 0.995 quantile is what dissection reads: the error is a small part of the tail.
    q995 = LEVELS.index(0.995)
    assert errors[:, q995].max() <= 0.1 * 0.005
    # Within the top resolution/2 values the answer is exact.
    exact = LEVELS.index(0.9995)
    assert bound[exact] == 0.0 and errors[:, exact].max() == 0.0


def test_small_batches_within_bound():
    """Batches smaller than the resolution wait in level 0 before a compaction."""
    data = make_data("relu", n=60_000, c=6, seed=5)
    rq = fill(RunningQuantile(resolution=512, seed=2), data, 97)
    errors = rank_errors(data, rq.quantiles(LEVELS), LEVELS)
    assert np.all(errors <= rq.rank_error_bound(LEVELS)[None, :])
    assert rq.count == 60_000 and rq.depth >= 6


@pytest.mark.parametrize("rows", [3, 700])  # waits in level 0 / triggers a compaction
def test_failed_add_leaves_the_state_unchanged(rows):
    rq = fill(RunningQuantile(resolution=256, seed=1), make_data("normal", n=1000, c=3), 100)
    before = rq.state_dict()
    bad = torch.zeros(rows, 3)
    bad[rows // 2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN \(1 of"):
        rq.add(bad.to(DEVICE))
    after = rq.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert np.array_equal(value, after[key]), key


def test_float64_values_stay_float64():
    rq = RunningQuantile(resolution=16)
    rq.add(torch.arange(100, dtype=torch.float64).reshape(50, 2) / 3)
    assert rq.quantiles(0.5).dtype == torch.float64
    assert rq.state_dict()["dtype"] == "float64"


def test_top_tail_exact_values():
    data = make_data("exponential", n=50_000, c=4, seed=3)
    rq = fill(RunningQuantile(resolution=256, seed=0), data, 777)
    levels = [0.998, 0.999, 0.9999, 1.0]  # n - k < 128: inside the protected top
    assert torch.equal(rq.quantiles(levels).cpu(), exact_lower(data, levels))


@pytest.mark.parametrize("shards", [2, 4])
def test_merge_of_shards_within_bound(shards):
    data = make_data("relu", n=120_000, seed=shards)
    parts = []
    for rank, chunk in enumerate(data.chunk(shards)):
        parts.append(fill(RunningQuantile(resolution=512, seed=rank), chunk, 4000))
    merged = RunningQuantile(resolution=512, seed=0)
    for part in parts:
        merged.merge(part)
    assert merged.count == len(data)
    errors = rank_errors(data, merged.quantiles(LEVELS), LEVELS)
    bound = merged.rank_error_bound(LEVELS)
    assert np.all(errors <= bound[None, :])
    assert errors[:, LEVELS.index(0.995)].max() <= 0.1 * 0.005
    assert torch.equal(merged.quantiles([0.0, 1.0]).cpu(),
                       torch.stack([data.min(0).values, data.max(0).values], 1))


def test_resume_through_savez_is_bit_identical(tmp_path):
    data = make_data("normal", n=60_000, c=5, seed=11)
    one_pass = fill(RunningQuantile(resolution=256, seed=5), data, 3000)
    first = fill(RunningQuantile(resolution=256, seed=5), data[:30_000], 3000)
    np.savez(tmp_path / "q.npz", **first.state_dict())
    with np.load(tmp_path / "q.npz") as saved:
        resumed = RunningQuantile.from_state_dict(saved, device=DEVICE)
    assert resumed.seed == 5 and resumed.count == 30_000
    assert torch.equal(resumed.quantiles(LEVELS), first.quantiles(LEVELS))
    fill(resumed, data[30_000:], 3000)
    assert torch.equal(resumed.quantiles(LEVELS), one_pass.quantiles(LEVELS))
    again = RunningQuantile(resolution=256).load_state_dict(pickle.loads(pickle.dumps(one_pass.state_dict())))
    assert torch.equal(again.quantiles(LEVELS).cpu(), one_pass.quantiles(LEVELS).cpu())


def test_seeded_runs_are_reproducible():
    data = make_data("exponential", n=40_000, c=3, seed=1)
    a = fill(RunningQuantile(resolution=128, seed=9), data, 1000)
    b = fill(RunningQuantile(resolution=128, seed=9), data, 1000)
    assert torch.equal(a.quantiles(LEVELS), b.quantiles(LEVELS))


def test_cdf_without_compaction_is_exact():
    data = torch.tensor([[0.0, 5.0], [1.0, 5.0], [1.0, 6.0], [3.0, 7.0]])
    rq = RunningQuantile(resolution=8)
    rq.add(data.to(DEVICE))
    got = rq.cdf(torch.tensor([[1.0, 5.0], [-1.0, 9.0]])).cpu()
    assert got.tolist() == [[0.75, 0.5], [0.0, 1.0]]


def test_closed_form_numbers_in_docstring():
    bound = RunningQuantile.rank_error_bound_for([0.5, 0.995], count=10**7)
    assert bound[0] == pytest.approx(2.643e-3, rel=1e-3)
    assert bound[1] == pytest.approx(2.772e-4, rel=1e-3)
    assert RunningQuantile.rank_error_bound_for(0.9999, count=10**8) == pytest.approx(5.351e-5, rel=1e-3)
    assert RunningQuantile.rank_error_bound_for(0.9999, count=10**7) == 0.0  # top 1000 < 2048


def test_memory_is_bounded_by_the_configuration():
    rq = RunningQuantile(resolution=64, seed=0)
    for _ in range(50):
        rq.add(torch.randn(2000, 2))
    state = rq.state_dict()
    items = state["items"].shape[1]
    assert items == state["level_lengths"].sum()
    assert items <= 64 * (1 + math.log2(rq.count / 32))


def test_to_cpu():
    rq = RunningQuantile(resolution=16)
    rq.add(torch.randn(100, 2))
    assert rq.to("cpu") is rq and rq.device == torch.device("cpu")
    assert rq.quantiles([0.5]).device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu_bit_for_bit():
    data = make_data("relu", n=50_000, c=8, seed=2)
    cpu = RunningQuantile(resolution=256, seed=1)
    cuda = RunningQuantile(resolution=256, seed=1)
    for chunk in data.split(2500):
        cpu.add(chunk)
        cuda.add(chunk.cuda())
    assert cuda.device.type == "cuda"
    assert torch.equal(cuda.quantiles(LEVELS).cpu(), cpu.quantiles(LEVELS))


@pytest.mark.parametrize(
    "values, message",
    [
        (torch.zeros(10), "2-D tensor"),
        (torch.zeros(10, 4), "4 columns"),
        (torch.tensor([[0.0, float("nan"), 1.0]]), "NaN"),
        (torch.zeros(2, 3, dtype=torch.bool), "real numbers"),
    ],
)
def test_bad_values(values, message):
    rq = RunningQuantile(resolution=16)
    rq.add(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=message):
        rq.add(values)


def test_bad_configuration_queries_and_merges():
    for resolution in (7, 2, 15.0):
        with pytest.raises(ValueError, match="even integer"):
            RunningQuantile(resolution=resolution)
    with pytest.raises(ValueError, match="no data"):
        RunningQuantile().quantiles(0.5)
    rq = RunningQuantile(resolution=16)
    rq.add(torch.zeros(4, 3))
    for q in (1.5, [-0.1, 0.5], float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            rq.quantiles(q)
    other = RunningQuantile(resolution=16)
    other.add(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2 units"):
        rq.merge(other)
    with pytest.raises(ValueError, match="resolution"):
        rq.merge(RunningQuantile(resolution=32))
    with pytest.raises(ValueError, match="RunningTopK"):
        from unitscope.stats import RunningTopK

        rq.merge(RunningTopK(2))
