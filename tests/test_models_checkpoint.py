"""Checkpoint files: every layout found in the wild, unitscope's own, and clear errors."""

from __future__ import annotations

import os
import re
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

from unitscope.models import (
    create_model,
    load_checkpoint,
    model_info,
    read_checkpoint,
    save_checkpoint,
)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture()
def source():
    torch.manual_seed(1)
    return create_model("mini_alexnet", num_classes=5, width=8, input_size=64)


def _fresh():
    torch.manual_seed(2)
    return create_model("mini_alexnet", num_classes=5, width=8, input_size=64)


@pytest.mark.parametrize(
    "layout",
    ["plain", "state_dict", "model", "model_state_dict", "module_prefix", "nested_module_prefix"],
)
def test_layouts(tmp_path, source, layout):
    sd = source.state_dict()
    if layout == "plain":
        data = sd
    elif layout == "module_prefix":  # nn.DataParallel(model).state_dict()
        data = OrderedDict((f"module.{k}", v) for k, v in sd.items())
    elif layout == "nested_module_prefix":  # Places365 AlexNet: DataParallel on features only
        data = {"state_dict": OrderedDict(
            (k.replace("conv1.", "conv1.module."), v) for k, v in sd.items())}
    else:
        data = {layout: sd, "epoch": 90, "arch": "whatever", "best_prec1": 53.2}
    path = tmp_path / "weights.pth"
    torch.save(data, path)
    target = _fresh()
    assert not _same_weights(target, source)
    assert load_checkpoint(target, path) == {}
    assert _same_weights(target, source)


def test_module_prefix_kept_when_the_network_has_a_module_called_module(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    torch.manual_seed(0)
    src, dst = Wrapper(), Wrapper()
    torch.save(src.state_dict(), tmp_path / "w.pth")
    load_checkpoint(dst, tmp_path / "w.pth")
    assert _same_weights(src, dst)


def test_mismatch_lists_missing_and_unexpected_keys(tmp_path, source):
    sd = dict(source.state_dict())
    for key in ("conv1.conv.weight", "conv1.conv.bias", "fc6.fc.weight"):
        sd.pop(key)
    sd["extra_head.weight"] = torch.zeros(3)
    sd["classifier.weight"] = torch.zeros(9, 64)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(_fresh(), path)
    message = str(info.value)
    assert str(path) in message and "mini_alexnet" in message
    assert "3 missing keys (conv1.conv.weight, conv1.conv.bias, fc6.fc.weight)" in message
    assert "1 unexpected keys (extra_head.weight)" in message
    assert "1 keys of the wrong shape (classifier.weight: checkpoint (9, 64) vs model (5, 64))" in message


def test_long_key_lists_are_cut(tmp_path):
    torch.save({f"w{i}": torch.zeros(1) for i in range(12)}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"12 unexpected keys \(w0, w1, w2, w3, w4, \.\.\. \(7 more\)\)"):
        load_checkpoint(nn.Linear(1, 1), tmp_path / "w.pth")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ValueError, match="corrupt.pth.*corrupt or not a PyTorch checkpoint"):
        load_checkpoint(_fresh(), path)
    good = tmp_path / "good.pth"
    torch.save(_fresh().state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pth"):
        load_checkpoint(_fresh(), truncated)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pth"):
        read_checkpoint(empty)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_checkpoint(_fresh(), path)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        create_model("alexnet", weights=path)
    with pytest.raises(ValueError, match="directory"):
        read_checkpoint(tmp_path)


def test_no_state_dict_inside(tmp_path):
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="holds no state dict.*'epoch', 'optimizer'"):
        read_checkpoint(tmp_path / "w.pth")
    torch.save([1, 2], tmp_path / "l.pth")
    with pytest.raises(ValueError, match="holds a list"):
        read_checkpoint(tmp_path / "l.pth")


class _Pickled:
    pass


def test_pickled_objects_refused_unless_allowed(tmp_path, source):
    path = tmp_path / "pickled.pth"
    torch.save(source, path)  # a whole nn.Module: needs unpickling code
    with pytest.raises(ValueError, match="pickled.pth stores pickled Python objects.*allow_pickle=True"):
        load_checkpoint(_fresh(), path)
    target = _fresh()
    load_checkpoint(target, path, allow_pickle=True)
    assert _same_weights(target, source)


def test_save_and_create_round_trip(tmp_path, source):
    path = tmp_path / "sub" / "net.pth"
    names = ["bed", "lamp", "sofa", "car", "tree"]
    model_info(source).class_names = names
    assert save_checkpoint(source, path, extra={"accuracy": 0.91, "config": {"epochs": [1, 2]}}) == path
    assert sorted(os.listdir(path.parent)) == ["net.pth"]  # no temporary file left
    state_dict, meta = read_checkpoint(path)
    assert meta == {
        "format": 1, "arch": "mini_alexnet", "num_classes": 5, "class_names": names,
        "preprocessing": {"input_size": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                          "channel_order": "rgb", "scale": 1.0},
        "default_layers": model_info(source).default_layers,
        "extra": {"accuracy": 0.91, "config": {"epochs": [1, 2]}},
    }
    # Rebuilt from the file alone: architecture, width, input size, classes.
    net = create_model(None, weights=path)
    assert _same_weights(net, source)
    info = model_info(net)
    assert (info.arch, info.class_names, info.weights) == ("mini_alexnet", names, str(path))
    assert info.preprocessing.input_size == 64
    assert net.conv1.conv.out_channels == 8
    with pytest.raises(ValueError, match="saved from a 'mini_alexnet', not a 'alexnet'"):
        create_model("alexnet", weights=path)


def test_mini_alexnet_shape_inferred_from_a_plain_state_dict(tmp_path, source):
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    net = create_model("mini_alexnet", weights=tmp_path / "plain.pth")
    assert _same_weights(net, source)
    assert net.classifier.out_features == 5
    assert model_info(net).preprocessing.input_size == 64
    assert model_info(net).class_names == [f"class_{i}" for i in range(5)]


def test_save_is_atomic(tmp_path, source, monkeypatch):
    path = tmp_path / "net.pth"
    save_checkpoint(source, path)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_fresh(), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["net.pth"]


def test_extra_must_be_plain(tmp_path, source):
    with pytest.raises(ValueError, match=r"extra\['bad'\] is a _Pickled"):
        save_checkpoint(source, tmp_path / "x.pth", extra={"bad": _Pickled()})
    assert not (tmp_path / "x.pth").exists()


def test_places365_style_alexnet_infers_365_classes(tmp_path):
    # The Places365 AlexNet release: {"state_dict": ...} with DataParallel on
    # features only, and a 365-way classifier.
    torch.manual_seed(0)
    places = torchvision.models.alexnet(weights=None, num_classes=365)
    sd = OrderedDict(
        (k.replace("features.", "features.module.", 1), v) for k, v in places.state_dict().items()
    )
    torch.save({"epoch": 90, "arch": "alexnet", "state_dict": sd, "best_prec1": 53.17},
               tmp_path / "alexnet_places365.pth.tar")
    net = create_model("alexnet", weights=tmp_path / "alexnet_places365.pth.tar")
    assert net.classifier[6].out_features == 365
    assert len(model_info(net).class_names) == 365
    assert _same_weights(net, places)
    with pytest.raises(ValueError, match="classifier.6.weight: checkpoint \\(365, 4096\\) vs model \\(10, 4096\\)"):
        create_model("alexnet", weights=tmp_path / "alexnet_places365.pth.tar", num_classes=10)


def test_old_densenet_key_names(tmp_path):
    torch.manual_seed(0)
    small = dict(growth_rate=4, block_config=(2, 2), num_init_features=8, num_classes=4)
    src = torchvision.models.DenseNet(**small)
    # before torchvision 0.3: "denselayer1.norm.1.weight" for "denselayer1.norm1.weight"
    old = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")
    # and no num_batches_tracked (added in torch 0.4.1), as in the Places365 densenet161
    sd = OrderedDict(
        ("module." + old.sub(r"\1.\2.", k), v) for k, v in src.state_dict().items()
        if not k.endswith("num_batches_tracked")
    )
    assert any(".norm.1." in k for k in sd)
    torch.save({"state_dict": sd}, tmp_path / "densenet.pth")
    net = torchvision.models.DenseNet(**small)
    load_checkpoint(net, tmp_path / "densenet.pth")
    assert _same_weights(net, src)
