"""The world as data: classes, diagnostic objects, subsets, JSON, concepts."""

import json

import pytest

from unitscope.data.world import (
    BASIC_COLORS,
    WorldDefinition,
    catalogue_objects,
    catalogue_scenes,
    default_world,
)


def test_default_world_sizes_and_order():
    w = default_world()
    assert len(w.scenes) == 10 and len(w.objects) == 24
    assert w.scene_names == sorted(w.scene_names)
    assert w.object_names == sorted(w.object_names)
    assert w.scene_names == [
        "amusement_park", "art_gallery", "beach", "bedroom", "bookstore",
        "kitchen", "living_room", "office", "park", "street",
    ]


def test_paper_examples_are_diagnostic():
    w = default_world()
    assert w.diagnostic_objects("bedroom") == ["bed"]
    assert w.diagnostic_objects("bookstore") == ["bookcase"]
    assert w.diagnostic_objects("art_gallery") == ["painting"]
    assert w.diagnostic_objects("amusement_park") == ["carousel", "ferris_wheel"]
    assert w.diagnostic_scenes("bed") == ["bedroom"]
    assert w.diagnostic_scenes("person") == []


def test_objects_are_shared_across_scenes():
    w = default_world()
    used_by = {o: sum(any(r.object == o for r in s.rules) for s in w.scenes) for o in w.object_names}
    assert used_by["person"] == 10
    assert sum(1 for n in used_by.values() if n >= 2) >= 10


def test_every_scene_has_a_diagnostic_object_of_the_world():
    w = default_world()
    for s in w.scenes:
        assert s.diagnostic and set(s.diagnostic) <= set(w.object_names)


def test_parts_surfaces_colours_as_concepts():
    w = default_world()
    table = w.concepts()
    assert table.categories == ["color", "object", "part", "material", "scene", "texture"]
    assert [c.name for c in table.in_category("color")] == sorted(BASIC_COLORS)
    assert len(table.in_category("color")) == 11
    assert len(table.in_category("object")) == 24
    assert len(table.in_category("scene")) == 10
    for name in ("pillow", "frame", "shelf", "pane", "wheel"):
        assert table.find(name, "part")
    for name in ("wall", "floor", "ceiling", "sky", "grass", "water", "sand", "road", "wood"):
        assert table.find(name, "material")
    names = table.names()
    assert len(names) == len(set(names)), "concept names are unique across categories"


def test_json_round_trip():
    w = default_world()
    text = w.to_json()
    assert WorldDefinition.from_json(text) == w
    assert json.loads(text)["scenes"][0]["name"] == "amusement_park"


def test_from_dict_rejects_garbage():
    with pytest.raises(ValueError, match="not a valid world definition"):
        WorldDefinition.from_dict({"scenes": []})


def test_subsets_keep_diagnostic_objects():
    w = default_world(n_scenes=4, n_objects=8)
    assert [s for s in catalogue_scenes()[:4]] == ["bedroom", "art_gallery", "bookstore", "living_room"]
    assert sorted(w.scene_names) == sorted(catalogue_scenes()[:4])
    for s in w.scenes:
        assert set(s.diagnostic) <= set(w.object_names)
        assert {r.object for r in s.rules} <= set(w.object_names)
    assert len(w.objects) == 8


def test_other_seed_draws_a_subset_keeping_the_paper_scenes():
    w = default_world(n_scenes=6, seed=3)
    assert {"bedroom", "art_gallery", "bookstore"} <= set(w.scene_names)
    assert len(w.scenes) == 6
    assert default_world(n_scenes=6, seed=3) == w


def test_full_catalogue():
    w = default_world(n_scenes=12, n_objects=len(catalogue_objects()))
    assert len(w.scenes) == 12 and len(w.objects) == 29


@pytest.mark.parametrize("kwargs, match", [
    ({"n_scenes": 1}, "n_scenes"),
    ({"n_scenes": 13}, "n_scenes"),
    ({"n_objects": 5}, "diagnostic objects"),
    ({"n_objects": 40}, "at most"),
])
def test_bad_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        default_world(**kwargs)


def test_unknown_names_raise_lookup_error():
    w = default_world()
    with pytest.raises(LookupError, match="no scene 'moon'"):
        w.scene("moon")
    with pytest.raises(LookupError, match="no object 'dragon'"):
        w.diagnostic_scenes("dragon")
