"""Localisation (and, for now, ablation) folders as the report reads them: every file they hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from unitscope.results.layout import IMAGE_SUFFIXES
from unitscope.results.schema import read_csv, read_json, spec_for

__all__ = ["ExperimentFiles", "load_experiment_files"]


@dataclass
class ExperimentFiles:
    """Whatever an experiment folder holds: its tables, JSON documents and images."""

    network: str
    name: str
    tables: dict[str, pd.DataFrame]  # relative path -> frame
    documents: dict[str, Any]  # relative path -> parsed JSON
    images: list[Path]


def load_experiment_files(results_dir: Path, network: str, name: str, *,
                          max_images: int = 48) -> ExperimentFiles | None:
    """Every CSV, JSON and image under ``<network>/<name>``; None when the folder is absent or empty.

    Used for localisation and ablation, whose exact tables the report reads
    by column name when it knows them and shows as plain tables otherwise.
    """
    base = Path(results_dir) / network / name
    if not base.is_dir():
        return None
    tables, documents, images = {}, {}, []
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        suffix = path.suffix.lower()
        if suffix == ".csv":
            tables[rel] = read_csv(path, spec_for(f"{name}/{rel}"))
        elif suffix == ".json":
            documents[rel] = read_json(path)
        elif suffix in IMAGE_SUFFIXES and len(images) < max_images:
            images.append(path)
    if not (tables or documents or images):
        return None
    return ExperimentFiles(network=network, name=name, tables=tables, documents=documents, images=images)
