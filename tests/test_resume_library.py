"""Interrupt and resume through the library (no CLI): every long experiment and the study's stages.

Each test stops a run part-way (a progress or log callback raises
KeyboardInterrupt, as Ctrl-C would), checks that its state was saved, runs
it again with the same arguments and checks that the result is exactly an
uninterrupted run's and that the work done before the stop was not done
again; then that other arguments are refused with what differs, and that
``restart=True`` starts over.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from toys import (
    IndicatorNet,
    LabelledTensorPool,
    PlantedClassifier,
    PlantedNet,
    QuadrantClassifier,
    ScenePool,
    ToyPool,
    UnlabelledTensorPool,
    ZoomToyPool,
    counting,
    interrupt_after,
    quadrants,
    scaling_net,
    source_pools,
    toy_masks,
)
from unitscope.experiments import (
    ablate_detectors,
    dissect,
    empirical_receptive_fields,
    layer_preference,
    localize_objects,
    minimal_images,
)
from unitscope.experiments.resume import Stages, config_key

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def stop_at(line_to_stop):
    lines = []

    def log(line):
        lines.append(line)
        if line == line_to_stop:
            raise KeyboardInterrupt

    return lines, log


def count_images(model: nn.Module) -> dict:
    """Counts the images ``model`` is run on (a pre-hook on the whole model: test-only)."""
    seen = {"images": 0}
    model.register_forward_pre_hook(lambda module, args: seen.__setitem__("images", seen["images"] + len(args[0])))
    return seen


# ---------------------------------------------------------------------------- dissection
def test_dissect_resumes_from_its_last_checkpoint(tmp_path):
    pool, net = ToyPool(n=24), IndicatorNet()
    options = dict(batch_size=4, top_k=5, threshold_rule="inclusive", min_support=0, checkpoint_every=1)
    whole = dissect(net, "conv", pool, **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):  # 6 batches a pass: stop in the second pass
        dissect(net, "conv", pool, **options, work_dir=work, progress=interrupt_after(8))
    assert (work / "rank0.state.npz").exists()
    seen, progress = counting()
    resumed = dissect(net, "conv", pool, **options, work_dir=work, progress=progress)
    assert seen == [6, 7, 8, 9, 10, 11, 12]  # the first pass, checkpointed before the stop, is not done again
    assert not work.exists()
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())
    for name in ("thresholds", "iou", "top_indices", "top_values", "maxima"):
        np.testing.assert_array_equal(getattr(resumed.layers["conv"], name), getattr(whole.layers["conv"], name))


def test_dissect_refuses_a_partial_run_of_other_arguments_and_restarts(tmp_path):
    pool, net = ToyPool(n=24), IndicatorNet()
    options = dict(batch_size=4, top_k=5, threshold_rule="inclusive", min_support=0, checkpoint_every=1)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        dissect(net, "conv", pool, **options, work_dir=work, progress=interrupt_after(3))
    with pytest.raises(ValueError, match=r"partial run with other arguments \(option 'top_k' \(5, now 3\)\); "
                                         r"pass restart=True \(--restart\)"):
        dissect(net, "conv", pool, **dict(options, top_k=3), work_dir=work)
    with pytest.raises(ValueError, match=r"other arguments \(other data\)"):
        dissect(net, "conv", ToyPool(n=20), **options, work_dir=work)
    restarted = dissect(net, "conv", pool, **dict(options, top_k=3), work_dir=work, restart=True)
    fresh = dissect(net, "conv", pool, **dict(options, top_k=3))
    pd.testing.assert_frame_equal(restarted.to_frame(), fresh.to_frame())
    assert not work.exists()


# ---------------------------------------------------------------------------- layer preference
def test_preference_resumes_and_refuses_other_weights(tmp_path):
    net = scaling_net(1.0)
    options = dict(top=3, batch_size=1, checkpoint_every=1)
    whole = layer_preference(net, ["conv", "pool"], source_pools(), **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        layer_preference(net, ["conv", "pool"], source_pools(), **options, work_dir=work,
                         progress=interrupt_after(4))
    assert (work / "rank0.state.npz").exists()
    with pytest.raises(ValueError, match=r"other arguments \(other weights\)"):
        layer_preference(scaling_net(2.0), ["conv", "pool"], source_pools(), **options, work_dir=work)
    with pytest.raises(ValueError, match=r"option 'batch_size' \(1, now 7\)"):
        layer_preference(net, ["conv", "pool"], source_pools(), **dict(options, batch_size=7), work_dir=work)
    images = count_images(net)
    resumed = layer_preference(net, ["conv", "pool"], source_pools(), **options, work_dir=work)
    assert images["images"] == 7 - 4  # the four one-image batches reported before the stop were checkpointed
    assert not work.exists()
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    pd.testing.assert_frame_equal(resumed.fractions(), whole.fractions())
    with pytest.raises(KeyboardInterrupt):
        layer_preference(net, ["conv", "pool"], source_pools(), **options, work_dir=work,
                         progress=interrupt_after(2))
    restarted = layer_preference(net, ["conv"], source_pools(), **options, work_dir=work, restart=True)
    assert list(restarted.scores["network"]) == ["conv"] and not work.exists()


# ---------------------------------------------------------------------------- minimal images
def minimal_pool() -> LabelledTensorPool:
    images = torch.rand(9, 3, 8, 8, generator=torch.Generator().manual_seed(5)) + 0.7
    images[4, 0, 4:, 4:] = 0.0  # misclassified: skipped, counted
    return LabelledTensorPool(images, [0, 0, 0, -1, 0, 0, 0, 0, 0])


def assert_same_minimal(a, b):
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    pd.testing.assert_frame_equal(a.steps_frame(), b.steps_frame())
    assert a.counts == b.counts and a.options == b.options
    assert sorted(a.examples) == sorted(b.examples)
    for image_id, (original, minimal) in a.examples.items():
        np.testing.assert_array_equal(original, b.examples[image_id][0])
        np.testing.assert_array_equal(minimal, b.examples[image_id][1])


def test_minimal_images_resume_chunk_by_chunk(tmp_path):
    net, pool = QuadrantClassifier(), minimal_pool()
    options = dict(segmentation=quadrants, chunk=2, max_images=6, batch_size=3, **IDENTITY)
    whole = minimal_images(net, pool, **options)
    assert [r.index for r in whole.records] == [0, 1, 2, 5, 6, 7]  # 3 unlabelled, 4 misclassified
    work = tmp_path / "partial"
    assert_same_minimal(minimal_images(net, pool, **options, work_dir=work), whole)  # saved and read back
    assert not work.exists()
    with pytest.raises(KeyboardInterrupt):  # chunks of 2 images: stop as the third chunk starts
        minimal_images(net, pool, **options, work_dir=work, log=stop_at("chunk_00002 ...")[1])
    assert sorted(p.name for p in work.iterdir()) == [".stages.json", "chunk_00000", "chunk_00001"]
    images, lines = count_images(net), []
    resumed = minimal_images(net, pool, **options, work_dir=work, log=lines.append)
    assert lines[:2] == ["chunk_00000: cached", "chunk_00001: cached"] and lines[2] == "chunk_00002 ..."
    assert_same_minimal(resumed, whole)
    assert not work.exists()
    resumed_images = images["images"]
    minimal_images(net, pool, **dict(options, max_images=None), indices=[0, 1, 2, 3])  # what was saved
    saved_images = images["images"] - resumed_images
    minimal_images(net, pool, **options)
    whole_images = images["images"] - resumed_images - saved_images
    assert resumed_images == whole_images - saved_images  # the saved chunks were not searched again


def test_minimal_images_refuse_other_options_and_restart(tmp_path):
    net, pool = QuadrantClassifier(), minimal_pool()
    options = dict(segmentation=quadrants, chunk=2, batch_size=3, **IDENTITY)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        minimal_images(net, pool, **options, work_dir=work, log=stop_at("chunk_00001 ...")[1])
    with pytest.raises(ValueError, match=r"partial run with other arguments \(option 'fill' \(\"mean\", now "
                                         r"\"gray\"\)\); pass restart=True \(--restart\)"):
        minimal_images(net, pool, **options, fill="gray", work_dir=work)
    with pytest.raises(ValueError, match=r"other arguments \(other weights\)"):
        other = QuadrantClassifier()
        with torch.no_grad():
            other.anchor.fill_(0.5)
        minimal_images(other, pool, **options, work_dir=work)
    restarted = minimal_images(net, pool, **options, fill="gray", work_dir=work, restart=True)
    assert_same_minimal(restarted, minimal_images(net, pool, **options, fill="gray"))
    assert not work.exists()


def test_damaged_saved_chunks_are_refused_never_recomputed_silently(tmp_path):
    net, pool = QuadrantClassifier(), minimal_pool()
    options = dict(segmentation=quadrants, chunk=2, batch_size=3, **IDENTITY)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        minimal_images(net, pool, **options, work_dir=work, log=stop_at("chunk_00001 ...")[1])
    (work / "chunk_00000" / "minimal.json").write_text("{")
    with pytest.raises(ValueError, match=r"saved part .*chunk_00000 is damaged.*restart=True \(--restart\)"):
        minimal_images(net, pool, **options, work_dir=work)
    (work / ".stages.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"\.stages\.json is not a record of finished stages"):
        minimal_images(net, pool, **options, work_dir=work)
    (work / "notes.txt").write_text("a user's file")
    restarted = minimal_images(net, pool, **options, work_dir=work, restart=True)
    assert_same_minimal(restarted, minimal_images(net, pool, **options))
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]  # only what unitscope wrote is removed


# ---------------------------------------------------------------------------- receptive fields
def two_convs() -> nn.Sequential:
    net = nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 2, 3, padding=1), conv2=nn.Conv2d(2, 2, 3, padding=1)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return net


def test_receptive_fields_resume_layer_by_layer(tmp_path):
    net = two_convs()
    pool = UnlabelledTensorPool(torch.rand(5, 3, 12, 12, generator=torch.Generator().manual_seed(2)))
    options = dict(top_k=2, occluder=2, stride=2, batch_size=2, **IDENTITY)
    whole = empirical_receptive_fields(net, ["conv1", "conv2"], pool, **options)
    assert [r.layer for r in whole] == ["conv1", "conv2"]
    work = tmp_path / "partial"
    lines, log = stop_at("conv2 ...")
    with pytest.raises(KeyboardInterrupt):
        empirical_receptive_fields(net, ["conv1", "conv2"], pool, **options, work_dir=work, log=log)
    assert lines[0] == "conv1 ..." and (work / "conv1").is_dir()
    images, lines = count_images(net), []
    resumed = empirical_receptive_fields(net, ["conv1", "conv2"], pool, **options, work_dir=work, log=lines.append)
    assert lines[0] == "conv1: cached" and lines[1] == "conv2 ..."
    resumed_images = images["images"]
    empirical_receptive_fields(net, "conv2", pool, **options)
    # conv1 was not measured again (one more image: both layers are checked up front)
    assert resumed_images == images["images"] - resumed_images + 1
    assert not work.exists()
    for a, b in zip(resumed, whole):
        for name in ("units", "maps", "sizes", "top_ids", "top_values", "locations"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_receptive_fields_refuse_other_options_and_restart(tmp_path):
    net = two_convs()
    pool = UnlabelledTensorPool(torch.rand(5, 3, 12, 12, generator=torch.Generator().manual_seed(2)))
    options = dict(top_k=2, occluder=2, stride=2, batch_size=2, **IDENTITY)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        empirical_receptive_fields(net, ["conv1", "conv2"], pool, **options, work_dir=work,
                                   log=stop_at("conv2 ...")[1])
    with pytest.raises(ValueError, match=r"other arguments \(option 'top_k' \(2, now 3\)\)"):
        empirical_receptive_fields(net, ["conv1", "conv2"], pool, **dict(options, top_k=3), work_dir=work)
    restarted = empirical_receptive_fields(net, ["conv1"], pool, **dict(options, top_k=3), work_dir=work,
                                           restart=True)
    fresh = empirical_receptive_fields(net, "conv1", pool, **dict(options, top_k=3))
    np.testing.assert_array_equal(restarted[0].maps, fresh.maps)
    assert not work.exists()


# ---------------------------------------------------------------------------- localisation and ablation
def test_localization_resumes_and_refuses_other_arguments(tmp_path):
    pool, net = ZoomToyPool(toy_masks()), PlantedNet()
    dissection = dissect(net, "conv", pool, batch_size=5, network="toy", threshold_rule="inclusive", min_support=0)
    options = dict(dissection=dissection, batch_size=2, examples=5, checkpoint_every=1)
    whole = localize_objects(net, "conv", pool, **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        localize_objects(net, "conv", pool, **options, work_dir=work, progress=interrupt_after(4))
    assert (work / "rank0.state.npz").exists()
    with pytest.raises(ValueError, match=r"option 'batch_size' \(2, now 3\)"):
        localize_objects(net, "conv", pool, **dict(options, batch_size=3), work_dir=work)
    images = count_images(net)
    resumed = localize_objects(net, "conv", pool, **options, work_dir=work)
    # the four batches reported before the stop were checkpointed (one image: the layer check up front)
    assert images["images"] == len(pool) - 2 * 4 + 1
    assert not work.exists()
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())
    pd.testing.assert_frame_equal(resumed.unit_frame(), whole.unit_frame())
    assert resumed.examples == whole.examples and resumed.counts == whole.counts
    with pytest.raises(KeyboardInterrupt):
        localize_objects(net, "conv", pool, **options, work_dir=work, progress=interrupt_after(2))
    restarted = localize_objects(net, "conv", pool, **dict(options, batch_size=3), work_dir=work, restart=True)
    pd.testing.assert_frame_equal(restarted.to_frame(), whole.to_frame())
    assert not work.exists()


def test_ablation_resumes_without_redoing_checkpointed_passes(tmp_path):
    pool, net = ScenePool(), PlantedClassifier()
    dissection = dissect(net, "conv", pool, batch_size=4, network="planted", threshold_rule="inclusive", min_support=0)
    options = dict(dissection=dissection, n_random=2, seed=3, batch_size=2, conditions_per_pass=3,
                   checkpoint_every=1)
    whole = ablate_detectors(net, "conv", pool, **options)
    work = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        ablate_detectors(net, "conv", pool, **options, work_dir=work, progress=interrupt_after(5))
    assert (work / "rank0.state.npz").exists()
    with pytest.raises(ValueError, match=r"other arguments \(other data, option 'total'"):
        ablate_detectors(net, "conv", ScenePool(n=9), **options, work_dir=work)
    seen, progress = counting()
    resumed = ablate_detectors(net, "conv", pool, **options, work_dir=work, progress=progress)
    assert seen[0] == 5  # the forward passes reported before the stop were checkpointed
    assert not work.exists()
    np.testing.assert_array_equal(resumed.correct, whole.correct)
    np.testing.assert_array_equal(resumed.totals, whole.totals)
    pd.testing.assert_frame_equal(resumed.to_frame(), whole.to_frame())


# ---------------------------------------------------------------------------- the study's stages
def test_study_stages_resume_by_stage_with_the_demos_record(tmp_path):
    record, calls = tmp_path / ".stages.json", []

    def stage(name, stop=False):
        def run():
            calls.append(name)
            if stop:
                raise KeyboardInterrupt
            return name
        return run

    stages = Stages(record)
    assert stages.run("world", {"n": 1}, stage("world")) == "world"
    with pytest.raises(KeyboardInterrupt):
        stages.run("train", {"epochs": 2}, stage("train", stop=True))
    # the record of a demo made before this module existed: the same file, the same keys
    assert json.loads(record.read_text()) == {"world": {"key": config_key({"n": 1})}}
    lines = []
    again = Stages(record, lines.append)
    assert again.run("world", {"n": 1}, stage("world")) is None
    assert again.run("train", {"epochs": 2}, stage("train")) == "train"
    assert calls == ["world", "train", "train"] and lines[0] == "world: cached"
    assert again.timings["world"] == 0.0
    # a stage's outputs are whole results: another configuration runs it again, and replaces them
    Stages(record).run("world", {"n": 2}, stage("world"))
    assert calls[-1] == "world"
    Stages(record, restart=True).run("train", {"epochs": 2}, stage("train"))
    assert calls[-1] == "train" and list(json.loads(record.read_text())) == ["train"]
