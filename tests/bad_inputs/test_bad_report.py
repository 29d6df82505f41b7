"""Bad inputs to ``unitscope report``: malformed result files and harmful ``--out`` folders.

Each row breaks one thing in a complete hand-made results directory (the
one :func:`fake_results.make_fake_results` writes) and expects one line
naming the file or option at fault, with the whole temporary folder (the
results, any earlier report, the ``--out`` folder and its parent) unchanged:
nothing written, nothing deleted, no temporary folder left behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fake_results import make_fake_results

from unitscope.report import build_report

R, T = "{R}", "{T}"  # stand for the results directory and the test's temporary folder in the arguments


def _write(rel: str, text: str | bytes):
    def mutate(results: Path, tmp: Path) -> None:
        path = results / rel
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text, encoding="utf-8")
    return mutate


def _edit_units(change):
    def mutate(results: Path, tmp: Path) -> None:
        path = results / "scenenet" / "dissect" / "units.csv"
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        change(frame).to_csv(path, index=False)
    return mutate


def _truncate(rel: str, *, lines: int | None = None, fraction: float | None = None):
    def mutate(results: Path, tmp: Path) -> None:
        path = results / rel
        data = path.read_bytes()
        if lines is not None:
            data = b"".join(data.splitlines(keepends=True)[:lines])
        else:
            data = data[: int(len(data) * fraction)]
        path.write_bytes(data)
    return mutate


def _edit_json(rel: str, change):
    def mutate(results: Path, tmp: Path) -> None:
        path = results / rel
        document = json.loads(path.read_text())
        change(document)
        path.write_text(json.dumps(document))
    return mutate


def _user_folder(results: Path, tmp: Path) -> None:
    (tmp / "d" / "plots").mkdir(parents=True)
    (tmp / "d" / "plots" / "thesis.txt").write_text("x\n")


def _report_with_user_file(results: Path, tmp: Path) -> None:
    index = build_report(results, out=tmp / "site")
    (index.parent / "units" / "notes.txt").write_text("mine\n")


def _file_as_out(results: Path, tmp: Path) -> None:
    (tmp / "a-file").write_text("not a folder\n")


def _link_as_out(results: Path, tmp: Path) -> None:
    build_report(results, out=tmp / "real-site")
    (tmp / "site").symlink_to(tmp / "real-site")


def _nothing(results: Path, tmp: Path) -> None:
    pass


def _empty_results(results: Path, tmp: Path) -> None:
    (tmp / "empty").mkdir()


DISSECT = "scenenet/dissect"
CASES = [
    # (id, how the results are broken, arguments after `report`, fragments the error must name)
    ("result-json-is-a-list", _write(f"{DISSECT}/result.json", "[1]"), [R], ["result.json", "JSON object", "list"]),
    ("census-json-is-a-string", _write(f"{DISSECT}/census.json", '"x"'), [R], ["census.json", "JSON object"]),
    ("ablate-json-is-a-number", _write("scenenet/ablate/ablate.json", "1"), [R], ["ablate.json", "JSON object"]),
    ("segmentations-json-is-a-list", _write("scenenet/rf/segmentations/segmentations.json", "[1]"), [R],
     ["segmentations.json", "JSON object"]),
    ("run-json-invalid", _write("run.json", "{not json"), [R], ["run.json", "not valid JSON"]),
    ("run-json-networks-a-list", _write("run.json", '{"networks": ["scenenet"]}'), [R],
     ["run.json", "networks", "JSON object"]),
    ("result-json-threshold-text", _write(f"{DISSECT}/result.json", '{"config": {"iou_threshold": "x"}}'), [R],
     ["result.json", "iou_threshold", "finite number"]),
    ("minimal-json-example-not-object", _edit_json("scenenet/minimal/masks/minimal.json",
                                                   lambda d: d.update(examples=[1])), [R],
     ["minimal.json", "examples[0]", "JSON object"]),
    ("preference-thumbnail-rank-text", _edit_json("preference/preference.json",
                                                  lambda d: d["thumbnails"][0].update(rank="first")), [R],
     ["preference.json", "rank", "integer"]),
    ("localize-examples-json-not-list", _write("scenenet/localize/examples.json", "{}"), [R],
     ["examples.json", "JSON list"]),
    ("segmentation-tiles-bad-unit", _edit_json("scenenet/rf/segmentations/segmentations.json",
                                               lambda d: d.update(tiles={"abc": "x.png"})), [R],
     ["segmentations.json", "unit numbers"]),
    ("units-csv-cut-mid-row", _truncate(f"{DISSECT}/units.csv", fraction=0.5), [R],
     ["units.csv", "cells where the header has"]),
    ("units-csv-cut-before-a-layer", _truncate(f"{DISSECT}/units.csv", lines=7), [R],
     ["units.csv", "no rows for layer conv5", "result.json"]),
    ("units-csv-cut-inside-a-layer", _truncate(f"{DISSECT}/units.csv", lines=10), [R],
     ["units.csv", "3 rows for layer conv5", "layers.csv", "6 units"]),
    ("layers-csv-of-another-dissection", _write(f"{DISSECT}/layers.csv", "network,layer,units\n"
                                                                         "scenenet,conv4,6\nscenenet,conv5,6\n"),
     [R], ["units.csv", "layer conv3", "layers.csv does not list"]),
    ("units-csv-missing-column", _edit_units(lambda f: f.drop(columns=["iou"])), [R], ["units.csv", "iou"]),
    ("units-csv-nan-iou", _edit_units(lambda f: f.assign(iou=["nan"] + list(f["iou"][1:]))), [R],
     ["units.csv", "line 2", "iou", "finite number"]),
    ("units-csv-unit-not-integer", _edit_units(lambda f: f.assign(unit=["x"] + list(f["unit"][1:]))), [R],
     ["units.csv", "unit", "integer"]),
    ("units-csv-detector-not-a-flag", _edit_units(lambda f: f.assign(detector=["maybe"] + list(f["detector"][1:]))),
     [R], ["units.csv", "detector", "true or false"]),
    ("units-csv-precision-text", _edit_units(lambda f: f.assign(precision=["high"] + list(f["precision"][1:]))),
     [R], ["units.csv", "precision", "a number or blank"]),
    ("units-csv-unit-twice", _edit_units(lambda f: f.assign(unit=["1"] + list(f["unit"][1:]))), [R],
     ["units.csv", "unit 1 of layer conv3 twice"]),
    ("units-csv-not-utf8", _write(f"{DISSECT}/units.csv", b"layer,unit,label,iou\nconv3,0,\xff\xfe,0.1\n"), [R],
     ["units.csv", "UTF-8"]),
    ("units-csv-empty", _write(f"{DISSECT}/units.csv", ""), [R], ["units.csv", "empty"]),
    ("fractions-csv-nan", _write("preference/fractions.csv", "network,layer,source,count,fraction\n"
                                                             "scenenet,conv3,scenes,5,NaN\n"), [R],
     ["fractions.csv", "fraction", "finite number"]),
    ("human-units-csv-no-unit", _write("scenenet/human/units.csv", "network,layer,label\nscenenet,conv5,bed\n"),
     [R], ["human/units.csv", "unit"]),
    ("census-correlation-text", _write(f"{DISSECT}/census_correlations.csv", "network,layer,against,n,pearson\n"
                                                                              "scenenet,conv5,frequency,5,strong\n"),
     [R], ["census_correlations.csv", "pearson", "a number or blank"]),
    ("census-layers-blank-layer", _write(f"{DISSECT}/census_layers.csv", "network,layer,units,detectors\n"
                                                                         "scenenet,,6,2\n"), [R],
     ["census_layers.csv", "layer", "a name"]),
    ("human-summary-share-text", _write("scenenet/human/summary.json", '{"precision_over_75": "most"}'), [R],
     ["summary.json", "precision_over_75", "a number"]),
    ("results-missing", _nothing, [f"{T}/nope"], ["nope", "does not exist"]),
    ("results-without-results", _empty_results, [f"{T}/empty"], ["holds no unitscope results"]),
    ("unknown-network", _nothing, [R, "--network", "ghostnet"], ["ghostnet", "scenenet"]),
    ("out-is-a-file", _file_as_out, [R, "--out", f"{T}/a-file"], ["--out", "a-file", "not a folder"]),
    ("out-under-a-file", _file_as_out, [R, "--out", f"{T}/a-file/report"], ["--out", "not a folder"]),
    ("out-is-the-results", _nothing, [R, "--out", R], ["--out", "would hold the results"]),
    ("out-holds-the-results", _nothing, [R, "--out", T], ["--out", "would hold the results"]),
    ("out-inside-a-network", _nothing, [R, "--out", f"{R}/scenenet/localize/report"],
     ["--out", "inside the results of scenenet"]),
    ("out-inside-preference", _nothing, [R, "--out", f"{R}/preference/report"],
     ["--out", "inside the results of preference"]),
    ("out-user-folder", _user_folder, [R, "--out", f"{T}/d"], ["--out", "did not write", "plots"]),
    ("out-report-with-user-file", _report_with_user_file, [R, "--out", f"{T}/site"],
     ["--out", "did not write", "units/notes.txt"]),
    ("out-is-a-link", _link_as_out, [R, "--out", f"{T}/site"], ["--out", "symbolic link"]),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_fake_results(tmp_path_factory.mktemp("pristine"))


@pytest.mark.parametrize("mutate, args, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_report_refuses(refuse, pristine, tmp_path, mutate, args, mentions):
    results = tmp_path / "results"
    shutil.copytree(pristine, results)
    mutate(results, tmp_path)
    args = [a.replace(R, str(results)).replace(T, str(tmp_path)) for a in args]
    refuse(["report", *args], mentions=mentions, unchanged=[tmp_path])


def test_the_battery_covers_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 30
