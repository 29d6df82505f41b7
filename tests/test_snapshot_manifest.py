"""The snapshot folder's format: which steps, the manifest, and the refusals of a bad one."""

import json

import pytest

from unitscope.training.snapshots import (MANIFEST, Snapshot, log_spaced_steps, read_snapshots, snapshot_file,
                                          write_manifest)


def test_log_spaced_steps_double_then_end():
    assert log_spaced_steps(1) == [1]
    assert log_spaced_steps(2) == [1, 2]
    assert log_spaced_steps(16) == [1, 2, 4, 8, 16]
    assert log_spaced_steps(1092) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1092]
    with pytest.raises(ValueError, match="total_steps"):
        log_spaced_steps(0)


def test_manifest_round_trip(tmp_path):
    for s in (1, 2, 3):
        (tmp_path / snapshot_file(s)).write_bytes(b"x")
    write_manifest(tmp_path, steps=[1, 2, 3], total_steps=3, network="scenenet")
    assert read_snapshots(tmp_path) == [Snapshot(s, tmp_path / f"step-0000000{s}.pt") for s in (1, 2, 3)]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "not a unitscope snapshot manifest"),
    (lambda d: d.update(version=9), "version 9"),
    (lambda d: d.update(steps=[2, 1]), "increasing positive"),
    (lambda d: d.update(files=["../x.pt"]), "plain file name"),
])
def test_bad_manifest_is_refused_naming_it(tmp_path, change, message):
    (tmp_path / snapshot_file(1)).write_bytes(b"x")
    write_manifest(tmp_path, steps=[1], total_steps=1, network="n")
    doc = json.loads((tmp_path / MANIFEST).read_text())
    change(doc)
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        read_snapshots(tmp_path)


def test_missing_manifest_or_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="snapshots.json is missing"):
        read_snapshots(tmp_path)
    write_manifest(tmp_path, steps=[4], total_steps=4, network="n")
    with pytest.raises(FileNotFoundError, match=r"step-00000004.pt \(step 4\), which is missing"):
        read_snapshots(tmp_path)
