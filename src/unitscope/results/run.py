"""Run metadata: ``RESULTS/run.json`` of the study."""

from __future__ import annotations

from pathlib import Path

from unitscope.results.layout import RUN_JSON
from unitscope.results.schema import read_json

__all__ = ["load_run"]


def load_run(results_dir: Path) -> dict | None:
    """``RESULTS/run.json`` as a dict (keys ``config``, ``versions``, ``timings``, ``networks``, ``world``), or None."""
    return read_json(Path(results_dir) / RUN_JSON)
