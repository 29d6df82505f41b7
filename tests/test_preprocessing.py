"""Preprocessing as a recorded option: presets, precedence, geometry with masks, results and resume keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from toys import make_broden
from unitscope.cli.main import app
from unitscope.data import BrodenPool, PlainPool
from unitscope.data.transforms import ImageTransform, crop_to_box, image_transform
from unitscope.experiments.preference import layer_preference
from unitscope.models import create_model, model_info, save_checkpoint
from unitscope.models.preprocessing import Preprocessing, preset, resolve_preprocessing

# A 1 x 2 image: a pure red pixel and an (0, 128, 255) pixel.
RED, AZURE = (255, 0, 0), (0, 128, 255)


def tiny_image() -> Image.Image:
    return Image.fromarray(np.array([[RED, AZURE]], dtype=np.uint8))


@pytest.mark.parametrize("name, expected", [
    # torchvision: RGB in [0, 1], (x - mean) / std
    ("imagenet", [[(1 - .485) / .229, (0 - .485) / .229],
                  [(0 - .456) / .224, (128 / 255 - .456) / .224],
                  [(0 - .406) / .225, (1 - .406) / .225]]),
    # Inception: (x - 0.5) / 0.5, RGB
    ("inception", [[1.0, -1.0], [-1.0, 128 / 255 * 2 - 1], [-1.0, 1.0]]),
    # Caffe: BGR in [0, 255] minus the BGR mean, std 1
    ("caffe", [[0 - 103.939, 255 - 103.939], [0 - 116.779, 128 - 116.779], [255 - 123.68, 0 - 123.68]]),
])
def test_each_preset_gives_its_exact_tensor(name, expected):
    pre = preset(name)
    transform = ImageTransform("native", pre.mean, pre.std, channel_order=pre.channel_order, scale=pre.scale)
    x = transform(tiny_image())
    assert x.shape == (3, 1, 2)
    np.testing.assert_allclose(x[:, 0, :].numpy(), np.array(expected), rtol=1e-6, atol=1e-5)


def test_presets_table():
    assert preset("inception").mean == (0.5, 0.5, 0.5) and preset("inception").input_size == 299
    caffe = preset("caffe")
    assert (caffe.channel_order, caffe.scale, caffe.std) == ("bgr", 255.0, (1.0, 1.0, 1.0))
    assert Preprocessing().preset == "imagenet" and caffe.preset == "caffe"
    with pytest.raises(LookupError, match="presets are imagenet, inception, caffe"):
        preset("vgg")


def test_precedence_option_over_checkpoint_over_registry(tmp_path):
    net = create_model("squeezenet1_0", num_classes=3)
    assert model_info(net).preprocessing.sources["mean"] == "registry"
    path = tmp_path / "half.pth"
    torch.save({"state_dict": net.state_dict(),
                "unitscope": {"preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3}}}, path)
    from_checkpoint = model_info(create_model("squeezenet1_0", weights=path)).preprocessing
    assert from_checkpoint.mean == (0.5, 0.5, 0.5) and from_checkpoint.preset == "inception"
    assert from_checkpoint.sources == {"input_size": "registry", "mean": "checkpoint", "std": "checkpoint",
                                       "resize": "registry", "channel_order": "registry", "scale": "registry"}
    assert from_checkpoint.input_size == 224  # a registry model keeps its size under a preset too
    chosen = resolve_preprocessing(from_checkpoint, preset_name="caffe", std=2.0)
    assert chosen.mean == (103.939, 116.779, 123.68) and chosen.std == (2.0, 2.0, 2.0)
    assert chosen.input_size == 224 and chosen.sources["input_size"] == "registry"
    assert chosen.sources["mean"] == "preset caffe" and chosen.sources["std"] == "option"
    # a model with no size of its own takes the preset's
    own = resolve_preprocessing(Preprocessing(sources={"input_size": "default"}), preset_name="inception")
    assert own.input_size == 299


def test_shorter_side_crop_and_pad_geometry_and_the_masks_follow():
    crop = ImageTransform((4, 4), (0, 0, 0), (1, 1, 1), resize="shorter-side+center-crop", resize_ratio=1.0)
    # an 8 x 4 (w x h) image: scaled to 8 x 4 (covers 4 x 4), centre 4 columns kept
    assert crop.source_box(8, 4) == (2.0, 0.0, 6.0, 4.0)
    pad = ImageTransform((4, 4), (0, 0, 0), (1, 1, 1), resize="pad")
    assert pad.source_box(8, 4) == (0.0, -2.0, 8.0, 6.0)  # fits 4 x 2, one row of padding above and below
    image = Image.fromarray(np.full((4, 8, 3), 255, dtype=np.uint8))
    x = pad(image)
    assert x.shape == (3, 4, 4)
    assert torch.equal(x[:, [0, 3]], torch.zeros(3, 2, 4))  # padding is the mean colour: 0 in the input
    assert torch.equal(x[:, 1:3], torch.ones(3, 2, 4))
    mask = np.arange(32).reshape(4, 8)
    np.testing.assert_array_equal(crop_to_box(mask, crop.source_box(8, 4), (8, 4)), mask[:, 2:6])
    padded = crop_to_box(mask, pad.source_box(8, 4), (8, 4))
    assert padded.shape == (8, 8) and (padded[:2] == 0).all() and (padded[6:] == 0).all()
    np.testing.assert_array_equal(padded[2:6], mask)


def test_annotated_pool_crops_its_masks_like_its_images(tmp_path):
    broden = make_broden(tmp_path / "broden", n=2, size=32)
    stretch = BrodenPool(broden, preprocessing=Preprocessing(input_size=16))
    cropped = BrodenPool(broden, preprocessing=Preprocessing(input_size=16, resize="shorter-side+center-crop"))
    whole = stretch.annotation(0).masks["object"][0]
    part = cropped.annotation(0).masks["object"][0]
    sh = whole.shape[0]
    margin = round(sh * (1 - 224 / 256) / 2)  # the classic crop keeps the centre 224/256
    np.testing.assert_array_equal(part, whole[margin:sh - margin, margin:sh - margin])
    assert cropped.geometry_key() == {"input_size": [16, 16], "resize": "shorter-side+center-crop",
                                      "resize_ratio": 256 / 224}
    assert stretch.geometry_key() is None


def test_preprocessing_recorded_in_results_and_part_of_the_resume_key(tmp_path):
    folder = tmp_path / "pool" / "a"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    net = create_model("mini_alexnet", num_classes=2, input_size=16, width=4)
    imagenet = PlainPool(tmp_path / "pool", preprocessing=model_info(net).preprocessing)
    result = layer_preference(net, ["conv1"], imagenet, top=2, batch_size=1, thumbnails=0)
    record = result.preprocessing["network"]
    assert record["mean"] == [0.485, 0.456, 0.406] and record["resize"] == "shorter-side+center-crop"
    assert record["preset"] == "imagenet" and record["sources"]["mean"] == "registry"
    result.save(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "preference.json").read_text())
    assert saved["preprocessing"]["network"]["input_size"] == [16, 16]

    # a partial run with ImageNet preprocessing refuses to go on with Inception's
    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        layer_preference(net, ["conv1"], imagenet, top=2, batch_size=1, thumbnails=0, work_dir=work,
                         checkpoint_every=1, progress=lambda done, total: _stop_after(done, 2))
    inception = PlainPool(tmp_path / "pool", preprocessing=preset("inception"))
    with pytest.raises(ValueError, match="partial run with other arguments"):
        layer_preference(net, ["conv1"], inception, top=2, batch_size=1, thumbnails=0, work_dir=work)
    again = layer_preference(net, ["conv1"], imagenet, top=2, batch_size=1, thumbnails=0, work_dir=work)
    np.testing.assert_array_equal(again.scores["network"]["conv1"], result.scores["network"]["conv1"])


def _stop_after(done: int, n: int) -> None:
    if done >= n:
        raise KeyboardInterrupt


def test_dissect_cli_records_preprocessing_and_run_json(tmp_path):
    broden = make_broden(tmp_path / "broden", n=8)
    weights = tmp_path / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=32, width=4), weights)
    args = ["dissect", "--model", "mini_alexnet", "--weights", str(weights), "--layers", "conv5",
            "--data", str(broden), "--name", "tiny", "--batch-size", "4", "--label-cache", "none",
            "--preprocess", "caffe", "--resize", "pad"]
    first = CliRunner().invoke(app, args + ["--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, args + ["--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    config = json.loads((tmp_path / "a" / "tiny" / "dissect" / "result.json").read_text())["config"]
    pre = config["preprocessing"]
    assert pre["channel_order"] == "bgr" and pre["scale"] == 255.0 and pre["resize"] == "pad"
    assert pre["input_size"] == [32, 32] and pre["preset"] == "caffe"
    assert pre["sources"]["mean"] == "preset caffe" and pre["sources"]["resize"] == "option"
    assert pre["sources"]["input_size"] == "checkpoint"
    run = json.loads((tmp_path / "a" / "tiny" / "dissect" / "run.json").read_text())
    assert run["command"] == "dissect" and run["options"]["preprocess"] == "caffe"
    assert set(run["versions"]) == {"unitscope", "torch", "torchvision", "numpy", "python"}
    assert run["networks"]["tiny"]["preprocessing"] == pre
    assert len(run["networks"]["tiny"]["weights_fingerprint"]) == 20
    assert {"dissect tiny", "save"} <= set(run["stages"]) and run["wall_seconds"] >= 0
    assert run["started"] <= run["finished"]
    # every result file but run.json is byte-identical between the two runs
    for path in sorted((tmp_path / "a" / "tiny" / "dissect").iterdir()):
        if path.name != "run.json":
            assert path.read_bytes() == (tmp_path / "b" / "tiny" / "dissect" / path.name).read_bytes(), path.name


def test_native_size_needs_batches_of_one(tmp_path):
    folder = tmp_path / "pool"
    folder.mkdir()
    for i, (w, h) in enumerate([(20, 12), (9, 15)]):
        Image.fromarray(np.full((h, w, 3), 100, dtype=np.uint8)).save(folder / f"{i}.png")
    net = create_model("squeezenet1_1", num_classes=4)
    pool = PlainPool(folder, preprocessing=Preprocessing(input_size="native"))
    assert pool[0][0].shape == (3, 12, 20) and pool[1][0].shape == (3, 15, 9)
    described = image_transform(Preprocessing(input_size="native")).describe()
    assert described["input_size"] == "native" and described["resize"] is None
    result = layer_preference(net, ["features.3"], pool, top=2, batch_size=1, thumbnails=0)
    assert result.scores["network"]["features.3"].shape == (2,)


def test_caffe_inputs_are_drawn_back_in_rgb():
    from types import SimpleNamespace

    from unitscope.data.transforms import denormalize
    from unitscope.experiments._common import input_channel_order, normalisation, to_uint8

    pre = preset("caffe")
    transform = ImageTransform("native", pre.mean, pre.std, channel_order="bgr", scale=255)
    x = transform(tiny_image())
    data = SimpleNamespace(transform=transform)
    net = create_model("squeezenet1_1", num_classes=2)
    mean, std = normalisation(net, data)
    np.testing.assert_allclose(mean.flatten().numpy(), np.array(pre.mean) / 255, rtol=1e-6)
    order = input_channel_order(net, data)
    assert order == "bgr"
    expected = np.array([[RED, AZURE]], dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(x, mean, std, channel_order=order), expected)
    np.testing.assert_array_equal(denormalize(x, pre), expected)


def test_layers_at_a_non_square_input_size():
    result = CliRunner().invoke(app, ["layers", "squeezenet1_0", "--input-size", "240,320"])
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if line.split()[:1] == ["features.0"])
    assert row[:5] == ["features.0", "Conv2d", "96", "117", "157"]  # (240 - 7) // 2 + 1, (320 - 7) // 2 + 1


def _wide_broden(root):
    """Wide images (24 x 48) with a bright box anywhere, left half included, on a dark floor."""
    from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden

    concepts = ConceptTable.from_names({"object": ["box"], "material": ["floor"]})
    rng = np.random.default_rng(5)

    def records():
        for i in range(24):
            image = rng.integers(0, 40, size=(24, 48, 3), dtype=np.uint8)
            box = np.zeros((24, 48), dtype=np.int32)
            y, x = int(rng.integers(0, 14)), int(rng.integers(0, 38))
            image[y:y + 10, x:x + 10] = 230
            box[y:y + 10, x:x + 10] = 1
            yield BrodenRecord(id=f"w{i:03d}", image=image,
                               annotation=Annotation(masks={"object": [box], "material": [2 - 2 * box]}))

    return write_broden(root, records(), concepts)


def _brightness_iou(pool) -> tuple[str, float]:
    from unitscope.experiments.dissect import dissect

    brightness = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        brightness[0].weight.fill_(1 / 3)
        brightness[0].bias.zero_()
    # (the box is flat: its pixels tie at the maximum, so the old inclusive rule keeps them)
    row = dissect(brightness, ["0"], pool, quantile=0.05, mask_size=None, batch_size=8, min_support=0,
                  threshold_rule="inclusive").to_frame().iloc[0]
    return row["label"], float(row["iou"])


@pytest.mark.parametrize("resize", ["stretch", "pad", "shorter-side+center-crop"])
def test_a_brightness_unit_detects_the_box_whatever_the_geometry(tmp_path, resize, monkeypatch):
    """Known answer: a unit that is the pixel brightness finds the bright box only if masks follow the geometry."""
    pool = BrodenPool(_wide_broden(tmp_path / "wide"),
                      preprocessing=Preprocessing(input_size=32, mean=0, std=1, resize=resize))
    label, iou = _brightness_iou(pool)
    # the box is ~8% of a wide image; the unit's top 5% is inside it when masks are aligned
    assert label == "box" and iou > 0.5, (resize, iou)  # measured: stretch 0.56, pad 0.91, crop 0.67
    if resize != "stretch":  # the whole masks stretched over a cropped or padded input miss the box
        monkeypatch.setattr(BrodenPool, "_aligned", lambda self, index, annotation: annotation)
        _, misaligned = _brightness_iou(pool)
        assert misaligned < iou - 0.2, (resize, iou, misaligned)  # measured: pad 0.49, crop 0.25


def test_dissection_refuses_to_resume_with_other_preprocessing(tmp_path):
    from unitscope.experiments.dissect import dissect

    broden = make_broden(tmp_path / "broden", n=8)
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    work = tmp_path / "work"
    options = dict(batch_size=2, checkpoint_every=1, work_dir=work, mask_size=None)
    with pytest.raises(KeyboardInterrupt):
        dissect(net, ["conv2"], BrodenPool(broden, preprocessing=model_info(net).preprocessing),
                progress=lambda done, total: _stop_after(done, 2), **options)
    other = Preprocessing(input_size=32, mean=0.5, std=0.5)
    with pytest.raises(ValueError, match="partial run with other arguments"):
        dissect(net, ["conv2"], BrodenPool(broden, preprocessing=other), **options)
    # the same values from another source (an option rather than the registry) resume the run
    same = resolve_preprocessing(model_info(net).preprocessing, mean=IMAGENET)
    model_info(net).preprocessing = same
    result = dissect(net, ["conv2"], BrodenPool(broden, preprocessing=same), **options)
    assert result.config["preprocessing"]["sources"]["mean"] == "option"


IMAGENET = (0.485, 0.456, 0.406)
