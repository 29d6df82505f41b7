"""Ablation of a layer's detectors: a planted classifier whose class k reads only unit k."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from toys import PlantedClassifier, ScenePool
from unitscope.experiments.ablate import AblationResult, ablate_detectors
from unitscope.experiments.dissect import dissect

OBJECTS, SCENES = ScenePool.objects, ScenePool.scenes


class SkipClassifier(PlantedClassifier):
    """The same function, but the layer's input is reused after it: stacking conditions there fails."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(self.conv, nn.Identity())

    def forward(self, x):
        before = self.conv[0](x)
        after = self.conv[1](before)
        return self.head(after + 0.0 * before)


@pytest.fixture(scope="module")
def planted():
    pool = ScenePool()
    net = PlantedClassifier()
    dissection = dissect(net, "conv", pool, batch_size=4, network="planted", threshold_rule="inclusive",
                         min_support=0)  # binary planted units: ties are the mask
    return net, pool, dissection


def test_ablating_a_planted_detector_drops_exactly_its_class(planted, tmp_path):
    net, pool, dissection = planted
    diagnostic = {"orchard": ["apple"], "church": ["bell"], "kitchen": ["cup"]}
    result = ablate_detectors(net, "conv", pool, dissection=dissection, n_random=5, seed=3,
                              class_names=SCENES, diagnostic=diagnostic, batch_size=5)
    assert result.detectors == {"apple": [0], "bell": [1], "cup": [2]}
    assert len(result.conditions) == 1 + 3 * (1 + 5)
    np.testing.assert_array_equal(result.totals, [4, 4, 4, 0])
    table = result.to_frame()
    assert sorted(set(table["class_name"])) == ["church", "kitchen", "orchard"]  # no images of "nothing"
    assert (table["baseline_acc"] == 1.0).all()
    for k, obj in enumerate(OBJECTS):
        rows = table[table["object"] == obj].set_index("class")
        expected_drop = np.eye(3)[k]
        np.testing.assert_array_equal(rows["drop"].to_numpy(), expected_drop)
        np.testing.assert_array_equal(rows["ablated_acc"].to_numpy(), 1 - expected_drop)
        # a random draw of one unit other than k hurts class j exactly when it picks unit j
        draws = np.array([c["units"] for c in result.conditions if c["kind"] == "random" and c["object"] == obj])
        assert draws.shape == (5, 1) and k not in draws
        hit = (draws[:, 0][:, None] == np.arange(3)[None, :]).astype(float)  # (draw, class)
        np.testing.assert_allclose(rows["random_drop_mean"].to_numpy(), hit.mean(0))
        np.testing.assert_allclose(rows["random_drop_std"].to_numpy(), hit.std(0, ddof=1))
        np.testing.assert_allclose(rows["effect"].to_numpy(), expected_drop - hit.mean(0))
        assert rows.loc[k, "random_drop_mean"] == 0.0 and rows.loc[k, "effect"] == 1.0
        assert list(rows["diagnostic"]) == list(expected_drop.astype(bool))
    summary = result.summary().set_index("object")
    assert list(summary["most_hurt"]) == ["orchard", "church", "kitchen"]
    assert list(summary["max_effect_class"]) == ["orchard", "church", "kitchen"]
    assert (summary["most_hurt_drop"] == 1.0).all()
    np.testing.assert_allclose(summary["drop"].to_numpy(), 4 / 12)
    assert summary["diagnostic_most_hurt"].tolist() == [True, True, True]
    assert (summary["diagnostic_rank"] == 1).all()
    assert result.options["stack_used"] == "layer"

    result.save(tmp_path / "ab")
    for name in ("classes.csv", "summary.csv", "conditions.csv", "ablate.json"):
        assert (tmp_path / "ab" / name).exists()
    back = AblationResult.load(tmp_path / "ab")
    assert back.to_frame().equals(table)
    assert back.summary().equals(result.summary())
    assert back.conditions_frame().equals(result.conditions_frame())


def test_stacking_choices_give_the_same_counts(planted):
    net, pool, dissection = planted
    reference = ablate_detectors(net, "conv", pool, dissection=dissection, n_random=2, batch_size=12)
    for options in ({"stack": "input"}, {"conditions_per_pass": 2, "batch_size": 5},
                    {"conditions_per_pass": 1, "batch_size": 1, "stack": "layer"}):
        other = ablate_detectors(net, "conv", pool, dissection=dissection, n_random=2, **options)
        np.testing.assert_array_equal(other.correct, reference.correct)
        assert other.conditions == reference.conditions
    assert reference.class_names == ["class_0", "class_1", "class_2", "class_3"]
    # random draws depend on the seed and the object only, not on the other objects studied
    alone = ablate_detectors(net, "conv", pool, dissection=dissection, objects="bell", n_random=2, batch_size=12)
    assert [c for c in alone.conditions if c["object"] == "bell"] == \
        [c for c in reference.conditions if c["object"] == "bell"]


def test_auto_stacking_falls_back_when_the_layer_is_skipped_over(planted):
    _, pool, dissection = planted
    net = SkipClassifier()
    reference = ablate_detectors(PlantedClassifier(), "conv", pool, dissection=dissection, n_random=1,
                                 batch_size=4)
    auto = ablate_detectors(net, "conv.1", pool, dissection=_renamed(dissection, "conv", "conv.1"),
                            n_random=1, batch_size=4)
    assert auto.options["stack_used"] == "input"
    np.testing.assert_array_equal(auto.correct, reference.correct)
    with pytest.raises(ValueError, match="stack='input'"):
        ablate_detectors(net, "conv.1", pool, dissection=_renamed(dissection, "conv", "conv.1"),
                         n_random=1, batch_size=4, stack="layer")
    assert all(not m._forward_hooks for m in net.modules())


def _renamed(dissection, old, new):
    import copy

    other = copy.copy(dissection)
    other.layers = {new: dissection.layers[old]}
    # the same weights under other module names have another fingerprint: take them on trust
    other.config = {k: v for k, v in dissection.config.items() if k != "weights"}
    return other


def test_bad_input_is_refused_with_clear_errors(planted):
    net, pool, dissection = planted
    with pytest.raises(ValueError, match="no detectors of 'ghost' in layer 'conv'"):
        ablate_detectors(net, "conv", pool, dissection=dissection, objects=["apple", "ghost"])
    with pytest.raises(LookupError, match="'head' is not in the dissection"):
        ablate_detectors(net, "head", pool, dissection=dissection)
    with pytest.raises(LookupError, match="diagnostic scenes.*'office'"):
        ablate_detectors(net, "conv", pool, dissection=dissection, class_names=SCENES,
                         diagnostic={"office": ["apple"]})
    with pytest.raises(ValueError, match="stack must be"):
        ablate_detectors(net, "conv", pool, dissection=dissection, stack="middle")

    class Unlabelled(ScenePool):
        def __getitem__(self, i):
            image, meta = super().__getitem__(i)
            return image, dict(meta, label=-1)

    with pytest.raises(ValueError, match="no labelled images"):
        ablate_detectors(net, "conv", Unlabelled(), dissection=dissection)

    class Spatial(PlantedClassifier):
        def forward(self, x):
            return self.conv(x)  # (N, 6, 8, 8), not class scores

    broken = Spatial()
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        ablate_detectors(broken, "conv", pool, dissection=dissection, stack="input")
    assert all(not m._forward_hooks for m in broken.modules())
