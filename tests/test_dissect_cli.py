"""`unitscope dissect` end to end: CLI output, a killed run resumed, and torchrun sharding."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.models import create_model, save_checkpoint

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("dissect_cli")
    broden = make_broden(root / "broden", n=48)
    torch.manual_seed(0)
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    weights = root / "tiny.pt"
    save_checkpoint(net, weights)
    return root, broden, weights


def run_cli(args, **kwargs):
    return subprocess.run([str(VENV_BIN / "unitscope"), *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_dissect_command_writes_tables(assets, tmp_path):
    root, broden, weights = assets
    result = CliRunner().invoke(app, ["dissect", "--model", "mini_alexnet", "--weights", str(weights),
                                      "--layers", "conv2,conv5", "--data", str(broden), "--out",
                                      str(tmp_path), "--name", "tiny", "--batch-size", "8", "--null"])
    assert result.exit_code == 0, result.output
    units = pd.read_csv(tmp_path / "tiny" / "dissect" / "units.csv")
    assert set(units.layer) == {"conv2", "conv5"}
    assert len(units) == 8 + 8  # width 4: conv2 has 8 channels, conv5 8
    for column in ("network", "layer", "unit", "label", "category", "type", "iou", "threshold",
                   "precision", "top_images", "object_label", "material_iou"):
        assert column in units.columns
    assert (tmp_path / "tiny" / "dissect" / "census_objects.csv").exists()
    assert (tmp_path / "tiny-random" / "dissect" / "units.csv").exists()
    assert "detectors" in result.output
    assert not (tmp_path / "tiny" / ".partial" / "dissect").exists()


def test_dissect_command_errors_are_one_line(assets, tmp_path):
    root, broden, weights = assets
    runner = CliRunner()
    bad_layer = runner.invoke(app, ["dissect", "--model", "mini_alexnet", "--weights", str(weights),
                                    "--layers", "conv55", "--data", str(broden), "--out", str(tmp_path)])
    assert bad_layer.exit_code == 2
    assert "no layer named 'conv55'" in bad_layer.output and "Traceback" not in bad_layer.output
    plain = tmp_path / "plain" / "cls"
    plain.mkdir(parents=True)
    shutil.copy(next((broden / "images").glob("*.png")), plain / "a.png")
    no_masks = runner.invoke(app, ["dissect", "--model", "mini_alexnet", "--weights", str(weights),
                                   "--layers", "conv5", "--data", str(tmp_path / "plain"), "--out", str(tmp_path)])
    assert no_masks.exit_code == 2 and "no concept masks" in no_masks.output
    not_spatial = runner.invoke(app, ["dissect", "--model", "mini_alexnet", "--weights", str(weights),
                                      "--layers", "fc6", "--data", str(broden), "--out", str(tmp_path)])
    assert not_spatial.exit_code == 2 and "not a spatial map" in not_spatial.output


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    broden = make_broden(tmp_path / "broden", n=600, seed=1)
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    args = ["dissect", "--model", "mini_alexnet", "--weights", str(weights), "--layers", "conv3,conv5",
            "--data", str(broden), "--name", "tiny", "--batch-size", "4", "--checkpoint-every", "5"]
    reference = run_cli(args + ["--out", str(tmp_path / "reference"), "--label-cache", "none"])
    assert reference.returncode == 0, reference.stderr
    # the killed run decodes into a fresh label cache, which the resumed run then reads
    args += ["--label-cache", str(tmp_path / "labels")]

    out = tmp_path / "killed"
    state = out / "tiny" / ".partial" / "dissect" / "rank0.state.npz"
    proc = subprocess.Popen([str(VENV_BIN / "unitscope"), *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)  # let it get further, past a few more checkpoints
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and not (out / "tiny" / "dissect" / "units.csv").exists()
    resumed = run_cli(args + ["--out", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    a = pd.read_csv(tmp_path / "reference" / "tiny" / "dissect" / "units.csv")
    b = pd.read_csv(out / "tiny" / "dissect" / "units.csv")
    pd.testing.assert_frame_equal(a, b)
    za = np.load(tmp_path / "reference" / "tiny" / "dissect" / "layer_conv5.npz")
    zb = np.load(out / "tiny" / "dissect" / "layer_conv5.npz")
    np.testing.assert_array_equal(za["iou"], zb["iou"])
    assert len(list((tmp_path / "labels").glob("*.pt"))) == 150  # 600 images, batches of 4


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["unitscope", "netdissect"])
def test_torchrun_two_processes_equal_single_process(assets, tmp_path, rule):
    root, broden, weights = assets
    args = ["dissect", "--model", "mini_alexnet", "--weights", str(weights), "--layers", "conv2,conv5",
            "--data", str(broden), "--name", "tiny", "--batch-size", "5", "--threshold-rule", rule]
    single = run_cli(args + ["--out", str(tmp_path / "single")])
    assert single.returncode == 0, single.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1")
    sharded = subprocess.run(
        [str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
         str(VENV_BIN / "unitscope"), *args, "--out", str(tmp_path / "sharded")],
        capture_output=True, text=True, timeout=300, env=env)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    a = pd.read_csv(tmp_path / "single" / "tiny" / "dissect" / "units.csv")
    b = pd.read_csv(tmp_path / "sharded" / "tiny" / "dissect" / "units.csv")
    # top images and counts merge exactly; the pool is small enough for the quantile sketch
    # to be exact too, so the whole table is identical
    pd.testing.assert_frame_equal(a, b)
