"""Minimal images (SPEC section 3): greedy removal known answers, 1b object shares, options, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from toys import LabelledTensorPool, QuadrantClassifier, quadrants
from unitscope.data.concepts import Annotation, ConceptTable
from unitscope.experiments import MinimalImagesResult, minimal_images
from unitscope.experiments.minimal_images.segments import _mask_segments
from unitscope.models.mini_alexnet import MiniAlexNet

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
#: softmax([10, 6])[0]: the score of an intact image for the quadrant classifier
P_INTACT = 1.0 / (1.0 + math.exp(-4.0))


class AnnotatedPool(LabelledTensorPool):
    """Rooms of 8x8 pixels with 4x4 object masks: wall (top-left), window (top-right),
    floor (bottom-left) and bed (bottom-right), as a Broden-style annotated pool."""

    concepts = ConceptTable.from_names({"object": ["wall", "window", "floor", "bed"], "scene": ["bedroom"]})

    def annotation(self, i: int) -> Annotation:
        label_map = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
        if i == 1:
            label_map[0:2, 0:2] = 0  # no wall here: unlabelled background instead
        return Annotation(masks={"object": [label_map]}, image_labels={"scene": [5]})


def test_a_classifier_that_needs_one_segment_keeps_exactly_that_segment():
    data = LabelledTensorPool(torch.ones(1, 3, 8, 8), [0])
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, **IDENTITY)
    (record,) = result.records
    assert record.kept == [3]
    # the three harmless removals tie; the lowest segment number goes first
    assert [segment for segment, _ in record.steps] == [0, 1, 2]
    assert record.scores == pytest.approx([P_INTACT] * 4, abs=1e-7)
    assert record.stop_segment == 3 and record.stop_prediction == 1
    assert record.stop_score == pytest.approx(1 / (1 + math.exp(6.0)), abs=1e-7)
    assert record.kept_fraction == 0.25
    assert record.n_segments == 4


def test_misclassified_and_unlabelled_images_are_skipped_and_counted():
    images = torch.ones(4, 3, 8, 8)
    images[1, 0, 4:, 4:] = 0.0  # evidence 0 < 6: classified as 1, label says 0
    data = LabelledTensorPool(images, [0, 0, -1, 0])
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, **IDENTITY)
    assert [r.index for r in result.records] == [0, 3]
    assert result.counts == {"seen": 4, "evaluated": 2, "incorrect": 1, "unlabelled": 1, "unreadable": 0,
                             "candidates": 2 * (4 + 3 + 2 + 1)}


@pytest.mark.parametrize("batch_size,round_batches", [(1, 1), (3, 1), (64, 4)])
def test_batching_does_not_change_the_search(batch_size, round_batches):
    images = torch.ones(5, 3, 8, 8)
    images[2, 0, :4, :] = 5.0  # more segments tie, same answer
    data = LabelledTensorPool(images, [0] * 5)
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, batch_size=batch_size,
                            round_batches=round_batches, **IDENTITY)
    assert [r.index for r in result.records] == [0, 1, 2, 3, 4]
    assert all(r.kept == [3] for r in result.records)
    assert result.counts["candidates"] == 5 * 10


def test_gray_fill_paints_removed_segments_in_pixel_space():
    data = LabelledTensorPool(torch.ones(1, 3, 8, 8), [0])
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, fill="gray", **IDENTITY)
    original, minimal = result.examples["img0"]
    assert (original == 255).all()
    assert (minimal[4:, 4:] == 255).all()
    assert (minimal[:4] == 128).all() and (minimal[4:, :4] == 128).all()


def test_mean_fill_is_the_normalisation_mean_colour():
    mean, std = (0.25, 0.5, 0.75), (0.5, 0.5, 0.5)
    data = LabelledTensorPool(torch.ones(1, 3, 8, 8), [0])
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, mean=mean, std=std)
    _, minimal = result.examples["img0"]
    assert minimal[0, 0].tolist() == [round(0.25 * 255), round(0.5 * 255), round(0.75 * 255)]


def test_max_images_and_indices():
    data = LabelledTensorPool(torch.ones(6, 3, 8, 8), [0] * 6)
    result = minimal_images(QuadrantClassifier(), data, segmentation=quadrants, indices=[4, 1, 5],
                            max_images=2, **IDENTITY)
    assert [r.index for r in result.records] == [4, 1]
    assert result.counts["evaluated"] == 2


def test_object_masks_give_per_scene_object_shares_and_diagnostic_objects(tmp_path):
    data = AnnotatedPool(torch.ones(3, 3, 8, 8), [0, 0, 1])
    result = minimal_images(QuadrantClassifier(), data, segmentation="masks", class_names=["bedroom", "kitchen"],
                            diagnostic={"bedroom": ["bed"]}, **IDENTITY)
    first = result.records[0]
    assert first.segment_objects == [["wall"], ["window"], ["floor"], ["bed"]]
    assert first.objects_present == ["bed", "floor", "wall", "window"]
    assert first.objects_kept == ["bed"]
    assert result.records[1].segment_objects == [[], ["window"], ["floor"], ["bed"]]
    shares = result.object_shares()
    bedroom = shares[shares["scene"] == "bedroom"].set_index("object")
    assert bedroom["share"].to_dict() == {"bed": 1.0, "floor": 0.0, "wall": 0.0, "window": 0.0}
    assert bedroom.loc["wall", "n_present"] == 1 and bedroom.loc["bed", "n_images"] == 2
    assert list(bedroom.index[:1]) == ["bed"]
    # image 2 is labelled kitchen and classified as bedroom: skipped
    assert result.counts["incorrect"] == 1
    diag = result.diagnostic_frame().set_index("object")
    assert diag.loc["bed", "share"] == 1.0 and diag.loc["(any)", "n_kept"] == 2

    result.save(tmp_path)
    for name in ["images.csv", "steps.csv", "objects.csv", "diagnostic.csv", "minimal.json",
                 "examples/000_img0_original.png", "examples/000_img0_minimal.png"]:
        assert (tmp_path / name).is_file(), name
    loaded = MinimalImagesResult.load(tmp_path)
    assert loaded.to_frame().equals(result.to_frame())
    assert loaded.object_shares().equals(result.object_shares())
    assert loaded.steps_frame().equals(result.steps_frame())
    assert (loaded.examples["img0"][1] == result.examples["img0"][1]).all()


def test_slic_minimal_images_are_correct_and_one_removal_from_wrong():
    torch.manual_seed(0)
    net = MiniAlexNet(3, width=4, input_size=32).eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        labels = net(images).argmax(1).tolist()
    data = LabelledTensorPool(images, labels)
    result = minimal_images(net, data, n_segments=12, **IDENTITY)
    assert result.counts["evaluated"] == 3
    from skimage.segmentation import slic

    for record in result.records:
        pixels = images[record.index].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float64)
        segments = np.unique(slic(pixels, n_segments=12, compactness=10.0, start_label=0, channel_axis=-1),
                             return_inverse=True)[1].reshape(32, 32)
        keep = torch.from_numpy(np.isin(segments, record.kept))
        with torch.no_grad():
            minimal = torch.where(keep, images[record.index], torch.zeros(()))
            assert int(net(minimal[None]).argmax()) == record.label
            if record.stop_segment is not None:
                worse = torch.where(keep & torch.from_numpy(segments != record.stop_segment),
                                    images[record.index], torch.zeros(()))
                assert int(net(worse[None]).argmax()) == record.stop_prediction != record.label
        assert len(record.kept) + len(record.steps) == record.n_segments


def test_blur_fill_runs_and_model_mode_is_restored():
    net = QuadrantClassifier()
    net.train()
    data = LabelledTensorPool(torch.ones(1, 3, 8, 8), [0])
    result = minimal_images(net, data, segmentation=quadrants, fill="blur", blur_sigma=1.0, **IDENTITY)
    # a blurred constant image is the image: every segment goes and the class stays
    (record,) = result.records
    assert record.kept == [] and record.stop_segment is None and len(record.steps) == 4
    assert record.kept_fraction == 0.0
    assert net.training


def test_bad_input():
    net = QuadrantClassifier()
    data = LabelledTensorPool(torch.ones(1, 3, 8, 8), [0])
    with pytest.raises(ValueError, match="empty"):
        minimal_images(net, LabelledTensorPool(torch.zeros(0, 3, 8, 8), []))
    with pytest.raises(ValueError, match="fill"):
        minimal_images(net, data, fill="noise")
    with pytest.raises(ValueError, match="annotated pool"):
        minimal_images(net, data, segmentation="masks")
    with pytest.raises(ValueError, match="segmentation"):
        minimal_images(net, data, segmentation="watershed")
    with pytest.raises(LookupError, match="diagnostic scenes"):
        minimal_images(net, data, segmentation=quadrants, class_names=["a", "b"], diagnostic={"c": ["x"]})
    with pytest.raises(LookupError, match="diagnostic objects"):
        minimal_images(net, AnnotatedPool(torch.ones(1, 3, 8, 8), [0]), segmentation="masks",
                       class_names=["bedroom", "kitchen"], diagnostic={"bedroom": ["sofa"]})


def test_progress_reports_searched_images():
    calls = []
    data = LabelledTensorPool(torch.ones(3, 3, 8, 8), [0, 0, 0])
    minimal_images(QuadrantClassifier(), data, segmentation=quadrants, max_images=2,
                   progress=lambda done, total: calls.append((done, total)), **IDENTITY)
    assert calls[-1] == (2, 2)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


class PredictedLabels(Dataset):
    """An annotated pool whose label is the network's own top-1 class (to exercise 1b on real masks)."""

    def __init__(self, pool, labels) -> None:
        self.pool, self.labels = pool, labels
        self.concepts, self.transform = pool.concepts, pool.transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image, meta = self.pool[i]
        return image, dict(meta, label=self.labels[i])

    def annotation(self, i: int):
        return self.pool.annotation(i)


@pytest.mark.slow
def test_object_masks_of_a_real_annotated_pool(realdata):
    """CamVid street scenes with their object and surface masks, SqueezeNet's own top-1 as the label."""
    from unitscope.data import camvid_pool
    from unitscope.models import create_model, model_info

    net = create_model("squeezenet1_0", weights=realdata / "models" / "squeezenet1_0_imagenet.pth").eval()
    pool = camvid_pool(realdata / "camvid", source="scenes", preprocessing=model_info(net).preprocessing)
    pool = pool.subset(range(2))
    with torch.no_grad():
        labels = [int(net(pool[i][0][None]).argmax()) for i in range(2)]
    data = PredictedLabels(pool, labels)
    result = minimal_images(net, data, segmentation="masks", categories=("object", "material"))
    assert result.counts["evaluated"] == 2
    names = set(pool.concepts.names())
    for record in result.records:
        assert set(record.objects_kept) <= set(record.objects_present) <= names
        assert record.n_segments == len(record.segment_objects) >= 2
        # replay: the kept object regions, the rest filled with the mean colour, keep the class
        image = data[record.index][0]
        segments, _ = _mask_segments(data, record.index, (224, 224), ("object", "material"), False)
        keep = torch.from_numpy(np.isin(segments, record.kept))
        with torch.no_grad():
            minimal = torch.where(keep, image, torch.zeros(()))
            assert int(net(minimal[None]).argmax()) == record.label
        assert result.examples[record.id][1].shape == (224, 224, 3)
