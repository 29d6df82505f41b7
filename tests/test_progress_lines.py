"""Long commands off a terminal: each writes the periodic one-line progress log (issue 15, item 2).

On a terminal the commands draw tqdm bars with an estimate; in a log file
(here: the test runner's captured stderr, not a terminal) they write a line
every ``LINE_EVERY_S`` seconds instead, which the tests set to zero so that
every update is a line.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.models import create_model, save_checkpoint

LINE = r"{desc}: \d[\d,]*/\d[\d,]* {unit} \(\d+%\), \d+:\d\d elapsed"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress_lines")
    torch.manual_seed(0)
    save_checkpoint(create_model("mini_alexnet", num_classes=5, input_size=32, width=4), root / "tiny.pt")
    return root, make_broden(root / "broden", n=24, seed=3), root / "tiny.pt"


@pytest.fixture
def every_update_a_line(monkeypatch):
    import unitscope.study.progress as progress

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)


def invoke(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def lines(output: str, desc: str, unit: str) -> list[str]:
    return [line for line in output.splitlines() if re.fullmatch(LINE.format(desc=desc, unit=unit) + r".*", line)]


def test_dissect_localize_and_ablate_write_progress_lines(assets, tmp_path, every_update_a_line):
    _, broden, weights = assets
    net = ["--model", "mini_alexnet", "--weights", weights, "--data", broden, "--out", tmp_path, "--name", "tiny",
           "--batch-size", "8"]
    # (IoU threshold 0: every unit labelled with an object is a detector, for localize and ablate)
    out = invoke(["dissect", *net, "--layers", "conv5", "--label-cache", "none", "--iou-threshold", "0"])
    found = lines(out, "dissect tiny", "batch")
    assert found and found[-1].startswith("dissect tiny: 6/6 batch (100%)"), out  # 24 images, 3 batches, 2 passes
    dissected = ["--dissection", tmp_path / "tiny" / "dissect", "--layer", "conv5"]
    assert lines(invoke(["localize", *net, *dissected]), "localize", "it")
    assert lines(invoke(["ablate", *net, *dissected, "--label-category", "scene", "--random", "1"]), "ablate", "it")


def test_minimal_and_preference_write_progress_lines(assets, tmp_path, every_update_a_line):
    _, broden, weights = assets
    out = invoke(["minimal", "--model", "mini_alexnet", "--weights", weights, "--data", broden, "--out", tmp_path,
                  "--name", "tiny", "--label-category", "scene", "--segments", "6", "--max-images", "3"])
    assert lines(out, "minimal images", "it"), out
    out = invoke(["preference", "--net", f"tiny=mini_alexnet:{weights}", "--pool", f"scenes={broden / 'images'}",
                  "--out", tmp_path, "--layers", "conv5", "--top", "5"])
    assert lines(out, "layer preference", "it"), out


def test_world_and_convert_write_progress_lines(assets, tmp_path, every_update_a_line, monkeypatch):
    import unitscope.data.world as world

    _, broden, _ = assets
    small = functools.partial(world.generate_world, n_train=60, n_val=10, n_dissect=60, n_object_train=10,
                              n_object_val=10, size=32, workers=0)
    monkeypatch.setattr(world, "generate_world", lambda out, size=None, **kw: small(out, **kw))
    out = invoke(["world", "--out", tmp_path / "world"])
    found = lines(out, "world", "img")
    assert found and found[-1].startswith("world: 150/150 img (100%)"), out
    out = invoke(["convert", "--data", broden, "--out", tmp_path / "converted"])
    assert lines(out, "convert", "img"), out
