"""``unitscope emergence`` through its runner: a snapshot folder of a tiny network, its tables and bars."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from toys import make_broden, make_snapshots
from unitscope.cli.main import app
from unitscope.results import EmergenceResult, layout
from unitscope.training.snapshots import snapshot_file


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A Broden pool and a folder of three snapshots (steps 1, 2, 3) of a width-4 mini_alexnet at 32 px."""
    root = tmp_path_factory.mktemp("emergence_cli")
    return root, make_broden(root / "broden", n=24), make_snapshots(root / "run1", [1, 2, 3])


def test_emergence_command_writes_the_tables(run, tmp_path):
    root, broden, folder = run
    args = ["emergence", "--snapshots", str(folder), "--data", str(broden), "--out", str(tmp_path),
            "--layers", "conv2,conv5", "--batch-size", "8", "--label-cache", str(tmp_path / "labels")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = EmergenceResult.load(layout.emergence_dir(tmp_path, "run1"))
    table = saved.to_frame()
    assert saved.steps == [1, 2, 3] and table["layer"].tolist() == ["conv2", "conv5"] * 4
    assert table["null"].tolist() == [False] * 6 + [True] * 2 and (table["units"] == 8).all()
    assert "step 2 ..." in result.stderr and "kept_next" in result.stdout
    assert (layout.emergence_dir(tmp_path, "run1") / "run.json").is_file()
    assert not layout.emergence_partial_dir(tmp_path, "run1").exists()
    assert any((tmp_path / "labels").iterdir())  # the pool's masks, kept for later runs
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "cached" in again.stderr and "step 1 ..." not in again.stderr
    # the same snapshots named one by one are the same run (another folder name: --name)
    pairs = [a for s in (1, 2, 3) for a in ("--checkpoint", f"{s}={folder / snapshot_file(s)}")]
    by_pairs = CliRunner().invoke(app, ["emergence", *pairs, *args[3:], "--name", "run1"])
    assert by_pairs.exit_code == 0 and "cached" in by_pairs.stderr
    pd.testing.assert_frame_equal(EmergenceResult.load(layout.emergence_dir(tmp_path, "run1")).to_frame(), table)
