"""``unitscope objectives``: the table, its files, resume and cache, the report section.

The orchestration tests use a tiny generated world and a stand-in trainer
(seeded random ``mini_alexnet`` networks; what training does is the training
package's tests' business); the table's counts and the report's sentence
are checked on the hand-written results of ``fake_results`` (known answers).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from fake_results import make_fake_results

from unitscope.data.world import generate_world
from unitscope.models import create_model
from unitscope.report import build_report
from unitscope.report.objectives_section import HINT
from unitscope.results import ObjectivesResult, load_results
from unitscope.results.census import CensusResult
from unitscope.results.dissection_tables import load_dissection
from unitscope.results.objectives import RANDOM, TABLE_COLUMNS, objective_rows
from unitscope.study import objectives_study
from unitscope.training import scene_steps

TINY = dict(n_scenes=3, n_objects=6, size=64, n_train=12, n_val=6, n_dissect=10, n_object_train=12,
            n_object_val=6)
OBJECTIVES = ["scene", "object", "rotation"]
LAYERS = ["conv3", "conv5"]


class Interrupted(Exception):
    pass


class StandIn:
    """A trainer: one seeded random network per objective; records its calls; can fail on one objective."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail_on = fail_on

    def __call__(self, world_dir, *, objective, cache_dir, progress=None, **options):
        self.calls.append((objective, options))
        if objective == self.fail_on:
            raise Interrupted(objective)
        model = create_model("mini_alexnet", num_classes=3, input_size=64, width=4,
                             seed=OBJECTIVES.index(objective) + 10).eval()
        return SimpleNamespace(model=model, cached=False, key=f"key-{objective}",
                               metrics={"val_top1": 0.25 * (OBJECTIVES.index(objective) + 1), "train_seconds": 2.0})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.set_num_threads(1)
    return generate_world(tmp_path_factory.mktemp("world") / "w", workers=0, **TINY).root


def run(world, tmp_path, trainer, **options):
    return objectives_study(world, out=tmp_path / "out", home=tmp_path / "home", objectives=OBJECTIVES,
                            layers=LAYERS, train=trainer, epochs=1, **options)


def test_table_has_a_row_per_objective_and_layer_and_equals_the_dissections(world, tmp_path):
    trainer = StandIn()
    result = run(world, tmp_path, trainer)
    assert [c for c, _ in trainer.calls] == OBJECTIVES  # the null is made from the first network, not retrained
    # the same budget: the object-centric objective gets the scene objectives' optimizer steps
    assert dict(trainer.calls) == {"scene": {"epochs": 1}, "rotation": {"epochs": 1},
                                   "object": {"epochs": 1, "steps": scene_steps(world, epochs=1)}}
    table = result.table
    assert list(table.columns) == TABLE_COLUMNS and len(table) == (len(OBJECTIVES) + 1) * len(LAYERS)
    assert result.objectives == OBJECTIVES + [RANDOM]
    assert list(table["network"].drop_duplicates()) == ["scenenet", "objectnet", "rotationnet", "scenenet-random"]
    out = tmp_path / "out"
    for row in table.itertuples():
        layers = pd.read_csv(out / row.network / "dissect" / "layers.csv").set_index("layer")
        census = CensusResult.load(out / row.network / "dissect").layers
        census = census[census["network"] == row.network].set_index("layer")
        assert row.units == layers.loc[row.layer, "units"]
        assert row.detectors == layers.loc[row.layer, "detectors"] == census.loc[row.layer, "detectors"]
        assert row.unique_objects == layers.loc[row.layer, "unique_objects"]
        assert row.object_detectors == census.loc[row.layer, "object_detectors"]
        assert row.other_detectors == row.detectors - row.object_detectors
    accuracy = table.drop_duplicates("objective").set_index("objective")["accuracy"]
    assert list(accuracy[OBJECTIVES]) == [0.25, 0.5, 0.75] and pd.isna(accuracy[RANDOM])
    # each trained network's census counts the shared null beside it; the null itself is dissected once
    for network in ("scenenet", "objectnet", "rotationnet"):
        layers = CensusResult.load(out / network / "dissect").layers
        assert set(layers["network"]) == {network, "scenenet-random"}
    runs = result.to_frame().drop_duplicates("objective").set_index("objective")
    assert list(runs.loc[OBJECTIVES, "train_seconds"]) == [2.0] * 3
    assert runs["dissect_seconds"].notna().all() and (runs["dissect_seconds"] > 0).all()


def test_second_call_trains_and_dissects_nothing_and_writes_the_same_table(world, tmp_path):
    first = run(world, tmp_path, StandIn())
    csv = (tmp_path / "out" / "objectives" / "objectives.csv").read_bytes()
    again, lines = StandIn(), []
    second = run(world, tmp_path, again, log=lines.append, num_threads=1)  # speed, not configuration
    assert again.calls == []
    assert {f"objective {o}: cached" for o in OBJECTIVES} | {"random: cached"} <= set(lines)
    assert (tmp_path / "out" / "objectives" / "objectives.csv").read_bytes() == csv
    pd.testing.assert_frame_equal(second.table, first.table)
    assert second.runs["scene"]["dissect_seconds"] == first.runs["scene"]["dissect_seconds"]


def test_interrupted_after_the_second_objective_a_rerun_does_only_the_rest(world, tmp_path):
    with pytest.raises(Interrupted):
        run(world, tmp_path, StandIn(fail_on="rotation"))
    assert not (tmp_path / "out" / "rotationnet").exists()
    stamps = {n: (tmp_path / "out" / n / "dissect" / "units.csv").stat().st_mtime_ns
              for n in ("scenenet", "objectnet", "scenenet-random")}
    rerun = StandIn()
    result = run(world, tmp_path, rerun)
    assert [c for c, _ in rerun.calls] == ["rotation"]
    assert stamps == {n: (tmp_path / "out" / n / "dissect" / "units.csv").stat().st_mtime_ns for n in stamps}
    assert result.objectives == OBJECTIVES + [RANDOM]
    # another training budget is another configuration: every objective is redone
    longer = StandIn()
    objectives_study(world, out=tmp_path / "out", home=tmp_path / "home", objectives=OBJECTIVES, layers=LAYERS,
                     train=longer, epochs=2)
    assert [c for c, _ in longer.calls] == OBJECTIVES


def test_bad_names_are_refused_before_any_work(world, tmp_path):
    trainer = StandIn()
    with pytest.raises(LookupError, match=r"unknown layer 'conv6'.*conv5"):
        objectives_study(world, out=tmp_path / "o", home=tmp_path / "h", objectives=OBJECTIVES,
                         layers=["conv6"], train=trainer)
    with pytest.raises(ValueError, match="not both"):
        objectives_study(world, preset="study", out=tmp_path / "o", home=tmp_path / "h", objectives=OBJECTIVES,
                         train=trainer)
    with pytest.raises(FileNotFoundError, match="world.json"):
        objectives_study(tmp_path / "nowhere", out=tmp_path / "o", home=tmp_path / "h", objectives=OBJECTIVES,
                         train=trainer)
    assert trainer.calls == [] and not (tmp_path / "o").exists()


def _fake_objectives(root):
    """The fake results' scenenet / objectnet / null as an objectives table (known counts)."""
    frames = [objective_rows(load_dissection(root, network), objective, accuracy=accuracy)
              for objective, network, accuracy in (("scene", "scenenet", 0.8), ("object", "objectnet", 0.6),
                                                   (RANDOM, "scenenet-random", None))]
    runs = {"scene": {"network": "scenenet", "accuracy_kind": "val_top1", "train_seconds": 12.5,
                      "dissect_seconds": 3.0, "train_cached": False},
            "object": {"network": "objectnet", "accuracy_kind": "val_top1", "train_seconds": 8.0,
                       "dissect_seconds": 2.5, "train_cached": True},
            RANDOM: {"network": "scenenet-random", "dissect_seconds": 2.0}}
    return ObjectivesResult(table=pd.concat(frames, ignore_index=True), runs=runs,
                            config={"layers": ["conv3", "conv5"]}, wall_seconds=30.0)


def test_rows_count_the_saved_tables_and_the_result_round_trips(tmp_path):
    root = make_fake_results(tmp_path)
    result = _fake_objectives(root)
    counts = result.table.set_index(["objective", "layer"])[
        ["detectors", "unique_objects", "object_detectors", "other_detectors"]]
    assert counts.loc[("scene", "conv3")].tolist() == [3, 1, 1, 2]
    assert counts.loc[("scene", "conv5")].tolist() == [5, 3, 4, 1]
    assert counts.loc[("object", "conv5")].tolist() == [4, 1, 1, 3]
    assert counts.loc[(RANDOM, "conv3")].tolist() == [0, 0, 0, 0]
    assert counts.loc[(RANDOM, "conv5")].tolist() == [1, 1, 1, 0]
    best = result.best_layers().set_index("objective")
    assert best["layer"].to_dict() == {"scene": "conv5", "object": "conv5", RANDOM: "conv5"}
    result.save(root)
    loaded = ObjectivesResult.load(root)
    pd.testing.assert_frame_equal(loaded.table, result.table)
    assert loaded.runs == result.runs and loaded.config == result.config and loaded.wall_seconds == 30.0
    pd.testing.assert_frame_equal(loaded.to_frame(), result.to_frame())
    assert load_results(root).objectives.table.equals(loaded.table)
    saved = json.loads((root / "objectives" / "objectives.json").read_text())
    assert saved["best"][0] == {"objective": "scene", "network": "scenenet", "layer": "conv5",
                                "unique_objects": 3, "object_detectors": 4, "detectors": 5}
    assert "objectives" not in {n.name for n in load_results(root).networks}


def test_report_section_with_results_states_the_numbers(tmp_path):
    root = make_fake_results(tmp_path)
    _fake_objectives(root).save(root)
    index = build_report(root)
    summary = json.loads((index.parent / "summary.json").read_text())["objectives"]
    assert summary["most_unique_objects"] == "scene" and summary["random_unique_objects"] == 1
    assert summary["above_random"] == 1 and summary["objectives"] == 2
    assert [r["objective"] for r in summary["ranking"]] == ["scene", "object", RANDOM]
    assert summary["sentence"] == ("Of 2 objectives, scene makes detectors of the most objects: 3 unique objects "
                                   "at conv5 (4 object detectors); the random-weights null finds 1 at its best "
                                   "layer, and 1 of 2 objectives exceed it.")
    html = index.read_text()
    section = html[html.index('<section id="objectives">'):]
    section = section[: section.index("</section>")]
    assert summary["sentence"] in section and "objectives_unique_objects.png" in section
    assert (index.parent / "plots" / "objectives_unique_objects.png").is_file()
    assert "Places365 (supervised) 91" in section and "video order 4" in section
    # Experiment 4 states how many object classes have detectors (fake census: bed, painting, bookcase of 5)
    assert re.search(r"3 of 5 object classes have at least one detector in some layer \(3 at conv5\)", html)


def test_report_section_without_results_says_what_to_run(tmp_path):
    root = make_fake_results(tmp_path)
    index = build_report(root)
    assert "objectives" not in json.loads((index.parent / "summary.json").read_text())
    html = index.read_text()
    section = html[html.index('<section id="objectives">'):]
    assert "unitscope objectives --preset study --out RESULTS" in section[: section.index("</section>")]
    assert HINT.startswith("No objectives compared")


def test_command_end_to_end_with_real_training_and_the_census_on_its_folder(world, tmp_path):
    from typer.testing import CliRunner

    from unitscope.cli.main import app

    args = ["objectives", "--world", str(world), "--out", str(tmp_path / "out"), "--home", str(tmp_path / "home"),
            "--objective", "scene", "--objective", "rotation", "--epochs", "1", "--width", "4",
            "--layers", "conv3,conv5"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines[:3]] == ["scene", "rotation", "random"]
    assert "held-out accuracy" in lines[0] and lines[-1].endswith("objectives.csv")
    result = ObjectivesResult.load(tmp_path / "out")
    assert result.objectives == ["scene", "rotation", RANDOM] and result.layers == ["conv3", "conv5"]
    assert result.runs["scene"]["accuracy_kind"] == "val_top1" and result.runs["scene"]["train_seconds"] > 0
    again = CliRunner().invoke(app, args)  # cached: the same table, nothing trained
    assert again.exit_code == 0 and "objective scene: cached" in again.stderr
    # Experiment 4 and the census read the folder as they read the demo's
    index = build_report(tmp_path / "out")
    html = index.read_text()
    census = html[html.index('<section id="census">'):]
    census = census[: census.index("</section>")]
    assert "<h3>scenenet</h3>" in census and "<h3>rotationnet</h3>" in census
    assert re.search(r"\d+ of 6 object classes have at least one detector", census)
    assert "scenenet vs the random-weights null scenenet-random" in census
    assert load_results(tmp_path / "out").network("scenenet").null == "scenenet-random"
