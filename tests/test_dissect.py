"""Network dissection on hand-built networks with exact answers, and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toys import IndicatorNet, RawToyPool, ToyPool
from unitscope.experiments.dissect import DissectionResult, dissect


def test_indicator_unit_has_iou_one_and_dead_unit_is_not_a_detector():
    # A binary unit's top quantile is its maximum: only the "inclusive" rule (ties on) gives it a
    # mask; under the default strict rule it is saturated (tests/test_dissect_thresholds.py).
    result = dissect(IndicatorNet(), "conv", ToyPool(), batch_size=5, threshold_rule="inclusive")
    units = result.to_frame().set_index("unit")
    assert units.loc[0, "label"] == "thing"
    assert units.loc[0, "iou"] == pytest.approx(1.0)
    assert units.loc[0, "threshold"] == pytest.approx(1.0)
    assert units.loc[0, "precision"] == pytest.approx(1.0)
    assert units.loc[0, "type"] == "object"
    assert bool(units.loc[0, "detector"])
    assert units.loc[1, "iou"] == 0.0 and not units.loc[1, "detector"] and units.loc[1, "label"] == ""
    assert units.loc[2, "label"] == "background" and units.loc[2, "iou"] == pytest.approx(1.0)
    assert units.loc[2, "type"] == "region"
    # scene is an image-level label: IoU of the thing unit with it = thing area / image area
    pool = ToyPool()
    share = pool.masks.mean()
    assert units.loc[0, "scene_iou"] == pytest.approx(share)
    summary = result.layer_summary().iloc[0]
    assert summary["detectors"] == 2 and summary["unique_objects"] == 1
    assert summary["share_object"] == pytest.approx(1 / 3)


def test_iou_is_exact_against_a_direct_computation():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    pool = ToyPool(n=10, size=6, seed=4)
    result = dissect(net, "0", pool, batch_size=3, quantile=0.1, quantile_resolution=4096)
    layer = result.layers["0"]
    images = torch.stack([pool[i][0] for i in range(len(pool))])
    with torch.no_grad():
        acts = net(images).numpy()
    t = np.quantile(acts.transpose(1, 0, 2, 3).reshape(4, -1), 0.9, axis=1, method="lower")
    np.testing.assert_allclose(layer.thresholds, t, rtol=0, atol=1e-6)
    on = acts > t[None, :, None, None]  # the default rule is strict
    thing = pool.masks.astype(bool)
    for u in range(4):
        inter = (on[:, u] & thing).sum()
        union = (on[:, u] | thing).sum()
        assert layer.iou[u, 0] == pytest.approx(inter / union)


def test_save_and_load_round_trip(tmp_path):
    result = dissect(IndicatorNet(), "conv", ToyPool(), batch_size=7, network="toy")
    result.save(tmp_path / "d")
    for name in ("units.csv", "units.json", "layers.csv", "concepts.csv", "result.json"):
        assert (tmp_path / "d" / name).exists()
    back = DissectionResult.load(tmp_path / "d")
    np.testing.assert_array_equal(back.layers["conv"].iou, result.layers["conv"].iou)
    np.testing.assert_array_equal(back.layers["conv"].top_overlap, result.layers["conv"].top_overlap)
    assert back.to_frame().equals(result.to_frame())
    assert back.concepts == result.concepts


def test_resumed_run_equals_uninterrupted(tmp_path):
    pool = ToyPool(n=30)
    net = IndicatorNet()
    reference = dissect(net, "conv", pool, batch_size=4)

    class Boom(Exception):
        pass

    calls = {"n": 0}

    def interrupt(done, total):
        calls["n"] += 1
        if done == 11:  # in the middle of pass 2 (8 batches per pass)
            raise Boom()

    with pytest.raises(Boom):
        dissect(net, "conv", pool, batch_size=4, work_dir=tmp_path / "w",
                checkpoint_every=2, progress=interrupt)
    assert (tmp_path / "w" / "rank0.state.npz").exists()
    resumed = dissect(net, "conv", pool, batch_size=4, work_dir=tmp_path / "w",
                      checkpoint_every=2)
    assert resumed.to_frame().equals(reference.to_frame())
    np.testing.assert_array_equal(resumed.layers["conv"].iou, reference.layers["conv"].iou)
    assert not (tmp_path / "w").exists(), "the partial folder is removed at the end"


def test_partial_run_with_other_arguments_is_refused(tmp_path):
    net = IndicatorNet()
    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dissect(net, "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", work_dir=tmp_path / "w",
                checkpoint_every=1, progress=interrupt)
    with pytest.raises(ValueError, match="other arguments"):
        dissect(net, "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", quantile=0.01, work_dir=tmp_path / "w")
    (tmp_path / "w" / "rank0.state.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        dissect(net, "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", work_dir=tmp_path / "w")
    out = dissect(net, "conv", ToyPool(), batch_size=4, threshold_rule="inclusive", work_dir=tmp_path / "w", restart=True)
    assert out.to_frame().loc[0, "iou"] == pytest.approx(1.0)


def test_bad_input_gives_clear_errors():
    net = IndicatorNet()
    with pytest.raises(LookupError, match="conv"):
        dissect(net, "conv9", ToyPool())

    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(3, 8, 8), {"index": i}

    with pytest.raises(ValueError, match="annotated pool"):
        dissect(net, "conv", Plain())
    with pytest.raises(ValueError, match="not a spatial map"):
        dissect(net, "head", ToyPool(n=4))

    class NaNNet(IndicatorNet):
        def forward(self, x):
            return super().forward(x * float("nan"))

    with pytest.raises(ValueError, match="NaN"):
        dissect(NaNNet(), "conv", ToyPool(n=4))
    with pytest.raises(ValueError, match="quantile"):
        dissect(net, "conv", ToyPool(n=4), quantile=1.5)
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_unit_segmentations_highlight_the_thresholded_region(tmp_path):
    from PIL import Image

    from unitscope.study.segmentations import write_unit_segmentations

    pool = RawToyPool(n=10)
    net = IndicatorNet()
    result = dissect(net, "conv", pool, batch_size=4, top_k=5)
    write_unit_segmentations(net, result, pool, tmp_path, top=3, tile_size=8)
    files = sorted((tmp_path / "conv" / "0").glob("*.jpg"))
    assert [f.name.split("_")[0] for f in files] == ["000", "001", "002"]
    top_id = result.image_ids[result.layers["conv"].top_indices[0, 0]]
    assert files[0].name == f"000_{top_id}.jpg"
    assert len(list((tmp_path / "conv").glob("*/*.jpg"))) == 3 * 3
    assert Image.open(files[0]).size == (8, 8)
