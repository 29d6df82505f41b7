"""unitscope.published: readers and analyses of the published per-unit results.

Two kinds of tests: the real released files (``../shared/published``,
skipped where absent) with the numbers the papers and the files themselves
state (unit counts per layer, ``layerAverageCount``, Network Dissection's
own summary), and tiny hand-written files with answers worked out by hand,
including malformed ones whose one-line refusals are asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from unitscope.label.validation import MAX_LABEL_LENGTH, check_text
from unitscope.published import (
    MalformedFile,
    check_layer_average,
    compare_with_summary,
    crowd_answers,
    crowd_object_detectors,
    images_shown,
    layer_average,
    layer_table,
    netdissect_categories,
    netdissect_census,
    read_iclr15,
    read_netdissect,
    read_netdissect_summary,
    scene_vs_object,
    scene_vs_object_sentence,
    unit_consensus,
)
from unitscope.published.__main__ import main

from published_files import (HEADER, PUBLISHED, ROWS, SMALL, WIDTHS, direct_census, published_or_skip, write_crowd,
                             write_table)

CROWD_FILES = {"places205-alexnet": "unitAnnotation_places205-alexnet.mat",
               "imagenet-alexnet": "unitAnnotation_imagenet-alexnet.mat"}
ALEXNET_TABLES = ("caffe_reference_imagenet", "caffe_reference_places205", "caffe_reference_places365")
RESNET_TABLES = ("ResNet-152-model_imagenet", "ResNet-152-model_places365")


@pytest.fixture(scope="module")
def published() -> Path:
    """The released files (``../shared/published``); skips when absent."""
    return published_or_skip()


@pytest.fixture(scope="module")
def crowd(published):
    return {network: read_iclr15(published / "iclr15_unit_annotations" / name, network=network)
            for network, name in CROWD_FILES.items()}


# --- the real files -------------------------------------------------------------------------------------------

def test_real_crowd_files_have_three_annotations_per_unit_of_five_layers(crowd):
    for network, annotations in crowd.items():
        rows = annotations.annotations
        assert annotations.layers == ("pool1", "pool2", "conv3", "conv4", "pool5")
        units = rows.groupby("layer", sort=False)["unit"].agg(["nunique", "min", "max"])
        assert units["nunique"].tolist() == [96, 256, 384, 384, 256]
        assert (units["min"] == 0).all() and (units["max"] == units["nunique"] - 1).all()  # 0-based, no gaps
        assert (rows.groupby(["layer", "unit"])["annotator"].apply(sorted).map(tuple) == (1, 2, 3)).all()
        assert set(rows["type_code"]) <= set(range(1, 7)) and rows["precision"].between(0, 1).all()
        assert annotations.created is not None and annotations.created.startswith("2015-03-05")
        for description in rows["description"]:  # each would pass the labeling app's rules for a label
            assert check_text(description, field="label", max_length=MAX_LABEL_LENGTH) == description


def test_real_type_shares_equal_layer_average_count(crowd):
    for annotations in crowd.values():
        assert check_layer_average(annotations, tolerance=1e-9) <= 1e-9
        table = layer_table(annotations)
        # the same shares under unitscope's type names, code order 1..6 = scene, object, region, part, texture, simple
        shares = table[[f"annotation_share_{name}" for name in ("scene", "object", "region", "part", "texture",
                                                                 "simple")]].to_numpy()
        np.testing.assert_allclose(shares, annotations.layer_average.filter(like="code_").to_numpy(), atol=1e-9)


def test_real_consensus_is_the_stored_precisions_and_a_direct_count(crowd):
    for annotations in crowd.values():
        assert images_shown(annotations) == 57
        rows = annotations.annotations
        units = unit_consensus(annotations)
        mean = rows.groupby(["layer", "unit"], sort=False)["precision"].mean().to_numpy()
        np.testing.assert_allclose(units["precision"].to_numpy(), mean, rtol=0, atol=1e-12)
        table = layer_table(annotations).set_index("layer")
        for layer, mine in units.groupby("layer"):
            assert table.at[layer, "units_precision_over_75"] == (mine["precision"] > 0.75).sum()
            assert table.at[layer, "mean_precision"] == pytest.approx(rows.loc[rows["layer"] == layer,
                                                                               "precision"].mean(), abs=1e-12)
            types = rows[rows["layer"] == layer].groupby("unit")["type"].nunique()
            assert table.at[layer, "all_agree_type"] == pytest.approx((types == 1).mean())
            assert table.at[layer, "two_agree_type"] == pytest.approx((types <= 2).mean())


def test_real_pool5_places_has_more_crowd_object_detectors(crowd):
    table = pd.concat([crowd_object_detectors(annotations) for annotations in crowd.values()], ignore_index=True)
    units = unit_consensus(crowd["places205-alexnet"])
    direct = units[(units["layer"] == "pool5") & (units["type"] == "object") & (units["precision"] >= 0.75)]
    assert table.set_index("network").at["places205-alexnet", "object_detectors"] == len(direct)
    assert table["object_detectors"].tolist() == [59, 30] and table["unique_objects"].tolist() == [40, 15]


@pytest.mark.parametrize("name", ALEXNET_TABLES + RESNET_TABLES)
def test_real_netdissect_census_equals_a_direct_pandas_count(published, name):
    path = published / "netdissect_release" / f"{name}.csv"
    frame = read_netdissect(path, network=name, layer="conv5")
    assert frame["unit"].tolist() == list(range(256 if name in ALEXNET_TABLES else 2048))  # 0-based
    census = netdissect_census(frame).iloc[0]
    for column, value in direct_census(path).items():
        assert census[column] == value, column


def test_real_per_category_rule_reproduces_netdissects_summary(published):
    folder = published / "netdissect_release"
    frame = pd.concat([read_netdissect(folder / f"{name}.csv", network=name, layer="last")
                       for name in ALEXNET_TABLES + RESNET_TABLES], ignore_index=True)
    summary = read_netdissect_summary(folder / "semantics_cvpr_release.mat")
    assert len(summary) == 27 * 7 and set(summary["iou_threshold"]) == {0.04}
    compared = compare_with_summary(netdissect_census(frame), netdissect_categories(frame), summary)
    assert len(compared) == 5 * 7 and compared["reproduced"].all()
    places365 = compared[(compared["network"] == "caffe_reference_places365") & (compared["concept"] == "all")]
    assert places365[["detectors", "unique_per_category"]].values.tolist() == [[118, 91]]


def test_real_files_answer_the_papers_question(published, capsys):
    assert main([str(published)]) == 0
    printed = capsys.readouterr().out
    assert ("Does the scene network (places205-alexnet / caffe_reference_places205) have more object detectors "
            "than the object network (imagenet-alexnet / caffe_reference_imagenet)? Yes:") in printed
    assert "reproduced: 35 of 35" in printed


# --- hand-made crowd files ------------------------------------------------------------------------------------

@pytest.fixture()
def small(tmp_path):
    return read_iclr15(write_crowd(tmp_path / "small.mat", SMALL), network="toy", units_per_layer=WIDTHS)


def test_small_crowd_file_reads_as_tidy_rows(small):
    rows = small.annotations
    assert small.layers == ("low", "high") and len(rows) == 15
    first = rows.iloc[0]
    assert (first["layer"], first["unit"], first["annotator"], first["description"], first["type_code"],
            first["type"], first["precision"]) == ("low", 0, 1, "red", 6, "simple", 1.0)
    assert rows["type"].tolist()[9:12] == ["scene", "scene", "scene"]
    assert rows.groupby("layer", sort=False)["unit"].max().tolist() == [1, 2]


def test_small_consensus_known_answers(small):
    assert images_shown(small) == 6
    answers = crowd_answers(small)
    assert [a.annotator for a in answers[:3]] == ["iclr15-1", "iclr15-2", "iclr15-3"]
    assert [a.precision for a in answers] == pytest.approx(small.annotations["precision"].tolist(), abs=1e-12)
    units = unit_consensus(small).set_index(["layer", "unit"])
    bed = units.loc[("high", 0)]
    assert (bed["label"], bed["type"]) == ("bed", "object")
    assert bed["precision"] == pytest.approx(2 / 3) and bed["agreement"] == pytest.approx(2 / 3)
    assert bed["type_agreement"] == pytest.approx(2 / 3)
    # three different types: the tie goes to the simplest (TYPES order), three labels: alphabetically first
    car = units.loc[("high", 2)]
    assert (car["label"], car["type"], car["type_agreement"]) == ("car", "region", pytest.approx(1 / 3))
    assert units.loc[("low", 0), "label"] == "red" and units.loc[("low", 0), "type"] == "simple"


def test_small_layer_table_known_answers(small):
    table = layer_table(small).set_index("layer")
    low, high = table.loc["low"], table.loc["high"]
    assert (low["units"], low["annotations"], high["units"]) == (2, 6, 3)
    assert low["mean_precision"] == pytest.approx((7 / 9 + 0.5) / 2)
    assert (low["units_precision_over_75"], low["precision_over_75"]) == (1, 0.5)
    assert high["precision_over_75"] == pytest.approx(2 / 3)  # bed 2/3 is not above 0.75; bedroom, car are
    assert (low["annotation_share_simple"], low["annotation_share_texture"]) == pytest.approx((3 / 6, 2 / 6))
    assert (high["consensus_share_object"], high["consensus_share_scene"]) == pytest.approx((1 / 3, 1 / 3))
    assert (high["all_agree_type"], high["two_agree_type"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert (low["all_agree_type"], low["two_agree_type"]) == (0.0, 0.5)
    assert check_layer_average(small) == 0.0
    assert layer_average(small).loc[1, "code_1"] == pytest.approx(3 / 9)


def test_small_crowd_object_detectors(small):
    row = crowd_object_detectors(small, layer="high", min_precision=0.6).iloc[0]
    assert (row["object_detectors"], row["unique_objects"], row["objects"]) == (1, 1, "bed")
    assert crowd_object_detectors(small, layer="high").iloc[0]["object_detectors"] == 0  # 2/3 < 0.75
    with pytest.raises(LookupError, match="has no layer 'pool5'; it has low, high"):
        crowd_object_detectors(small)


def test_a_stored_average_that_differs_is_refused(tmp_path):
    average = np.array([[0, 0, 1 / 6, 0, 2 / 6, 3 / 6], [3 / 9, 3 / 9, 1 / 9 + 1e-6, 2 / 9, 0, 0]])
    crowd = read_iclr15(write_crowd(tmp_path / "off.mat", SMALL, average=average), network="toy",
                        units_per_layer=WIDTHS)
    with pytest.raises(ValueError, match=r"off\.mat: layer 'high', category code 3 \(region\): layerAverageCount "
                                         r"says 0\.111112111111 but the annotations give 0\.111111111111"):
        check_layer_average(crowd)


def _changed(layer: str, unit: int, annotator: int, **change) -> dict:
    layers = {name: [list(row) for row in rows] for name, rows in SMALL.items()}
    description, code, precision = layers[layer][unit][annotator - 1]
    triple = {"description": description, "code": code, "precision": precision, **change}
    layers[layer][unit][annotator - 1] = (triple["description"], triple["code"], triple["precision"])
    return layers


@pytest.mark.parametrize("layers, message", [
    (_changed("high", 1, 2, code=7), "layer 'high' unit 1 (row 2) annotation 2: category code 7 is not one of 1-6"),
    (_changed("low", 0, 3, code=2.5), "layer 'low' unit 0 (row 1) annotation 3: category code 2.5 is not one of 1-6"),
    (_changed("low", 1, 1, precision=1.5),
     "layer 'low' unit 1 (row 2) annotation 1: precision 1.5 is not a number in [0, 1]"),
    (_changed("low", 1, 1, precision="high"),
     "layer 'low' unit 1 (row 2) annotation 1: precision 'high' is not a number in [0, 1]"),
    (_changed("high", 2, 3, description=""),
     "layer 'high' unit 2 (row 3) annotation 3: the description is empty (every unit needs three annotations)"),
    ({"low": SMALL["low"], "high": SMALL["high"][:2]},
     "layer 'high' has 2 unit rows but 3 units; units are numbered by row, so rows cannot be missing or extra"),
    ({"low": [row[:2] for row in SMALL["low"]], "high": SMALL["high"]},
     "layer 'low': each unit row should hold 3 annotations (description, category, precision) = 9 cells, got 6"),
])
def test_malformed_crowd_files_are_refused_in_one_line(tmp_path, layers, message):
    average = np.zeros((len(layers), 6))
    path = write_crowd(tmp_path / "bad.mat", layers, average=average)
    with pytest.raises(MalformedFile) as caught:
        read_iclr15(path, network="toy", units_per_layer=WIDTHS)
    assert str(caught.value) == f"{path}: {message}"


def test_crowd_files_of_the_wrong_structure_are_refused(tmp_path):
    text = tmp_path / "notes.mat"
    text.write_text("not a MATLAB file\n")
    with pytest.raises(MalformedFile, match=r"notes\.mat: not a MATLAB file scipy\.io\.loadmat can read"):
        read_iclr15(text, network="toy")
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"units": np.arange(3)})
    with pytest.raises(MalformedFile, match=r"other\.mat: no variable 'layerAnnotation'"):
        read_iclr15(other, network="toy")
    wide = tmp_path / "wide.mat"
    cells = np.empty((2, 3), dtype=object)
    cells[:] = [[np.zeros(1)] * 3] * 2
    scipy.io.savemat(wide, {"layerAnnotation": cells, "layerAverageCount": np.zeros((2, 6))})
    with pytest.raises(MalformedFile, match=r"'layerAnnotation' should be an \(L, 2\) cell .* got shape \(2, 3\)"):
        read_iclr15(wide, network="toy")
    empty = tmp_path / "empty.mat"
    scipy.io.savemat(empty, {"layerAnnotation": np.empty((0, 2), dtype=object), "layerAverageCount": np.zeros((0, 6))})
    with pytest.raises(MalformedFile, match=r"empty\.mat: 'layerAnnotation' has no layers"):
        read_iclr15(empty, network="toy")
    no_average = write_crowd(tmp_path / "short.mat", SMALL, average=np.zeros((2, 5)))
    with pytest.raises(MalformedFile, match=r"'layerAverageCount' should be a \(2, 6\) numeric matrix .* got \(2, 5\)"):
        read_iclr15(no_average, network="toy", units_per_layer=WIDTHS)
    with pytest.raises(FileNotFoundError, match="no such file: .*absent.mat"):
        read_iclr15(tmp_path / "absent.mat", network="toy")


def test_precisions_that_are_no_share_of_shown_images_cannot_become_answers(tmp_path):
    crowd = read_iclr15(write_crowd(tmp_path / "odd.mat", _changed("low", 0, 1, precision=0.123)), network="toy",
                        units_per_layer=WIDTHS)
    with pytest.raises(MalformedFile, match=r"odd\.mat: the precisions are not shares k/n of one number of images"):
        unit_consensus(crowd)


# --- hand-made Network Dissection tables ----------------------------------------------------------------------

EXPECTED = "(expected unit, category, label, score and <category>-{label,truth,activation,intersect,iou})"
NOT_A_UNIT = "is not a unit number (1, 2, ...; the file counts from 1)"


def test_small_netdissect_table_and_census_known_answers(tmp_path):
    frame = read_netdissect(write_table(tmp_path / "toy.csv"), network="toy", layer="conv5")
    assert frame["unit"].tolist() == [0, 1, 2, 3, 4]  # the file's 1..5, from 0
    assert frame["label"].tolist() == ["car", "wheel", "car", "dotted", "striped"]
    assert frame.loc[1, "texture-label"] == "" and frame["object-truth"].dtype == np.float64
    census = netdissect_census(frame).iloc[0]
    assert census[["units", "detectors", "object_detectors_best_label", "unique_concepts_best_label",
                   "unique_objects_best_label"]].tolist() == [5, 4, 3, 3, 2]
    assert census[["detections_per_category", "unique_concepts_per_category", "object_detectors_per_category",
                   "unique_objects_per_category"]].tolist() == [6, 5, 4, 3]
    strict = netdissect_census(frame, threshold=0.1).iloc[0]
    assert strict[["detectors", "unique_objects_best_label", "object_detectors_per_category"]].tolist() == [2, 1, 1]
    categories = netdissect_categories(frame).set_index("category")
    assert categories.loc["texture", ["detectors_best_label", "unique_best_label", "detectors_per_category",
                                      "unique_per_category"]].tolist() == [1, 1, 2, 2]


@pytest.mark.parametrize("header, rows, message", [
    (HEADER.replace("score,", ""), [",".join(r.split(",")[:3] + r.split(",")[4:]) for r in ROWS],
     "missing column score " + EXPECTED),
    (HEADER.replace(",texture-iou", ""), [r.rsplit(",", 1)[0] for r in ROWS],
     "category 'texture' lacks column texture-iou"),
    (HEADER + ",notes", [r + ",x" for r in ROWS],
     "unexpected column 'notes' " + EXPECTED),
    (HEADER, [ROWS[0].replace("50.0", "many", 1)] + ROWS[1:],
     "column 'object-activation', unit 3: 'many' is not a number"),
    (HEADER, ROWS[:4] + [ROWS[4].rsplit(",", 1)[0] + ",1.5"], "column 'texture-iou', unit 4: 1.5 is not in [0, 1]"),
    (HEADER, ROWS[:2] + [ROWS[2].replace(",10,5.0", ",-10,5.0", 1)] + ROWS[3:],
     "column 'object-truth', unit 2: -10 is not a count >= 0"),
    (HEADER, ROWS[:2] + ROWS[3:], "unit numbering has gaps: 1 of units 1..5 missing (2)"),
    (HEADER, ROWS + [ROWS[0]], "unit 3 appears 2 times"),
    (HEADER, ROWS[:4] + [ROWS[4].replace("4,", "1000000000,", 1)],
     "unit numbering has gaps: 999999995 of units 1..1000000000 missing (4, 6, 7, 8, 9, ...)"),
    (HEADER, ROWS[:4] + [ROWS[4].replace("4,", "inf,", 1)], "unit 'inf' " + NOT_A_UNIT),
    (HEADER, [ROWS[0].replace("3,", "0,", 1)] + ROWS[1:], "unit '0' " + NOT_A_UNIT),
    (HEADER, [ROWS[0].replace("object,car,0.2", "object,bus,0.2")] + ROWS[1:],
     "unit 3: the best label 'bus' (IoU 0.2) is not its category's (object-label 'car', object-iou 0.2)"),
    (HEADER, [ROWS[0].replace("object,car", "color,car")] + ROWS[1:],
     "unit 3: category 'color' is not one of object, texture"),
    (HEADER, [], "the table has no unit rows"),
])
def test_malformed_netdissect_tables_are_refused_in_one_line(tmp_path, header, rows, message):
    path = write_table(tmp_path / "bad.csv", rows, header)
    with pytest.raises(MalformedFile) as caught:
        read_netdissect(path, network="toy", layer="conv5")
    assert str(caught.value) == f"{path}: {message}"


def test_an_empty_file_is_no_netdissect_table(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MalformedFile, match=r"empty\.csv: not a CSV table"):
        read_netdissect(empty, network="toy", layer="conv5")


def write_summary(path: Path, *, detectors=((4, 4, 2), ), unique=((3, 2, 2), ), networks=("toy",)) -> Path:
    names = np.empty((1, len(networks)), dtype=object)
    names[0, :] = list(networks)
    layers = np.empty((len(networks), 1), dtype=object)
    layers[:, 0] = ["conv5"] * len(networks)
    concepts = np.empty((1, 3), dtype=object)
    concepts[0, :] = ["all", "object", "texture"]
    stat = {"networks_name": names, "layers_name": layers, "concepts": concepts, "thresh_concepts": 0.04,
            "num_detectors": np.array(detectors), "num_uniquedetectors": np.array(unique),
            "ratio_detectors": np.array(detectors) / 5}
    scipy.io.savemat(path, {"stat": stat})
    return path


def test_small_summary_is_read_and_compared(tmp_path):
    summary = read_netdissect_summary(write_summary(tmp_path / "summary.mat"))
    assert summary[["concept", "detectors", "unique_detectors"]].values.tolist() == [
        ["all", 4, 3], ["object", 4, 2], ["texture", 2, 2]]
    frame = read_netdissect(write_table(tmp_path / "toy.csv"), network="toy", layer="conv5")
    compared = compare_with_summary(netdissect_census(frame), netdissect_categories(frame), summary, names={})
    assert compared.set_index("concept")["reproduced"].to_dict() == {"all": False, "object": False, "texture": True}
    assert compared.set_index("concept").loc["all", ["detectors", "unique_per_category"]].tolist() == [4, 5]
    with pytest.raises(ValueError, match="counts IoU > 0.1 but the summary counts IoU > 0.04"):
        compare_with_summary(netdissect_census(frame, threshold=0.1), netdissect_categories(frame), summary)
    no_stat = tmp_path / "no_stat.mat"
    scipy.io.savemat(no_stat, {"other": 1})
    with pytest.raises(MalformedFile, match=r"no_stat\.mat: no struct variable 'stat'"):
        read_netdissect_summary(no_stat)
    with pytest.raises(MalformedFile, match=r"'stat\.num_detectors' should be a \(1, 3\) numeric matrix"):
        read_netdissect_summary(write_summary(tmp_path / "short.mat", detectors=((4, 4),)))


# --- Experiment 4 side by side --------------------------------------------------------------------------------

def _census(scene: int, other: int) -> pd.DataFrame:
    columns = ["object_detectors_best_label", "unique_objects_best_label", "object_detectors_per_category",
               "unique_objects_per_category"]
    rows = [{"network": name, "layer": "conv5", "iou_threshold": 0.04, **{c: value for c in columns}}
            for name, value in (("scene", scene), ("object", other))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("scene, other, verdict", [(5, 3, "Yes"), (3, 5, "No"), (4, 4, "No")])
def test_the_summary_sentence_follows_the_numbers(scene, other, verdict):
    table = scene_vs_object(census=_census(scene, other), census_networks=("scene", "object"))
    assert table["rule"].tolist()[:2] == ["Network Dissection, best label per unit: IoU > 0.04"] * 2
    sentence = scene_vs_object_sentence(table)
    assert sentence.startswith("Does the scene network (scene) have more object detectors than the object "
                               f"network (object)? {verdict}: Network Dissection, best label per unit: IoU > 0.04 "
                               f"at conv5: {scene} vs {other} object detectors, {scene} vs {other} unique objects;")


def test_mixed_evidence_is_partly(small):
    crowd = pd.DataFrame([{"network": "scene", "layer": "pool5", "min_precision": 0.75, "object_detectors": 2,
                           "unique_objects": 1},
                          {"network": "object", "layer": "pool5", "min_precision": 0.75, "object_detectors": 1,
                           "unique_objects": 1}])
    table = scene_vs_object(crowd=crowd, crowd_networks=("scene", "object"))
    assert scene_vs_object_sentence(table).split("? ")[1] == (
        "Partly: crowd labels: consensus type object, precision >= 0.75 at pool5: 2 vs 1 object detectors, "
        "1 vs 1 unique objects.")
    with pytest.raises(LookupError, match="the crowd table has no row for network 'places'; it has scene, object"):
        scene_vs_object(crowd=crowd, crowd_networks=("places", "object"))
    with pytest.raises(ValueError, match="no measures to compare"):
        scene_vs_object_sentence(scene_vs_object())


def test_the_command_names_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("unitscope: error: no such file: ")
