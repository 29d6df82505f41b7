"""Token grids (N, T, C) read as spatial maps: the conversion, a planted detector in a tiny transformer, ViT-B/16."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from token_nets import GRID, PLANTED, WIDTH, PlantedPool, TinyViT
from unitscope.cli.main import app
from unitscope.concepts import Concept, ConceptTable
from unitscope.experiments.ablate import ablate_detectors
from unitscope.experiments.dissect import dissect
from unitscope.experiments.empirical_rf import empirical_receptive_fields
from unitscope.hooks import (
    SpatialLayout,
    Trace,
    check_spatial,
    extra_tokens_of,
    keep_units,
    spatial_layout,
    spatial_map,
)
from unitscope.models import create_model, layer_info, receptive_field


# ---------------------------------------------------------------- the conversion on hand-made tensors
def _tokens(n, t, c):
    return torch.arange(n * t * c, dtype=torch.float32).view(n, t, c)


def test_class_token_is_dropped_and_patches_are_row_major():
    x = _tokens(2, 1 + 16, 3)
    maps = spatial_map(x, layer="enc")
    assert maps.shape == (2, 3, 4, 4)
    for n, c, i, j in [(0, 0, 0, 0), (1, 2, 3, 1), (0, 1, 1, 3)]:
        assert maps[n, c, i, j] == x[n, 1 + 4 * i + j, c]
    assert not torch.isin(x[:, 0], maps).any()  # the class token is nowhere in the map
    assert spatial_layout(x, layer="enc") == SpatialLayout(3, 4, 4, extra_tokens=1)


def test_patches_without_class_token_and_maps_pass_through():
    x = _tokens(1, 9, 2)
    assert torch.equal(spatial_map(x, layer="enc")[0, 1], x[0, :, 1].view(3, 3))
    assert spatial_layout(x, layer="enc").extra_tokens == 0
    feature_map = torch.randn(2, 5, 3, 4)
    assert spatial_map(feature_map, layer="conv") is feature_map
    assert spatial_layout(feature_map, layer="conv") == SpatialLayout(5, 3, 4, None)


def test_non_square_input_splits_tokens_by_the_image_shape():
    x = _tokens(1, 1 + 14 * 20, 2)  # ViT-B/16 on a 224x320 input
    maps = spatial_map(x, layer="enc", image_size=(224, 320))
    assert maps.shape == (1, 2, 14, 20)
    assert maps[0, 1, 2, 5] == x[0, 1 + 20 * 2 + 5, 1]
    with pytest.raises(ValueError, match="281 tokens minus k extra leading tokens is not a perfect square"):
        spatial_map(x, layer="enc")


@pytest.mark.parametrize("output, fragment", [
    (torch.zeros(2, 15, 3), "(2, 15, 3): 15 tokens minus k extra leading tokens is not a perfect square"),
    (torch.zeros(2, 5), "(2, 5): a 2-D output is not a spatial map"),
    (torch.zeros(2, 5, 1, 1), "(2, 5, 1, 1): a 1x1 map has one activation per image"),
    (torch.zeros(2, 1, 8), "1 tokens minus k extra leading tokens"),
    (torch.zeros(2, 3, 4, 4, 4), "a 5-D output is not a spatial map"),
    ((torch.zeros(2, 16, 3), None), "a tuple, not a tensor"),
], ids=["non-square", "2-D", "1x1", "one-token", "5-D", "tuple"])
def test_outputs_that_are_not_spatial_are_refused(output, fragment):
    with pytest.raises(ValueError) as info:
        spatial_map(output, layer="blk")
    message = str(info.value)
    assert message.startswith("layer 'blk' outputs ") and fragment in message
    assert "(N, C, H, W) with H*W > 1" in message and "(N, T, C)" in message


def test_sequence_first_is_refused_when_the_batch_does_not_match():
    with pytest.raises(ValueError, match=r"\(17, 2, 3\): its first dim is not the batch of 2 images "
                                         r"\(sequence-first"):
        spatial_map(torch.zeros(17, 2, 3), layer="attn", batch=2)
    assert spatial_map(torch.zeros(2, 17, 3), layer="attn", batch=2).shape == (2, 3, 4, 4)


def test_extra_tokens_are_configurable_and_ambiguity_is_refused():
    x = _tokens(1, 2 + 16, 2)  # DeiT: class and distillation tokens
    with pytest.raises(ValueError, match="18 tokens"):
        spatial_map(x, layer="enc")
    maps = spatial_map(x, layer="enc", extra_tokens=2)
    assert maps.shape == (1, 2, 4, 4) and maps[0, 0, 0, 0] == x[0, 2, 0]
    with pytest.raises(ValueError, match=r"9 tokens split several ways \(0 extra \+ 3x3, 5 extra \+ 2x2\)"):
        spatial_map(_tokens(1, 9, 2), layer="enc", extra_tokens=(0, 5))
    with pytest.raises(ValueError, match="extra_tokens must be a non-negative int"):
        spatial_map(x, layer="enc", extra_tokens=-1)
    net = torch.nn.Linear(2, 2)
    assert extra_tokens_of(net) == (0, 1)
    net.unitscope_extra_tokens = 5  # a class token and four registers
    assert extra_tokens_of(net) == (5,)


def test_keep_units_zeroes_patch_tokens_and_leaves_the_class_token():
    x = torch.ones(2, 1 + 4, 3)
    keep = torch.tensor([[True, False, True], [False, True, True]])
    out = keep_units(x, keep, spatial_layout(x, layer="enc"))
    assert torch.equal(out[:, 0], x[:, 0])  # class tokens untouched
    assert out[0, 1:, 1].eq(0).all() and out[1, 1:, 0].eq(0).all()
    assert out[0, 1:, [0, 2]].eq(1).all() and out[1, 1:, [1, 2]].eq(1).all()
    assert x.eq(1).all()  # the input is not modified
    maps = torch.ones(2, 3, 2, 2)
    zeroed = keep_units(maps, keep, spatial_layout(maps, layer="conv"))
    assert zeroed[0, 1].eq(0).all() and zeroed[0, 0].eq(1).all() and zeroed[1, 0].eq(0).all()


# ---------------------------------------------------------------- the tiny planted transformer
@pytest.fixture(scope="module")
def tiny():
    return TinyViT()


def test_check_spatial_reads_each_layer_once(tiny):
    sample = torch.zeros(1, 3, 16, 16)
    layouts = check_spatial(tiny, ["patch", "embed_drop", "block"], sample)
    assert layouts == {"patch": SpatialLayout(WIDTH, GRID, GRID), "embed_drop": SpatialLayout(WIDTH, GRID, GRID, 1),
                       "block": SpatialLayout(WIDTH, GRID, GRID, 1)}
    for layer, fragment in [("odd", "15 tokens"), ("seq_first", "sequence-first"), ("pooled", "1x1 map"),
                            ("head", "2-D output"), ("block.attn", "a tuple, not a tensor")]:
        with pytest.raises(ValueError, match=fragment):
            check_spatial(tiny, ["patch", layer], sample)
    assert not any(m._forward_hooks for m in tiny.modules())


def test_planted_unit_is_labelled_with_iou_one_at_the_patch_grid(tiny):
    result = dissect(tiny, "block", PlantedPool(), batch_size=16, mask_size=GRID, top_k=5, min_support=0)
    unit = result.to_frame().set_index("unit").loc[0]
    # 3 of 768 patch positions are the concept (under the 0.5 % quantile): threshold 0, on where > 0
    assert unit["label"] == "thing" and unit["iou"] == 1.0 and unit["threshold"] == 0.0
    assert sorted(result.layers["block"].top_indices[0][:3].tolist()) == [i for i, _, _ in PLANTED]


def test_planted_unit_at_full_mask_resolution_is_as_good_as_the_patch_grid_allows(tiny):
    # Bilinear upsampling of a one-patch map from 4x4 to 16x16 is positive on the patch and 2 px
    # around it (clipped at the border): 6x8, 8x6 and 6x6 pixels for the planted patches at
    # (0, 1), (2, 3) and (3, 0), each holding the 4x4 concept: IoU = 3*16 / (48 + 48 + 36) = 4/11.
    result = dissect(tiny, "block", PlantedPool(), batch_size=16, mask_size=None, top_k=5, min_support=0)
    unit = result.to_frame().set_index("unit").loc[0]
    assert unit["label"] == "thing" and unit["iou"] == pytest.approx(4 / 11, abs=1e-12)


def test_theoretical_rf_is_the_patch_until_attention_then_global(tiny):
    for layer in ("patch", "embed_drop", "block.ln_1"):
        rf = receptive_field(tiny, layer, input_size=16)
        assert (rf.size, rf.stride, rf.offset, rf.note) == (4, 4, 1.5, None)
    for layer in ("block.attn", "block", "head"):
        rf = receptive_field(tiny, layer, input_size=16)
        assert rf.is_global and rf.note == "global: attention"
    info = layer_info(tiny, "block", input_size=16)
    assert (info.channels, info.spatial, info.stride, info.rf_size, info.tokens, info.rf_note) == (
        WIDTH, (GRID, GRID), 4, 16, 1, "global: attention")


def test_empirical_rf_of_a_token_layer_occludes_whole_images(tiny):
    pool = PlantedPool()
    result = empirical_receptive_fields(tiny, "embed_drop", pool, units=[0], top_k=3, occluder=2, stride=2)
    # a crop would not fit the position embedding: the whole image is occluded instead
    assert result.options["crop"] is False and result.options["crop_asked"] is True
    assert result.options["layout"] == "tokens: 1 extra + 4x4 patches"
    assert result.theoretical.size == 4 and result.theoretical.note is None and np.isfinite(result.sizes[0])


def test_empirical_rf_after_attention_spans_the_image_and_the_planted_unit_stays_in_its_patch(tiny, tmp_path):
    result = empirical_receptive_fields(tiny, "block", PlantedPool(), units=[0, 1], top_k=3, occluder=2, stride=2)
    assert result.theoretical.note == "global: attention" and result.theoretical.stride == 4
    assert result.locations[0].tolist() == [[r, c] for _, r, c in PLANTED]  # its max is the planted patch
    row = result.summary().iloc[0]
    assert row["theoretical_size"] == 16 and row["theoretical_note"] == "global: attention"
    radius = result.radius
    assert radius == 15 + 2 + 2  # any offset within the 16 px image, plus occluder and stride
    # Unit 0 only reads its own patch (attention writes nothing into channel 0): the occluders that
    # change it are those centred on the patch's 4x4 pixels, offsets -1..2 from its centre pixel.
    planted = np.argwhere(result.maps[0] > 0) - radius
    assert planted.min(axis=0).tolist() == [-1, -1] and planted.max(axis=0).tolist() == [2, 2]
    assert len(planted) == 16
    # Unit 1 attends: occluders far outside its patch change it too.
    attending = np.argwhere(result.maps[1] > 0) - radius
    assert np.abs(attending).max() >= 8
    result.save(tmp_path / "rf")
    again = type(result).load(tmp_path / "rf")
    assert again.theoretical == result.theoretical and again.summary().equals(result.summary())


def test_ablating_a_token_layer_zeroes_the_unit_in_patches_only(tiny):
    labels = [i % 2 for i in range(48)]
    pool = PlantedPool(labels=labels)
    dissection = dissect(tiny, "embed_drop", pool, batch_size=16, mask_size=GRID, top_k=5, min_support=0)
    result = ablate_detectors(tiny, "embed_drop", pool, dissection=dissection, n_random=0, batch_size=16)
    units = result.detectors["thing"]
    assert 0 in units and result.conditions[1]["units"] == units
    images = torch.stack([pool[i][0] for i in range(len(pool))])

    def patches_only(output):
        output = output.clone()
        output[:, 1:, units] = 0.0
        return output

    with Trace(tiny, "embed_drop", edit=patches_only):
        predicted = tiny(images).argmax(dim=1).numpy()
    expected = np.bincount(np.asarray(labels)[predicted == np.asarray(labels)], minlength=2)
    assert result.correct[1].tolist() == expected.tolist()

    def class_token_too(output):
        output = output.clone()
        output[:, :, units] = 0.0
        return output

    with Trace(tiny, "embed_drop", edit=class_token_too):
        other = tiny(images).argmax(dim=1).numpy()
    other_counts = np.bincount(np.asarray(labels)[other == np.asarray(labels)], minlength=2)
    assert other_counts.tolist() != expected.tolist()  # so the counts above tell the two rules apart


# ---------------------------------------------------------------- torchvision's ViT-B/16
class VitPool(PlantedPool):
    """Four 224x224 images; the concept fills the top-left 16x16 patch of the first two."""

    def __init__(self):
        rng = np.random.default_rng(1)
        self.masks = np.zeros((4, 224, 224), dtype=np.int64)
        self.masks[:2, :16, :16] = 1
        self.noise = rng.random((4, 2, 224, 224)).astype(np.float32)
        self.labels = [-1] * 4
        self.concepts = ConceptTable([Concept(1, "thing", "object"), Concept(2, "ground", "material")])
        self.ids = [f"vit{i}" for i in range(4)]


def test_vit_b_16_random_weights_dissects_an_encoder_layer():
    torch.manual_seed(0)
    vit = create_model("vit_b_16")
    layer = "encoder.layers.encoder_layer_1"
    result = dissect(vit, layer, VitPool(), batch_size=4, mask_size=56, top_k=2)
    dissected = result.layers[layer]
    assert dissected.num_units == 768
    assert dissected.thresholds.shape == (768,) and dissected.top_indices.shape == (768, 2)
    assert dissected.iou.shape[0] == 768 and np.isfinite(dissected.iou).all()
    frame = result.to_frame()
    assert len(frame) == 768 and frame["unit"].tolist() == list(range(768))


def test_layers_command_shows_the_patch_rf_and_global_after_attention():
    out = CliRunner().invoke(app, ["layers", "vit_b_16"])
    assert out.exit_code == 0, out.output
    rows = {line.split()[0]: line.split() for line in out.output.splitlines()[1:] if line.strip()}
    # layer kind channels height width stride rf_size rf_stride rf_offset tokens rf_note
    assert rows["conv_proj"][2:9] == ["768", "14", "14", "16", "16", "16", "7.5"]
    assert rows["encoder.dropout"][2:10] == ["768", "14", "14", "16", "16", "16", "7.5", "1"]
    block = rows["encoder.layers.encoder_layer_0"]
    assert block[2:8] == ["768", "14", "14", "16", "224", "<NA>"] and block[-2:] == ["global:", "attention"]
    assert rows["encoder.layers.encoder_layer_11"][-2:] == ["global:", "attention"]


def test_preference_scores_a_token_layer_by_its_patches(tiny):
    from unitscope.experiments.preference import layer_preference

    pool = PlantedPool(n=6)
    result = layer_preference(tiny, ["block"], pool, top=3, thumbnails=0, batch_size=4)
    images = torch.stack([pool[i][0] for i in range(len(pool))])
    with Trace(tiny, "block") as trace:
        tiny(images)
    expected = trace.output[:, 1:].double().mean(dim=(1, 2)).numpy()  # the class token (channel 0 = 100) left out
    scores = result.scores["network"]["block"]
    assert np.allclose(scores, expected, rtol=1e-5, atol=1e-6)  # (batches of 4 here, of 6 there)
    with_class_token = trace.output.double().mean(dim=(1, 2)).numpy()
    assert np.abs(scores - with_class_token).min() > 0.3


def test_whole_image_window_centres_on_cells_and_refuses_uneven_ones():
    from unitscope.experiments._rf_geometry import whole_image_window

    window = whole_image_window((224, 224), (14, 14), "global: attention", layer="enc")
    assert [window.centre(i) for i in (0, 1, 13)] == [7, 23, 215]  # each patch's centre (rounded down)
    assert window.size // 2 == 223  # any pixel of the image is within reach of any centre
    with pytest.raises(ValueError, match=r"layer 'enc' sees the whole input \(global\) on a 7x7 grid that "
                                         r"does not cut the 224x230 input into square cells"):
        whole_image_window((224, 230), (7, 7), "global", layer="enc")
