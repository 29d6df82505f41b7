"""Run metadata: what a run was asked, with what it ran, and how long it took (``run.json``).

Two kinds share the file name (:data:`~unitscope.results.layout.RUN_JSON`):

* the study's ``RESULTS/run.json`` (``unitscope demo``): ``config``,
  ``versions``, ``timings`` (seconds per stage), ``networks`` (per network:
  architecture, weights, accuracy) and ``world``;
* a command's ``RESULTS/<network>/<command>/run.json``: ``command``,
  ``options``, ``networks`` (preprocessing, weights fingerprint), ``seed``,
  ``versions``, ``started`` / ``finished`` (UTC), ``wall_seconds`` and
  ``stages`` (seconds per stage).

Times vary from run to run, so they live here and never in the result files,
which are byte-identical between runs.  Keys this module does not know are
kept in :attr:`RunMetadata.extra` and written back after the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitscope.results.layout import RUN_JSON
from unitscope.results.schema import read_json
from unitscope.results.writing import write_json

__all__ = ["RunMetadata", "load_run"]

_STUDY_KEYS = ("config", "versions", "timings", "networks", "world")
_COMMAND_KEYS = ("command", "options", "networks", "seed", "versions", "started", "finished", "wall_seconds",
                 "stages")


@dataclass
class RunMetadata:
    """One ``run.json``: a study's (``command`` None) or a command's."""

    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)
    world: dict | None = None
    command: str | None = None
    options: dict = field(default_factory=dict)
    seed: int | None = None
    started: str | None = None
    finished: str | None = None
    wall_seconds: float | None = None
    stages: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def is_command(self) -> bool:
        """Whether this is one command's record (else the study's)."""
        return self.command is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, known keys first in the order the writers use, then :attr:`extra`."""
        if self.is_command:
            document = {key: getattr(self, key) for key in _COMMAND_KEYS}
        else:
            document = {key: getattr(self, key) for key in _STUDY_KEYS if key != "world" or self.world is not None}
        return {**document, **{k: v for k, v in self.extra.items() if k not in document}}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "RunMetadata":
        """The metadata of a parsed ``run.json`` (missing keys: empty)."""
        known = set(_STUDY_KEYS) | set(_COMMAND_KEYS)
        values = {key: document[key] for key in known if key in document and document[key] is not None}
        return cls(**values, extra={k: v for k, v in document.items() if k not in known})

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/run.json`` (atomically) and return its path."""
        return write_json(Path(folder) / RUN_JSON, self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> "RunMetadata":
        """Read ``folder/run.json``.

        Raises
        ------
        FileNotFoundError
            If there is no ``run.json`` in ``folder``.
        ResultFileError
            If it is not a JSON object, or a known key has the wrong type.
        """
        document = read_json(Path(folder) / RUN_JSON)
        if document is None:
            raise FileNotFoundError(f"no {RUN_JSON} in {folder}")
        return cls.from_dict(document)


def load_run(results_dir: Path) -> RunMetadata | None:
    """The study's ``RESULTS/run.json``, or None when there is none."""
    path = Path(results_dir) / RUN_JSON
    return RunMetadata.load(results_dir) if path.is_file() else None
