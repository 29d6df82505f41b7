"""The experiment commands end to end, and resuming `minimal` and `rf` after an interruption."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.models import create_model, save_checkpoint

# the package re-exports functions of the same names, so reach the modules themselves
rf_module = importlib.import_module("unitscope.experiments.empirical_rf.run")
minimal_module = importlib.import_module("unitscope.experiments.minimal_images.run")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments_cli")
    broden = make_broden(root / "broden", n=24, seed=3)
    torch.manual_seed(0)
    weights = root / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=5, input_size=32, width=4), weights)
    return broden, weights


def interrupt_after(monkeypatch, module, name, calls):
    real = getattr(module, name)
    seen = {"n": 0}

    def flaky(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def test_minimal_resumes_chunk_by_chunk(assets, tmp_path, monkeypatch):
    broden, weights = assets
    args = ["minimal", "--model", "mini_alexnet", "--weights", str(weights), "--data", str(broden),
            "--label-category", "scene", "--segments", "6", "--chunk", "5", "--name", "tiny"]
    runner = CliRunner()
    whole = runner.invoke(app, args + ["--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    interrupt_after(monkeypatch, minimal_module, "minimal_images", calls=2)
    broken = runner.invoke(app, args + ["--out", str(tmp_path / "resumed")])
    assert broken.exit_code == 130 and "resume" in broken.output
    monkeypatch.undo()
    resumed = runner.invoke(app, args + ["--out", str(tmp_path / "resumed")])
    assert resumed.exit_code == 0, resumed.output
    assert "chunk_00000: cached" in resumed.output and "chunk_00001: cached" in resumed.output
    a = pd.read_csv(tmp_path / "whole" / "tiny" / "minimal" / "superpixels" / "images.csv")
    b = pd.read_csv(tmp_path / "resumed" / "tiny" / "minimal" / "superpixels" / "images.csv")
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "resumed" / "tiny" / "minimal" / ".partial-superpixels").exists()


def test_rf_resumes_layer_by_layer(assets, tmp_path, monkeypatch):
    broden, weights = assets
    args = ["rf", "--model", "mini_alexnet", "--weights", str(weights), "--data", str(broden),
            "--layers", "conv1,conv2,conv3", "--top-k", "2", "--units", "0,1", "--name", "tiny",
            "--out", str(tmp_path)]
    runner = CliRunner()
    interrupt_after(monkeypatch, rf_module, "empirical_receptive_fields", calls=2)
    broken = runner.invoke(app, args)
    assert broken.exit_code == 130
    monkeypatch.undo()
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert "conv1: cached" in resumed.output and "conv2: cached" in resumed.output
    summary = pd.read_csv(tmp_path / "tiny" / "rf" / "summary.csv")
    assert list(summary.layer) == ["conv1", "conv2", "conv3"]
    assert list(summary.theoretical_size) == [7, 27, 51]
