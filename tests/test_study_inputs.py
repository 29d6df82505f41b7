"""What the commands used to do themselves, now library calls: opening inputs, bars, the null, the label store."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toys import make_broden

from unitscope.experiments._distributed import process_group
from unitscope.label import add_annotator, open_store
from unitscope.models import create_model, model_info, save_checkpoint
from unitscope.study import Inputs, convert_pool, tqdm_bars
from unitscope.study.inputs import check_null, label_cache_folder
from unitscope.study.progress import step


@pytest.fixture(scope="module")
def broden(tmp_path_factory):
    return make_broden(tmp_path_factory.mktemp("inputs") / "broden", n=6)


def test_inputs_open_the_network_and_the_pool_as_the_commands_do(broden):
    inputs = Inputs(model="mini_alexnet", data=broden, input_size="32")
    assert (inputs.weights, inputs.seed, inputs.device, inputs.layout, inputs.layers) == (None, 0, "cpu", "auto", None)
    net = inputs.network("dissect", native=False, num_classes=2)
    assert model_info(net).preprocessing.size_hw == (32, 32)
    assert inputs.chosen_layers(net) == list(model_info(net).default_layers)
    assert Inputs(model="mini_alexnet", layers=["conv2"]).chosen_layers(net) == ["conv2"]
    assert inputs.folder() == "mini_alexnet" and Inputs(model="mini_alexnet", name="tiny").folder() == "tiny"
    pool = inputs.pool(net, annotated=True)
    assert len(pool) == 6 and pool[0][0].shape == (3, 32, 32)
    # the same seed, the same random weights: what --seed promises
    again = Inputs(model="mini_alexnet", input_size="32").network("dissect", native=False, num_classes=2)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_named_networks_and_their_layers(tmp_path):
    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    inputs = Inputs()
    nets = inputs.networks([("a", f"mini_alexnet:{weights}"), ("b", f"mini_alexnet:{weights}")], batch_size=2)
    assert list(nets) == ["a", "b"]
    assert inputs.layers_of(nets) == {n: model_info(m).default_layers for n, m in nets.items()}
    assert Inputs(layers=["conv1"]).layers_of(nets) == ["conv1"]


def test_a_model_without_default_layers_asks_for_layers():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3))
    with pytest.raises(ValueError, match="give --layers: file.py:net has no default layers"):
        Inputs(model="file.py:net").chosen_layers(net)


def test_the_null_needs_weights_only_for_a_registry_model(tmp_path):
    with pytest.raises(ValueError, match="--null needs --weights"):
        check_null("mini_alexnet", None)
    check_null("mini_alexnet", tmp_path / "w.pt")
    check_null("factory.py:net", None)  # a factory may load trained weights itself


def test_the_label_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITSCOPE_HOME", str(tmp_path))
    assert label_cache_folder(None) == tmp_path / "cache" / "labels"
    assert label_cache_folder(" None ") is None
    assert label_cache_folder(str(tmp_path / "x")) == tmp_path / "x"


def test_outside_torchrun_the_process_group_is_the_device_as_given():
    with process_group("cuda:3") as device:
        assert device == "cuda:3"
    assert not torch.distributed.is_initialized()


def test_tqdm_bars_are_a_progress_factory_the_library_closes():
    with step(tqdm_bars(unit="img"), "convert") as callback:
        callback(2, 5)
        callback(3)
    # without a factory the step is silent
    with step(None, "convert") as callback:
        assert callback is None


def test_convert_pool_checks_every_option_before_opening_the_pool(tmp_path):
    missing = tmp_path / "no-such-pool"
    with pytest.raises(ValueError, match="--limit takes a whole number of images, at least 1; got 0"):
        convert_pool(missing, out=tmp_path / "out", limit=0)
    with pytest.raises(ValueError, match="--image-size"):
        convert_pool(missing, out=tmp_path / "out", image_size="a,b")
    assert not (tmp_path / "out").exists()


def test_convert_pool_writes_broden_with_its_provenance(broden, tmp_path):
    steps = []

    class Bar:
        def close(self):
            pass

    def progress(description):
        steps.append(description)
        return (lambda done, total=None: None), Bar()

    result = convert_pool(broden, out=tmp_path / "out", limit=3, progress=progress)
    assert result.images == 3 and (tmp_path / "out" / "index.csv").is_file()
    assert steps[-1] == "convert"


def test_the_label_store_of_a_results_folder(tmp_path):
    from conftest_label import make_results

    results = make_results(tmp_path, networks={"scenenet": {"conv5": 2}}, n_images=3, size=16)
    with pytest.raises(FileNotFoundError, match="no labeling database at"):
        open_store(results, existing=True)
    assert not (results / "labels.sqlite").exists()
    with pytest.raises(ValueError, match="invalid annotator name"):
        add_annotator(results, " bad name")
    with pytest.raises(OSError):
        add_annotator(tmp_path / "not-results", "ada")
    assert not (results / "labels.sqlite").exists() and not (tmp_path / "not-results" / "labels.sqlite").exists()
    token = add_annotator(results, "ada")
    assert open_store(results, existing=True).annotator_for_token(token).name == "ada"
    other = tmp_path / "elsewhere.sqlite"
    add_annotator(results, "bob", db=other)
    assert other.is_file() and open_store(results, other, existing=True).annotators()[0].name == "bob"


def test_demo_prints_the_run_it_read_back(tmp_path, monkeypatch):
    """The summary comes from the ``ResultSet`` that ``run_study`` returns (its ``run.json`` typed)."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import unitscope.study.run as study_run
    from unitscope.cli.main import app
    from unitscope.results import RunMetadata

    run = RunMetadata(networks={"scenenet": {"val_top1": 0.5}}, timings={"dissect": 3.0, "total_before_report": 3.0,
                                                                         "report": 1.0})
    monkeypatch.setattr(study_run, "run_study", lambda config, **kw: SimpleNamespace(run=run, root=config.out))
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["scenenet: held-out top-1 50.0%", "stages: dissect 3s, total_before_report 3s, "
                                          "report 1s", f"report: {tmp_path / 'report' / 'index.html'}", "total: 4 s"]
