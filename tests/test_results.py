"""unitscope.results: each typed result saves and loads to equal values, and older folders read or fail clearly.

Known answers on hand-made results (no network, no pool): a two-layer
dissection, its census, an ablation, human labels and run metadata.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from unitscope.concepts import Concept, ConceptTable
from unitscope.results import ResultFileError, layout
from unitscope.results.ablation import AblationResult, AblationTables, load_ablations
from unitscope.results.census import CensusResult, load_census
from unitscope.results.dissection import DissectionResult, LayerDissection
from unitscope.results.dissection_tables import DissectionTables, load_dissection
from unitscope.results.human import COMPARE_COLUMNS, LAYER_COLUMNS, UNIT_COLUMNS, HumanResults, load_human
from unitscope.results.run import RunMetadata, load_run

UNIT_COLUMNS_DISSECT = ["network", "layer", "unit", "label", "category", "type", "iou", "score", "detector",
                        "threshold", "saturated", "coverage", "precision", "top_images"]


def _dissection(layers=("conv4", "layer4[0]")) -> DissectionResult:
    concepts = ConceptTable([Concept(1, "bed", "object"), Concept(2, "wood", "material"),
                             Concept(3, "bedroom", "scene")])
    rng = np.random.default_rng(0)
    out = {}
    for name in layers:
        u = 3
        out[name] = LayerDissection(
            name, thresholds=np.array([0.5, 1.0, 2.0]), iou=np.array([[0.2, 0.01, 0.0], [0.0, 0.05, 0.01],
                                                                      [0.01, 0.0, 0.03]]),
            top_indices=np.array([[0, 1], [2, -1], [1, 0]]), top_values=rng.random((u, 2)),
            top_overlap=rng.random((u, 2, 3)) > 0.5, maxima=np.array([3.0, 1.0, 4.0]),
            minima=np.zeros(u), saturated=np.array([False, True, False]), coverage=np.array([0.004, 0.0, 0.02]),
            exact=True, positions=300)
    return DissectionResult(network="net", concepts=concepts, layers=out, image_ids=["a", "b", "c"],
                            concept_images=np.array([12, 11, 10]), cooccurrence=np.eye(3, dtype=np.int64) * 10,
                            config={"iou_threshold": 0.04, "min_support": 10, "threshold_rule": "unitscope"},
                            concept_pixels=np.array([100, 200, 300]), warnings=["conv4: a warning"])


# --------------------------------------------------------------------------- dissection
def test_dissection_round_trip_keeps_every_array_and_table(tmp_path):
    result = _dissection()
    folder = result.save(tmp_path / "net" / layout.DISSECT)
    back = DissectionResult.load(folder)
    assert back.network == "net" and back.image_ids == ["a", "b", "c"] and back.warnings == result.warnings
    assert back.config == result.config and list(back.concepts) == list(result.concepts)
    for name, ld in result.layers.items():
        got = back.layers[name]
        for key in ("thresholds", "iou", "top_indices", "top_values", "top_overlap", "maxima", "minima",
                    "saturated", "coverage"):
            np.testing.assert_array_equal(getattr(got, key), getattr(ld, key))
        assert (got.exact, got.positions) == (True, 300)
    np.testing.assert_array_equal(back.concept_pixels, result.concept_pixels)
    pd.testing.assert_frame_equal(back.to_frame(), result.to_frame())
    assert list(result.to_frame().columns[:len(UNIT_COLUMNS_DISSECT)]) == UNIT_COLUMNS_DISSECT
    # the layer name becomes a file name by the one rule
    assert (folder / "layer_layer4_0.npz").is_file() and (folder / "layer_conv4.npz").is_file()


def test_dissection_tables_are_what_the_result_wrote(tmp_path):
    result = _dissection()
    folder = result.save(tmp_path / "net" / layout.DISSECT)
    tables = DissectionTables.load(folder)
    assert tables.network == "net" and tables.layer_names == ["conv4", "layer4[0]"]
    assert tables.iou_threshold == 0.04 and tables.warnings == ["conv4: a warning"]
    frame = result.to_frame()
    assert tables.to_frame()["label"].tolist() == frame["label"].tolist()
    assert tables.units["detector"].tolist() == frame["detector"].tolist()
    assert tables.units["object_detector"].tolist() == [True, False, False] * 2
    pd.testing.assert_frame_equal(tables.layers, result.layer_summary(), check_dtype=False)
    assert load_dissection(tmp_path, "net").layer_names == tables.layer_names
    assert load_dissection(tmp_path, "other") is None
    # saving the tables again writes the same units table
    tables.save(tmp_path / "copy")
    assert (tmp_path / "copy" / layout.UNITS_CSV).read_bytes() == (folder / layout.UNITS_CSV).read_bytes()


def test_tables_alone_are_a_dissection_for_readers_but_not_for_the_arrays(tmp_path):
    folder = _dissection().save(tmp_path / "net" / layout.DISSECT)
    for path in folder.glob("*.npz"):
        path.unlink()
    assert DissectionTables.load(folder).layer_names == ["conv4", "layer4[0]"]
    with pytest.raises(FileNotFoundError, match=r"layer_conv4\.npz is missing.*DissectionTables"):
        DissectionResult.load(folder)


def test_layer_arrays_written_under_the_older_per_character_name_still_load(tmp_path):
    folder = _dissection().save(tmp_path / "d")
    (folder / "layer_layer4_0.npz").rename(folder / "layer_layer4_0_.npz")  # the per-character rule
    assert DissectionResult.load(folder).layers["layer4[0]"].positions == 300


def test_older_dissection_folders_read_or_name_what_is_missing(tmp_path):
    folder = _dissection().save(tmp_path / "net" / layout.DISSECT)
    units = pd.read_csv(folder / layout.UNITS_CSV, keep_default_na=False)
    units.drop(columns=["coverage", "saturated", "detector"]).to_csv(folder / layout.UNITS_CSV, index=False)
    (folder / layout.LAYERS_CSV).unlink()
    meta = json.loads((folder / layout.RESULT_JSON).read_text())
    del meta["config"]
    (folder / layout.RESULT_JSON).write_text(json.dumps(meta))
    tables = DissectionTables.load(folder)  # no coverage/saturated/detector, no layers.csv, no config
    assert tables.iou_threshold == 0.04
    assert tables.units["detector"].tolist() == [True, True, False] * 2  # IoU above 0.04
    assert tables.layers["units"].tolist() == [3, 3]
    assert DissectionResult.load(folder).config == {}
    (folder / layout.CONCEPTS_CSV).unlink()
    assert DissectionTables.load(folder).concepts is None
    with pytest.raises(FileNotFoundError, match=r"concepts\.csv is missing"):
        DissectionResult.load(folder)
    del meta["image_ids"]
    (folder / layout.RESULT_JSON).write_text(json.dumps(meta))
    with pytest.raises(ResultFileError, match=r"result\.json lacks image_ids"):
        DissectionResult.load(folder)
    with pytest.raises(FileNotFoundError, match=r"no dissection result in .*missing result\.json"):
        DissectionResult.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no dissection tables in .*missing units\.csv"):
        DissectionTables.load(tmp_path)


def test_a_truncated_units_table_is_refused_naming_the_file(tmp_path):
    folder = _dissection().save(tmp_path / "net" / layout.DISSECT)
    lines = (folder / layout.UNITS_CSV).read_text().splitlines()
    (folder / layout.UNITS_CSV).write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ResultFileError, match=r"units\.csv has 2 rows for layer layer4\[0\]"):
        DissectionTables.load(folder)


# --------------------------------------------------------------------------- census
def _census() -> CensusResult:
    objects = pd.DataFrame({"network": ["net", "net"], "layer": ["conv5", "conv5"], "object": ["bed", "car"],
                            "detectors": [2, 0], "frequency": [5, 5], "informative_scenes": [1.0, 0.0]})
    layers = pd.DataFrame({"network": ["net"], "layer": ["conv5"], "detectors": [3], "object_detectors": [2]})
    return CensusResult(objects=objects, layers=layers, correlations=pd.DataFrame({"n": [2], "pearson": [0.5]}),
                        sweep=pd.DataFrame({"iou_threshold": [0.02], "detectors": [4]}),
                        informative=pd.DataFrame({"scene": ["bedroom"], "object": ["bed"], "score": [0.69]}),
                        config={"iou_threshold": 0.04})


def test_census_round_trip_and_older_folders(tmp_path):
    census = _census()
    folder = census.save(tmp_path / "net" / layout.DISSECT)
    back = CensusResult.load(folder)
    for name in ("objects", "layers", "correlations", "sweep", "informative"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(census, name))
    assert back.config == {"iou_threshold": 0.04}
    assert list(back.to_frame().columns) == ["network", "layer", "object", "detectors", "frequency",
                                             "informative_scenes"]
    (folder / layout.CENSUS_JSON).unlink()
    (folder / layout.CENSUS_SWEEP_CSV).unlink()
    older = load_census(tmp_path, "net")
    assert older.config == {} and older.sweep.empty and len(older.objects) == 2
    (folder / layout.CENSUS_OBJECTS_CSV).unlink()
    assert load_census(tmp_path, "net") is None
    with pytest.raises(FileNotFoundError, match=r"missing census_objects\.csv"):
        CensusResult.load(folder)


# --------------------------------------------------------------------------- ablation
def _ablation() -> AblationResult:
    conditions = [{"kind": "baseline", "object": None, "draw": None, "units": []},
                  {"kind": "detectors", "object": "bed", "draw": None, "units": [0, 1]},
                  {"kind": "random", "object": "bed", "draw": 0, "units": [2, 3]},
                  {"kind": "random", "object": "bed", "draw": 1, "units": [3, 2]}]
    return AblationResult(network="net", layer="conv5", class_names=["bedroom", "kitchen"],
                          detectors={"bed": [0, 1]}, conditions=conditions,
                          correct=np.array([[9, 8], [3, 8], [9, 8], [8, 8]]), totals=np.array([10, 10]),
                          diagnostic={"bedroom": ["bed"]}, counts={"images": 20, "labelled": 20},
                          options={"n_random": 2})


def test_ablation_round_trip_and_its_tables(tmp_path):
    result = _ablation()
    folder = result.save(tmp_path / "net" / layout.ABLATE)
    back = AblationResult.load(folder)
    np.testing.assert_array_equal(back.correct, result.correct)
    np.testing.assert_array_equal(back.totals, result.totals)
    assert (back.detectors, back.conditions, back.diagnostic) == (result.detectors, result.conditions,
                                                                 result.diagnostic)
    pd.testing.assert_frame_equal(back.to_frame(), result.to_frame())
    assert list(result.to_frame().columns) == ["network", "layer", "object", "detectors", "class", "class_name",
                                               "images", "baseline_acc", "ablated_acc", "drop",
                                               "random_drop_mean", "random_drop_std", "effect", "diagnostic"]
    (run,) = load_ablations(tmp_path, "net")
    assert (run.folder, run.layer, run.options, run.counts["labelled"]) == ("", "conv5", {"n_random": 2}, 20)
    bedroom = run.to_frame().set_index("class_name").loc["bedroom"]
    assert bedroom["drop"] == pytest.approx(0.6) and bedroom["random_drop_mean"] == pytest.approx(0.05)
    assert run.summary["most_hurt"].tolist() == ["bedroom"]
    # one ablation per layer in sub-folders
    result.save(tmp_path / "net" / layout.ABLATE / "conv4")
    assert [r.folder for r in load_ablations(tmp_path, "net")] == ["", "conv4"]
    assert load_ablations(tmp_path, "other") == []


def test_older_or_broken_ablation_folders_fail_naming_the_file(tmp_path):
    folder = _ablation().save(tmp_path / "a")
    meta = json.loads((folder / layout.ABLATE_JSON).read_text())
    del meta["totals"]
    (folder / layout.ABLATE_JSON).write_text(json.dumps(meta))
    with pytest.raises(ResultFileError, match=r"ablate\.json lacks totals"):
        AblationResult.load(folder)
    (folder / layout.ABLATE_JSON).unlink()
    assert AblationTables.load(folder).layer == "conv5"  # the tables alone are readable
    with pytest.raises(FileNotFoundError, match=r"missing ablate\.json"):
        AblationResult.load(folder)
    classes = pd.read_csv(folder / layout.CLASSES_CSV).drop(columns=["random_drop_mean"])
    classes.to_csv(folder / layout.CLASSES_CSV, index=False)
    with pytest.raises(ResultFileError, match=r"classes\.csv lacks the column\(s\) random_drop_mean"):
        AblationTables.load(folder)


# --------------------------------------------------------------------------- human labels
def test_human_results_round_trip(tmp_path):
    units = pd.DataFrame([["net", "conv5", 0, "bed", "object", 0.9, 1.0, 3, 1.0, "bed;bed;bed",
                           "object;object;object"]], columns=UNIT_COLUMNS)
    layers = pd.DataFrame([["net", "conv5", 1, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9, 1.0, 1.0, 1.0]],
                          columns=LAYER_COLUMNS)
    compare = pd.DataFrame([["net", "conv5", 0, "bed", "object", "bed", "object", "object", 0.12, True, True]],
                           columns=COMPARE_COLUMNS)
    human = HumanResults(network="net", units=units, layers=layers, compare=compare,
                         summary={"network": "net", "mean_precision": 0.9})
    folder = human.save(tmp_path / "net" / layout.HUMAN)
    back = HumanResults.load(folder)
    assert back.network == "net" and back.summary == human.summary
    for name in ("units", "layers", "compare"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(human, name))
    assert list(back.to_frame().columns) == UNIT_COLUMNS
    assert load_human(tmp_path, "other") is None
    (folder / layout.SUMMARY_JSON).unlink()
    assert load_human(tmp_path, "net").summary == {}
    (folder / layout.UNITS_CSV).unlink()
    with pytest.raises(FileNotFoundError, match=r"no human labels in .*missing units\.csv"):
        HumanResults.load(folder)


# --------------------------------------------------------------------------- run metadata
def test_run_metadata_of_a_study_and_of_a_command(tmp_path):
    study = RunMetadata(config={"seed": 0}, versions={"unitscope": "1"}, timings={"dissect": 1.5},
                        networks={"net": {"arch": "mini_alexnet"}}, world={"scenes": 3}, extra={"note": "x"})
    study.save(tmp_path)
    assert list(json.loads((tmp_path / layout.RUN_JSON).read_text())) == ["config", "versions", "timings",
                                                                         "networks", "world", "note"]
    assert load_run(tmp_path) == study and not study.is_command
    command = RunMetadata(command="ablate", options={"layer": "conv5"}, networks={}, seed=None,
                          versions={"python": "3"}, started="t0", finished="t1", wall_seconds=2.0,
                          stages={"ablate": 1.0})
    folder = tmp_path / "net" / "ablate"
    command.save(folder)
    document = json.loads((folder / layout.RUN_JSON).read_text())
    assert list(document) == ["command", "options", "networks", "seed", "versions", "started", "finished",
                              "wall_seconds", "stages"]
    assert RunMetadata.load(folder) == command and command.is_command
    assert load_run(tmp_path / "net") is None
    with pytest.raises(FileNotFoundError, match="no run.json"):
        RunMetadata.load(tmp_path / "net")
    (folder / layout.RUN_JSON).write_text('{"timings": [1, 2]}')
    with pytest.raises(ResultFileError, match="timings must be a JSON object"):
        RunMetadata.load(folder)


# --------------------------------------------------------------------------- layout
def test_one_file_name_rule():
    assert layout.safe_name("layer4[0].conv1") == "layer4_0_.conv1"
    assert layout.safe_name("a/b c") == "a_b_c" and layout.safe_name("///") == "_"
    assert layout.layer_file_names("layer4[0]") == ["layer4[0]", "layer4_0", "layer4_0_"]
    assert layout.dissect_dir("R", "net").as_posix() == "R/net/dissect"
    assert layout.partial_dir("R", "net", "ablate").as_posix() == "R/net/.partial/ablate"
