"""Random weights are seeded: the same command gives the same bytes, and the seed is recorded.

Before, a network built without ``--weights`` drew from torch's global
generator: two ``dissect --model squeezenet1_1`` runs gave different tables,
and a killed random-weights run was refused on rerun (its weights, and so
its resume key, changed).
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.experiments.resume import weights_fingerprint
from unitscope.models import create_model, model_info, save_checkpoint
from unitscope.models.registry import random_like


def test_same_seed_same_weights_other_seed_other_weights():
    a = create_model("mini_alexnet", num_classes=3, input_size=32, width=4, seed=7)
    b = create_model("mini_alexnet", num_classes=3, input_size=32, width=4, seed=7)
    c = create_model("mini_alexnet", num_classes=3, input_size=32, width=4, seed=8)
    assert weights_fingerprint(a) == weights_fingerprint(b)
    assert weights_fingerprint(a) != weights_fingerprint(c)
    assert model_info(a).seed == 7 and model_info(c).seed == 8


def test_seeding_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    create_model("mini_alexnet", num_classes=3, input_size=32, width=4, seed=0)
    assert torch.equal(torch.rand(4), expected)


def test_weights_from_a_file_record_no_seed(tmp_path):
    net = create_model("mini_alexnet", num_classes=3, input_size=32, width=4, seed=1)
    save_checkpoint(net, tmp_path / "w.pt")
    loaded = create_model("mini_alexnet", weights=tmp_path / "w.pt", seed=5)
    assert model_info(loaded).seed is None
    assert weights_fingerprint(loaded) == weights_fingerprint(net)


def test_random_like_rebuilds_the_architecture_of_a_checkpoint(tmp_path):
    net = create_model("mini_alexnet", num_classes=3, input_size=48, width=4, seed=1)
    save_checkpoint(net, tmp_path / "w.pt")
    twin = random_like(create_model("mini_alexnet", weights=tmp_path / "w.pt"), seed=2)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    assert model_info(twin).preprocessing == model_info(net).preprocessing and model_info(twin).seed == 2
    assert weights_fingerprint(twin) == weights_fingerprint(
        create_model("mini_alexnet", num_classes=3, input_size=48, width=4, seed=2))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_a_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        create_model("mini_alexnet", num_classes=3, seed=seed)


@pytest.fixture(scope="module")
def broden(tmp_path_factory):
    return make_broden(tmp_path_factory.mktemp("seeded") / "broden", n=8)


def _dissect_random(broden, out, *extra):
    args = ["dissect", "--model", "squeezenet1_1", "--layers", "features.3", "--data", str(broden),
            "--out", str(out), "--batch-size", "8", "--label-cache", "none", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "squeezenet1_1-random" / "dissect"


def test_dissecting_a_random_network_twice_gives_the_same_bytes(broden, tmp_path):
    first = _dissect_random(broden, tmp_path / "a")
    second = _dissect_random(broden, tmp_path / "b")
    other = _dissect_random(broden, tmp_path / "c", "--seed", "3")
    assert (first / "units.csv").read_bytes() == (second / "units.csv").read_bytes()
    config = json.loads((first / "result.json").read_text())["config"]
    other_config = json.loads((other / "result.json").read_text())["config"]
    assert config["weights_seed"] == 0 and other_config["weights_seed"] == 3
    assert config["weights"] == json.loads((second / "result.json").read_text())["config"]["weights"]
    assert config["weights"] != other_config["weights"]
    assert (first / "units.csv").read_bytes() != (other / "units.csv").read_bytes()


def test_the_null_is_seeded_and_recorded(tmp_path, broden):
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4, seed=11)
    save_checkpoint(net, tmp_path / "tiny.pt")
    args = ["dissect", "--model", "mini_alexnet", "--weights", str(tmp_path / "tiny.pt"), "--layers", "conv2",
            "--data", str(broden), "--out", str(tmp_path / "out"), "--name", "tiny", "--batch-size", "8",
            "--label-cache", "none", "--null", "--seed", "4"]
    assert CliRunner().invoke(app, args).exit_code == 0
    config = json.loads((tmp_path / "out" / "tiny-random" / "dissect" / "result.json").read_text())["config"]
    main = json.loads((tmp_path / "out" / "tiny" / "dissect" / "result.json").read_text())["config"]
    # the null has the checkpoint's architecture (width 4, 32 px), not the registry's default one
    expected = create_model("mini_alexnet", num_classes=2, input_size=32, width=4, seed=4)
    assert config["weights_seed"] == 4 and config["weights"] == weights_fingerprint(expected)
    assert main["weights_seed"] is None
