"""Checkpoints of long runs: save statistics periodically, resume with the same arguments.

A run stores, under its output folder, a small state file per process
(``rank<r>.state.npz``, see :func:`~unitscope.experiments._io.write_state`)
holding the run's full key (model weights hash, layers, data, options, code
version), which pass it is in, how many batches of that pass are done, and
the state of every statistic.  Started again with the same arguments, it
carries on from there; started with other arguments it refuses (delete the
partial folder or pass ``restart=True``).  A corrupt state file is an error,
never a silent recompute.  The file is read without unpickling anything;
the ``rank<r>.pkl`` pickles of earlier versions are refused, never loaded.

The state folder is unitscope's own: a run removes from it only the names
it makes (its state file, the scratch files its caller names, temporaries
of killed writes), when it finishes, when it fails before its first
checkpoint, and when it starts afresh.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from unitscope._files import one_line, remove_dead_temps
from unitscope.experiments._io import read_state, write_state

__all__ = ["RunState", "BatchCheckpoints", "weights_fingerprint", "config_key"]

STATE_FORMAT = 2


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer of ``model`` (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class RunState:
    """Periodic, atomic checkpoints of one process's part of a run.

    Parameters
    ----------
    folder : Path
        Where state files live (created on first save).
    key : str
        The run's configuration key; a state file with another key is refused.
    rank : int, keyword-only
        Process rank (one file per rank).
    restart : bool, keyword-only
        Ignore (and delete) an existing state instead of refusing it.
    scratch : sequence of str, keyword-only
        Glob patterns of the other files this rank keeps in ``folder``
        (e.g. an activation cache): removed with the state, and on a fresh
        start (without a state they cannot be resumed from).

    Raises
    ------
    ValueError
        If ``folder`` holds a pickled state of an earlier version and
        ``restart`` is false.
    """

    def __init__(self, folder: Path, key: str, *, rank: int = 0, restart: bool = False,
                 scratch: Sequence[str] = ()) -> None:
        self.folder = Path(folder)
        self.key = key
        self.rank = rank
        self.path = self.folder / f"rank{rank}.state.npz"
        self.scratch = tuple(scratch)
        legacy = self.folder / f"rank{rank}.pkl"
        if legacy.exists() and not restart:
            raise ValueError(
                f"{legacy} is a partial run saved by an earlier unitscope as a pickle, which is never "
                "loaded (unpickling can run code); pass --restart to discard it and start over")
        if restart or not self.path.exists():
            self._remove_own_files(legacy=True)
        else:
            self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Temporaries of writes killed midway (never the live state)."""
        remove_dead_temps(self.folder, self.path.name)
        if self.folder.is_dir():  # earlier versions' temporaries: ".rank<r>.pkl.<8 random>"
            for path in self.folder.glob(f".rank{self.rank}.pkl.????????"):
                path.unlink(missing_ok=True)

    def _remove_own_files(self, *, legacy: bool = False) -> None:
        self._remove_leftovers()
        if not self.folder.is_dir():
            return
        patterns = (self.path.name,) + self.scratch + ((f"rank{self.rank}.pkl",) if legacy else ())
        for entry in os.scandir(self.folder):
            if entry.is_file(follow_symlinks=False) and any(fnmatch.fnmatchcase(entry.name, p)
                                                             for p in patterns):
                os.unlink(entry.path)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none.

        Raises
        ------
        ValueError
            If the state file is corrupt or belongs to a run with other arguments.
        """
        if not self.path.exists():
            return None
        try:
            state = read_state(self.path)
        except ValueError as exc:
            raise ValueError(f"the saved state is corrupt or not unitscope's: {one_line(exc)}; pass "
                             f"--restart to start over (or delete {self.folder})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"the saved state {self.path} is not a unitscope run state of this version; "
                             "pass --restart to start over")
        if state.get("key") != self.key:
            raise ValueError(
                f"{self.folder} holds a partial run with other arguments (key {state.get('key')} "
                f"!= {self.key}); delete it or pass --restart to start over"
            )
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
        write_state(self.path, dict(state, key=self.key, format=STATE_FORMAT))

    def clear(self) -> None:
        """Remove this rank's files (the run finished); then the folder and ``.partial`` if left empty."""
        self._remove_own_files(legacy=True)
        for folder in (self.folder, self.folder.parent):
            if folder.name != ".partial" and folder != self.folder:
                break
            try:
                folder.rmdir()  # only when empty: other ranks', or a user's, files stay
            except OSError:
                break


def tensor_to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


class BatchCheckpoints:
    """Periodic checkpoints of a single-pass batch loop; all no-ops without a folder.

    The loop asks :meth:`resume` for the saved accumulators (and the number
    of batches they cover), skips those batches, calls :meth:`done` after
    each batch with a function returning its accumulators, and
    :meth:`finish` at the end (the folder is removed).

    Parameters
    ----------
    folder : path or None
        Where the state goes; None: no checkpoints, no resume.
    config : dict
        Everything the results depend on (weights fingerprint, data, options).
    every : int
        Batches between checkpoints.
    restart : bool
        Discard a saved state instead of resuming it.
    """

    def __init__(self, folder: str | Path | None, config: dict[str, Any], *, every: int = 20,
                 restart: bool = False) -> None:
        if isinstance(every, bool) or int(every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {every}")
        self.every = int(every)
        self.state = None if folder is None else RunState(Path(folder), config_key(config), restart=restart)

    def resume(self) -> tuple[int, dict[str, Any] | None]:
        """``(batches done, accumulators)`` of a saved state, else ``(0, None)``."""
        saved = self.state.load() if self.state is not None else None
        if not saved:
            return 0, None
        return int(saved["batch"]), saved["accumulators"]

    def done(self, batch: int, accumulators, *, force: bool = False) -> None:
        """``batch`` batches are done; save every ``every`` (``accumulators()`` is called only then)."""
        if self.state is not None and (force or batch % self.every == 0):
            self.state.save({"batch": batch, "accumulators": accumulators()})

    def finish(self) -> None:
        if self.state is not None:
            self.state.clear()


def data_key(data) -> dict[str, Any]:
    """What identifies a data set in a run's key: its type, size, image ids and preprocessing.

    The preprocessing is the pool transform's own description (size,
    geometry, channel order, scale, mean, std): a run resumed with other
    preprocessing would mix two sets of numbers.
    """
    ids = getattr(data, "ids", None)
    transform = getattr(data, "transform", None)
    describe = getattr(transform, "describe", None)
    return {"type": type(data).__name__, "n": len(data),
            "ids": config_key({"ids": list(ids)}) if ids is not None else None,
            "transform": describe() if callable(describe) else type(transform).__name__}
