"""Preference, localization and ablation resume after an interruption and end as an uninterrupted run."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from toys import (
    PlantedClassifier,
    PlantedNet,
    ScenePool,
    ZoomToyPool,
    counting,
    interrupt_after,
    make_broden,
    scaling_net,
    source_pools,
    toy_masks,
)
from unitscope.experiments import ablate_detectors, layer_preference, localize_objects
from unitscope.experiments.dissect import dissect


def test_preference_resumes_across_pools(tmp_path):
    net = scaling_net(1.0)
    whole = layer_preference(net, ["conv", "pool"], source_pools(), top=3, batch_size=1)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):  # pool 0 has 3 batches: stop inside pool 1
        layer_preference(net, ["conv", "pool"], source_pools(), top=3, batch_size=1, work_dir=work,
                         checkpoint_every=1, progress=interrupt_after(5))
    assert (work / "rank0.state.npz").exists()
    seen, progress = counting()
    resumed = layer_preference(net, ["conv", "pool"], source_pools(), top=3, batch_size=1,
                               work_dir=work, checkpoint_every=1, progress=progress)
    assert seen == [6, 7]  # 5 of the 7 batches (one image each) were checkpointed before the stop
    assert not work.exists()
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    for layer in ("conv", "pool"):
        np.testing.assert_array_equal(resumed.scores["network"][layer], whole.scores["network"][layer])
    pd.testing.assert_frame_equal(resumed.fractions(), whole.fractions())


def test_localization_resumes_with_its_examples(tmp_path):
    pool, net = ZoomToyPool(toy_masks()), PlantedNet()
    dissection = dissect(net, "conv", pool, batch_size=5, network="toy", threshold_rule="inclusive", min_support=0)
    options = dict(dissection=dissection, batch_size=2, examples=5)
    whole = localize_objects(net, "conv", pool, **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        localize_objects(net, "conv", pool, **options, work_dir=work, checkpoint_every=2,
                         progress=interrupt_after(3))
    seen, progress = counting()
    resumed = localize_objects(net, "conv", pool, **options, work_dir=work, checkpoint_every=2,
                               progress=progress)
    assert seen[0] == 3  # batches 1-2 were checkpointed, batch 3 is done again
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())
    pd.testing.assert_frame_equal(resumed.unit_frame(), whole.unit_frame())
    assert resumed.examples == whole.examples and resumed.counts == whole.counts
    assert sorted(resumed.pictures) == sorted(whole.pictures)


def test_ablation_resumes_and_refuses_other_arguments(tmp_path):
    pool, net = ScenePool(), PlantedClassifier()
    dissection = dissect(net, "conv", pool, batch_size=4, network="planted", threshold_rule="inclusive", min_support=0)
    options = dict(dissection=dissection, n_random=2, seed=3, batch_size=2, conditions_per_pass=3)
    whole = ablate_detectors(net, "conv", pool, **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        ablate_detectors(net, "conv", pool, **options, work_dir=work, checkpoint_every=1,
                         progress=interrupt_after(7))
    with pytest.raises(ValueError, match="partial run with other arguments"):
        ablate_detectors(net, "conv", pool, **dict(options, seed=4), work_dir=work)
    resumed = ablate_detectors(net, "conv", pool, **options, work_dir=work, checkpoint_every=1)
    np.testing.assert_array_equal(resumed.correct, whole.correct)
    np.testing.assert_array_equal(resumed.totals, whole.totals)
    assert resumed.counts == whole.counts
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())
    restarted = ablate_detectors(net, "conv", pool, **dict(options, seed=4), work_dir=work, restart=True)
    assert restarted.conditions != whole.conditions


def test_preference_command_resumes(tmp_path, monkeypatch):
    import unitscope.study.progress as bars_module
    from unitscope.cli.main import app
    from unitscope.study.progress import tqdm_progress
    from unitscope.models import create_model, save_checkpoint

    broden = make_broden(tmp_path / "broden", n=12)
    for source, ids in (("objects", range(0, 6)), ("scenes", range(6, 12))):
        folder = tmp_path / source / "all"
        folder.mkdir(parents=True)
        for i in ids:
            shutil.copy(broden / "images" / f"im{i:04d}.png", folder / f"im{i:04d}.png")
    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    args = ["preference", "--net", f"tiny=mini_alexnet:{weights}", "--pool", f"objects={tmp_path / 'objects'}",
            "--pool", f"scenes={tmp_path / 'scenes'}", "--layers", "conv1,conv5", "--top", "4",
            "--batch-size", "2", "--checkpoint-every", "1"]
    runner = CliRunner()
    whole = runner.invoke(app, args + ["--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output

    def stopping_bar(name, **kwargs):
        callback, bar = tqdm_progress(name, **kwargs)
        stop = interrupt_after(4)

        def report(done, total):
            callback(done, total)
            stop(done, total)

        return report, bar

    monkeypatch.setattr(bars_module, "tqdm_progress", stopping_bar)
    broken = runner.invoke(app, args + ["--out", str(tmp_path / "resumed")])
    assert broken.exit_code == 130
    assert (tmp_path / "resumed" / ".partial" / "preference" / "rank0.state.npz").exists()
    monkeypatch.undo()
    resumed = runner.invoke(app, args + ["--out", str(tmp_path / "resumed")])
    assert resumed.exit_code == 0, resumed.output
    assert not (tmp_path / "resumed" / ".partial" / "preference").exists()
    for name in ("fractions.csv", "top_images.csv"):
        a = pd.read_csv(tmp_path / "whole" / "preference" / name)
        b = pd.read_csv(tmp_path / "resumed" / "preference" / name)
        pd.testing.assert_frame_equal(a, b)
