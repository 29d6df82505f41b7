"""Where an unfinished training run keeps what it needs to continue.

A run writes ``<cache_dir>/networks/.partial/<network>-<key16>/``:
``state.pt`` (the model's and optimizer's state, the learning-rate
schedule, the step, the epoch and the position in it, the epoch's image
order, and both random generators: the data generator and torch's global
one, which dropout draws from) and, when asked for snapshots,
``snapshots/step-*.pt``.  The state is saved at every snapshot and at the
end of every epoch, as tensors and plain values written atomically and
read back with ``torch.load(weights_only=True)``; a run started again with
the same configuration continues from it and ends with the same bytes as
an uninterrupted run.  A state saved under another configuration is
refused in one line naming what differs.  The finished run moves its
snapshots into the cache entry and removes the files it wrote here, and
nothing else.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from unitscope._configs import differences, plain
from unitscope._files import atomic_write_bytes, one_line

__all__ = ["PartialTraining", "partial_dir"]

STATE_FILE = "state.pt"
SNAPSHOT_FOLDER = "snapshots"


def partial_dir(cache_dir: str | Path, network: str, key: str) -> Path:
    """``<cache_dir>/networks/.partial/<network>-<key16>``."""
    return Path(cache_dir).expanduser() / "networks" / ".partial" / f"{network}-{key[:16]}"


class PartialTraining:
    """The resume state of one training configuration.

    Parameters
    ----------
    folder : Path
        :func:`partial_dir` of the run.
    config : dict
        What must match to resume (the training configuration and whether
        snapshots are saved).
    restart : bool
        Discard a saved state instead of resuming it.
    """

    def __init__(self, folder: Path, config: dict[str, Any], *, restart: bool = False) -> None:
        self.folder = Path(folder)
        self.config = plain(config)
        self.snapshots = self.folder / SNAPSHOT_FOLDER
        if restart:
            self.clear()

    @property
    def state_file(self) -> Path:
        return self.folder / STATE_FILE

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none.

        Raises
        ------
        ValueError
            If the state is unreadable or was saved under another configuration.
        """
        if not self.state_file.is_file():
            return None
        try:
            state = torch.load(self.state_file, weights_only=True)
            saved = json.loads(state["config"])
        except Exception as exc:  # noqa: BLE001 - every unreadable state is refused the same way
            raise ValueError(f"training resume state {self.state_file} is unreadable ({one_line(exc)}); "
                             "delete it or retrain (--retrain)") from None
        if saved != self.config:
            raise ValueError(f"{self.folder} holds a partial training with other arguments "
                             f"({differences(saved, self.config)}); retrain (--retrain) to start over, "
                             "or delete it")
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (tensors and plain values) atomically."""
        buffer = io.BytesIO()
        torch.save(dict(state, config=json.dumps(self.config, sort_keys=True)), buffer)
        atomic_write_bytes(self.state_file, buffer.getvalue())

    def clear(self) -> None:
        """Remove the files a run writes here (its state and snapshots), then the folders if empty."""
        self.state_file.unlink(missing_ok=True)
        if self.snapshots.is_dir():
            for f in self.snapshots.glob("step-*.pt"):
                f.unlink()
            (self.snapshots / "snapshots.json").unlink(missing_ok=True)
        for folder in (self.snapshots, self.folder, self.folder.parent):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (someone else's files) or absent
