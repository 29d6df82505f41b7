"""The study report from a small hand-written results directory.

The directory is :func:`fake_results.make_fake_results`'s (its docstring
gives the numbers and the sentences they must produce).
"""

from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import unquote

import pandas as pd
import pytest
from PIL import Image

from fake_results import N_SEGMENTATIONS, make_fake_results
from unitscope.report import ResultFileError, build_report, load_results
from unitscope.report.measures import key_layer, layer_order, object_detector_table
from unitscope.report.summary import summarise


def _text(html: str) -> str:
    """The visible text of a page, tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results = make_fake_results(root)
    index = build_report(results)
    return results, index


# --------------------------------------------------------------------------- loading and numbers
def test_loads_networks_nulls_and_object_detector_counts(tmp_path):
    results = load_results(make_fake_results(tmp_path))
    assert [n.name for n in results.networks] == ["scenenet", "objectnet"]  # run.json order
    assert list(results.nulls) == ["scenenet-random"]
    assert results.network("scenenet").null == "scenenet-random"
    table = object_detector_table(results.networks)
    assert table[["network", "layer", "units", "detectors", "object_detectors", "unique_objects"]].values.tolist() == [
        ["scenenet", "conv3", 6, 3, 1, 1], ["scenenet", "conv5", 6, 5, 4, 3],
        ["objectnet", "conv3", 6, 3, 0, 0], ["objectnet", "conv5", 6, 4, 1, 1],
    ]
    assert key_layer(table, layer_order(results.networks)) == "conv5"
    with pytest.raises(LookupError, match="nothere"):
        load_results(results.root, networks=["nothere"])


def test_summary_answers_the_questions_with_numbers(tmp_path):
    findings = {f.key: f for f in summarise(load_results(make_fake_results(tmp_path)))}
    assert set(findings) >= {"emerge", "layers", "objects", "versus", "preference", "minimal", "rf", "census",
                             "human"}
    emerge = findings["emerge"].answer
    assert emerge.startswith("Yes. In scenenet, 5 of the 12 units in 2 dissected layers are object detectors "
                             "(41.7%, IoU > 0.04), detecting 3 different objects; with random weights the same "
                             "architecture has 1.")
    assert "In objectnet, 1 of the 12 units in 2 dissected layers is an object detector (8.3%, IoU > 0.04), " \
           "detecting 1 different object." in emerge
    assert findings["emerge"].numbers["scenenet"] == {"object_detectors": 5, "units": 12, "unique_objects": 3,
                                                      "layers": 2, "iou_threshold": 0.04, "null_object_detectors": 1}
    assert findings["layers"].answer.startswith(
        "In scenenet, object detectors appear from conv3 (1) and are most numerous in conv5 (4 of 6 units, 66.7%).")
    assert "scenenet: bed (3), bookcase (1), painting (1)" in findings["objects"].answer
    versus = findings["versus"]
    assert versus.question == "Does the scene network use objects more than the object network?"
    assert versus.answer.startswith("Yes: over the 2 layers both networks have, scenenet has 5 object detectors "
                                    "(41.7% of its units) and objectnet 1 (8.3%)")
    assert "In conv5: 4 (66.7%) vs 1 (16.7%)" in versus.answer
    assert versus.numbers["per_layer"] == {"conv3": [1, 0], "conv5": [4, 1]}
    assert "scenenet: conv3 55% scenes → conv5 81% scenes" in findings["preference"].answer
    assert "objectnet: conv3 52% scenes → conv5 77% objects" in findings["preference"].answer
    assert "bedroom → bed 100%" in findings["minimal"].answer
    assert "a diagnostic object of the scene survives in 100% of them" in findings["minimal"].answer
    assert "conv3 22.0±2.0 vs 51, conv5 35.0±5.0 vs 99" in findings["rf"].answer
    assert findings["rf"].answer.startswith("The empirical receptive fields are smaller than the theoretical ones")
    assert "scenenet at conv5: object frequency r = 0.61 [0.31, 0.71]" in findings["census"].answer
    assert findings["localize"].numbers == {"scenenet": {"units": 2, "iou": pytest.approx(0.3),
                                                         "pointing": pytest.approx(0.8)}}
    assert findings["ablate"].answer == (
        "In scenenet (conv5), switching off the detectors of an object lowers the accuracy of its diagnostic scenes "
        "by 25.0 points on average, switching off as many random units by 4.5 (2 objects); for 2 of 2 objects a "
        "diagnostic scene is the class hurt most.")
    assert "human and automatic labels agree on 100%" in findings["human"].answer


# --------------------------------------------------------------------------- the pages
def test_full_report_has_every_section_plot_and_page(full_report):
    results, index = full_report
    assert index == results / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    text = _text(html)
    assert "Yes. In scenenet, 5 of the 12 units" in text
    assert "Does the scene network use objects more than the object network?" in text
    for section in ("summary", "preference", "minimal", "rf", "semantics", "census", "localize", "ablate", "human",
                    "run"):
        assert f'<section id="{section}">' in html
    # every section has results; only objectnet lacks a random-weights null
    assert re.findall(r'class="missing">([^<]*)', html) == ["No random-weights null for objectnet: add "]
    plots = sorted(p.name for p in (index.parent / "plots").iterdir())
    assert plots == ["ablate_scenenet.png", "census_correlations.png", "census_null_scenenet.png",
                     "census_objects.png", "census_scatter_objectnet.png", "census_scatter_scenenet.png",
                     "census_sweep_objectnet.png", "census_sweep_scenenet.png", "detectors.png", "human_types.png",
                     "localize_scenenet.png", "preference.png", "receptive_fields.png", "unit_types.png"]
    for png in (index.parent / "plots").iterdir():
        with Image.open(png) as image:
            assert image.width > 300 and image.height > 150
    # paper's RF values for reference, this run's table, timings and configuration
    assert "17.8" in text and "72" in text and "195" in text and "approximate" in text
    assert "conv5 " in text and "empirical / theoretical" in text
    assert "dissect 30.2 s 30.2 total 2.4 min 143" in text
    assert "config.world.n_scenes" not in text and "world.n_scenes 10" in text
    assert "mini_alexnet" in text and "0.91" in text
    # the unit table: one row per unit of the two networks (not the null), each linking to its page
    rows = re.findall(r'<tr data-network="([^"]+)" data-detector="([01])"', html)
    assert len(rows) == 24 and sum(d == "1" for _, d in rows) == 15
    assert 'href="units/scenenet/conv5/3.html"' in html
    pages = sorted(p.relative_to(index.parent).as_posix() for p in (index.parent / "units").rglob("*.html"))
    assert len(pages) == 24 and "units/objectnet/conv3/0.html" in pages
    summary = json.loads((index.parent / "summary.json").read_text())
    assert summary["key_layer"] == "conv5" and summary["networks"] == ["scenenet", "objectnet"]
    assert [f["key"] for f in summary["findings"]][:4] == ["emerge", "layers", "objects", "versus"]


def test_every_image_link_resolves_and_nothing_is_remote(full_report):
    results, index = full_report
    pages = [index] + sorted((index.parent / "units").rglob("*.html"))
    count = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html and "//cdn" not in html
        links = re.findall(r'<(?:img|script)[^>]* src="([^"]+)"', html)
        links += re.findall(r'href="([^"#]+\.(?:css|html|json))"', html)
        for src in links:
            assert (page.parent / unquote(src)).resolve().is_file(), f"{page}: broken link {src}"
            count += 1
    assert count > 200


def test_unit_page_shows_images_labels_rf_map_tile_and_human_label(full_report):
    _, index = full_report
    page = index.parent / "units" / "scenenet" / "conv5" / "0.html"
    html = page.read_text(encoding="utf-8")
    text = _text(html)
    assert "scenenet · conv5 · unit 0" in text
    segmentation = r'<figure class="seg"><img src="(?:\.\./){4}scenenet/segmentations/conv5/0/00\d_img0x\d\.jpg"'
    assert len(re.findall(segmentation, html)) == N_SEGMENTATIONS
    assert "label bed" in text and "IoU 0.12" in text and "precision (top images) 0.25" in text
    assert "object bed 0.12" in text and "color color-best 0.01" in text  # best label of each category
    assert 'class="rf-map"' in html and "Size: 30 px" in text
    assert 'class="tile-wide"' in html
    assert "Human label" in text and "agreement 1" in text
    assert "bed 0.4 0.5 90%" in text  # localisation of the unit
    assert 'id="next-unit" href="1.html"' in html and 'id="previous-unit"' not in html


def test_text_from_results_is_escaped(full_report):
    _, index = full_report
    html = index.read_text(encoding="utf-8")
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt; &amp; &#34;co&#34;" in html
    unit_page = (index.parent / "units" / "objectnet" / "conv5" / "5.html").read_text(encoding="utf-8")
    assert "<b>evil</b>" not in unit_page and "&lt;b&gt;evil" in unit_page


def test_partial_results_say_what_to_run(tmp_path):
    results = make_fake_results(tmp_path, partial=True)
    index = build_report(results, title="Only <dissection>")
    html = index.read_text(encoding="utf-8")
    text = _text(html)
    assert "<title>Only &lt;dissection&gt;</title>" in html
    assert "Yes. In scenenet, 5 of the 12 units in 2 dissected layers are object detectors" in text
    for hint in ("run `unitscope preference ... --out RESULTS`", "run `unitscope minimal ... --out RESULTS`",
                 "run `unitscope rf ... --out RESULTS`", "`unitscope dissect ... --out RESULTS` writes it",
                 "run `unitscope localize ... --out RESULTS`", "run `unitscope ablate ... --out RESULTS`",
                 "`unitscope label serve RESULTS`", "written by `unitscope demo`"):
        assert hint in text, hint
    assert text.count("No ") >= 8
    # layers.csv was absent: the per-layer table is recomputed from units.csv
    assert sorted(p.name for p in (index.parent / "plots").iterdir()) == ["detectors.png", "unit_types.png"]
    assert len(list((index.parent / "units").rglob("*.html"))) == 12
    assert "Does the scene network" not in text  # one network: nothing to compare


def test_rebuild_replaces_generated_files_and_refuses_foreign_folder(tmp_path):
    results = make_fake_results(tmp_path / "full")
    index = build_report(results, out=tmp_path / "site")
    assert (index.parent / "plots" / "preference.png").is_file()
    partial = make_fake_results(tmp_path / "partial", partial=True)
    assert build_report(partial, out=tmp_path / "site") == index
    # what the first build wrote and the second did not is gone: the folder was replaced whole
    assert sorted(p.name for p in (index.parent / "plots").iterdir()) == ["detectors.png", "unit_types.png"]
    assert not (index.parent / "units" / "objectnet").exists()
    (index.parent / "plots" / "mine.png").write_bytes(b"x")  # not written by unitscope: refused, kept
    with pytest.raises(ValueError, match=r"did not write \(plots/mine.png\)"):
        build_report(partial, out=tmp_path / "site")
    assert (index.parent / "plots" / "mine.png").read_bytes() == b"x"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.html").write_text("mine")
    with pytest.raises(ValueError, match="did not write"):
        build_report(results, out=foreign)
    assert (foreign / "index.html").read_text() == "mine"


def test_copy_images_makes_a_movable_report(tmp_path):
    results = make_fake_results(tmp_path, partial=True)
    index = build_report(results, out=tmp_path / "portable", copy_images=True)
    html = (index.parent / "units" / "scenenet" / "conv3" / "0.html").read_text(encoding="utf-8")
    assert 'src="../../../files/scenenet/segmentations/conv3/0/000_img0x0.jpg"' in html
    assert (index.parent / "files" / "scenenet" / "segmentations" / "conv3" / "0" / "000_img0x0.jpg").is_file()


def test_bad_input_is_reported_not_skipped(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")
    results = make_fake_results(tmp_path, partial=True)
    (results / "run.json").write_text("{not json")
    with pytest.raises(ResultFileError, match="run.json"):
        build_report(results)
    (results / "run.json").unlink()
    pd.DataFrame({"layer": ["conv3"]}).to_csv(results / "scenenet" / "dissect" / "units.csv", index=False)
    with pytest.raises(ResultFileError, match="lacks the column"):
        build_report(results)
