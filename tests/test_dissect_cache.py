"""The activation cache's policies: same labels as float32, the budget's choice, free space, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toys import ToyPool
from unitscope.experiments.dissect import dissect
from unitscope.experiments.dissect.cache import DEFAULT_CACHE_BUDGET_GB, plan_cache

POLICIES = ("disk", "float16", "recompute")


def conv_net():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())


def pool():
    return ToyPool(n=12, size=6, seed=4)  # (4, 6, 6) maps: 144 values, 576 float32 bytes per image


def run(policy, **options):
    return dissect(conv_net(), "0", pool(), batch_size=3, quantile=0.1, activation_cache=policy, **options)


@pytest.fixture(scope="module")
def reference():
    return run("disk")


def test_recompute_equals_the_float32_cache_exactly(reference):
    result = run("recompute")
    assert result.to_frame().equals(reference.to_frame())
    np.testing.assert_array_equal(result.layers["0"].iou, reference.layers["0"].iou)
    assert result.config["activation_cache"] == "recompute" and reference.config["activation_cache"] == "disk"


def test_float16_keeps_every_label_and_moves_ious_a_little(reference):
    # What is asserted for float16: thresholds (pass 1, float32) identical; every unit's label the
    # same; IoUs within 0.05.  Only pixels within a float16 rounding step (2^-11 relative) of a
    # threshold can flip, but the toy's flat colour regions put whole regions there, the worst
    # case (0.047 here); on the study world's 1,000 images the largest change is 1.3e-4 (README).
    result = run("float16")
    a, b = reference.to_frame(), result.to_frame()
    assert list(b["label"]) == list(a["label"])
    np.testing.assert_array_equal(result.layers["0"].thresholds, reference.layers["0"].thresholds)
    np.testing.assert_allclose(result.layers["0"].iou, reference.layers["0"].iou, rtol=0, atol=0.05)
    assert result.config["activation_cache"] == "float16"


def test_the_budget_picks_float32_when_it_fits_and_recompute_when_it_does_not():
    shapes = {"0": (4, 6, 6)}
    fits = plan_cache("auto", shapes, 12, budget_gb=12 * 576 / 1e9)
    assert (fits.mode, fits.bytes_needed) == ("disk", 12 * 576)
    over = plan_cache("auto", shapes, 12, budget_gb=(12 * 576 - 1) / 1e9)
    assert (over.mode, over.bytes_needed, over.float32_bytes) == ("recompute", 0, 12 * 576)
    assert plan_cache("float16", shapes, 12, budget_gb=0).bytes_needed == 12 * 288  # asked for: kept
    assert plan_cache("disk", shapes, 12, budget_gb=0).mode == "disk"
    assert DEFAULT_CACHE_BUDGET_GB == 20.0


def test_dissect_logs_and_records_the_policy_the_budget_chose(reference, tmp_path):
    lines, sizes = [], []

    def progress(done, total):  # the cache's files while the run is under way
        sizes.append(sum(p.stat().st_size for p in (tmp_path / "w").glob("acts_*")))

    result = run("auto", cache_budget_gb=1e-9, work_dir=tmp_path / "w", log=lines.append, progress=progress)
    assert result.config["activation_cache"] == "recompute"
    assert lines == ["activation cache: none, pass 2 runs the network again (a float32 cache would take "
                     "0.00 GB, budget 0.00 GB)"]
    assert max(sizes) == 0, "no cache written"
    assert result.to_frame().equals(reference.to_frame())
    lines.clear()
    assert run("auto", log=lines.append).config["activation_cache"] == "disk"
    assert lines == ["activation cache: float32 on disk, 0.00 GB (budget 20.00 GB)"]


def test_a_cache_larger_than_the_free_space_is_refused_in_one_line(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 6, 10 ** 6 - 100, 100))
    work = tmp_path / "w"
    with pytest.raises(OSError) as error:
        run("disk", work_dir=work)
    message = str(error.value)
    assert "\n" not in message and str(work) in message
    assert "needs 6,912 more bytes" in message and "only 100 are free" in message  # 12 images x 576 bytes
    assert not work.exists() or not any(work.iterdir()), "nothing left behind"
    assert run("recompute", work_dir=work).config["activation_cache"] == "recompute"  # needs no space


@pytest.mark.parametrize("bad, message", [({"activation_cache": "gzip"}, "activation_cache must be one of"),
                                          ({"cache_budget_gb": -1}, "cache_budget_gb must be"),
                                          ({"cache_budget_gb": float("nan")}, "cache_budget_gb must be")])
def test_bad_cache_options_are_refused(bad, message):
    options = dict({"activation_cache": "auto"}, **bad)
    with pytest.raises(ValueError, match=message):
        dissect(conv_net(), "0", pool(), **options)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("stop_at", [3, 6])  # in pass 1, in pass 2 (4 batches per pass)
def test_each_policy_resumes_to_its_uninterrupted_result(policy, stop_at, tmp_path):
    whole = run(policy)

    def interrupt(done, total):
        if done == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(policy, work_dir=tmp_path / "w", checkpoint_every=1, progress=interrupt)
    assert (tmp_path / "w" / "rank0.state.npz").exists()
    resumed = run(policy, work_dir=tmp_path / "w", checkpoint_every=1)
    assert resumed.to_frame().equals(whole.to_frame())
    np.testing.assert_array_equal(resumed.layers["0"].iou, whole.layers["0"].iou)
    assert not (tmp_path / "w").exists()


def test_the_command_takes_the_policy_and_records_it(tmp_path):
    import json

    from typer.testing import CliRunner

    from toys import make_broden
    from unitscope.cli.main import app
    from unitscope.models import create_model, save_checkpoint

    broden = make_broden(tmp_path / "broden", n=16, seed=3)
    torch.manual_seed(0)
    save_checkpoint(create_model("mini_alexnet", num_classes=5, input_size=32, width=4), tmp_path / "tiny.pt")
    args = ["dissect", "--model", "mini_alexnet", "--weights", str(tmp_path / "tiny.pt"), "--data", str(broden),
            "--out", str(tmp_path / "out"), "--name", "tiny", "--layers", "conv5", "--batch-size", "8",
            "--label-cache", "none"]
    done = CliRunner().invoke(app, args + ["--cache-budget-gb", "0"])
    assert done.exit_code == 0, done.output
    assert "activation cache: none, pass 2 runs the network again" in done.output
    config = json.loads((tmp_path / "out" / "tiny" / "dissect" / "result.json").read_text())["config"]
    assert config["activation_cache"] == "recompute"
    bad = CliRunner().invoke(app, args + ["--activation-cache", "gzip"])
    assert bad.exit_code != 0 and "--activation-cache" in bad.output and "'gzip' is not one of" in bad.output
