"""Bad input to ``unitscope label ...``: one line naming the problem, nothing written.

Each row of :data:`CASES` builds its bad input in a fresh ``tmp_path`` (a
results folder with units of ``scenenet/conv4`` and ``scenenet/conv5``) and
returns the command line and the fragments its error must name; the
``refuse`` fixture (``conftest.py``) checks the exit status, the single
``unitscope: error:`` line and that the folder is byte for byte unchanged.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from conftest_label import make_results

from unitscope.label import LabelStore

GOOD_ROW = {
    "annotator": "ada",
    "network": "scenenet",
    "layer": "conv5",
    "unit": 0,
    "label": "bed",
    "type": "object",
    "marked": [],
    "n_images": 2,
    "shown_at": None,
    "submitted_at": "2025-01-31T12:00:00.000000Z",
}


@dataclass
class Setup:
    """What a row may use: the folder, the results in it, pytest's monkeypatch, sockets to close."""

    root: Path
    results: Path
    monkeypatch: pytest.MonkeyPatch
    sockets: list

    def export(self, name: str = "answers.json", **fields) -> Path:
        path = self.root / name
        row = dict(GOOD_ROW, **fields)
        path.write_text(json.dumps({"format": "unitscope-labels", "version": 1, "answers": [row]}))
        return path

    def database(self) -> Path:
        LabelStore(self.results / "labels.sqlite").add_annotator("ada")
        return self.results / "labels.sqlite"

    def busy_port(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        self.sockets.append(sock)
        return sock.getsockname()[1]


def _foreign_sqlite(s: Setup) -> tuple[list, list]:
    path = s.root / "notes.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.execute("INSERT INTO notes VALUES ('my thesis')")
    con.commit()
    con.close()
    return ["label", "add-annotator", "bo", "--results", s.results, "--db", path], [
        "notes.sqlite is not a labeling database",
        "another program",
    ]


def _text_file(s: Setup, name: str = "notes.txt") -> Path:
    path = s.root / name
    path.write_text("not a database, and not unitscope's to change\n" * 50)
    return path


def _disk_full(s: Setup) -> tuple[list, list]:
    def full(self):
        raise sqlite3.OperationalError("database or disk is full")

    s.monkeypatch.setattr(LabelStore, "_connect", full)
    return ["label", "add-annotator", "ada", "--results", s.results], ["database or disk is full", "labels.sqlite"]


def _no_segmentations(s: Setup) -> tuple[list, list]:
    for tile in (s.results / "scenenet" / "segmentations").rglob("*.jpg"):
        tile.unlink()
    return ["label", "serve", s.results], ["nothing to label", "--segmentations"]


def _huge_csv_cell(s: Setup) -> tuple[list, list]:
    path = s.root / "answers.csv"
    path.write_text("annotator,network,layer,unit,label,type,marked,n_images,shown_at,submitted_at\n"
                    f"ada,scenenet,conv5,0,{'b' * 200_000},object,[],2,,2025-01-31T12:00:00.000000Z\n")
    return ["label", "import", path, "--results", s.results], ["answers.csv", "not a readable CSV file"]


def _latin1_csv(s: Setup) -> tuple[list, list]:
    path = s.root / "answers.csv"
    path.write_bytes(b"annotator,network,layer,unit,label,type,marked,n_images,shown_at,submitted_at\n"
                     b"ada,scenenet,conv5,0,caf\xe9,object,[],2,,2025-01-31T12:00:00.000000Z\n")
    return ["label", "import", path, "--results", s.results], ["answers.csv", "not UTF-8"]


def _not_an_export(s: Setup) -> tuple[list, list]:
    path = s.root / "other.json"
    path.write_text('{"answers": []}')
    return ["label", "import", path, "--results", s.results], ["other.json", "not a unitscope labels export"]


Row = Callable[[Setup], tuple[list, list]]

CASES: dict[str, Row] = {
    # label serve
    "serve-missing-results": lambda s: (["label", "serve", s.root / "missing"], ["missing", "does not exist"]),
    "serve-unknown-layer": lambda s: (
        ["label", "serve", s.results, "--layer", "conv55"],
        ["layer(s) conv55", "close matches: conv5", "layers present: conv4, conv5"],
    ),
    "serve-unknown-network": lambda s: (
        ["label", "serve", s.results, "--network", "ghostnet"],
        ["ghostnet", "available: scenenet"],
    ),
    "serve-remote-host-unconfirmed": lambda s: (
        ["label", "serve", s.results, "--host", "0.0.0.0"],
        ["--host 0.0.0.0", "unencrypted", "--allow-remote"],
    ),
    "serve-busy-port": lambda s: (
        lambda port: (["label", "serve", s.results, "--port", port], [f"port {port} on 127.0.0.1 is in use", "--port"])
    )(s.busy_port()),
    "serve-port-out-of-range": lambda s: (["label", "serve", s.results, "--port", "70000"], ["--port", "1..65535"]),
    "serve-k-zero": lambda s: (["label", "serve", s.results, "--k", "0"], ["--k", "at least 1"]),
    "serve-images-zero": lambda s: (["label", "serve", s.results, "--images", "0"], ["--images", "at least 1"]),
    "serve-no-segmentations": _no_segmentations,
    "serve-db-text-file": lambda s: (
        ["label", "serve", s.results, "--db", _text_file(s)],
        ["notes.txt is not a labeling database"],
    ),
    # label add-annotator
    "add-annotator-bad-name": lambda s: (
        ["label", "add-annotator", "<b>", "--results", s.results],
        ["invalid annotator name '<b>'", "1-64 letters"],
    ),
    "add-annotator-missing-results": lambda s: (
        ["label", "add-annotator", "ada", "--results", s.root / "nope"],
        ["nope does not exist"],
    ),
    "add-annotator-not-a-results-folder": lambda s: (
        ["label", "add-annotator", "ada", "--results", s.results / "scenenet"],
        ["holds no <network>/dissect/units.csv"],
    ),
    "add-annotator-db-is-a-directory": lambda s: (
        ["label", "add-annotator", "ada", "--results", s.results, "--db", s.results / "scenenet"],
        ["is a directory", "--db"],
    ),
    "add-annotator-db-foreign-sqlite": _foreign_sqlite,
    "add-annotator-disk-full": _disk_full,
    # label import
    "import-missing-file": lambda s: (
        ["label", "import", s.root / "gone.json", "--results", s.results],
        ["gone.json does not exist"],
    ),
    "import-wrong-suffix": lambda s: (
        ["label", "import", _text_file(s), "--results", s.results],
        ["notes.txt", "use a .csv or .json file"],
    ),
    "import-unknown-network": lambda s: (
        ["label", "import", s.export(network="ghostnet"), "--results", s.results],
        ["answer 0", "unknown unit ghostnet/conv5/0"],
    ),
    "import-layer-dot-dot": lambda s: (
        ["label", "import", s.export(layer="../../etc"), "--results", s.results],
        ["unknown unit scenenet/../../etc/0"],
    ),
    "import-negative-unit": lambda s: (
        ["label", "import", s.export(unit=-5), "--results", s.results],
        ["unit must be an integer in 0..2147483647, got -5"],
    ),
    "import-20KB-label-with-control-characters": lambda s: (
        ["label", "import", s.export(label="bed\x07" * 5000), "--results", s.results],
        ["the concept label contains control characters"],
    ),
    "import-not-an-export": _not_an_export,
    "import-latin1-csv": _latin1_csv,
    "import-huge-csv-cell": _huge_csv_cell,
    # label export / results
    "export-no-database": lambda s: (
        ["label", "export", s.root / "out.csv", "--results", s.results],
        ["no labeling database", "labels.sqlite"],
    ),
    "export-wrong-suffix": lambda s: (
        ["label", "export", s.root / "out.xlsx", "--results", s.results, "--db", s.database()],
        ["out.xlsx", "use a .csv or .json file"],
    ),
    "export-over-a-users-file": lambda s: (
        ["label", "export", _text_file(s, "thesis.csv"), "--results", s.results, "--db", s.database()],
        ["thesis.csv exists and is not a unitscope labels export"],
    ),
    "results-no-database": lambda s: (["label", "results", "--results", s.results], ["no labeling database"]),
    "results-db-text-file": lambda s: (
        ["label", "results", "--results", s.results, "--db", _text_file(s)],
        ["notes.txt is not a labeling database"],
    ),
}


@pytest.mark.parametrize("build", list(CASES.values()), ids=list(CASES))
def test_bad_label_input_is_refused(refuse, tmp_path, monkeypatch, build):
    results = make_results(tmp_path, networks={"scenenet": {"conv4": 1, "conv5": 2}}, n_images=2, size=8)
    setup = Setup(root=tmp_path, results=results, monkeypatch=monkeypatch, sockets=[])
    try:
        args, mentions = build(setup)
        refuse(args, mentions=mentions, unchanged=[tmp_path])
    finally:
        for sock in setup.sockets:
            sock.close()
