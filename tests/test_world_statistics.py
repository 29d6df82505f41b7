"""The world's statistics: long-tailed object frequencies, diagnostic objects."""

import numpy as np
import pytest

from unitscope.data.world import compose_scene, default_world, image_rng

WORLD = default_world()
PER_SCENE = 40


@pytest.fixture(scope="module")
def presence():
    """(scene, object) -> number of images (of PER_SCENE per scene) showing the object."""
    table = WORLD.concepts()
    first = table.find(WORLD.object_names[0], "object").number
    counts = np.zeros((len(WORLD.scenes), len(WORLD.objects)), int)
    for s in range(len(WORLD.scenes)):
        for i in range(PER_SCENE):
            r = compose_scene(WORLD, image_rng(0, "stats", s * PER_SCENE + i), 96, scene=s)
            seen = np.unique(r.annotation.masks["object"][0])
            counts[s, seen[seen > 0] - first] += 1
    return counts


def test_object_frequencies_are_long_tailed(presence):
    freq = np.sort(presence.sum(0))[::-1] / presence.sum()
    assert freq[0] >= 5 * np.median(freq)
    rank = np.arange(1, len(freq) + 1)
    slope = np.polyfit(np.log(rank), np.log(np.maximum(freq, 1e-6)), 1)[0]
    assert -slope > 0.5, f"Zipf exponent {-slope:.2f}"
    assert (presence.sum(0) > 0).all(), "every object occurs"


def test_each_scene_has_a_diagnostic_object(presence):
    n_scenes = len(WORLD.scenes)
    for s, scene in enumerate(WORLD.scenes):
        best_in, best_out = 0.0, 1.0
        for d in scene.diagnostic:
            o = WORLD.object_index(d)
            inside = presence[s, o] / PER_SCENE
            outside = (presence[:, o].sum() - presence[s, o]) / (PER_SCENE * (n_scenes - 1))
            if inside > best_in:
                best_in, best_out = inside, outside
        assert best_in >= 0.6, f"{scene.name}: diagnostic object in {best_in:.0%} of its images"
        assert best_out <= 0.1, f"{scene.name}: diagnostic object in {best_out:.0%} of other images"


def test_expected_frequencies_match_the_measured_ones(presence):
    expected = WORLD.expected_object_frequencies()
    assert max(expected, key=expected.get) == "person"
    measured = presence.sum(0) / presence.shape[0] / PER_SCENE
    e = np.array([expected[o] for o in WORLD.object_names])
    # Occlusion hides a few instances; otherwise the rules are what is drawn.
    assert np.corrcoef(np.argsort(np.argsort(e)), np.argsort(np.argsort(measured)))[0, 1] > 0.8
    assert np.abs(measured - e).max() < 0.12
