"""Human labels of a network: the tables ``unitscope label results`` writes, and how they are read.

Written beside the automatic tables (``RESULTS/<network>/human``)::

    units.csv      per unit: consensus label and type, precision, agreement, the annotators' labels and types
    layers.csv     per layer: share of each type, mean precision, share of precise units, mean agreement
    compare.csv    per unit with an automatic label: human vs automatic label and type
    summary.json   the network's totals, agreement rates and a confusion table of types
    answers.csv    (imported crowd labels only) every answer: annotator, layer, unit, label, type, precision

:mod:`unitscope.label.results` computes them from the stored answers;
this module is the one definition of their files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from unitscope._files import atomic_write_bytes
from unitscope.results.layout import ANSWERS_CSV, COMPARE_CSV, HUMAN, LAYERS_CSV, SUMMARY_JSON, UNITS_CSV, human_dir
from unitscope.results.schema import read_json, read_optional_table, read_required_table, read_table
from unitscope.taxonomy import TYPES

__all__ = ["UNIT_COLUMNS", "LAYER_COLUMNS", "COMPARE_COLUMNS", "HumanResults", "load_human"]

UNIT_COLUMNS = ["network", "layer", "unit", "label", "type", "precision", "agreement", "n_annotations",
                "type_agreement", "labels", "types"]
LAYER_COLUMNS = (
    ["network", "layer", "n_units"]
    + [f"share_{name}" for name in TYPES]
    + ["mean_precision", "precision_over_75", "mean_agreement", "mean_type_agreement"]
)
COMPARE_COLUMNS = ["network", "layer", "unit", "human_label", "human_type", "auto_label", "auto_category",
                   "auto_type", "auto_iou", "label_match", "type_match"]


@dataclass
class HumanResults:
    """Human labels of one network: per unit, per layer, compared with the automatic labels."""

    network: str
    units: pd.DataFrame
    layers: pd.DataFrame
    compare: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    answers: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table."""
        return self.units

    def save(self, directory: str | Path) -> Path:
        """Write ``units.csv``, ``layers.csv``, ``compare.csv``, ``summary.json`` (and ``answers.csv``) atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tables = [(UNITS_CSV, self.units), (LAYERS_CSV, self.layers), (COMPARE_CSV, self.compare)]
        for name, frame in tables + ([(ANSWERS_CSV, self.answers)] if self.answers is not None else []):
            atomic_write_bytes(directory / name, frame.to_csv(index=False).encode("utf-8"))
        atomic_write_bytes(directory / SUMMARY_JSON, (json.dumps(self.summary, indent=1) + "\n").encode("utf-8"))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, network: str | None = None) -> "HumanResults":
        """Read the tables written by :meth:`save`.

        ``network`` defaults to ``summary.json``'s, else the name of the
        folder above ``directory``.  Only ``units.csv`` is required (else
        ``FileNotFoundError``); the other files read as empty tables / an empty
        summary when absent, and one that cannot be read is a
        :class:`~unitscope.results.schema.ResultFileError`.
        """
        directory = Path(directory)
        units = read_required_table(directory / UNITS_CSV, HUMAN, what="human labels")
        summary = read_json(directory / SUMMARY_JSON) or {}
        return cls(network=network or str(summary.get("network") or directory.resolve().parent.name), units=units,
                   layers=read_optional_table(directory / LAYERS_CSV, HUMAN),
                   compare=read_optional_table(directory / COMPARE_CSV, HUMAN), summary=summary,
                   answers=read_table(directory / ANSWERS_CSV, HUMAN))


def load_human(results_dir: Path, network: str) -> HumanResults | None:
    """The human labels of ``RESULTS/<network>/human``; None when there is no ``units.csv``."""
    folder = human_dir(results_dir, network)
    return HumanResults.load(folder, network=network) if (folder / UNITS_CSV).is_file() else None
