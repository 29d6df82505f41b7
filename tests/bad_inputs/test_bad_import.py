"""Bad inputs to ``unitscope import``: malformed published files, harmful names and folders.

Each row hands the command one broken thing (a file of the wrong structure,
a table with a column missing or units missing, a network name that is a
path, a results folder that holds the user's own dissection) and expects one
line naming it, with the whole temporary folder unchanged: nothing imported,
no staging folder left behind, the user's results untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fake_results import make_fake_results
from published_files import HEADER, ROWS, SMALL, write_crowd, write_table


def _crowd(tmp: Path, **change) -> Path:
    return write_crowd(tmp / "crowd.mat", SMALL, **change)


def _no_annotation(tmp: Path) -> Path:
    scipy.io.savemat(tmp / "crowd.mat", {"layerAverageCount": np.zeros((2, 6))})
    return tmp / "crowd.mat"


def _three_columns(tmp: Path) -> Path:
    cells = np.empty((2, 3), dtype=object)
    cells[:] = "pool5"
    scipy.io.savemat(tmp / "crowd.mat", {"layerAnnotation": cells, "layerAverageCount": np.zeros((2, 6))})
    return tmp / "crowd.mat"


def _not_matlab(tmp: Path) -> Path:
    return write_table(tmp / "crowd.mat")


CROWD_CASES = {
    "not a MATLAB file": (_not_matlab, ["crowd.mat", "not a MATLAB file"]),
    "no layerAnnotation": (_no_annotation, ["crowd.mat", "no variable 'layerAnnotation'"]),
    "layerAnnotation of 3 columns": (_three_columns, ["'layerAnnotation' should be an (L, 2) cell array", "(2, 3)"]),
    "layerAverageCount disagrees": (lambda tmp: _crowd(tmp, average=np.full((2, 6), 1 / 6)),
                                    ["crowd.mat", "layerAverageCount says"]),
    "no such file": (lambda tmp: tmp / "absent.mat", ["no such file", "absent.mat"]),
}


@pytest.mark.parametrize("case", list(CROWD_CASES))
def test_bad_crowd_files_are_refused(refuse, tmp_path, case):
    make, mentions = CROWD_CASES[case]
    path = make(tmp_path)
    refuse(["import", "iclr15", path, "--network", "alexnet-places205", "--out", tmp_path / "results"],
           mentions=mentions, unchanged=[tmp_path], case=f"import iclr15: {case}")
    assert not (tmp_path / "results").exists()


TABLE_CASES = {
    "missing column": (HEADER.replace("score,", ""), [r.replace(",0.2,car", ",car", 1) for r in ROWS[:1]],
                       ["toy.csv", "missing column score"]),
    "unit numbering gap": (HEADER, [ROWS[0], ROWS[3]], ["toy.csv", "unit numbering has gaps", "1, 2"]),
    "unit twice": (HEADER, [ROWS[1], ROWS[1]], ["toy.csv", "unit 1 appears 2 times"]),
    "IoU not a number": (HEADER, [ROWS[1].replace(",0.1,car", ",high,car", 1)], ["'score'", "'high' is not a number"]),
    "category without its columns": (HEADER + ",part-iou", [r + ",0.0" for r in ROWS],
                                     ["category 'part' lacks columns", "part-label"]),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_bad_netdissect_tables_are_refused(refuse, tmp_path, case):
    header, rows, mentions = TABLE_CASES[case]
    path = write_table(tmp_path / "toy.csv", rows=rows, header=header)
    refuse(["import", "netdissect", path, "--network", "toy", "--layer", "conv5", "--out", tmp_path / "results"],
           mentions=mentions, unchanged=[tmp_path], case=f"import netdissect: {case}")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("case, args, mentions", [
    ("network is a path", ["--network", "../elsewhere", "--layer", "conv5"], ["--network", "plain folder name"]),
    ("network is the report folder", ["--network", "report", "--layer", "conv5"], ["--network", "report"]),
    ("no layer", ["--network", "toy"], ["--layer"]),
])
def test_bad_names_are_refused(refuse, tmp_path, case, args, mentions):
    path = write_table(tmp_path / "toy.csv")
    refuse(["import", "netdissect", path, *args, "--out", tmp_path / "results"], mentions=mentions,
           unchanged=[tmp_path], case=f"import netdissect: {case}")


def test_an_import_never_replaces_the_users_own_dissection_or_labels(refuse, tmp_path):
    results = make_fake_results(tmp_path / "results")
    table = write_table(tmp_path / "toy.csv")
    refuse(["import", "netdissect", table, "--network", "scenenet", "--layer", "conv5", "--out", results],
           mentions=[str(results / "scenenet" / "dissect"), "unitscope import did not write"], unchanged=[tmp_path],
           case="import netdissect: over a real dissection")
    refuse(["import", "iclr15", _crowd(tmp_path), "--network", "scenenet", "--out", results],
           mentions=[str(results / "scenenet" / "human"), "did not write"], unchanged=[tmp_path],
           case="import iclr15: over the labeling app's labels")


def test_an_out_that_is_a_file_is_refused(refuse, tmp_path):
    out = tmp_path / "results"
    out.write_text("mine")
    refuse(["import", "netdissect", write_table(tmp_path / "toy.csv"), "--network", "toy", "--layer", "conv5",
            "--out", out], mentions=["--out", "is a file"], unchanged=[tmp_path], case="import: --out is a file")
