"""``emergence_study``: hand-made snapshots of a tiny network whose detectors are known, resume, cache, files.

The snapshots are :class:`toys.IndicatorNet` with its 1x1 convolution set
by hand over :class:`toys.ToyPool` (every channel of an image is the mask of
"thing"; "background" is its complement):

* step 1, ``blank``: every unit constant, no detector;
* step 2, ``planted``: unit 0 is "thing" (an object) and unit 2 "background"
  (a material), each at IoU 1;
* step 4, ``thing_only``: unit 0 is "thing", unit 2 constant.

So step 2 has 2 detectors of which 1 object (share 1/2), and only "thing"
is kept at step 4: kept_next = kept_final = 1/2; step 4 keeps its one
detector to the end by definition (kept_final 1).
"""

from __future__ import annotations

import importlib
import math

import pandas as pd
import pytest
import torch

from toys import IndicatorNet, ToyPool, hook_count, planted_conv
from unitscope.experiments.dissect import dissect
from unitscope.experiments.emergence import null_of
from unitscope.results import EmergenceResult, ResultFileError, load_results, layout
from unitscope.study import emergence_study

OPTIONS = dict(batch_size=5, threshold_rule="inclusive")


def _net(weights: dict, bias: dict | None = None) -> IndicatorNet:
    net = IndicatorNet()
    net.conv = planted_conv(3, weights, bias)
    return net


def snapshots():
    torch.manual_seed(0)
    return [(1, _net({})), (2, _net({(0, 0): 1.0, (2, 0): -1.0}, {2: 1.0})), (4, _net({(0, 0): 1.0}))]


@pytest.fixture
def counted(monkeypatch):
    """The networks each dissection of the study ran on, in order."""
    seen = []

    def counting(model, *args, **kwargs):
        seen.append(model)
        return dissect(model, *args, **kwargs)

    monkeypatch.setattr(importlib.import_module("unitscope.experiments.dissect"), "dissect", counting)
    return seen


def test_planted_detector_emerges_and_is_counted(tmp_path, counted):
    nets = snapshots()
    result = emergence_study(nets, ["conv"], ToyPool(), network="toy", out=tmp_path, **OPTIONS)
    table = result.to_frame()
    rows = table[~table["null"]].set_index("step")
    assert rows["detectors"].tolist() == [0, 2, 1]
    assert rows["unique_objects"].tolist() == [0, 1, 1]
    assert rows["object_detectors"].tolist() == [0, 1, 1]
    assert math.isnan(rows.loc[1, "object_share"]) and rows.loc[2, "object_share"] == 0.5
    assert rows.loc[4, "object_share"] == 1.0
    assert math.isnan(rows.loc[1, "kept_next"]) and math.isnan(rows.loc[1, "kept_final"])
    assert rows.loc[2, "kept_next"] == 0.5 and rows.loc[2, "kept_final"] == 0.5
    assert math.isnan(rows.loc[4, "kept_next"]) and rows.loc[4, "kept_final"] == 1.0
    labels = result.labels("conv")
    assert labels.loc[0].tolist() == ["", "thing", "thing"]
    assert labels.loc[2].tolist() == ["", "background", ""]
    # the null: the same architecture, random weights from seed 0, dissected once as the reference row
    null = table[table["null"]]
    assert len(null) == 1 and pd.isna(null["step"].iloc[0])
    expected = dissect(null_of(nets[0][1], seed=0), ["conv"], ToyPool(), **OPTIONS).layer_summary()
    assert null["detectors"].iloc[0] == expected["detectors"].iloc[0]
    assert len(counted) == 4 and all(hook_count(n) == 0 for _, n in nets)
    assert sorted(result.wall_s) == ["1", "2", "4", "random"]


def test_round_trip_and_result_set(tmp_path):
    result = emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path, null=False, **OPTIONS)
    folder = layout.emergence_dir(tmp_path, "toy")
    loaded = EmergenceResult.load(folder)
    pd.testing.assert_frame_equal(loaded.units, result.units)
    pd.testing.assert_frame_equal(loaded.to_frame(), result.to_frame())
    assert loaded.steps == [1, 2, 4] and loaded.key == result.key and loaded.wall_s == pytest.approx(result.wall_s)
    assert sorted(p.name for p in folder.iterdir()) == ["emergence.csv", "emergence.json", "timings.json", "units.csv"]
    found = load_results(tmp_path)  # a results folder holding only an emergence run is a result set
    assert list(found.emergence) == ["toy"] and found.networks == []
    # a units.csv cut short is refused in one line naming it, never read as a smaller run
    units = folder / "units.csv"
    units.write_text("".join(units.read_text().splitlines(keepends=True)[:4]))
    with pytest.raises(ResultFileError, match=r"units.csv has no rows for step\(s\) \[2, 4\]"):
        EmergenceResult.load(folder)
    (folder / "emergence.json").write_text('{"network": "toy"}')
    with pytest.raises(ResultFileError, match="emergence.json must hold"):
        EmergenceResult.load(folder)


def test_second_identical_call_is_cached(tmp_path, counted):
    first = emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path, **OPTIONS)
    bytes_before = {p.name: p.read_bytes() for p in layout.emergence_dir(tmp_path, "toy").iterdir()}
    counted.clear()
    again = emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path, **OPTIONS)
    assert counted == []
    pd.testing.assert_frame_equal(again.to_frame(), first.to_frame())
    assert {p.name: p.read_bytes() for p in layout.emergence_dir(tmp_path, "toy").iterdir()} == bytes_before
    # another option is another configuration: dissected again
    emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path, iou_threshold=0.5, **OPTIONS)
    assert len(counted) == 4


def test_resume_after_interruption_in_the_second_snapshot_redoes_only_it(tmp_path, counted):
    whole = emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path / "whole", **OPTIONS)

    def interrupting(description):
        def callback(done, total=None):
            if description == "dissect step 2" and done >= 2:
                raise KeyboardInterrupt
        return callback, type("Bar", (), {"close": lambda self: None})()

    counted.clear()
    with pytest.raises(KeyboardInterrupt):
        emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=tmp_path / "cut", progress=interrupting,
                        checkpoint_every=1, **OPTIONS)
    assert len(counted) == 2
    partial = layout.emergence_partial_dir(tmp_path / "cut", "toy")
    assert partial.is_dir() and not layout.emergence_dir(tmp_path / "cut", "toy").joinpath("units.csv").exists()
    counted.clear()
    nets = snapshots()
    resumed = emergence_study(nets, ["conv"], ToyPool(), network="toy", out=tmp_path / "cut", checkpoint_every=1,
                              **OPTIONS)
    assert [m is n for m, (_, n) in zip(counted, nets[1:])] == [True, True] and len(counted) == 3  # 2, 4, null
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())
    assert not partial.exists()


def test_snapshots_of_another_architecture_and_unknown_layers_are_refused(tmp_path, counted):
    wider = IndicatorNet()
    wider.conv = torch.nn.Conv2d(3, 4, 1)
    with pytest.raises(ValueError, match=r"step 4.*architecture of.*step 1.*'conv.weight' differs"):
        emergence_study([(1, IndicatorNet()), (4, wider)], ["conv"], ToyPool(), network="toy", out=tmp_path)
    with pytest.raises(LookupError, match="conv9"):
        emergence_study([(1, IndicatorNet())], ["conv9"], ToyPool(), network="toy", out=tmp_path)
    with pytest.raises(ValueError, match="more than once"):
        emergence_study([(1, IndicatorNet()), (1, IndicatorNet())], ["conv"], ToyPool(), network="toy", out=tmp_path)
    with pytest.raises(FileNotFoundError, match="snapshots.json"):
        emergence_study(tmp_path, ["conv"], ToyPool(), network="toy", out=tmp_path)
    assert counted == [] and not (tmp_path / "emergence").exists()


def test_report_section_with_and_without_results(tmp_path):
    import json
    import re
    from html import unescape

    from fake_results import make_fake_results
    from unitscope.report import build_report

    def text(index):
        return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", index.read_text(encoding="utf-8"))))

    without = build_report(make_fake_results(tmp_path / "none", partial=True))
    assert "No emergence results: train with snapshots (`unitscope train --snapshots ...`), then dissect them with " \
           "`unitscope emergence --snapshots DIR --data POOL --out RESULTS`." in text(without)
    assert "emergence" not in json.loads((without.parent / "summary.json").read_text())

    results = make_fake_results(tmp_path / "with", partial=True)
    emergence_study(snapshots(), ["conv"], ToyPool(), network="toy", out=results, null=False, **OPTIONS)
    index = build_report(results)
    shown = text(index)
    assert "How detectors emerge during training" in shown
    # the last snapshot (step 4) has 1 detector: the layer's final count; step 2 reaches half of it
    sentence = ("In toy, conv has 0 detectors at step 1 and 1 at step 4; half of them are there by step 2, 100% are "
                "object detectors at the end (1 different object), and a median 50% of a snapshot's detectors keep "
                "their label to the end.")
    numbers = json.loads((index.parent / "summary.json").read_text())["emergence"]["toy"]
    assert numbers["detectors_last"] == 1 and numbers["half_step"] == 2 and numbers["kept_final_median"] == 0.5
    assert numbers["sentence"] in shown and (index.parent / "plots" / "emergence_toy.png").is_file()
    assert sentence in shown


def test_masks_are_decoded_once_and_each_snapshot_runs_the_pool_once(tmp_path, monkeypatch):
    """The label cache serves every snapshot after the first; each snapshot forwards the pool once."""
    from unitscope.experiments.dissect.labels import _AnnotationView

    class KeyedToyPool(ToyPool):
        def annotation_key(self, i):  # a stable key per image: what lets the label cache keep its masks
            return f"toy-{self.ids[i]}"

    decoded = []
    view_item = _AnnotationView.__getitem__
    monkeypatch.setattr(_AnnotationView, "__getitem__", lambda self, i: decoded.append(i) or view_item(self, i))
    nets = snapshots()
    forwarded = {step: [] for step, _ in nets}
    for step, net in nets:
        net.register_forward_pre_hook(lambda module, args, step=step: forwarded[step].append(len(args[0])))
    pool = KeyedToyPool()
    # 12 images a batch: two batches, decoded in this process (so that the count sees them)
    emergence_study(nets, ["conv"], pool, network="toy", out=tmp_path, label_cache=tmp_path / "labels",
                    null=False, batch_size=12, threshold_rule="inclusive")
    assert sorted(decoded) == list(range(len(pool)))
    assert len(list((tmp_path / "labels").glob("*.pt"))) == 2
    # the pool once, plus one image checking the layers are maps (twice for the first: before any work, and in
    # its dissection); the activations wait on disk for the counting pass
    assert {step: sum(sizes) for step, sizes in forwarded.items()} == {1: 24 + 2, 2: 24 + 1, 4: 24 + 1}
