"""Bad preprocessing options and bad bring-your-own models, refused before any work.

Each row runs ``dissect`` or ``preference`` on a tiny Broden pool (or a
plain folder) with one bad ``--mean``/``--std``/``--input-size``/...
value, or one bad ``--model``, and checks that the command refuses it in one
line naming the option (and what it accepts), leaving the output folder
untouched (it does not even exist afterwards).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from toys import make_broden
from unitscope.models import create_model, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.save is deprecated

FACTORIES = textwrap.dedent('''
    from torch import nn

    def broken():
        raise RuntimeError("weights server unreachable")

    def not_a_module():
        return [1, 2, 3]
''')


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("bad_preprocess")
    torch.manual_seed(0)
    weights = root / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    (root / "factories.py").write_text(FACTORIES)
    script = root / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3))), script)
    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU())
    torch.export.save(torch.export.export(tiny, (torch.zeros(1, 3, 32, 32),)), root / "exported.pt2")
    return make_broden(root / "broden", n=4), weights, root


def _dissect(assets, out, *extra, model="mini_alexnet", weights=True):
    broden, w, _ = assets
    args = ["dissect", "--model", model, "--data", str(broden), "--out", str(out), "--layers", "conv5"]
    return args + (["--weights", str(w)] if weights else []) + list(extra)


# (id, extra options or model, fragments the error line must name)
CASES = [
    ("mean-two-values", ["--mean", "0.5,0.5"], ["--mean", "3 comma-separated", "got 2"]),
    ("mean-not-a-number", ["--mean", "half"], ["--mean", "3 comma-separated numbers"]),
    ("mean-infinite", ["--mean", "inf"], ["--mean", "finite"]),
    ("std-zero", ["--std", "0"], ["--std", "must be > 0"]),
    ("std-negative-channel", ["--std", "0.2,-0.2,0.2"], ["--std", "must be > 0"]),
    ("std-four-values", ["--std", "1,1,1,1"], ["--std", "got 4"]),
    ("unknown-preset", ["--preprocess", "vgg"], ["--preprocess", "imagenet, inception, caffe", "'vgg'"]),
    ("input-size-zero", ["--input-size", "0"], ["--input-size", "N, H,W", "native"]),
    ("input-size-three-numbers", ["--input-size", "224,224,3"], ["--input-size", "N, H,W"]),
    ("input-size-words", ["--input-size", "big"], ["--input-size", "native"]),
    ("input-size-native-in-dissect", ["--input-size", "native"], ["--input-size native", "dissect"]),
    ("unknown-resize-mode", ["--resize", "crop"], ["--resize", "stretch, shorter-side+center-crop, pad"]),
    ("unknown-channel-order", ["--channel-order", "grb"], ["--channel-order", "rgb or bgr"]),
    ("scale-ten", ["--scale", "10"], ["--scale", "1", "255"]),
]


@pytest.mark.parametrize("extra, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_preprocessing_option(assets, tmp_path, refuse, extra, mentions):
    out = tmp_path / "out"
    refuse(_dissect(assets, out, *extra), mentions=mentions, unchanged=[assets[0], tmp_path])
    assert not out.exists()


MODEL_CASES = [
    ("factory-raises", "{root}/factories.py:broken", ["factories.py:broken raised RuntimeError",
                                                       "weights server unreachable"]),
    ("factory-returns-a-list", "{root}/factories.py:not_a_module", ["returned a list, not a torch.nn.Module"]),
    ("factory-file-missing", "{root}/nowhere.py:make", ["--model", "no such Python file", "nowhere.py"]),
    ("factory-name-missing", "{root}/factories.py:make", ["--model", "no attribute 'make'", "broken"]),
    ("module-missing", "no_such_module_abc:make", ["--model", "no module named 'no_such_module_abc'"]),
    ("torchscript-archive", "{root}/scripted.pt", ["--model", "TorchScript", "forward hooks", ".pt2"]),
    ("export-archive-missing", "{root}/missing.pt2", ["--model", "no such torch.export archive"]),
    ("state-dict-given-as-model", "{root}/tiny.pt", ["--model", "not a model archive", "--weights"]),
]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("model, mentions", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_own_model(assets, tmp_path, refuse, model, mentions):
    out = tmp_path / "out"
    args = _dissect(assets, out, model=model.format(root=assets[2]), weights=False)
    refuse(args, mentions=mentions, unchanged=[assets[0], assets[2], tmp_path])
    assert not out.exists()


def test_native_size_needs_batch_size_one(assets, tmp_path, refuse):
    pool = tmp_path / "pool"
    pool.mkdir()
    args = ["preference", "--net", "a=mini_alexnet:" + str(assets[1]), "--pool", f"objects={pool}",
            "--out", str(tmp_path / "out"), "--input-size", "native", "--batch-size", "8"]
    refuse(args, mentions=["--input-size native needs --batch-size 1", "--batch-size 8"], unchanged=[tmp_path])


def test_no_random_twin_for_an_export_archive(assets, tmp_path, refuse):
    broden, _, root = assets
    args = ["dissect", "--model", root / "exported.pt2", "--data", broden, "--out", tmp_path / "out",
            "--layers", "1", "--null"]
    refuse(args, mentions=["--null", "cannot draw random weights", "reset_parameters"],
           unchanged=[broden, root, tmp_path])
    assert not (tmp_path / "out").exists()
