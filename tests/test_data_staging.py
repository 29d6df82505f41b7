"""Temporary folders of a killed export are removed on the next run; look-alikes never are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden
from unitscope.data.staging import STAGING_MARKER, make_staging_dir, release_staging_dir, remove_stale_staging
from unitscope.data.world import generate_world

CONCEPTS = ConceptTable.from_names({"object": ["box"]})


def _records():
    mask = np.zeros((4, 4), np.int32)
    mask[:2] = 1
    yield BrodenRecord("a", np.zeros((4, 4, 3), np.uint8), Annotation(masks={"object": [mask]}))


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped), like a SIGKILLed run's."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _left_by(target: Path, pid: int, *, kind: str = "tmp") -> Path:
    """A staging folder as a run with ``pid`` would have left it, with some content."""
    folder = make_staging_dir(target, kind=kind)
    marker = json.loads((folder / STAGING_MARKER).read_text())
    (folder / STAGING_MARKER).write_text(json.dumps({**marker, "pid": pid}))
    (folder / "images").mkdir()
    (folder / "images" / "x.png").write_bytes(b"0" * 1000)
    return folder


def test_stale_folders_go_look_alikes_stay(tmp_path, dead_pid):
    target = tmp_path / "broden"
    stale_tmp = _left_by(target, dead_pid)
    stale_old = _left_by(target, dead_pid, kind="old")
    alive = _left_by(target, os.getppid())  # a run still going (the process running pytest's parent)
    users = tmp_path / ".broden.tmp-mine"  # the user's own folder with our name pattern, no marker
    users.mkdir()
    (users / "thesis.txt").write_text("mine")
    forged = tmp_path / ".broden.tmp-forged"  # our marker, but another target
    forged.mkdir()
    (forged / STAGING_MARKER).write_text(json.dumps({"made_by": "unitscope", "pid": dead_pid,
                                                     "host": os.uname().nodename, "target": "other"}))
    link = tmp_path / ".broden.tmp-link"
    link.symlink_to(stale_tmp, target_is_directory=True)
    other_target = _left_by(tmp_path / "world", dead_pid)

    removed = remove_stale_staging(target)

    assert sorted(removed) == sorted([stale_tmp, stale_old])
    assert not stale_tmp.exists() and not stale_old.exists()
    assert alive.is_dir() and (users / "thesis.txt").read_text() == "mine" and forged.is_dir()
    assert link.is_symlink() and other_target.is_dir()


def test_write_broden_removes_a_killed_exports_folder(tmp_path, dead_pid):
    out = tmp_path / "broden"
    stale = _left_by(out, dead_pid)
    write_broden(out, _records(), CONCEPTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broden"]
    assert not (out / STAGING_MARKER).exists()  # the marker does not travel into the result
    assert not stale.exists()


def test_world_rerun_removes_a_killed_worlds_folder(tmp_path, dead_pid):
    out = tmp_path / "world"
    stale = _left_by(out, dead_pid)
    generate_world(out, workers=0, n_scenes=2, n_objects=6, size=32, n_train=2, n_val=1, n_dissect=1,
                   n_object_train=1, n_object_val=1, n_dissect_objects=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]
    assert not stale.exists()
    assert not list(out.rglob(STAGING_MARKER))


def test_release_removes_only_the_marker(tmp_path):
    folder = make_staging_dir(tmp_path / "x")
    assert folder.name.startswith(".x.tmp-") and (folder / STAGING_MARKER).is_file()
    (folder / "data.txt").write_text("kept")
    assert release_staging_dir(folder) == folder
    assert [p.name for p in folder.iterdir()] == ["data.txt"]
    with pytest.raises(ValueError, match="kind"):
        make_staging_dir(tmp_path / "x", kind="trash")
