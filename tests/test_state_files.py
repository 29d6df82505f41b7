"""Run state, caches and result files: no code run from data, no leftovers, whole tiles, the umask kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from toys import (
    HostilePickle,
    IndicatorNet,
    PlantedClassifier,
    RawToyPool,
    ScenePool,
    ToyPool,
    plant_pickle,
    scaling_net,
    source_pools,
)
from unitscope._files import atomic_write_bytes, make_temp_dir
from unitscope.experiments import ablate_detectors, layer_preference
from unitscope.experiments._io import read_state, write_state
from unitscope.experiments.resume import RunState
from unitscope.experiments.dissect import dissect
from unitscope.study.segmentations import write_unit_segmentations

SRC = Path(__file__).resolve().parents[1] / "src"


# ---------------------------------------------------------------------------- the serializer
ROUND_TRIP = {
    "float16": np.array([1.5, -2.0, 65504.0], dtype=np.float16),
    "int64-extremes": np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max]),
    "bool-matrix": np.array([[True, False], [False, True]]),
    "empty-2d": np.zeros((0, 3), dtype=np.float32),
    "zero-d": np.array(7, dtype=np.uint8),
    "strings-array": np.array(["bed", "wall", ""]),
    "numpy-scalars": [np.float32(2.5), np.int64(-3), np.bool_(True)],
    "python-scalars": [None, True, False, 0, 2 ** 70, -1.25, "ünïcode", ""],
    "non-finite": [float("nan"), float("inf"), float("-inf")],
    "tuples": (1, ("a", None), [np.arange(3)]),
    "odd-keys": {1: "one", (2, 3): "pair", "__array__": "not a marker", None: 0},
    "nested-stats": {"quantile": {"conv5": {"statistic": "RunningQuantile", "version": 1,
                                            "data": [np.ones((4, 2)), np.zeros((0, 2))], "count": 17}}},
    "tensors": {"f": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True]),
                "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)},
    "bytes": b"\x00\x80raw",
    "empty-containers": {"list": [], "dict": {}, "tuple": ()},
}


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_state_round_trip_keeps_types_dtypes_and_shapes(tmp_path, name):
    value = ROUND_TRIP[name]
    write_state(tmp_path / "s.npz", {"value": value})
    assert_same(read_state(tmp_path / "s.npz"), {"value": value})


def test_state_refuses_what_it_could_not_read_back_without_pickle(tmp_path):
    with pytest.raises(TypeError, match=r"object array .*state\['a'\]"):
        write_state(tmp_path / "s.npz", {"a": np.array([{}, 1], dtype=object)})
    with pytest.raises(TypeError, match=r"Path .*state\['b'\]\[0\]"):
        write_state(tmp_path / "s.npz", {"b": [Path("x")]})
    assert not list(tmp_path.iterdir()), "nothing written, no temporary left"


@pytest.mark.parametrize("content, message", [
    (None, "is a pickle, which unitscope never loads"),
    (b"garbage", "not an .npz archive"),
    (b"PK\x03\x04truncated", "not a readable unitscope state file"),
])
def test_state_reader_never_unpickles(tmp_path, content, message):
    marker = tmp_path / "pwned"
    path = tmp_path / "s.npz"
    if content is None:
        plant_pickle(path, marker)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_state(path)
    assert not marker.exists()


def test_an_npz_with_a_pickled_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    write_state(tmp_path / "s.npz", {"a": np.arange(2)})
    with np.load(tmp_path / "s.npz") as z:
        arrays = dict(z)
    arrays["a0"] = np.array([HostilePickle(marker)], dtype=object)
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(ValueError, match="not a readable unitscope state file"):
        read_state(tmp_path / "s.npz")
    assert not marker.exists()


# ---------------------------------------------------------------------------- planted pickles in a run
@pytest.mark.parametrize("name", ["rank0.pkl", "rank0.state.npz"])
def test_planted_pickle_in_a_dissection_is_refused_not_run(tmp_path, name):
    marker = tmp_path / "pwned"
    work = tmp_path / "w"
    plant_pickle(work / name, marker)
    with pytest.raises(ValueError, match="never loaded|never loads") as info:
        dissect(IndicatorNet(), "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", work_dir=work)
    assert "--restart" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    assert sorted(p.name for p in work.iterdir()) == [name], "refused before touching anything"
    result = dissect(IndicatorNet(), "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", work_dir=work, restart=True)
    assert result.to_frame().loc[0, "iou"] == pytest.approx(1.0)
    assert not marker.exists() and not work.exists()


def test_planted_pickle_in_a_batch_checkpoint_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    plant_pickle(tmp_path / "w" / "rank0.pkl", marker)
    with pytest.raises(ValueError, match="never loaded"):
        layer_preference(scaling_net(1.0), ["conv"], source_pools(), top=3, batch_size=1, work_dir=tmp_path / "w")
    assert not marker.exists()


# ---------------------------------------------------------------------------- leftovers
class BrokenPool(ToyPool):
    """Image 6 cannot be read (batch 1 of 4-image batches): the pool gives no item for it."""

    def __getitem__(self, i):
        return None if i == 6 else super().__getitem__(i)


def test_a_data_error_before_the_first_checkpoint_leaves_no_activation_cache(tmp_path):
    work = tmp_path / "out" / "net" / ".partial" / "dissect"
    with pytest.raises(ValueError, match="unreadable"):
        dissect(IndicatorNet(), "conv", BrokenPool(), batch_size=4, work_dir=work, checkpoint_every=20)
    assert not (tmp_path / "out" / "net" / ".partial").exists()
    assert sorted(p.name for p in (tmp_path / "out" / "net").iterdir()) == []


def test_a_fresh_start_removes_a_stale_activation_cache_and_dead_temporaries(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "acts_rank0_conv.f32").write_bytes(b"\0" * 999)  # from a run killed before its first checkpoint
    (work / ".rank0.state.npz.999999999.abcd1234.tmp").write_bytes(b"half")  # a dead writer's temporary
    (work / ".rank0.pkl.abcd1234").write_bytes(b"half")  # an earlier version's temporary
    (work / "notes.txt").write_text("mine")
    state = RunState(work, "key", scratch=("acts_rank0_*.f32",))
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    state.save({"batch": 1})
    state.clear()
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"], "a user's file is never removed"


def _kill_during_write(path: Path, payload: bytes) -> None:
    """Write ``path`` in another process that is SIGKILLed just before the temporary is moved in."""
    code = ("import os, signal, sys\n"
            "from unitscope import _files\n"
            "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
            "_files.atomic_write_bytes(sys.argv[1], sys.argv[2].encode())\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", code, str(path), payload.decode()], env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    pool, net = ScenePool(), PlantedClassifier()
    dissection = dissect(net, "conv", pool, batch_size=4, network="planted", threshold_rule="inclusive", min_support=0)
    result = ablate_detectors(net, "conv", pool, dissection=dissection, n_random=2, seed=3, batch_size=2)
    reference = result.save(tmp_path / "reference")
    out = tmp_path / "out"
    result.save(out)
    _kill_during_write(out / "ablate.json", b"{}")
    leftovers = sorted(out.glob(".ablate.json.*.tmp"))
    assert len(leftovers) == 1 and (out / "ablate.json").read_bytes() != b"{}"
    ablate_detectors(net, "conv", pool, dissection=dissection, n_random=2, seed=3, batch_size=2).save(out)
    assert not list(out.glob(".*.tmp"))
    for name in ("ablate.json", "classes.csv", "summary.csv", "conditions.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_an_interrupted_final_write_leaves_nothing_and_the_rerun_gives_the_same_bytes(tmp_path, monkeypatch):
    pool, net = ScenePool(), PlantedClassifier()
    dissection = dissect(net, "conv", pool, batch_size=4, network="planted", threshold_rule="inclusive", min_support=0)
    result = ablate_detectors(net, "conv", pool, dissection=dissection, n_random=2, seed=3, batch_size=2)
    reference = result.save(tmp_path / "reference")
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 4:  # the fourth file: ablate.json
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        result.save(tmp_path / "out")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not list((tmp_path / "out").glob(".*")) and not (tmp_path / "out" / "ablate.json").exists()
    result.save(tmp_path / "out")
    assert (tmp_path / "out" / "ablate.json").read_bytes() == (reference / "ablate.json").read_bytes()


# ---------------------------------------------------------------------------- permissions
@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_files_and_folders_follow_the_umask(tmp_path, umask):
    from unitscope.models import create_model, save_checkpoint
    from unitscope.training.cache import write_entry

    assert mode(atomic_write_bytes(tmp_path / "a" / "r.json", b"{}")) == 0o666 & ~umask
    assert mode(write_state(tmp_path / "s.npz", {"x": 1})) == 0o666 & ~umask
    assert mode(make_temp_dir(tmp_path, "t")) == 0o777 & ~umask
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    assert mode(save_checkpoint(net, tmp_path / "w.pt")) == 0o666 & ~umask
    entry = tmp_path / "cache" / "networks" / "scenenet-0123"
    write_entry(entry, save_model=lambda p: save_checkpoint(net, p), metrics={"key": "k"}, config={})
    assert mode(entry) == 0o777 & ~umask
    assert {mode(p) for p in entry.iterdir()} == {0o666 & ~umask}


def test_segmentation_tiles_follow_the_umask(tmp_path, umask):
    pool, net = RawToyPool(n=10), IndicatorNet()
    result = dissect(net, "conv", pool, batch_size=4, top_k=5)
    write_unit_segmentations(net, result, pool, tmp_path / "seg", top=2, tile_size=8)
    paths = [p for p in (tmp_path / "seg").rglob("*")]
    assert {mode(p) for p in paths if p.is_dir()} == {0o777 & ~umask}
    assert {mode(p) for p in paths if p.is_file()} == {0o666 & ~umask}


# ---------------------------------------------------------------------------- segmentation tiles
def tiles(folder: Path) -> dict[str, list[str]]:
    return {u.name: sorted(f.name for f in u.glob("*.jpg")) for u in sorted(folder.iterdir()) if u.is_dir()}


def test_a_rerun_replaces_each_units_tiles_as_a_whole_and_keeps_user_files(tmp_path):
    pool = RawToyPool(n=12)
    net = IndicatorNet()
    out = tmp_path / "seg"
    first = dissect(net, "conv", pool, batch_size=4, top_k=6)
    write_unit_segmentations(net, first, pool, out, top=6, tile_size=8)
    assert [len(v) for v in tiles(out / "conv").values()] == [6, 6, 6]
    (out / "conv" / "0" / "notes.txt").write_text("my notes")
    # other weights (unit 0 now fires on the background: other top images) and fewer tiles
    other = IndicatorNet()
    with torch.no_grad():
        other.conv.weight[0, 0] = -1.0
        other.conv.bias[0] = 1.0
    second = dissect(other, "conv", RawToyPool(n=12, seed=5), batch_size=4, top_k=6)
    write_unit_segmentations(other, second, RawToyPool(n=12, seed=5), out, top=3, tile_size=8)
    ids = second.image_ids
    top = second.layers["conv"].top_indices
    expected = {str(u): sorted(f"{r:03d}_{ids[i]}.jpg" for r, i in enumerate(top[u][:3])) for u in range(3)}
    assert tiles(out / "conv") == expected, "only the second run's tiles remain"
    assert (out / "conv" / "0" / "notes.txt").read_text() == "my notes"
    manifest = json.loads((out / "conv" / "tiles.json").read_text())
    assert manifest["units"] == expected and manifest["top"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["conv"], "no staging folder left"


@pytest.mark.parametrize("manifest", [True, False],
                         ids=["stranger-beside-recorded", "earlier-version-no-manifest"])
def test_tiles_unitscope_did_not_record_are_refused_before_any_work(tmp_path, manifest):
    pool, net = RawToyPool(n=10), IndicatorNet()
    result = dissect(net, "conv", pool, batch_size=4, top_k=5)
    out = tmp_path / "seg"
    write_unit_segmentations(net, result, pool, out, top=2, tile_size=8)
    if not manifest:
        (out / "conv" / "tiles.json").unlink()
    (out / "conv" / "1" / "005_holiday.jpg").write_bytes(b"a user's photo")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match=r"holds \d+ segmentation tile\(s\) unitscope did not record"):
        write_unit_segmentations(net, result, pool, out, top=3, tile_size=8, progress=pytest.fail)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_manifest_cannot_make_unitscope_delete_outside_its_tiles(tmp_path):
    pool, net = RawToyPool(n=10), IndicatorNet()
    result = dissect(net, "conv", pool, batch_size=4, top_k=5)
    out = tmp_path / "seg" / "conv"
    out.mkdir(parents=True)
    (tmp_path / "thesis.txt").write_text("x")
    (out / "tiles.json").write_text(json.dumps({"units": {"0": ["../../../thesis.txt"]}}))
    with pytest.raises(ValueError, match="tiles.json is not a record of segmentation tiles"):
        write_unit_segmentations(net, result, pool, tmp_path / "seg", top=2, tile_size=8)
    assert (tmp_path / "thesis.txt").exists()


def test_a_damaged_stage_record_is_refused_naming_the_file(tmp_path):
    from unitscope.experiments.resume import Stages as StageCache

    (tmp_path / "stages.json").write_text("[1]")
    with pytest.raises(ValueError, match="stages.json is not a record of finished stages"):
        StageCache(tmp_path / "stages.json")
    (tmp_path / "stages.json").write_text("{")
    with pytest.raises(ValueError, match="stages.json is not valid JSON.*delete it"):
        StageCache(tmp_path / "stages.json")


def test_a_rerun_of_unit_segmentations_leaves_only_its_own_strips(tmp_path):
    import json

    import pandas as pd

    from unitscope.results.segmentations import UnitSegmentationsResult

    def result(units):
        return UnitSegmentationsResult(layer="conv5", units=units, table=pd.DataFrame(
            {"unit": units, "rank": [0] * len(units), "index": units, "id": [f"i{u}" for u in units]}),
            images={u: np.full((4, 8, 3), u, np.uint8) for u in units},
            masks={(u, 0): np.eye(4, 8, dtype=bool) for u in units}, network="net")

    # an older unitscope saved each strip as a PNG file and listed it in segmentations.json
    (tmp_path / "conv5").mkdir()
    for name in ("unit_0000.png", "unit_0002.png", "mine.png"):
        (tmp_path / "conv5" / name).write_bytes(b"a picture")
    (tmp_path / "segmentations.json").write_text(json.dumps({"layer": "conv5", "tiles": {
        "0": "conv5/unit_0000.png", "2": "conv5/unit_0002.png", "3": "../outside.png"}}))
    (tmp_path / "outside.png").write_bytes(b"not listed as a strip of ours")
    result([0, 1, 2]).save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "conv5").iterdir()) == ["mine.png"]
    assert (tmp_path / "outside.png").exists()
    result([1]).save(tmp_path)
    loaded = UnitSegmentationsResult.load(tmp_path)
    assert loaded.units == [1] and sorted(loaded.masks) == [(1, 0)] and sorted(loaded.images) == [1]
    with np.load(tmp_path / "segmentations.npz") as arrays:
        assert sorted(arrays.files) == ["image_1", "mask_1_0"]
