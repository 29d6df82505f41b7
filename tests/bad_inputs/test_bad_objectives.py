"""``unitscope objectives``: bad objective, layer and world options refused in one line, before any training."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "extra, mentions",
    [
        pytest.param(["--objective", "rotaton"], ["unknown objective", "rotaton", "rotation"], id="objective-typo"),
        pytest.param(["--layers", "conv6"], ["unknown layer", "conv6", "conv5"], id="layer-unknown"),
        pytest.param(["--layers", " , "], ["--layers", "empty"], id="layers-empty"),
        pytest.param(["--preset", "study"], ["--world", "--preset", "not both"], id="world-and-preset"),
        pytest.param(["--epochs", "0"], ["--epochs", "greater than or equal to 1"], id="epochs-zero"),
    ],
)
def test_objectives_refuses_bad_options(refuse, tmp_path, extra, mentions):
    args = ["objectives", "--world", tmp_path / "world", "--out", tmp_path / "out", "--home", tmp_path / "home"]
    refuse(args + extra, mentions=mentions, unchanged=[tmp_path])


def test_objectives_needs_a_world_or_a_preset(refuse, tmp_path):
    refuse(["objectives", "--out", tmp_path / "out", "--home", tmp_path / "home"],
           mentions=["--world", "--preset", "neither"], unchanged=[tmp_path])


def test_objectives_refuses_a_folder_that_is_not_a_world(refuse, tmp_path):
    (tmp_path / "notes").mkdir()
    refuse(["objectives", "--world", tmp_path / "notes", "--out", tmp_path / "out", "--home", tmp_path / "home"],
           mentions=["world.json", "notes"], unchanged=[tmp_path])
