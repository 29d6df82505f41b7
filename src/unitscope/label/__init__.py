"""Human labels for units: a local web app that replaces the paper's crowd task.

Zhou et al. (2015, Experiment 3) showed crowd workers a unit's top
segmentations and asked them to name the concept they share, choose its type
and mark the images that do not fit; three workers per unit. This package
serves the same task from a results directory:

* :func:`create_app` / :func:`serve`: the FastAPI app (needs the ``label``
  extra: fastapi, uvicorn), on loopback unless told otherwise;
* :func:`check_answer`: the rules an answer must meet, the same for the app
  and for imports;
* :class:`LabelStore`: answers in SQLite (WAL), annotators and their tokens;
* :func:`open_store` / :func:`add_annotator`: the database of a results
  directory (``RESULTS/labels.sqlite`` by default), as the commands open it;
* :func:`export_answers` / :func:`import_answers`: CSV or JSON;
* :func:`consensus`, :func:`human_results`, :func:`write_human_results`:
  consensus label and type, precision and agreement per unit, type shares per
  layer, comparison with the automatic labels, written to
  ``RESULTS/<network>/human/``.

Only files are read: the app never imports experiment code.
"""

from __future__ import annotations

from typing import Any

from .catalog import Catalog, UnitEntry, UnitKey, load_catalog
from unitscope.results.human import HumanResults

from .results import UnitConsensus, consensus, human_results, write_human_results
from .records import Annotator, Answer, AnswerRefused, DuplicateAnswer, ImportCounts, Progress, UnitFull
from .opening import add_annotator, default_db_path, open_store
from .storage import LabelStore, StorageError
from .taxonomy import TYPE_NAMES, TYPES, label_key, labels_match, normalize_label
from .transfer import export_answers, import_answers, read_answers
from .validation import CheckedAnswer, check_answer

__all__ = [
    "TYPES",
    "TYPE_NAMES",
    "Annotator",
    "Answer",
    "AnswerRefused",
    "Catalog",
    "CheckedAnswer",
    "DuplicateAnswer",
    "HumanResults",
    "ImportCounts",
    "LabelStore",
    "Progress",
    "StorageError",
    "UnitConsensus",
    "UnitEntry",
    "UnitFull",
    "UnitKey",
    "add_annotator",
    "check_answer",
    "consensus",
    "create_app",
    "default_db_path",
    "export_answers",
    "human_results",
    "import_answers",
    "label_key",
    "labels_match",
    "load_catalog",
    "normalize_label",
    "open_store",
    "read_answers",
    "serve",
    "write_human_results",
]


def __getattr__(name: str) -> Any:
    # The web app needs fastapi; reading and summarising answers does not.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .serving import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
