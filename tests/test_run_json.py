"""Every command writes run.json beside its results, and each result records its preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.experiments.preference import LayerPreferenceResult
from unitscope.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_json")
    broden = make_broden(root / "broden", n=8, seed=2)
    torch.manual_seed(0)
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    weights = root / "tiny.pt"
    save_checkpoint(net, weights)
    # the same weights, carrying Inception's preprocessing in the checkpoint
    half = root / "half.pt"
    torch.save({"state_dict": net.state_dict(),
                "unitscope": {"preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3, "input_size": 32}}}, half)
    return broden, weights, half


def invoke(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def read(path):
    return json.loads(path.read_text())


def check_run(path, command):
    run = read(path)
    assert run["command"] == command
    assert set(run["versions"]) == {"unitscope", "torch", "torchvision", "numpy", "python"}
    assert run["stages"] and all(seconds >= 0 for seconds in run["stages"].values())
    assert run["started"] <= run["finished"]
    return run


def test_experiment_commands_write_run_json_and_record_preprocessing(assets, tmp_path):
    broden, weights, _ = assets
    common = ["--model", "mini_alexnet", "--weights", weights, "--data", broden, "--name", "tiny",
              "--out", tmp_path, "--preprocess", "inception"]
    invoke(["dissect", *common, "--layers", "conv1,conv2,conv5", "--batch-size", "4", "--label-cache", "none", "--min-support", "0"])
    invoke(["rf", *common, "--layers", "conv2", "--top-k", "2", "--units", "0"])
    invoke(["minimal", *common, "--label-category", "scene", "--segments", "4", "--max-images", "2"])
    dissection = tmp_path / "tiny" / "dissect"
    invoke(["localize", *common, "--layer", "conv2", "--dissection", dissection])
    invoke(["ablate", *common, "--layer", "conv2", "--dissection", dissection, "--random", "1"])
    results = {"dissect": (dissection, "result.json", ("config",)),
               "rf": (tmp_path / "tiny" / "rf", "conv2/rf.json", ("options",)),
               "minimal": (tmp_path / "tiny" / "minimal" / "superpixels", "minimal.json", ("options",)),
               "localize": (tmp_path / "tiny" / "localize", "localize.json", ("options",)),
               "ablate": (tmp_path / "tiny" / "ablate", "ablate.json", ("options",))}
    for command, (folder, name, path) in results.items():
        run = check_run(folder / "run.json", command)
        assert run["options"]["preprocess"] == "inception" and run["options"]["name"] == "tiny"
        recorded = read(folder / name)
        for key in path:
            recorded = recorded[key]
        pre = recorded["preprocessing"]
        assert pre["mean"] == [0.5, 0.5, 0.5] and pre["preset"] == "inception", command
        assert pre["sources"]["std"] == "preset inception" and pre["sources"]["input_size"] == "checkpoint"
        assert pre["resize"] == "stretch", command  # an annotated pool stretches by default
        assert run["networks"]["tiny"]["preprocessing"] == pre


def test_preference_gives_each_network_its_own_preprocessing(assets, tmp_path):
    broden, weights, half = assets
    pool = ["--pool", f"scenes={broden / 'images'}", "--layers", "conv2", "--batch-size", "4"]
    invoke(["preference", "--net", f"imagenet=mini_alexnet:{weights}", "--net", f"half=mini_alexnet:{half}",
            *pool, "--out", tmp_path / "both"])
    invoke(["preference", "--net", f"half=mini_alexnet:{half}", *pool, "--out", tmp_path / "alone"])
    both = LayerPreferenceResult.load(tmp_path / "both" / "preference")
    alone = LayerPreferenceResult.load(tmp_path / "alone" / "preference")
    assert both.preprocessing["imagenet"]["mean"] == [0.485, 0.456, 0.406]
    assert both.preprocessing["half"]["mean"] == [0.5, 0.5, 0.5]
    assert both.preprocessing["half"]["sources"]["mean"] == "checkpoint"
    np.testing.assert_array_equal(both.scores["half"]["conv2"], alone.scores["half"]["conv2"])
    assert not np.array_equal(both.scores["half"]["conv2"], both.scores["imagenet"]["conv2"])
    run = check_run(tmp_path / "both" / "preference" / "run.json", "preference")
    assert set(run["networks"]) == {"imagenet", "half"} and len(run["stages"]) == 2


def test_results_are_byte_identical_between_runs_but_for_run_json(assets, tmp_path):
    broden, weights, _ = assets
    for out in ("a", "b"):
        common = ["--model", "mini_alexnet", "--weights", weights, "--data", broden, "--name", "tiny",
                  "--out", tmp_path / out]
        invoke(["rf", *common, "--layers", "conv2", "--top-k", "2", "--units", "0,1"])
        invoke(["minimal", *common, "--label-category", "scene", "--segments", "4", "--max-images", "2"])
        invoke(["dissect", *common, "--layers", "conv2", "--batch-size", "4", "--label-cache", "none", "--min-support", "0"])
        dissection = tmp_path / out / "tiny" / "dissect"
        invoke(["localize", *common, "--layer", "conv2", "--dissection", dissection])
        invoke(["ablate", *common, "--layer", "conv2", "--dissection", dissection, "--random", "1"])
        invoke(["preference", "--net", f"tiny=mini_alexnet:{weights}", "--pool", f"scenes={broden / 'images'}",
                "--layers", "conv2", "--out", tmp_path / out])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {f.name for f in files} >= {"run.json", "rf.json", "minimal.json", "summary.csv",
                                       "result.json", "localize.json", "ablate.json", "preference.json"}
    # finished runs leave no resume state (rf kept its .stages.json before the one resume mechanism)
    assert ".stages.json" not in {f.name for f in files} and not any(".partial" in f.parts for f in files)
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    differ = [str(f) for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()]
    assert sorted(differ) == ["preference/run.json", "tiny/ablate/run.json", "tiny/dissect/run.json",
                              "tiny/localize/run.json", "tiny/minimal/superpixels/run.json", "tiny/rf/run.json"]
    run = read(tmp_path / "a" / "tiny" / "rf" / "run.json")
    assert {"conv2", "conv2 topk", "conv2 occlusion"} <= set(run["stages"])
