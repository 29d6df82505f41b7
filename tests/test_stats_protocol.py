"""The protocol shared by every statistic: state_dict through np.savez and pickle,
empty statistics, mismatched states, merges of empties, and the leaf-package rule."""

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import reference_stats
import unitscope.stats as stats
from reference_stats import RunningConceptOverlap, RunningMean, RunningMoments
from unitscope.stats import RunningQuantile, RunningTail, RunningTopK, Statistic


def fill_topk(stat):
    stat.add(torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([5, 6]))


def fill_quantile(stat):
    stat.add(torch.arange(200.0).reshape(100, 2))


def fill_moments(stat):
    stat.add(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))


def fill_overlap(stat):
    stat.add(torch.ones(1, 2, 3, dtype=torch.bool), torch.eye(3, dtype=torch.bool)[None])


def read_topk(stat):
    return stat.result()


def read_quantile(stat):
    return stat.quantiles([0.0, 0.5, 1.0])


def read_moments(stat):
    return stat.mean(), stat.variance(), stat.min(), stat.max()


def read_overlap(stat):
    return stat.intersection, stat.union()


CASES = {
    "topk": (lambda: RunningTopK(3), fill_topk, read_topk),
    "tail": (lambda: RunningTail(3), fill_moments, lambda s: s.result()),
    "quantile": (lambda: RunningQuantile(resolution=16, seed=3), fill_quantile, read_quantile),
    "moments": (RunningMoments, fill_moments, read_moments),
    "mean": (RunningMean, fill_moments, lambda s: (s.mean(),)),
    "overlap": (RunningConceptOverlap, fill_overlap, read_overlap),
}


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("filled", [True, False])
def test_state_dict_is_plain_and_survives_savez_and_pickle(name, filled, tmp_path):
    make, fill, read = CASES[name]
    stat = make()
    if filled:
        fill(stat)
    state = stat.state_dict()
    assert state["statistic"] == type(stat).__name__
    for value in state.values():
        assert isinstance(value, (np.ndarray, int, float, str, bool)), type(value)
    np.savez(tmp_path / "state.npz", **state)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as saved:
        from_file = type(stat).from_state_dict(saved)
    from_pickle = make().load_state_dict(pickle.loads(pickle.dumps(state)))
    for other in (from_file, from_pickle):
        if filled:
            for got, want in zip(as_tuple(read(other)), as_tuple(read(stat))):
                assert torch.equal(got, want)
        else:
            with pytest.raises(ValueError, match="no data"):
                read(other)
        # A restored statistic keeps working and merges like the original.
        fill(other)
        other.merge(stat)


@pytest.mark.parametrize("name", CASES)
def test_merge_with_empty_either_way_and_to_cpu(name):
    make, fill, read = CASES[name]
    full = make()
    fill(full)
    left = make().merge(full)
    right = full.merge(make())
    assert right is full
    for got, want in zip(as_tuple(read(left)), as_tuple(read(full))):
        assert torch.equal(got, want)
    assert left.to("cpu") is left and left.device == torch.device("cpu")


def test_mismatched_states_are_refused():
    topk = RunningTopK(3)
    fill_topk(topk)
    state = topk.state_dict()
    with pytest.raises(ValueError, match="not of a 'RunningMoments'"):
        RunningMoments().load_state_dict(state)
    with pytest.raises(ValueError, match="k=3"):
        RunningTopK(4).load_state_dict(state)
    with pytest.raises(ValueError, match="version"):
        RunningTopK(3).load_state_dict({**state, "version": 99})
    broken = dict(state)
    del broken["ids"]
    with pytest.raises(ValueError, match="'ids'"):
        RunningTopK(3).load_state_dict(broken)
    rq = RunningQuantile(resolution=16)
    fill_quantile(rq)
    bad = {**rq.state_dict(), "count": 99}
    with pytest.raises(ValueError, match="inconsistent"):
        RunningQuantile(resolution=16).load_state_dict(bad)
    with pytest.raises(ValueError, match="mapping"):
        RunningTopK(3).load_state_dict([1, 2])


def test_every_statistic_follows_the_protocol():
    for module in (stats, reference_stats):  # the tests' reference oracles too
        for name in module.__all__:
            cls = getattr(module, name)
            if cls is Statistic:
                continue
            assert issubclass(cls, Statistic)
            for method in ("add", "merge", "state_dict", "load_state_dict", "from_state_dict", "to"):
                assert callable(getattr(cls, method)), (name, method)


def test_stats_is_a_leaf_package():
    """stats/ imports torch and numpy only, nothing else of unitscope (STYLE.md)."""
    folder = Path(stats.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.level == 1, f"{path.name} imports from a parent package"
                else:
                    assert node.module.split(".")[0] in {"__future__", "collections", "concurrent",
                                                         "typing", "numpy", "torch", "math"}, (path.name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in {"math", "numpy", "torch"}, (path.name, alias.name)
