"""Bring your own model: a .py factory, package.module:factory, torch.export archives; TorchScript refused."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from unitscope.cli.main import app
from unitscope.hooks import Trace
from unitscope.models import model_info
from unitscope.models.loading import load_model, model_kind

FACTORY = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3))
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(self.features(x).mean(dim=(2, 3)))

    def make():
        torch.manual_seed(1)
        return Tiny()

    def broken():
        raise RuntimeError("no GPU here\\n  (a second line)")

    def not_a_module():
        return {"weights": 1}
''')


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(FACTORY)
    return path


def test_kinds():
    assert model_kind("alexnet") == "registry"
    assert model_kind("nets/mynet.py:make") == "file"
    assert model_kind("torchvision.models:resnet18") == "module"
    assert model_kind("net.pt2") == "export"
    assert model_kind("net.pt") == "torchscript"


def test_py_factory_with_weights_nested_and_prefixed(factory_file, tmp_path):
    net = load_model(f"{factory_file}:make")
    assert isinstance(net, nn.Module) and not net.training
    info = model_info(net)
    assert info.arch == f"{factory_file}:make" and info.class_names == ["class_0", "class_1", "class_2"]
    assert set(info.preprocessing.sources.values()) == {"default"}
    # a DataParallel-style checkpoint nested under "model", with unitscope metadata
    trained = {f"module.{k}": v + 1 for k, v in net.state_dict().items()}
    path = tmp_path / "w.pth"
    torch.save({"model": trained, "unitscope": {"preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3}}}, path)
    loaded = load_model(f"{factory_file}:make", weights=path)
    assert torch.equal(loaded.fc.bias, net.fc.bias + 1)
    pre = model_info(loaded).preprocessing
    assert pre.preset == "inception" and pre.sources["mean"] == "checkpoint" and pre.sources["input_size"] == "default"
    for key, prefix in (("net", "model."), ("state_dict", ""), ("model", "module.net.")):
        torch.save({key: {prefix + k: v * 3 for k, v in net.state_dict().items()}}, path)
        assert torch.equal(load_model(f"{factory_file}:make", weights=path).fc.weight, net.fc.weight * 3), key
    torch.save({"net": {"model.extra." + k: v for k, v in net.state_dict().items()}}, path)
    with pytest.raises(ValueError, match="missing keys.*unexpected keys"):  # what does not fit is named
        load_model(f"{factory_file}:make", weights=path)


def test_module_factory(factory_file, monkeypatch):
    monkeypatch.syspath_prepend(str(factory_file.parent))
    net = load_model("mynet:make")
    with Trace(net, "features.1") as trace:
        net(torch.zeros(1, 3, 8, 8))
    assert trace.output.shape == (1, 4, 8, 8)
    resnet = load_model("torchvision.models:resnet18")
    assert isinstance(resnet, nn.Module)


@pytest.mark.parametrize("spec, error, message", [
    ("{dir}/missing.py:make", FileNotFoundError, "no such Python file"),
    ("{file}:nothing", LookupError, "has no attribute 'nothing'"),
    ("{file}:broken", ValueError, "the factory .*:broken raised RuntimeError: no GPU here [(]a second line[)]$"),
    ("{file}:not_a_module", ValueError, "returned a dict, not a torch.nn.Module"),
    ("no_such_package_xyz:make", LookupError, "no module named 'no_such_package_xyz'"),
])
def test_bad_factories(factory_file, spec, error, message):
    with pytest.raises(error, match=message):
        load_model(spec.format(dir=factory_file.parent, file=factory_file))


def test_export_archive_keeps_layer_names_and_hooks(factory_file, tmp_path):
    net = load_model(f"{factory_file}:make")
    example = torch.randn(2, 3, 8, 8)
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (example,)), path)
    exported = load_model(str(path))
    with Trace(exported, "features.1") as trace:
        out = exported(example)
    torch.testing.assert_close(out, net(example))
    with Trace(net, "features.1") as reference:
        net(example)
    torch.testing.assert_close(trace.output, reference.output)
    with pytest.raises(ValueError, match="holds its own weights"):
        load_model(str(path), weights=tmp_path / "w.pth")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, which is half the point
def test_torchscript_refused_with_the_reason(factory_file, tmp_path):
    net = load_model(f"{factory_file}:make")
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), path)
    with pytest.raises(RuntimeError, match="not supported on ScriptModules"):  # torch's own limit
        dict(torch.jit.load(path).named_modules())["features.1"].register_forward_hook(lambda *a: None)
    with pytest.raises(ValueError, match="TorchScript archive.*forward hooks"):
        load_model(str(path))


def test_cli_runs_a_factory_model(factory_file, tmp_path):
    folder = tmp_path / "pool" / "a"
    folder.mkdir(parents=True)
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (12, 10), (50 * i, 20, 30)).save(folder / f"{i}.png")
    result = CliRunner().invoke(app, ["preference", "--net", f"mine={factory_file}:make", "--pool",
                                      f"objects={tmp_path / 'pool'}", "--layers", "features.1", "--out",
                                      str(tmp_path / "out"), "--input-size", "16", "--preprocess", "inception"])
    assert result.exit_code == 0, result.output
    import json

    run = json.loads((tmp_path / "out" / "preference" / "run.json").read_text())
    pre = run["networks"]["mine"]["preprocessing"]
    assert pre["input_size"] == [16, 16] and pre["mean"] == [0.5, 0.5, 0.5]
    assert pre["sources"]["input_size"] == "option" and pre["sources"]["std"] == "preset inception"


def test_library_preprocessing_argument():
    from unitscope.models import Preprocessing

    net = load_model("squeezenet1_1", num_classes=2, preprocessing={"preset_name": "caffe", "input_size": (200, 300)})
    pre = model_info(net).preprocessing
    assert pre.preset == "caffe" and pre.size_hw == (200, 300) and pre.sources["input_size"] == "option"
    given = Preprocessing(input_size=64, mean=0.5, std=0.5)
    pre = model_info(load_model("squeezenet1_1", num_classes=2, preprocessing=given)).preprocessing
    assert pre == given and set(pre.sources.values()) == {"argument"}


def test_net_specs_of_preference(factory_file, tmp_path):
    from unitscope.models.opening import parse_net
    from unitscope.models import create_model, save_checkpoint

    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    own = load_model(f"{factory_file}:make")
    mine = tmp_path / "mine.pth"
    torch.save({f"module.{k}": v * 2 for k, v in own.state_dict().items()}, mine)
    cases = {f"a=mini_alexnet:{weights}": "mini_alexnet", f"b=:{weights}": "mini_alexnet",
             f"c={factory_file}:make": f"{factory_file}:make", f"d={factory_file}:make:{mine}": f"{factory_file}:make"}
    for spec, arch in cases.items():
        name, net = parse_net(*spec.split("=", 1), {"mean": (0.5,) * 3})
        assert name == spec[0] and model_info(net).arch == arch
        assert model_info(net).preprocessing.mean == (0.5, 0.5, 0.5)
    assert torch.equal(parse_net("d", f"{factory_file}:make:{mine}")[1].fc.bias, own.fc.bias * 2)


def test_lightning_style_checkpoint_into_a_registry_model(tmp_path):
    from unitscope.models import create_model

    net = create_model("squeezenet1_1", num_classes=10)
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, path)
    loaded = create_model("squeezenet1_1", weights=path)
    assert len(model_info(loaded).class_names) == 10  # inferred from model.classifier.1.weight
    assert torch.equal(loaded.classifier[1].weight, net.classifier[1].weight)


def test_random_twin_of_a_factory_model(factory_file, tmp_path):
    from unitscope.models.loading import reinitialised

    net = load_model(f"{factory_file}:make")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(3)
    twin = reinitialised(load_model(f"{factory_file}:make"))
    assert all(not torch.equal(before[k], v) for k, v in twin.state_dict().items())
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 8, 8),)), path)
    with pytest.raises(ValueError, match="--null: cannot draw random weights for 6 parameter"):
        reinitialised(load_model(str(path)))


def test_dissect_an_export_archive_from_the_command_line(tmp_path):
    from toys import make_broden

    tiny = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    path = tmp_path / "tiny.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(tiny, (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: batch},)), path)
    broden = make_broden(tmp_path / "broden", n=6)
    result = CliRunner().invoke(app, ["dissect", "--model", str(path), "--data", str(broden), "--layers", "1",
                                      "--input-size", "32", "--batch-size", "4", "--out", str(tmp_path / "out"),
                                      "--label-cache", "none"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    units = pd.read_csv(tmp_path / "out" / "tiny" / "dissect" / "units.csv", dtype={"layer": str})
    assert list(units.layer) == ["1"] * 4
    import json

    run = json.loads((tmp_path / "out" / "tiny" / "dissect" / "run.json").read_text())
    assert run["networks"]["tiny"]["weights"] == "archive"  # its own weights: not called "-random"
