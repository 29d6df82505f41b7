"""Thresholds that mean what they say: tie rules, saturation, coverage, support and pool-size warnings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from unitscope.concepts import Annotation, Concept, ConceptTable
from unitscope.experiments import _thresholds as TH
from unitscope.experiments.dissect import DissectionResult, dissect, flag_null
from unitscope.results.dissection_warnings import coverage_warning

QUANTILE = 0.005


class SpotPool(torch.utils.data.Dataset):
    """16 x 16 images: channel 0 marks a "spot" (3 px an image), channel 1 is uniform noise,
    channel 2 marks a "rare" row on the first ``rare_images`` images only.

    Concepts: "spot" (object, every image), "ground" (material: everything but the spot) and
    "rare" (object, away from the spot).
    """

    def __init__(self, n=32, size=16, seed=0, rare_images=3):
        rng = np.random.default_rng(seed)
        self.spot = np.zeros((n, size, size), dtype=np.int64)
        self.rare = np.zeros((n, size, size), dtype=np.int64)
        for i in range(n):
            y, x = rng.integers(0, size - 2, size=2)
            self.spot[i, y, x:x + 3] = 1
            if i < rare_images:
                self.rare[i, (y + size // 2) % size] = 1
        self.noise = rng.random((n, size, size)).astype(np.float32)
        self.concepts = ConceptTable([Concept(1, "spot", "object"), Concept(2, "ground", "material"),
                                      Concept(3, "rare", "object")])
        self.ids = [f"im{i}" for i in range(n)]

    def __len__(self):
        return len(self.spot)

    def __getitem__(self, i):
        image = torch.stack([torch.from_numpy(self.spot[i]).float(), torch.from_numpy(self.noise[i]),
                             torch.from_numpy(self.rare[i]).float()])
        return image, {"index": i, "id": self.ids[i], "label": -1, "source": "toy"}

    def annotation(self, i):
        objects = self.spot[i] + 3 * self.rare[i]
        return Annotation(masks={"object": [objects], "material": [np.where(self.spot[i] == 0, 2, 0)]},
                          image_labels={})

    def mask_shape(self, i):
        return self.spot[i].shape

    def shard(self, rank, world):
        raise NotImplementedError


class SaturatingNet(nn.Module):
    """A 1 x 1 conv then ReLU6, with planted units.

    0: saturated on the ground (ReLU6(10 (1 - spot))): 6.0 on ~99 % of positions;
    1: a graded spot detector (spot x (1 + noise)): its top 0.5 % lies inside the spots;
    2: dead (constant 0);
    3: sparse ReLU, on a few noisy positions only (most positions are exactly 0);
    4: a graded detector of the "rare" row (rare x (1 + noise)).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[0, 0], self.conv.bias[0] = -10.0, 10.0
            self.conv.weight[1, 0], self.conv.weight[1, 1] = 1.0, 0.0
            self.conv.weight[3, 1], self.conv.bias[3] = 1.0, -0.997
            self.conv.weight[4, 2] = 1.0
        self.act = nn.ReLU6()

    def forward(self, x):
        out = self.conv(x)
        gain = torch.cat([x[:, :1] * x[:, 1:2], x[:, 2:3] * x[:, 1:2]], dim=1)  # (1 + noise) on spot / rare
        out = torch.cat([out[:, :1], out[:, 1:2] + gain[:, :1], out[:, 2:4], out[:, 4:] + gain[:, 1:]], dim=1)
        return self.act(out)


def run(rule="unitscope", **options):
    options.setdefault("mask_size", None)  # masks at the map's size: upsampling is the identity
    options.setdefault("top_k", 5)
    return dissect(SaturatingNet(), "act", SpotPool(), threshold_rule=rule, quantile=QUANTILE, batch_size=8,
                   **options)


def test_planted_saturation_is_reported_and_never_a_detector():
    result = run()
    units = result.to_frame().set_index("unit")
    assert units["saturated"].tolist() == [True, False, True, False, False]
    # Every mask stays at the nominal share of positions: 16 x 16 x 32 = 8192 positions, 0.5 % of
    # them is 40.96; T is the floor(0.995 x 8191) + 1 = 8151st smallest, so at most 41 lie above it.
    assert (units["coverage"] <= 41 / 8192).all()
    assert units.loc[0, "coverage"] == 0.0 and units.loc[0, "iou"] == 0.0 and units.loc[0, "label"] == ""
    assert units.loc[1, "coverage"] == 41 / 8192
    assert units.loc[1, "label"] == "spot" and bool(units.loc[1, "detector"])
    assert 0 < units.loc[3, "coverage"] < QUANTILE  # a sparse ReLU unit: only its non-zero positions
    assert units["detector"].sum() == 1  # no false detectors (unit 4's "rare" has 3 images)
    assert ("act: 2 of 5 units saturated (threshold = maximum: many positions tie at the top; 1 of them dead "
            "(constant over the pool)); their masks are empty and none is a detector") in result.warnings
    summary = result.layer_summary().iloc[0]
    assert summary["saturated"] == 2 and summary["detectors"] == 1


def test_inclusive_rule_reproduces_the_inflated_masks():
    units = run("inclusive").to_frame().set_index("unit")
    # the old rule: ties at 6.0 count as on, so unit 0 covers the whole ground and "detects" it
    assert units.loc[0, "coverage"] > 0.9
    assert units.loc[0, "label"] == "ground" and bool(units.loc[0, "detector"])
    assert bool(units.loc[0, "saturated"])
    assert units.loc[2, "coverage"] == 0.0  # a dead unit stays off (its threshold is its minimum)


def test_netdissect_threshold_equals_numpy_linear_quantile():
    pool = SpotPool(n=12)
    net = SaturatingNet()
    result = dissect(net, "act", pool, threshold_rule="netdissect", quantile=0.03, batch_size=5,
                     mask_size=None, top_k=3)
    with torch.no_grad():
        acts = net(torch.stack([pool[i][0] for i in range(len(pool))])).numpy()
    per_unit = acts.transpose(1, 0, 2, 3).reshape(5, -1)
    expected = np.quantile(per_unit, 1 - 0.03, axis=1, method="linear")
    np.testing.assert_array_equal(result.layers["act"].thresholds, expected.astype(np.float64))
    assert result.layers["act"].exact
    on = per_unit > expected[:, None]
    np.testing.assert_array_equal(result.layers["act"].coverage, on.mean(axis=1))


def test_linear_quantile_from_the_top_matches_numpy_on_ties_and_small_counts():
    rng = np.random.default_rng(1)
    for n in (2, 3, 7, 200, 1001):
        for q in (0.005, 0.1, 0.5):
            values = np.round(rng.standard_normal((3, n)), 1).astype(np.float32)
            top = -np.sort(-values, axis=1)[:, :TH.tail_size(n, q)]
            np.testing.assert_array_equal(TH.linear_quantile_from_top(top, n, q),
                                          np.quantile(values, 1 - q, axis=1, method="linear"))


def test_all_ties_unit_is_saturated_under_every_rule():
    for rule in TH.THRESHOLD_RULES:
        ld = run(rule).layers["act"]
        assert bool(ld.saturated[0]) and bool(ld.saturated[2]), rule
        assert ld.thresholds[0] == ld.maxima[0] == 6.0


def test_concepts_below_min_support_are_not_labels():
    result = run(min_support=10)
    concepts = result.concept_frame().set_index("name")
    assert concepts.loc["rare", "images"] == 3 and not concepts.loc["rare", "supported"]
    assert concepts.loc["spot", "images"] == 32 and concepts.loc["spot", "supported"]
    assert concepts.loc["spot", "pixels"] == 96
    units = result.to_frame().set_index("unit")
    assert (units["object_label"] != "rare").all()
    assert units.loc[4, "label"] != "rare" and not units.loc[4, "detector"]
    assert any("fewer than 10 images" in w and "rare" in w for w in result.warnings)
    # with no minimum, unit 4 is a confident "rare" detector on the strength of 3 images
    loose = run(min_support=0)
    assert bool(loose.concept_frame().set_index("name").loc["rare", "supported"])
    unit = loose.to_frame().set_index("unit").loc[4]
    assert unit["label"] == "rare" and unit["iou"] == pytest.approx(41 / 48) and unit["detector"]


def test_small_pool_and_matching_null_are_flagged():
    result = run(top_k=60)
    text = " ".join(result.warnings)
    assert "fewer than top-k 60" in text
    tiny = dissect(SaturatingNet(), "act", SpotPool(n=2), quantile=QUANTILE, batch_size=2, mask_size=None,
                   min_support=0)
    assert any("512 positions per unit" in w and "2.6 positions" in w for w in tiny.warnings)
    found = flag_null(result, result)
    assert found and "random-weights null has 1 detectors against 1" in found[0]
    assert found[0] in result.warnings


def test_rule_and_coverage_are_saved_and_part_of_the_resume_key(tmp_path):
    result = run("netdissect")
    result.save(tmp_path / "d")
    back = DissectionResult.load(tmp_path / "d")
    assert back.threshold_rule == "netdissect" and back.warnings == result.warnings
    np.testing.assert_array_equal(back.layers["act"].coverage, result.layers["act"].coverage)
    units = pd.read_csv(tmp_path / "d" / "units.csv")
    assert {"saturated", "coverage"} <= set(units.columns)
    assert {"images", "pixels", "supported"} <= set(pd.read_csv(tmp_path / "d" / "concepts.csv").columns)

    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("netdissect", work_dir=tmp_path / "w", checkpoint_every=1, progress=interrupt)
    with pytest.raises(ValueError, match="other arguments"):
        run("unitscope", work_dir=tmp_path / "w")
    resumed = run("netdissect", work_dir=tmp_path / "w")
    np.testing.assert_array_equal(resumed.layers["act"].thresholds, result.layers["act"].thresholds)
    assert resumed.to_frame().equals(result.to_frame())


def test_bad_rule_and_support_are_refused():
    with pytest.raises(ValueError, match="unitscope, netdissect, inclusive"):
        run("median")
    with pytest.raises(ValueError, match="min-support"):
        run(min_support=-1)


def test_cli_prints_warnings_and_records_the_rule(tmp_path):
    from typer.testing import CliRunner

    from toys import make_broden
    from unitscope.cli.main import app
    from unitscope.models import create_model, save_checkpoint

    pool = make_broden(tmp_path / "broden", n=12)
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    result = CliRunner().invoke(app, ["dissect", "--model", "mini_alexnet", "--weights", str(weights), "--layers",
                                      "conv5", "--data", str(pool), "--out", str(tmp_path / "out"), "--name", "tiny",
                                      "--convention", "netdissect", "--min-support", "3", "--batch-size", "6"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "tiny" / "dissect" / "result.json").read_text())
    assert meta["config"]["threshold_rule"] == "netdissect" and meta["config"]["min_support"] == 3
    assert meta["thresholds"] == {"rule": "netdissect", "on": "A > T", "exact_quantile": {"conv5": True}}
    printed = [line for line in result.stderr.splitlines() if line.startswith("unitscope: warning: ")]
    assert printed == [f"unitscope: warning: {w}" for w in meta["warnings"]]
    assert any("12 images, fewer than top-k 60" in line for line in printed)


def test_report_shows_the_rule_and_the_warnings(tmp_path):
    from unitscope.report import build_report

    result = run(top_k=60)
    result.network = "toy"
    result.save(tmp_path / "results" / "toy" / "dissect")
    html = build_report(tmp_path / "results").read_text()
    notes = html[html.index('id="dissection-notes"'):]
    notes = notes[:notes.index("</div>")]
    assert "thresholds by the unitscope rule" in notes
    assert "act: 2 of 5 units saturated" in notes and "fewer than top-k 60" in notes


def test_coverage_beyond_twice_the_quantile_is_flagged():
    assert coverage_warning("conv", np.array([0.004, 0.005, 0.01]), 0.005) == []
    (line,) = coverage_warning("conv", np.array([0.004, 0.0159, 0.0101]), 0.005)
    assert line == ("conv: 2 of 3 units cover more than twice the nominal 0.005 of mask pixels (up to 0.0159): "
                    "sparse maps, spread by upsampling")
    assert not any("twice the nominal" in w for w in run().warnings)
