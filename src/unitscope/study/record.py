"""``run.json``: what a run was asked, with what it ran, and how long each stage took.

Every command that runs a network writes one into its output folder
(``OUT/NAME/<command>/run.json``; ``OUT/preference/run.json``): all its
options, the preprocessing and weights fingerprint of each network, the
seed, the versions of unitscope, torch, torchvision, numpy and Python, the
start and end times (UTC) and the wall time of each stage.  Times vary from
run to run, so they live here and never in the result files, which are
byte-identical between runs.  The file is a
:class:`~unitscope.results.run.RunMetadata`, the one definition of
``run.json`` that the report reads back.
"""

from __future__ import annotations

import contextlib
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from unitscope.results.run import RunMetadata

__all__ = ["RunRecord"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    import unitscope

    return {"unitscope": unitscope.__version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


class RunRecord:
    """Collects a command's ``run.json`` as it runs; :meth:`write` puts it in place atomically.

    Parameters
    ----------
    command : str
        The command's name.
    options : dict, optional
        Its options, as given (the CLI passes the parsed command line).
    """

    def __init__(self, command: str, options: dict[str, Any] | None = None) -> None:
        self.command = command
        self.options = dict(options or {})
        self.started = _now()
        self._start = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.seed: int | None = self.options.get("seed")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (added up when a stage runs more than once)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    def add_time(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` (times measured inside a library call)."""
        self.stages[name] = self.stages.get(name, 0.0) + float(seconds)

    def network(self, name: str, model, data=None) -> None:
        """Record a network's preprocessing (as applied to ``data``), weights source and fingerprint."""
        from unitscope.experiments._common import preprocessing_record
        from unitscope.experiments.resume import weights_fingerprint
        from unitscope.models import model_info

        info = model_info(model)
        self.networks[name] = {"model": info.arch, "weights": info.weights,
                               "weights_fingerprint": weights_fingerprint(model),
                               "preprocessing": preprocessing_record(model, data)}

    def metadata(self) -> RunMetadata:
        """The record so far, finished now, as the typed ``run.json`` of :mod:`unitscope.results.run`."""
        return RunMetadata(command=self.command, options=self.options, networks=self.networks, seed=self.seed,
                           versions=_versions(), started=self.started, finished=_now(),
                           wall_seconds=round(time.perf_counter() - self._start, 3),
                           stages={k: round(v, 3) for k, v in self.stages.items()})

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/run.json`` (atomically) and return its path."""
        return self.metadata().save(folder)
