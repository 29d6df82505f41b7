"""The adaptive drill-down of the empirical RF, the forward passes it announces, and progress lines."""

from __future__ import annotations

import io
import json
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from toys import UnlabelledTensorPool, make_broden
from unitscope.experiments import EmpiricalRFResult, empirical_receptive_fields
from unitscope.study.progress import ProgressLines

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def planted_net() -> nn.Sequential:
    """One all-one 5x5 convolution: the unit at a location sees exactly its 5x5 window."""
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 1, 5, padding=2, bias=False)))
    with torch.no_grad():
        net.conv.weight.fill_(1.0)
    return net


def planted_pool(size: int = 32, at: tuple[int, int] = (11, 19)) -> UnlabelledTensorPool:
    """A flat image with one brighter pixel: the unit peaks there, and only occluders touching its
    window change it (a compact discrepancy, zero elsewhere)."""
    image = torch.full((3, size, size), 2.0)
    image[:, at[0], at[1]] = 3.0
    return UnlabelledTensorPool(image.unsqueeze(0))


def random_toy() -> tuple[nn.Sequential, UnlabelledTensorPool]:
    """Three random 3x3 convolutions with ReLUs (RF 7 px) on smooth random images: broad, uneven maps."""
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 6, 3, padding=1), relu1=nn.ReLU(),
        conv2=nn.Conv2d(6, 6, 3, padding=1), relu2=nn.ReLU(),
        conv3=nn.Conv2d(6, 4, 3, padding=1),
    )).eval()
    coarse = torch.rand((3, 3, 6, 6), generator=torch.Generator().manual_seed(1))
    images = nn.functional.interpolate(coarse, size=(24, 24), mode="bilinear", align_corners=False)
    return net, UnlabelledTensorPool(images)


def test_adaptive_equals_exact_where_the_discrepancy_is_compact_and_planted():
    net, data = planted_net(), planted_pool()
    options = dict(top_k=1, occluder=3, stride=1, crop=False, **IDENTITY)  # the whole 30x30 grid
    exact = empirical_receptive_fields(net, "conv", data, **options)
    assert exact.stats["copies"] == 901
    for tolerance in (0.0, 0.01):
        adaptive = empirical_receptive_fields(net, "conv", data, mode="adaptive", coarse=4, tolerance=tolerance,
                                              **options)
        np.testing.assert_allclose(adaptive.maps, exact.maps, rtol=1e-6, atol=1e-6 * float(exact.maps.max()))
        assert adaptive.sizes.tolist() == exact.sizes.tolist()
        # 9x9 coarse nodes (0, 4, ..., 28 and the last, 29), then the cells next to a node whose second
        # differences are not zero: the 7x7 touching positions and a ring of cells around them (an
        # edge next to the response looks like a bend), against 900 positions
        assert adaptive.stats["copies_coarse"] == 1 + 9 * 9
        assert adaptive.stats["copies"] < 901 / 3
        assert (adaptive.mode, adaptive.drill_down) == ("adaptive", {"coarse": 4, "tolerance": tolerance})
    assert exact.mode == "exact" and exact.drill_down is None


def test_adaptive_trusts_a_broad_linear_map_and_refines_only_its_bend():
    """Where the discrepancy changes linearly the interpolation is exact: no refinement there, however
    large the values (the former rule refined every cell above the tolerance of the peak)."""
    from unitscope.experiments.empirical_rf.adaptive import interpolation_error

    ramp = np.add.outer(np.arange(9.0), np.arange(7.0))[:, :, None]  # (9, 7, 1) f = i + j
    assert np.abs(interpolation_error(ramp)[1:-1, 1:-1]).max() == 0
    tent = np.minimum(ramp, 6.0)  # flat beyond i + j = 6: a bend along that line
    bent = interpolation_error(tent)[:, :, 0] > 0
    assert bent[1:-1, 1:-1].any() and not bent[1:-1, 1:-1][np.add.outer(np.arange(1, 8), np.arange(1, 6)) < 5].any()


def test_adaptive_error_stays_within_the_tolerance_on_a_random_toy():
    """Occluded positions are exact; elsewhere the map is interpolated where the coarse values are
    below the tolerance or change linearly, so (no narrow response hiding between coarse positions
    here) no averaged map is off by more than the tolerance of its peak.  (These maps are broad and
    rough on small grids: the drill-down saves nothing here, see the planted test for where it does.)"""
    net, data = random_toy()
    options = dict(top_k=3, occluder=3, stride=1, **IDENTITY)
    exact = empirical_receptive_fields(net, "conv3", data, **options)
    for tolerance in (0.0, 0.05, 0.2):
        adaptive = empirical_receptive_fields(net, "conv3", data, mode="adaptive", coarse=3, tolerance=tolerance,
                                              **options)
        for a, e in zip(adaptive.maps, exact.maps):
            assert np.abs(a - e).max() <= max(tolerance, 1e-6) * e.max()
        assert adaptive.stats["copies"] <= exact.stats["copies"] + adaptive.stats["images"] * 3


@pytest.mark.parametrize("mode", ["exact", "adaptive"])
def test_the_forward_passes_announced_are_those_run(mode):
    net, data = random_toy()
    lines, seen = [], []
    result = empirical_receptive_fields(net, "conv3", data, top_k=2, occluder=3, stride=1, mode=mode,
                                        tolerance=0.1, log=lines.append, progress=lambda d, t: seen.append((d, t)),
                                        **IDENTITY)
    numbers = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+(?= (?:coarse |refining |forward))",
                                                            lines[0])]
    if mode == "exact":
        assert numbers == [result.stats["copies"]]
    else:
        coarse, at_most = numbers
        assert coarse == result.stats["copies_coarse"]
        assert coarse + result.stats["copies_refined"] == result.stats["copies"] <= coarse + at_most
    # the data pass, then every forward pass of the sweep, ending at the total
    assert seen[0] == (len(data), len(data))  # one batch
    assert seen[-1][0] == seen[-1][1] == len(data) + result.stats["copies"]


def test_an_adaptive_result_records_its_mode_and_an_exact_one_is_as_before(tmp_path):
    net, data = random_toy()
    options = dict(top_k=2, occluder=3, stride=1, **IDENTITY)
    exact = empirical_receptive_fields(net, "conv3", data, **options)
    exact.save(tmp_path / "exact")
    saved = json.loads((tmp_path / "exact" / "rf.json").read_text())
    assert "mode" not in saved and "drill_down" not in saved  # an exact rf.json is unchanged
    assert EmpiricalRFResult.load(tmp_path / "exact").mode == "exact"
    adaptive = empirical_receptive_fields(net, "conv3", data, mode="adaptive", **options)
    adaptive.save(tmp_path / "adaptive")
    loaded = EmpiricalRFResult.load(tmp_path / "adaptive")
    assert (loaded.mode, loaded.drill_down) == ("adaptive", {"coarse": 4, "tolerance": 0.01})
    assert loaded.stats["copies_coarse"] == adaptive.stats["copies_coarse"]


@pytest.mark.parametrize("options, message", [
    ({"mode": "fast"}, "mode must be one of exact, adaptive, got 'fast'"),
    ({"mode": "adaptive", "coarse": 0}, "coarse must be a positive integer"),
    ({"mode": "adaptive", "tolerance": 1.0}, r"tolerance must be a number in \[0, 1\)"),
])
def test_bad_adaptive_options_are_refused(options, message):
    net, data = random_toy()
    with pytest.raises(ValueError, match=message):
        empirical_receptive_fields(net, "conv3", data, **options)


def test_rf_command_runs_the_adaptive_mode_and_announces_its_passes(tmp_path):
    from typer.testing import CliRunner

    from unitscope.cli.main import app
    from unitscope.models import create_model, save_checkpoint

    broden = make_broden(tmp_path / "broden", n=6, seed=3)
    weights = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    save_checkpoint(create_model("mini_alexnet", num_classes=5, input_size=32, width=4), weights)
    args = ["rf", "--model", "mini_alexnet", "--weights", str(weights), "--data", str(broden), "--layers", "conv2",
            "--top-k", "2", "--units", "0,1", "--name", "tiny", "--out", str(tmp_path / "out")]
    runner = CliRunner()
    refused = runner.invoke(app, args + ["--mode", "fast"])
    assert refused.exit_code != 0 and "'fast' is not one of exact, adaptive" in refused.output
    refused = runner.invoke(app, args + ["--mode", "adaptive", "--tolerance", "1"])
    assert refused.exit_code != 0 and "--tolerance" in refused.output and "1 is not in [0, 1)" in refused.output
    ran = runner.invoke(app, args + ["--mode", "adaptive", "--tolerance", "0.05"])
    assert ran.exit_code == 0, ran.output
    assert re.search(r"conv2: [\d,]+ coarse forward passes over \d+ top image\(s\), then at most", ran.output)
    assert "conv2: incremental inference" in ran.output
    saved = json.loads((tmp_path / "out" / "tiny" / "rf" / "conv2" / "rf.json").read_text())
    assert saved["mode"] == "adaptive" and saved["drill_down"] == {"coarse": 4, "tolerance": 0.05}


def test_progress_lines_off_a_terminal():
    now = [0.0]
    stream = io.StringIO()
    lines = ProgressLines("rf", unit="passes", stream=stream, every=30, clock=lambda: now[0])
    lines.update(10, 1000)
    now[0] = 31.0
    lines.update(100, 1000)
    now[0] = 40.0
    lines.update(200, 1000)  # within 30 s of the last line: nothing
    now[0] = 62.0
    lines.update(400, 1000)
    assert stream.getvalue().splitlines() == [
        "rf: 100/1,000 passes (10%), 0:31 elapsed, ~4:39 left",
        "rf: 400/1,000 passes (40%), 1:02 elapsed, ~1:33 left",
    ]
    lines.close()
    assert stream.getvalue().splitlines()[-1] == "rf: 400/1,000 passes (40%), 1:02 elapsed, ~1:33 left"
    quiet = io.StringIO()
    short = ProgressLines("rf", stream=quiet, every=30, clock=lambda: 0.0)
    short.update(5, 10)
    short.close()
    assert quiet.getvalue() == ""  # a step shorter than the interval writes nothing
