"""Layer preference (SPEC section 2): known answers on hand-built networks, saving, errors."""

from __future__ import annotations

import numpy as np
import pytest

from toys import SourcePool, hook_count, scaling_net, source_pools
from unitscope.experiments import LayerPreferenceResult, layer_preference


def test_the_source_with_bigger_activations_takes_the_whole_top():
    result = layer_preference(scaling_net(1.0), ["conv", "pool"], source_pools(), top=3, batch_size=2)
    fractions = result.fractions().set_index(["layer", "source"])["fraction"].to_dict()
    assert fractions == {("conv", "objects"): 0.0, ("conv", "scenes"): 1.0,
                         ("pool", "objects"): 0.0, ("pool", "scenes"): 1.0}
    top = result.top_images()
    conv = top[top["layer"] == "conv"]
    assert conv["id"].tolist() == ["scenes/1", "scenes/2", "scenes/3"]
    assert conv["score"].tolist() == pytest.approx([9.0, 7.5, 6.6])
    assert result.scores["network"]["conv"].tolist() == pytest.approx([3.0, 4.5, 3.6, 6.0, 9.0, 7.5, 6.6])


def test_two_networks_side_by_side():
    """The second network's ReLU keeps only the negative-weighted response of dark images."""
    bright, dark = scaling_net(1.0), scaling_net(-1.0)
    data = [SourcePool([1.0, 1.5], "objects"), SourcePool([-1.0, -2.0, -0.5], "scenes")]
    # through the ReLU the bright net sees objects, the dark net scenes
    result = layer_preference({"bright": bright, "dark": dark}, ["relu"], data, top=2)
    fractions = result.fractions().set_index(["network", "source"])["fraction"].to_dict()
    assert fractions == {("bright", "objects"): 1.0, ("bright", "scenes"): 0.0,
                         ("dark", "objects"): 0.0, ("dark", "scenes"): 1.0}
    assert result.networks == ["bright", "dark"]


def test_top_larger_than_the_pool_counts_every_image_and_ties_keep_pool_order():
    data = [SourcePool([1.0, 1.0], "a"), SourcePool([1.0], "b")]
    result = layer_preference(scaling_net(1.0), ["conv"], data, top=100)
    frame = result.fractions()
    assert frame["fraction"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert frame["count"].tolist() == [2, 1]
    assert result.top_images()["id"].tolist() == ["a/0", "a/1", "b/0"]


def test_per_network_layers_and_thumbnails_round_trip(tmp_path):
    data = [SourcePool([1.0, 1.5], "objects", raw=True), SourcePool([2.0, 3.0], "scenes")]
    result = layer_preference({"a": scaling_net(1.0), "b": scaling_net(0.5)}, {"a": ["conv"], "b": ["pool", "fc"]},
                              data, top=2, thumbnails=2, thumbnail_size=6)
    assert result.layers == {"a": ["conv"], "b": ["pool", "fc"]}
    (rank0, id0, thumb0), _ = result.thumbnails[("a", "conv")]
    assert (rank0, id0) == (0, "scenes/1") and thumb0.shape == (6, 6, 3)
    # a pool without raw_image: the de-normalised tensor (value 3 clips to white)
    assert (thumb0 == 255).all()
    result.save(tmp_path)
    assert (tmp_path / "fractions.csv").is_file() and (tmp_path / "top_images.csv").is_file()
    # the thumbnails are arrays in the result (the report draws them)
    with np.load(tmp_path / "thumbnails.npz") as arrays:
        assert (arrays["thumb_0000"] == thumb0).all()
    loaded = LayerPreferenceResult.load(tmp_path)
    assert loaded.fractions().equals(result.fractions())
    assert loaded.top_images().equals(result.top_images())
    assert (loaded.thumbnails[("a", "conv")][0][2] == thumb0).all()


def test_raw_images_are_used_for_thumbnails_when_the_pool_has_them():
    data = [SourcePool([1.0, 2.0], "objects", raw=True)]
    result = layer_preference(scaling_net(1.0), ["conv"], data, top=1, thumbnails=1, thumbnail_size=4)
    (_, image_id, thumb), = result.thumbnails[("network", "conv")]
    assert image_id == "objects/1" and (thumb == 100).all()


def test_model_mode_is_restored_and_no_hook_is_left():
    net = scaling_net(1.0)
    net.train()
    layer_preference(net, ["conv"], source_pools(), top=1)
    assert all(m.training for m in net.modules())
    with pytest.raises(LookupError, match="conv9"):
        layer_preference({"ok": net, "bad": scaling_net(1.0)}, {"ok": ["conv"], "bad": ["conv9"]}, source_pools())
    assert hook_count(net) == 0


def test_bad_input():
    net = scaling_net(1.0)
    with pytest.raises(LookupError, match="no layer named 'nope'"):
        layer_preference(net, ["nope"], source_pools())
    with pytest.raises(ValueError, match="empty"):
        layer_preference(net, ["conv"], [SourcePool([], "objects")])
    with pytest.raises(ValueError, match="no networks"):
        layer_preference({}, ["conv"], source_pools())
    with pytest.raises(ValueError, match="default layers"):
        layer_preference(net, None, source_pools())
    with pytest.raises(ValueError, match="top"):
        layer_preference(net, ["conv"], source_pools(), top=0)


def test_progress_reports_images_done():
    calls = []
    layer_preference(scaling_net(1.0), ["conv"], source_pools(), top=1, batch_size=2,
                     progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 7), (3, 7), (5, 7), (7, 7)]


@pytest.mark.slow
def test_squeezenet_on_real_objects_and_street_scenes(realdata):
    """Real pools and a real network: 24 ImageNet photos (objects) against 24 CamVid frames (scenes)."""
    from unitscope.data.pools import PlainPool
    from unitscope.models import create_model, model_info

    net = create_model("squeezenet1_0", weights=realdata / "models" / "squeezenet1_0_imagenet.pth")
    pre = model_info(net).preprocessing
    objects = PlainPool(realdata / "imagenet_samples", source="objects", preprocessing=pre).subset(range(24))
    scenes = PlainPool(realdata / "camvid" / "images", source="scenes", preprocessing=pre).subset(range(24))
    result = layer_preference(net, ["features.3", "features.12"], [objects, scenes], top=24, thumbnails=2)
    frame = result.fractions()
    assert set(frame["source"]) == {"objects", "scenes"}
    assert frame.groupby("layer")["fraction"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert len(result.images) == 48
    (_, image_id, thumb), _ = result.thumbnails[("network", "features.12")]
    assert thumb.shape == (96, 96, 3) and image_id in set(result.images["id"])
