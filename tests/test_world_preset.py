"""The ``study`` preset: a larger world of the same design (issue 14, item 1)."""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unitscope.cli.main import app
from unitscope.data.world import compose_object_image, default_world, generate_world, image_rng, load_world
from unitscope.data.world.definition import Design, WorldDefinition
from unitscope.data.world.describe import describe_generated_world, describe_world, format_description
from unitscope.data.world.presets import preset_limits, world_preset

STUDY = world_preset("study")
TINY = dict(size=32, n_train=34, n_val=2, n_dissect=3, n_object_train=4, n_object_val=2, workers=0)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_counts_of_the_study_preset():
    assert len(STUDY.scenes) == 34 and len(STUDY.objects) == 92
    assert len(STUDY.part_names) >= 40 and len(STUDY.object_materials) == 10
    assert len(STUDY.colors) == 11 and len(STUDY.textures) == 3
    # the catalogue is kept whole: its scenes, objects and rules
    for scene in default_world(n_scenes=12, n_objects=29).scenes:
        assert STUDY.scene(scene.name).rules[:len(scene.rules)] == scene.rules
    assert STUDY.diagnostic_scenes("bed") == ["bedroom", "hotel_room"]


def test_every_object_is_in_a_scene_and_shared_objects_span_scenes():
    used = {o: sum(any(r.object == o for r in s.rules) for s in STUDY.scenes) for o in STUDY.object_names}
    assert min(used.values()) >= 1
    assert used["person"] >= 25 and sum(n >= 5 for n in used.values()) >= 10


def test_designed_objects_are_distinct_and_drawn_with_their_parts():
    designed = [o for o in STUDY.objects if o.design is not None]
    assert len(designed) == 63
    signatures = {(o.design.body, o.design.kinds()) for o in designed}
    assert len(signatures) == len(designed)
    numbers = {c.name: c.number for c in STUDY.concepts().in_category("part")}
    for i, o in enumerate(designed):
        r = compose_object_image(STUDY, image_rng(0, "preset-test", i), 64, obj=o.name, clutter=0)
        assert (r.instances == 1).sum() > 100, o.name
        drawn = set(np.unique(r.annotation.masks["part"][0][r.instances == 1]))
        assert {numbers[p] for p in o.parts} <= drawn, o.name


def test_the_same_seed_gives_the_same_bytes(tmp_path):
    a = generate_world(tmp_path / "a", preset="study", seed=3, **TINY)
    b = generate_world(tmp_path / "b", preset="study", seed=3, **TINY)
    assert _digest(a.root) == _digest(b.root)
    defn, doc = load_world(a.root)
    assert defn == STUDY and doc["generation"]["preset"] == "study"
    assert doc["generation"]["n_scenes"] == 34 and doc["generation"]["n_objects"] == 92
    c = generate_world(tmp_path / "c", preset="study", seed=4, **TINY)
    assert _digest(c.root) != _digest(a.root)
    assert load_world(c.root)[0] == STUDY  # the seed changes the images, not the world
    d = describe_generated_world(a.root)
    assert d.counts["scenes"] == 34 and "source:" in format_description(d)


def test_default_world_json_has_no_design():
    doc = default_world().to_dict()
    assert all("design" not in o for o in doc["objects"])
    assert WorldDefinition.from_json(STUDY.to_json()) == STUDY


def test_frequency_and_informativeness_are_not_the_same_ranking():
    d = describe_world(STUDY, images_per_scene=150)
    f = d.objects
    assert f["informative_scenes"].sum() == 34 and set(f["informative_scenes"]) >= {0, 1, 2}
    assert d.spearman() < 0.5
    # frequent but uninformative, rare but diagnostic
    assert f.loc["person", "frequency"] > 0.3 and f.loc["person", "informative_scenes"] == 0
    assert f.loc["windsock", "frequency"] < 0.02
    assert f.loc["bathtub", "informative_scenes"] == 1 and f.loc["bathtub", "frequency"] < 0.05
    text = format_description(d)
    assert "counts: scenes=34, objects=92" in text and "spearman" in text


def test_more_than_12_scenes_is_refused_naming_the_preset():
    with pytest.raises(ValueError, match=r"between 2 and 12 for the default world, got 13 .*--preset study has 34"):
        default_world(n_scenes=13)
    with pytest.raises(ValueError, match=r"at most 29 for the default world, got 40 .*--preset study has 34"):
        default_world(n_objects=40)
    assert preset_limits() == "--preset study has 34 scenes and 92 objects"
    runner = CliRunner()
    bad = runner.invoke(app, ["world", "--out", "unused", "--n-scenes", "30"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "unitscope: error: n_scenes must be between 2 and 12 for the default world, got 30 "
        "(for a larger world: --preset study has 34 scenes and 92 objects)"]
    both = runner.invoke(app, ["world", "--out", "unused", "--preset", "study", "--n-scenes", "30"])
    assert both.exit_code == 2 and "leave out --n-scenes" in both.output


def test_bad_presets_and_designs_are_refused(tmp_path):
    with pytest.raises(LookupError, match="no world preset 'huge'; the presets are study"):
        world_preset("huge")
    with pytest.raises(ValueError, match="not both"):
        generate_world(tmp_path / "w", preset="study", definition=default_world(), **TINY)
    bathtub = STUDY.object("bathtub")
    bad = dataclasses.replace(bathtub, design=dataclasses.replace(bathtub.design, body="blob"))
    objects = tuple(bad if o.name == "bathtub" else o for o in STUDY.objects)
    with pytest.raises(ValueError, match="object 'bathtub': bad design: body 'blob' is not one of"):
        dataclasses.replace(STUDY, objects=objects)
    assert isinstance(bathtub.design, Design)


def test_world_command_passes_the_training_images_it_is_given(monkeypatch):
    import unitscope.data.world as world_module

    seen = []

    class _Paths:
        root = Path("w")

    def fake_generate_world(out, **kwargs):
        seen.append(kwargs)
        return _Paths()

    monkeypatch.setattr(world_module, "generate_world", fake_generate_world)
    runner = CliRunner()
    done = runner.invoke(app, ["world", "--out", "w", "--preset", "study", "--n-train", "15000"])
    assert done.exit_code == 0, done.output
    assert seen[-1]["n_train"] == 15000 and seen[-1]["preset"] == "study"
    assert runner.invoke(app, ["world", "--out", "w"]).exit_code == 0
    assert "n_train" not in seen[-1]  # the library's default, not one spelt twice
    zero = runner.invoke(app, ["world", "--out", "w", "--n-train", "0"])
    assert zero.exit_code == 2 and "--n-train" in zero.output
