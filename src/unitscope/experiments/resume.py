"""Checkpoint and resume of long runs (experiments and the study's stages).

:class:`Stages` runs named stages once per configuration: a stage whose
key (:func:`config_key` of its configuration) is recorded in its JSON file
is skipped, so an interrupted study resumes at the stage it was in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from unitscope.experiments._io import read_json, write_json
from unitscope.experiments._runstate import config_key

__all__ = ["Stages"]


class Stages:
    """Runs named stages once per configuration, so an interrupted command resumes by stage.

    A stage whose configuration key is recorded in ``file`` (written when it
    completed) is skipped; its timing is then 0.  The file is plain JSON; one
    that is damaged or not a record of stages is refused (naming it), never
    taken for "nothing done".

    Parameters
    ----------
    file : path
        The record, ``{stage: {"key": config_key(config)}}``.
    log : callable
        Receives one-line status messages (``"<stage>: cached"``, ``"<stage> ..."``,
        ``"<stage>: <seconds> s"``).
    """

    def __init__(self, file: str | Path, log: Callable[[str], None] = lambda s: None) -> None:
        self.file = Path(file)
        try:
            self.done = read_json(self.file) if self.file.exists() else {}
        except ValueError as exc:
            raise ValueError(f"{exc}; delete it to start over") from None
        if not isinstance(self.done, dict) or not all(
                isinstance(entry, dict) and isinstance(entry.get("key"), str) for entry in self.done.values()):
            raise ValueError(f"{self.file} is not a record of finished stages; delete it to start over")
        self.timings: dict[str, float] = {}
        self.log = log

    def run(self, name: str, config: dict, func: Callable[[], object]):
        """``func()`` unless stage ``name`` is recorded with this ``config``'s key; its output, else None."""
        key = config_key(config)
        if self.done.get(name, {}).get("key") == key:
            self.log(f"{name}: cached")
            self.timings[name] = 0.0
            return None
        self.log(f"{name} ...")
        start = time.perf_counter()
        out = func()
        self.timings[name] = time.perf_counter() - start
        self.done[name] = {"key": key}  # no time here: it lives in results folders (run.json has times)
        write_json(self.file, self.done)
        self.log(f"{name}: {self.timings[name]:.0f} s")
        return out
