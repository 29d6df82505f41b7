"""Bad run state and caches: planted pickles, damaged checkpoints, caches and tile folders.

Each row plants or damages one file where a command keeps its resume state
or a cache (``OUT/<net>/.partial/``, stage records, the label cache, the
training cache, a segmentation-tile folder) and checks that the command
refuses it in one line naming the file and the way out, runs no code from
it (a planted pickle would create ``pwned``), and leaves ``--out`` (or the
cache) as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from toys import HostilePickle, plant_pickle
from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden
from unitscope.experiments._io import write_state
from unitscope.experiments.resume import STATE_FORMAT
from unitscope.models import create_model, save_checkpoint

SIZE = 32


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A 12-image Broden pool, a 4-channel mini_alexnet, and a label cache filled by one dissection."""
    from typer.testing import CliRunner

    from unitscope.cli.main import app

    root = tmp_path_factory.mktemp("bad_state")
    concepts = ConceptTable.from_names({"object": ["box"], "scene": ["room", "yard"]})
    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        box = np.zeros((SIZE, SIZE), np.int32)
        box[4:14, 4 + i:14 + i] = 1
        records.append(BrodenRecord(f"im{i}", rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8),
                                    Annotation(masks={"object": [box]}, image_labels={"scene": [2 + i % 2]})))
    broden = write_broden(root / "broden", records, concepts)
    torch.manual_seed(0)
    weights = save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=SIZE, width=4),
                              root / "tiny.pt")
    labels = root / "labels"
    args = dissect_args(broden, weights, root / "first")[:-1] + [str(labels)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    return {"broden": broden, "weights": weights, "labels": labels}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from unitscope.data.world import generate_world

    return generate_world(tmp_path_factory.mktemp("world") / "w", workers=0, n_scenes=3, n_objects=6,
                          size=64, n_train=6, n_val=3, n_dissect=2, n_object_train=6, n_object_val=3).root


def dissect_args(broden, weights, out):
    return ["dissect", "--model", "mini_alexnet", "--weights", str(weights), "--layers", "conv5",
            "--data", str(broden), "--out", str(out), "--name", "tiny", "--batch-size", "4",
            "--label-cache", "none"]


def partial(out: Path, name: str = "rank0.state.npz") -> Path:
    path = out / "tiny" / ".partial" / "dissect" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# -- each row: (assets, out, marker, tmp) -> (args, mentions, folders that must stay unchanged) ------
def legacy_pickle_state(a, out, marker, tmp):
    plant_pickle(partial(out, "rank0.pkl"), marker, field="stats")
    return dissect_args(a["broden"], a["weights"], out), ["rank0.pkl", "never loaded", "--restart"], [out]


def pickle_under_the_state_name(a, out, marker, tmp):
    plant_pickle(partial(out), marker, field="stats")
    mentions = ["rank0.state.npz", "is a pickle", "--restart"]
    return dissect_args(a["broden"], a["weights"], out), mentions, [out]


def truncated_state(a, out, marker, tmp):
    path = partial(out)
    write_state(path, {"format": STATE_FORMAT, "key": "k", "pass": 1, "batch": 0, "blob": np.zeros(999)})
    path.write_bytes(path.read_bytes()[:500])
    return (dissect_args(a["broden"], a["weights"], out),
            ["rank0.state.npz", "not a readable unitscope state file", "--restart"], [out])


def state_with_damaged_json(a, out, marker, tmp):
    np.savez(partial(out), __structure__=np.frombuffer(b'{"format": "unitscope-state", ', dtype=np.uint8))
    return (dissect_args(a["broden"], a["weights"], out),
            ["rank0.state.npz", "not a readable unitscope state file", "--restart"], [out])


def another_programs_npz(a, out, marker, tmp):
    np.savez(partial(out), weights=np.ones(3))
    return (dissect_args(a["broden"], a["weights"], out),
            ["rank0.state.npz", "no structure record", "--restart"], [out])


def state_of_other_arguments(a, out, marker, tmp):
    write_state(partial(out), {"format": STATE_FORMAT, "key": "0" * 20, "pass": 1, "batch": 0})
    mentions = ["partial run with other arguments", "--restart"]
    return dissect_args(a["broden"], a["weights"], out), mentions, [out]


def corrupt_label_cache_entry(a, out, marker, tmp):
    cache = tmp / "labels"
    shutil.copytree(a["labels"], cache)
    for entry in cache.glob("*.pt"):
        entry.write_bytes(b"garbage")
    (out / "tiny").mkdir(parents=True)
    args = dissect_args(a["broden"], a["weights"], out)
    return args[:-1] + [str(cache)], ["label cache entry", "is corrupt", "delete it"], [out, cache]


def label_cache_entry_with_code(a, out, marker, tmp):
    cache = tmp / "labels"
    shutil.copytree(a["labels"], cache)
    for entry in cache.glob("*.pt"):
        torch.save({"present": HostilePickle(marker), "groups": []}, entry)  # a zip, but with code inside
    args = dissect_args(a["broden"], a["weights"], out)
    return args[:-1] + [str(cache)], ["decoded labels", "are unreadable", "never unpickled"], [cache]


def tiles_unitscope_did_not_record(a, out, marker, tmp):
    stray = out / "tiny" / "segmentations" / "conv5" / "0" / "000_im3.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a tile from an earlier version, or a user's picture")
    args = dissect_args(a["broden"], a["weights"], out) + ["--segmentations", "2"]
    return args, ["conv5 holds 1 segmentation tile(s) unitscope did not record", "another --out"], [out]


def damaged_tile_manifest(a, out, marker, tmp):
    manifest = out / "tiny" / "segmentations" / "conv5" / "tiles.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"units": {"0": ["../../../../thesis.txt"]}}')
    args = dissect_args(a["broden"], a["weights"], out) + ["--segmentations", "2"]
    return args, ["tiles.json is not a record of segmentation tiles"], [out]


def damaged_rf_stage_record(a, out, marker, tmp):
    record = out / "tiny" / ".partial" / "rf" / ".stages.json"
    record.parent.mkdir(parents=True)
    record.write_text("[1]")
    args = ["rf", "--model", "mini_alexnet", "--weights", str(a["weights"]), "--data", str(a["broden"]),
            "--layers", "conv2", "--units", "0", "--top-k", "1", "--out", str(out), "--name", "tiny"]
    return args, [".stages.json is not a record of finished stages", "delete it"], [out]


def damaged_minimal_stage_record(a, out, marker, tmp):
    record = out / "tiny" / ".partial" / "minimal-superpixels" / ".stages.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"chunk_00000": ')
    args = ["minimal", "--model", "mini_alexnet", "--weights", str(a["weights"]), "--data", str(a["broden"]),
            "--label-category", "scene", "--out", str(out), "--name", "tiny"]
    return args, ["stages.json is not valid JSON", "delete it"], [out]


def planted_pickle_in_preference(a, out, marker, tmp):
    plant_pickle(out / ".partial" / "preference" / "rank0.pkl", marker, field="stats")
    args = ["preference", "--net", f"tiny=mini_alexnet:{a['weights']}", "--pool",
            f"scenes={a['broden'] / 'images'}", "--out", str(out)]
    return args, ["rank0.pkl", "never loaded", "--restart"], [out]


ROWS = [legacy_pickle_state, pickle_under_the_state_name, truncated_state, state_with_damaged_json,
        another_programs_npz, state_of_other_arguments, corrupt_label_cache_entry,
        label_cache_entry_with_code,
        tiles_unitscope_did_not_record, damaged_tile_manifest, damaged_rf_stage_record,
        damaged_minimal_stage_record, planted_pickle_in_preference]


@pytest.mark.parametrize("row", ROWS, ids=[row.__name__.replace("_", "-") for row in ROWS])
def test_bad_state_is_refused(refuse, assets, tmp_path, row):
    out, marker = tmp_path / "out", tmp_path / "pwned"
    out.mkdir()
    args, mentions, unchanged = row(assets, out, marker, tmp_path)
    refuse(args, mentions=mentions, unchanged=unchanged)
    assert not marker.exists(), "code from a state or cache file ran"


def test_corrupt_training_cache_entry_is_refused(refuse, world, tmp_path):
    from unitscope.training.cache import config_key, entry_dir
    from unitscope.training.train import training_config

    entry = entry_dir(tmp_path / "cache", "scenenet", config_key(training_config(world, task="scene")))
    entry.mkdir(parents=True)
    for name, content in (("metrics.json", "{"), ("config.json", "{}"), ("model.pt", "x")):
        (entry / name).write_text(content)
    refuse(["train", "--world", str(world), "--cache", str(tmp_path / "cache"), "--task", "scene"],
           mentions=["cached network at", "is corrupt", "delete"], unchanged=[tmp_path / "cache"])
