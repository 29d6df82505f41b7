"""Reading result files, and what each one must hold.

Every CSV and JSON file the report and the labeling app read goes through :func:`read_csv` or
:func:`read_json` with the :class:`CsvSpec` / :class:`JsonSpec` of its kind
(the tables :data:`CSV_SPECS` and :data:`JSON_SPECS`, keyed by file name).  A
file that exists but does not hold what its writer writes raises
:class:`ResultFileError` with one line naming the file and what is wrong:
invalid JSON, a list where an object belongs, a row cut short (a truncated
file), a missing column, a non-number where a number belongs.  The report
would otherwise fail deep inside a section with a traceback, or worse, count
the rows of a half-written table and state a wrong number.

A file that is absent reads as ``None``: a partial result set gives a
partial report.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unitscope.results.layout import (
    ABLATE,
    ABLATE_JSON,
    CENSUS_JSON,
    CENSUS_OBJECTS_CSV,
    CLASSES_CSV,
    CONCEPTS_CSV,
    DIAGNOSTIC_CSV,
    DISSECT,
    EMERGENCE,
    EMERGENCE_CSV,
    EXAMPLES_JSON,
    FRACTIONS_CSV,
    HUMAN,
    IMAGES_CSV,
    LAYERS_CSV,
    LAYER_CSV,
    LOCALIZE,
    LOCALIZE_JSON,
    MINIMAL,
    MINIMAL_JSON,
    OBJECTS_CSV,
    PREFERENCE,
    PREFERENCE_JSON,
    RESULT_JSON,
    RF,
    RF_JSON,
    RUN_JSON,
    SUMMARY_JSON,
    TOP_IMAGES_CSV,
    UNITS_CSV,
    UNIT_SEGMENTATIONS_JSON,
)

__all__ = ["ResultFileError", "CsvSpec", "JsonSpec", "CSV_SPECS", "JSON_SPECS", "read_csv", "read_json",
           "read_table", "read_required_table", "read_required_json", "read_checked_json", "read_optional_table",
           "as_bool", "spec_for"]


class ResultFileError(ValueError):
    """A result file exists but cannot be read (malformed CSV / JSON, missing columns, truncated rows)."""


@dataclass(frozen=True)
class CsvSpec:
    """What a CSV file must hold.

    Attributes
    ----------
    required : tuple of str
        Columns that must be present.
    numbers : tuple of str
        Columns (when present) whose every cell is a finite number.
    blank_or_numbers : tuple of str
        Columns (when present) whose cells are numbers or blank / NaN ("no value").
    flags : tuple of str
        Columns (when present) whose cells are true/false (also 1/0, yes/no).
    integers : tuple of str
        Columns (when present) whose every cell is an integer; read as ``int``.
    text : tuple of str
        Columns read as strings (labels that look like numbers stay labels).
    keep_default_na : bool
        pandas' ``keep_default_na``: False keeps a label such as ``"NA"``.
    na_values : dict
        Per column, the cells that mean "no value".
    """

    required: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    blank_or_numbers: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    keep_default_na: bool = True
    na_values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JsonSpec:
    """What a JSON document must hold.

    Attributes
    ----------
    kind : type
        The top-level type (``dict`` or ``list``).
    keys : dict
        For an object: key -> type its value must have when present and not null.
    items : type, optional
        For a list: the type of every item.
    item_keys : dict
        For a list of objects: key -> type, as ``keys``.
    """

    kind: type = dict
    keys: dict = field(default_factory=dict)
    items: type | None = None
    item_keys: dict = field(default_factory=dict)


_TEXT = ("network", "layer")
_FLAGS = {"true", "false", "1", "0", "yes", "no"}

def _key(folder: str, name: str) -> str:
    return f"{folder}/{name}"


#: Known CSV files, by the path relative to the network's folder (or the results' for ``preference/``).
CSV_SPECS: dict[str, CsvSpec] = {
    _key(DISSECT, UNITS_CSV): CsvSpec(required=("layer", "unit", "label", "iou"), numbers=("iou",),
                                      blank_or_numbers=("precision", "threshold"), flags=("detector",),
                                      integers=("unit",), text=_TEXT + ("label", "category", "type"),
                                      keep_default_na=False,
                                      na_values={"precision": ["", "nan", "NaN"], "threshold": ["", "nan", "NaN"]}),
    _key(DISSECT, LAYERS_CSV): CsvSpec(required=("layer", "units"), integers=("units", "detectors"), text=_TEXT),
    _key(DISSECT, CONCEPTS_CSV): CsvSpec(keep_default_na=False),
    _key(DISSECT, CENSUS_OBJECTS_CSV): CsvSpec(required=("network", "layer", "object", "detectors"),
                                               integers=("detectors",), text=_TEXT + ("object",)),
    _key(PREFERENCE, FRACTIONS_CSV): CsvSpec(required=("network", "layer", "source", "fraction"),
                                        numbers=("fraction",), text=_TEXT + ("source",), keep_default_na=False),
    _key(PREFERENCE, IMAGES_CSV): CsvSpec(required=("pool", "index", "id", "source"), integers=("pool", "index"),
                                     text=("id", "source"), keep_default_na=False),
    _key(PREFERENCE, TOP_IMAGES_CSV): CsvSpec(text=_TEXT + ("id", "source"), integers=("rank",), keep_default_na=False),
    _key(MINIMAL, IMAGES_CSV): CsvSpec(text=("id", "label_name", "objects_kept", "objects_present"),
                                       keep_default_na=False),
    _key(MINIMAL, OBJECTS_CSV): CsvSpec(text=("scene", "object"), keep_default_na=False),
    _key(MINIMAL, DIAGNOSTIC_CSV): CsvSpec(text=("scene", "object"), keep_default_na=False),
    _key(RF, UNITS_CSV): CsvSpec(integers=("unit",), text=_TEXT),
    _key(RF, LAYER_CSV): CsvSpec(text=_TEXT),
    _key(HUMAN, UNITS_CSV): CsvSpec(required=("layer", "unit", "label"), integers=("unit",),
                                    text=("layer", "label", "type"), keep_default_na=False,
                                    na_values={"precision": ["", "nan"]}),
    _key(LOCALIZE, UNITS_CSV): CsvSpec(integers=("unit",), text=_TEXT + ("object",)),
    _key(LOCALIZE, OBJECTS_CSV): CsvSpec(text=_TEXT + ("object",)),
    _key(EMERGENCE, UNITS_CSV): CsvSpec(required=("network", "step", "null", "layer", "unit", "label", "category",
                                                  "iou", "detector"), numbers=("iou",), blank_or_numbers=("step",),
                                        flags=("null", "detector"), integers=("unit",),
                                        text=_TEXT + ("label", "category"), keep_default_na=False,
                                        na_values={"step": [""]}),
    _key(EMERGENCE, EMERGENCE_CSV): CsvSpec(required=("network", "step", "null", "layer", "units", "detectors"),
                                            blank_or_numbers=("step", "object_share", "kept_next", "kept_final"),
                                            flags=("null",), integers=("units", "detectors"), text=_TEXT),
    _key(ABLATE, CLASSES_CSV): CsvSpec(required=("object", "class_name", "drop", "random_drop_mean"),
                                       text=_TEXT + ("object", "class_name")),
}
#: Any other CSV file: it must parse, with as many cells in every row as in its header.
GENERIC_CSV = CsvSpec(text=_TEXT)
#: Columns that hold a measurement in whichever table they appear: numbers or blank, never text.
METRIC_COLUMNS = frozenset("""
    iou precision threshold fraction count score n rank detectors object_detectors unique_concepts unique_objects
    pearson pearson_lo pearson_hi spearman spearman_lo spearman_hi iou_threshold frequency informative_scenes
    p_object_given_scene p_object rf_mean rf_std rf_median rf_size theoretical_size peak n_images n_units
    n_measured kept_fraction n_segments n_kept initial_score final_score n_present share share_given_present
    pointing box_hit_rate fire_rate_absent images images_absent unit_pointing best_unit_pointing
    mean_unit_pointing baseline_acc ablated_acc drop random_drop_mean random_drop_std effect most_hurt_drop
    most_hurt_effect max_effect diagnostic_rank mean_precision agreement type_agreement n_annotations
    precision_over_75 mean_agreement mean_type_agreement accuracy correct""".split())
_BLANK = {"", "nan", "none", "null"}


def _is_metric(column: str) -> bool:
    return column in METRIC_COLUMNS or column.startswith("share_") or column.endswith("_iou")

#: Known JSON documents, by the file name (the folders that hold them vary).
JSON_SPECS: dict[str, JsonSpec] = {
    RUN_JSON: JsonSpec(keys={"config": dict, "versions": dict, "timings": dict, "networks": dict, "command": str,
                             "options": dict, "stages": dict}),
    RESULT_JSON: JsonSpec(keys={"config": dict, "layers": list, "network": str}),
    CENSUS_JSON: JsonSpec(keys={"config": dict}),
    PREFERENCE_JSON: JsonSpec(keys={"top": int, "sources": list, "thumbnails": list}),
    MINIMAL_JSON: JsonSpec(keys={"options": dict, "counts": dict, "examples": list}),
    RF_JSON: JsonSpec(keys={"layer": str, "theoretical": dict, "stats": dict, "pictures": list}),
    UNIT_SEGMENTATIONS_JSON: JsonSpec(keys={"layer": str, "tiles": dict}),
    LOCALIZE_JSON: JsonSpec(keys={"counts": dict, "options": dict}),
    EXAMPLES_JSON: JsonSpec(kind=list, items=dict, item_keys={"picture": dict, "detections": list}),
    ABLATE_JSON: JsonSpec(keys={"counts": dict, "options": dict}),
    SUMMARY_JSON: JsonSpec(keys={k: float for k in ("mean_precision", "precision_over_75", "mean_agreement",
                                                      "label_agreement_rate", "type_agreement_rate")}),
}
#: Lists of objects inside known documents: file name -> list key -> the keys of each item, as ``keys``.
_LISTS_OF_OBJECTS = {PREFERENCE_JSON: {"thumbnails": {"rank": int, "array": str}},
                     MINIMAL_JSON: {"examples": {"original": str, "minimal": str}}}

_JSON_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a string", int: "an integer",
               float: "a number", bool: "true or false", type(None): "null"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def spec_for(relative: str) -> CsvSpec:
    """The spec of a CSV file, by its path relative to a network folder (``dissect/units.csv``)."""
    parts = relative.split("/")
    return CSV_SPECS.get(f"{parts[0]}/{parts[-1]}", GENERIC_CSV)


# --------------------------------------------------------------------------- JSON
def read_json(path: Path, spec: JsonSpec | None = None) -> Any:
    """Parse a JSON file and check it against ``spec`` (default: ``JSON_SPECS[path.name]``); None when absent.

    Raises
    ------
    ResultFileError
        If the file is not valid UTF-8 JSON or does not hold what ``spec`` asks.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"cannot read {path}: not valid JSON ({exc})") from None
    spec = spec or JSON_SPECS.get(path.name)
    if spec is None:
        return document
    if not _is(document, spec.kind):
        raise ResultFileError(f"{path} must hold {_JSON_NAMES[spec.kind]}, not {_describe(document)}")
    objects = [document] if spec.kind is dict else []
    if spec.kind is list and spec.items is not None:
        for i, item in enumerate(document):
            if not _is(item, spec.items):
                raise ResultFileError(f"{path}: item {i} must be {_JSON_NAMES[spec.items]}, not {_describe(item)}")
        objects = document if spec.items is dict else []
    _check_keys(path, objects, spec.keys if spec.kind is dict else spec.item_keys)
    for key, item_keys in _LISTS_OF_OBJECTS.get(path.name, {}).items():
        items = document.get(key) or []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ResultFileError(f"{path}: {key}[{i}] must be a JSON object, not {_describe(item)}")
        _check_keys(path, items, item_keys, where=f"{key}[].")
    return document


def _check_keys(path: Path, objects: list, keys: dict, *, where: str = "") -> None:
    for obj in objects:
        for key, kind in keys.items():
            value = obj.get(key)
            if value is not None and not _is(value, kind):
                raise ResultFileError(f"{path}: {where}{key} must be {_JSON_NAMES[kind]}, not {_describe(value)}")


# --------------------------------------------------------------------------- CSV
def _check_rows(path: Path) -> None:
    """Every row has as many cells as the header: a row cut short is a truncated (half-written) file."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            if row and len(row) != len(header):
                raise ResultFileError(
                    f"{path} line {reader.line_num}: {len(row)} cells where the header has {len(header)} "
                    "(a truncated or hand-edited file?)")


def _bad_cell(path: Path, frame: pd.DataFrame, column: str, bad: pd.Series, what: str) -> ResultFileError:
    row = int(bad.to_numpy().nonzero()[0][0])
    return ResultFileError(f"{path} line {row + 2}: column {column} holds {frame[column].iloc[row]!r}, "
                            f"not {what}")


def read_csv(path: Path, spec: CsvSpec = GENERIC_CSV) -> pd.DataFrame | None:
    """Read a CSV file and check it against ``spec``; None when the file is absent.

    Raises
    ------
    ResultFileError
        If the file cannot be parsed, a row has too few or too many cells,
        a required column is missing, or a number column holds a non-number.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        _check_rows(path)
        frame = pd.read_csv(path, dtype={c: str for c in spec.text}, keep_default_na=spec.keep_default_na,
                            na_values=spec.na_values or None)
    except pd.errors.EmptyDataError:
        if spec.required:
            raise ResultFileError(f"{path} is empty; expected the columns {', '.join(spec.required)}") from None
        return pd.DataFrame()
    except UnicodeDecodeError:
        raise ResultFileError(f"cannot read {path}: not UTF-8 text") from None
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        if isinstance(exc, ResultFileError):
            raise
        raise ResultFileError(f"cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise ResultFileError(f"{path} lacks the column(s) {', '.join(missing)}")
    for column in spec.numbers:
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").astype(float)
            bad = ~np.isfinite(values)
            if bad.any():
                raise _bad_cell(path, frame, column, bad, "a finite number")
            frame[column] = values
    for column in frame.columns:
        if column in spec.text and frame[column].isna().any():
            raise _bad_cell(path, frame, column, frame[column].isna(), "a name")
    checked = set(spec.numbers) | set(spec.integers) | set(spec.flags) | set(spec.text)
    for column in [c for c in frame.columns if c in spec.blank_or_numbers or (_is_metric(c) and c not in checked)]:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & ~frame[column].astype(str).str.strip().str.lower().isin(_BLANK)
            if bad.any():
                raise _bad_cell(path, frame, column, bad, "a number or blank")
            frame[column] = values
    for column in spec.flags:
        if column in frame.columns:
            bad = ~frame[column].astype(str).str.strip().str.lower().isin(_FLAGS)
            if bad.any():
                raise _bad_cell(path, frame, column, bad, "true or false")
    for column in spec.integers:
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() | (values.astype(float) % 1 != 0)
            if bad.any():
                raise _bad_cell(path, frame, column, bad, "an integer")
            frame[column] = values.astype("int64")
    return frame


def read_table(path: Path, kind: str | None = None) -> pd.DataFrame | None:
    """Read a CSV checked against its spec: that of ``<kind>/<file name>`` (``kind`` a folder, ``"dissect"``).

    Without ``kind``, or for a file the specs do not list, any table that parses.
    """
    return read_csv(path, spec_for(f"{kind}/{Path(path).name}") if kind else GENERIC_CSV)


def read_required_table(path: Path, kind: str, *, what: str) -> pd.DataFrame:
    """:func:`read_table` of a file a result cannot be without: absent, ``FileNotFoundError`` naming it."""
    frame = read_table(path, kind)
    if frame is None:
        raise FileNotFoundError(f"no {what} in {Path(path).parent} (missing {Path(path).name})")
    return frame


def read_required_json(path: Path, *, what: str) -> Any:
    """:func:`read_json` of a document a result cannot be without: absent, ``FileNotFoundError`` naming it."""
    document = read_json(path)
    if document is None:
        raise FileNotFoundError(f"no {what} in {Path(path).parent} (missing {Path(path).name})")
    return document


def read_checked_json(path: Path, kind: str, tables: tuple[str, ...], *, what: str) -> Any:
    """:func:`read_required_json`, then the ``tables`` beside it checked against ``kind``'s specs.

    For results read from their document and arrays alone: a missing
    document is a ``FileNotFoundError`` naming it, and a damaged file, a
    table included, a :class:`ResultFileError` rather than passed over.
    """
    document = read_required_json(path, what=what)
    for name in tables:
        read_table(Path(path).parent / name, kind)
    return document


def read_optional_table(path: Path, kind: str | None = None) -> pd.DataFrame:
    """:func:`read_table`, with an absent file read as an empty table (a file older versions did not write)."""
    frame = read_table(path, kind)
    return pd.DataFrame() if frame is None else frame


def as_bool(series: pd.Series) -> pd.Series:
    """A true/false column as booleans (``true``/``1``/``yes`` are true)."""
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin({"true", "1", "yes"})
