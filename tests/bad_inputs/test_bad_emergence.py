"""``unitscope emergence`` refuses in one line: no manifest, another architecture, an unknown layer, bad steps."""

from __future__ import annotations

import pytest

from toys import make_broden, make_snapshots
from unitscope.models import create_model, save_checkpoint
from unitscope.training.snapshots import snapshot_file


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_emergence")
    broden = make_broden(root / "broden", n=12)
    run = make_snapshots(root / "run", [1, 2])
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=8, seed=0), root / "wide.pt")
    (root / "empty").mkdir()
    return root, broden, run


def test_emergence_refuses_bad_snapshots(refuse, assets, tmp_path):
    root, broden, run = assets
    common = ["--data", broden, "--out", tmp_path, "--layers", "conv5"]
    unchanged = [root, tmp_path]
    refuse(["emergence", "--snapshots", root / "empty", *common], mentions=["snapshots.json", "is missing"],
           unchanged=unchanged)
    refuse(["emergence", "--checkpoint", f"1={run / snapshot_file(1)}", "--checkpoint", f"2={root / 'wide.pt'}",
            *common], mentions=["wide.pt", "step 2", "differs", "one architecture"], unchanged=unchanged)
    refuse(["emergence", "--snapshots", run, *common[:-1], "conv9"], mentions=["conv9"], unchanged=unchanged)
    refuse(["emergence", "--checkpoint", f"x={run / snapshot_file(1)}", *common],
           mentions=["--checkpoint", "STEP=PATH", "positive integer"], unchanged=unchanged)
    refuse(["emergence", *common], mentions=["--snapshots", "--checkpoint"], unchanged=unchanged)
    refuse(["emergence", "--checkpoint", f"1={root / 'nothing.pt'}", *common], mentions=["nothing.pt", "not found"],
           unchanged=unchanged)
