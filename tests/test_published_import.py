"""``unitscope import``: published files as an ordinary results directory, and the report's sections on them.

Known answers twice: the released files (``../shared/published``; skipped
when absent), checked against what the files themselves store
(``layerAverageCount``) and against a direct pandas count of the CSVs; and
the small hand-made files of :mod:`published_files`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from typer.testing import CliRunner

from fake_results import make_fake_results
from published_files import PUBLISHED, SMALL, direct_census, published_or_skip, write_crowd, write_table

from unitscope.cli.main import app
from unitscope.published import import_iclr15, import_netdissect, layer_table, read_iclr15
from unitscope.published.importing import imported_from
from unitscope.report import build_report
from unitscope.results import CensusResult, DissectionTables, HumanResults, RunMetadata, load_results

CROWD = PUBLISHED / "iclr15_unit_annotations"
RELEASE = PUBLISHED / "netdissect_release"
#: unitscope's type names in the release's code order 1-6.
CODE_ORDER = ("scene", "object", "region", "part", "texture", "simple")


@pytest.fixture(scope="module")
def published() -> Path:
    return published_or_skip()


@pytest.fixture(scope="module")
def imported(published, tmp_path_factory) -> Path:
    """The AlexNet pair imported both ways, as `make published` does (without ResNet)."""
    out = tmp_path_factory.mktemp("published") / "results"
    for net in ("places205", "imagenet"):
        import_iclr15(CROWD / f"unitAnnotation_{net}-alexnet.mat", network=f"alexnet-{net}", out=out)
    for net in ("places205", "places365", "imagenet"):
        import_netdissect(RELEASE / f"caffe_reference_{net}.csv", network=f"alexnet-{net}", layer="conv5", out=out)
    return out


# --- the real files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["places205", "imagenet"])
def test_real_crowd_import_keeps_layer_average_count_through_save_and_load(imported, net):
    source = CROWD / f"unitAnnotation_{net}-alexnet.mat"
    annotations = read_iclr15(source, network=f"alexnet-{net}")
    human = HumanResults.load(imported / f"alexnet-{net}" / "human")
    shares = human.layers[[f"annotation_share_{name}" for name in CODE_ORDER]].to_numpy()
    np.testing.assert_allclose(shares, annotations.layer_average.filter(like="code_").to_numpy(), rtol=0, atol=1e-9)
    direct = layer_table(annotations)
    assert human.layers["layer"].tolist() == ["pool1", "pool2", "conv3", "conv4", "pool5"]
    assert human.layers["n_units"].tolist() == [96, 256, 384, 384, 256]
    np.testing.assert_allclose(human.layers["mean_precision"], direct["mean_precision"], atol=1e-12)
    np.testing.assert_allclose(human.layers["precision_over_75"], direct["precision_over_75"], atol=1e-12)
    assert human.layers["units_precision_over_75"].tolist() == direct["units_precision_over_75"].tolist()
    # every annotation is an answer, and its precision is the stored one
    rows = annotations.annotations
    assert len(human.answers) == len(rows) == 3 * 1376
    np.testing.assert_allclose(human.answers["precision"], rows["precision"], atol=1e-12)
    assert human.summary["object_detectors"]["object_detectors"] == {"places205": 59, "imagenet": 30}[net]
    provenance = imported_from(imported / f"alexnet-{net}" / "human")
    assert provenance["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert RunMetadata.load(imported / f"alexnet-{net}" / "human").command == "import iclr15"


@pytest.mark.parametrize("name, network, layer", [
    ("caffe_reference_places205", "alexnet-places205", "conv5"),
    ("caffe_reference_imagenet", "alexnet-imagenet", "conv5"),
    pytest.param("ResNet-152-model_places365", "resnet152-places365", "layer4", marks=pytest.mark.slow),
])
def test_real_netdissect_import_census_equals_a_direct_pandas_count(published, tmp_path, name, network, layer):
    path = RELEASE / f"{name}.csv"
    folder = import_netdissect(path, network=network, layer=layer, out=tmp_path)
    census = CensusResult.load(folder).layers.set_index("network").loc[network]
    direct = direct_census(path)
    best = {"object_detectors": "object_detectors_best_label", "unique_concepts": "unique_concepts_best_label",
            "unique_objects": "unique_objects_best_label"}
    for column in ("units", "detectors", *best, "detections_per_category", "unique_concepts_per_category",
                   "object_detectors_per_category", "unique_objects_per_category"):
        assert census[column] == direct[best.get(column, column)], column
    tables = DissectionTables.load(folder)
    assert tables.units["unit"].tolist() == list(range(direct["units"]))  # the file's 1.. as 0..
    assert tables.layers.set_index("layer").at[layer, "detectors"] == direct["detectors"]


def test_real_import_report_shows_both_experiments_and_the_sentence(imported):
    index = build_report(imported, out=imported.parent / "report")
    html = index.read_text(encoding="utf-8")
    summary = json.loads((index.parent / "summary.json").read_text())
    for section in ('id="crowd"', 'id="published"', 'id="reference"'):
        assert section in html
    assert "No imported" not in html and "No reference networks" not in html
    sentence = next(c["sentence"] for c in summary["published"]["scene_vs_object"]
                    if c["scene"] == "alexnet-places205")
    assert sentence.startswith("Does the scene network (alexnet-places205) have more object detectors than the "
                               "object network (alexnet-imagenet)? Yes: ")
    assert "59 vs 30 object detectors, 40 vs 15 unique objects" in sentence  # crowd, pool5
    assert "best label per unit: IoU > 0.04 at conv5: 64 vs 32 object detectors, 30 vs 17 unique objects" in sentence
    assert "per category (their summary's rule): object IoU > 0.04 at conv5: 78 vs 49" in sentence
    assert str(escape(sentence)) in html
    census = {row["network"]: row for row in summary["published"]["netdissect_census"]}
    assert census["alexnet-places365"]["object_detectors_best_label"] == 60
    assert census["alexnet-places365"]["unique_objects_per_category"] == 40


# --- hand-made files ------------------------------------------------------------------------------------------

def test_small_files_import_with_known_answers(tmp_path):
    out = tmp_path / "results"
    human = HumanResults.load(import_iclr15(write_crowd(tmp_path / "toy.mat", SMALL), network="toy-places", out=out))
    assert human.units["label"].tolist() == ["red", "grass", "bed", "bedroom", "car"]
    assert human.units["type"].tolist() == ["simple", "simple", "object", "scene", "region"]  # ties: simplest
    assert human.layers["annotation_share_simple"].tolist() == pytest.approx([3 / 6, 0.0])
    assert human.summary["object_detectors"] is None  # no pool5 in the file
    dissect = import_netdissect(write_table(tmp_path / "toy.csv"), network="toy-places", layer="conv5", out=out)
    census = CensusResult.load(dissect)
    row = census.layers.iloc[0]
    assert row[["units", "detectors", "object_detectors", "unique_concepts", "unique_objects"]].tolist() == \
        [5, 4, 3, 3, 2]
    assert row[["detections_per_category", "unique_concepts_per_category", "object_detectors_per_category",
                "unique_objects_per_category"]].tolist() == [6, 5, 4, 3]
    sweep = census.sweep.set_index("iou_threshold")
    assert sweep.at[0.1, "detectors"] == 2 and sweep.at[0.1, "unique_objects"] == 1
    assert census.objects.set_index("object")["detectors"].to_dict() == {"car": 2, "wheel": 1}
    # an import replaces its own earlier import, whole
    import_netdissect(write_table(tmp_path / "toy.csv", rows=["1,object,car,0.2,car,1,1,1,0.2,,0,0,0,0"]),
                      network="toy-places", layer="conv5", out=out)
    assert len(DissectionTables.load(dissect).units) == 1
    assert sorted(p.name for p in dissect.parent.iterdir()) == ["dissect", "human"]  # no staging left behind


def test_a_user_network_stands_beside_the_imported_ones(tmp_path):
    results = make_fake_results(tmp_path / "results")
    import_netdissect(write_table(tmp_path / "toy.csv"), network="toy-places", layer="conv5", out=results)
    import_netdissect(write_table(tmp_path / "toy.csv", rows=["1,object,car,0.2,car,1,1,1,0.2,,0,0,0,0"]),
                      network="toy-imagenet", layer="conv5", out=results)
    index = build_report(results)
    html = index.read_text(encoding="utf-8")
    reference = html[html.index('<section id="reference">'):]
    reference = reference[:reference.index("</section>")]
    for network, source in (("scenenet", "dissected by unitscope"), ("objectnet", "dissected by unitscope"),
                            ("toy-places", "published (toy.csv)"), ("toy-imagenet", "published (toy.csv)")):
        assert f"<td>{network}</td><td>{source}</td>" in reference
    assert "plots/reference_networks.png" in reference and (index.parent / "plots/reference_networks.png").is_file()
    summary = json.loads((index.parent / "summary.json").read_text())
    (pair,) = summary["published"]["scene_vs_object"]
    assert (pair["scene"], pair["object"]) == ("toy-places", "toy-imagenet")
    assert "3 vs 1 object detectors" in pair["sentence"]
    assert load_results(results).network("scenenet").dissection.config.get("imported_from") is None


def test_without_imports_the_sections_say_what_to_run(tmp_path):
    index = build_report(make_fake_results(tmp_path / "results"))
    html = index.read_text(encoding="utf-8")
    assert "No imported crowd labels: `unitscope import iclr15" in html.replace("&#96;", "`")
    assert "No reference networks" in html
    assert "published" not in json.loads((index.parent / "summary.json").read_text())


def test_the_command_imports_and_says_where(tmp_path):
    result = CliRunner().invoke(app, ["import", "netdissect", str(write_table(tmp_path / "toy.csv")),
                                      "--network", "toy", "--layer", "conv5", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"imported {tmp_path / 'toy.csv'} as {tmp_path / 'r' / 'toy' / 'dissect'}"
    frame = pd.read_csv(tmp_path / "r" / "toy" / "dissect" / "census_layers.csv")
    assert frame["detectors"].tolist() == [4]
