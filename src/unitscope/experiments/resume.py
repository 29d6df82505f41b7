"""Checkpoint and resume of long runs: one mechanism for every experiment and the study's stages.

Every long experiment (``dissect``, ``layer_preference``, ``minimal_images``,
``empirical_receptive_fields``, ``localize_objects``, ``ablate_detectors``)
takes ``work_dir=None`` and ``restart=False``.  With a ``work_dir`` it saves
its progress there as it goes; called again with the same arguments after an
interruption it carries on where the last checkpoint left off and returns
what an uninterrupted run returns (the same batches in the same order, the
statistics merged exactly).  When it finishes it removes its own state.

* :class:`RunState` -- one process's state of a run over batches, one
  ``rank<r>.state.npz`` (:func:`~unitscope.experiments._io.write_state`:
  JSON structure and arrays, read without unpickling);
* :class:`BatchCheckpoints` -- a single-pass batch loop on a RunState
  (preference, localisation, ablation);
* :class:`SavedParts` -- a run cut into parts (chunks of images for the
  minimal images, layers for the receptive fields), each part saved as a
  result when it is done;
* :class:`Stages` -- the study's stages, each run once per configuration.

Every state is keyed by the run's configuration: the weights' fingerprint
(:func:`weights_fingerprint`), the data (:func:`data_key`: image ids,
preprocessing), the options and the unitscope version.  A state of another
configuration is refused with one line saying what differs (other weights,
other data, which option) and the way out: ``restart=True`` (``--restart``)
discards it and starts over.  A corrupt state, or a file that is not
unitscope's, is refused too, never unpickled and never taken for "nothing
done".  What a run removes (when it finishes, or starts afresh) is only
what it names as its own: its state file, its scratch files, its parts,
temporaries of killed writes, and the folders if they are left empty.

A stage of the study is different: its outputs are whole results that a
stage run again replaces, so :class:`Stages` runs a stage again when its
configuration changed (a retrained network re-runs what depends on it).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from unitscope._configs import differences, plain
from unitscope._files import make_temp_dir, one_line, remove_dead_temps
from unitscope.experiments._io import read_json, read_state, write_state
from unitscope.results.layout import safe_name
from unitscope.results.writing import write_json

__all__ = ["RunState", "BatchCheckpoints", "SavedParts", "Stages", "weights_fingerprint", "config_key",
           "data_key"]

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


def _refusal(folder: Path, what: str) -> ValueError:
    return ValueError(f"{folder} holds a partial run with other arguments ({what}); "
                      "pass restart=True (--restart) to start over, or delete it")


class RunState:
    """Periodic, atomic checkpoints of one process's part of a run.

    Parameters
    ----------
    folder : Path
        Where state files live (created on first save).
    key : str
        The run's configuration key; a state file with another key is refused.
    config : dict, keyword-only
        The configuration the key was made from: saved with the state, so that
        a refusal can say what differs.
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

    def __init__(self, folder: Path, key: str, *, config: dict[str, Any] | None = None, rank: int = 0,
                 restart: bool = False, scratch: Sequence[str] = ()) -> None:
        self.folder = Path(folder)
        self.key = key
        self.config = config
        self.rank = rank
        self.path = self.folder / f"rank{rank}.state.npz"
        self.scratch = tuple(scratch)
        legacy = self.folder / f"rank{rank}.pkl"
        if legacy.exists() and not restart:
            raise ValueError(
                f"{legacy} is a partial run saved by an earlier unitscope as a pickle, which is never "
                "loaded (unpickling can run code); pass restart=True (--restart) to discard it and start over")
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
                             f"restart=True (--restart) to start over (or delete {self.folder})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"the saved state {self.path} is not a unitscope run state of this version; "
                             "pass restart=True (--restart) to start over")
        if state.get("key") != self.key:
            saved = state.get("config")
            try:
                saved = json.loads(saved) if isinstance(saved, str) else None
            except ValueError:
                saved = None
            raise _refusal(self.folder, differences(saved, self.config or {}))
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
        extra = {} if self.config is None else {"config": json.dumps(self.config, sort_keys=True, default=str)}
        write_state(self.path, dict(state, key=self.key, format=STATE_FORMAT, **extra))

    def clear(self) -> None:
        """Remove this rank's files (the run finished); then the folder and ``.partial`` if left empty."""
        self._remove_own_files(legacy=True)
        _remove_empty(self.folder)


def _remove_empty(folder: Path) -> None:
    """``folder``, then its ``.partial`` parent, when they are empty (others' files stay)."""
    for path in (folder, folder.parent):
        if path.name != ".partial" and path != folder:
            break
        try:
            path.rmdir()
        except OSError:
            break


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
        self.state = None if folder is None else RunState(Path(folder), config_key(config), config=config,
                                                          restart=restart)

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
    restart : bool, keyword-only
        Forget the recorded stages (the record is rewritten when the first stage ends).
    """

    def __init__(self, file: str | Path, log: Callable[[str], None] | None = None, *,
                 restart: bool = False) -> None:
        self.file = Path(file)
        try:
            self.done = read_json(self.file) if self.file.exists() and not restart else {}
        except ValueError as exc:
            raise ValueError(f"{exc}; delete it to start over") from None
        if not isinstance(self.done, dict) or not all(
                isinstance(entry, dict) and isinstance(entry.get("key"), str) for entry in self.done.values()):
            raise ValueError(f"{self.file} is not a record of finished stages; delete it to start over")
        self.timings: dict[str, float] = {}
        self.log = log or (lambda line: None)

    def is_done(self, name: str, config: dict) -> bool:
        """Whether stage ``name`` is recorded with ``config``'s key."""
        return self.done.get(name, {}).get("key") == config_key(config)

    def run(self, name: str, config: dict, func: Callable[[], object], *, record: dict | None = None):
        """``func()`` unless stage ``name`` is recorded with this ``config``'s key; its output, else None.

        ``record``: more (JSON) values to keep in the stage's entry beside its key.
        """
        if self.is_done(name, config):
            self.log(f"{name}: cached")
            self.timings[name] = 0.0
            return None
        self.log(f"{name} ...")
        start = time.perf_counter()
        out = func()
        self.timings[name] = time.perf_counter() - start
        # no time here: it lives in results folders (run.json has times)
        self.done[name] = dict(record or {}, key=config_key(config))
        write_json(self.file, self.done)
        self.log(f"{name}: {self.timings[name]:.0f} s")
        return out


class SavedParts:
    """A run cut into parts, each saved as a result in ``folder`` when done; all no-ops without a folder.

    A part recorded (in ``folder/.stages.json``, a :class:`Stages` record)
    with the run's configuration is loaded instead of computed again.  The
    parts of a run with another configuration are refused up front with
    what differs.  Each part is written in a temporary folder and moved to
    ``folder/<part>`` when complete; those folders, the record and the
    temporaries of killed writes are the run's own files.

    Parameters
    ----------
    folder : path or None
        The run's work folder; None: every part is computed, nothing saved.
    config : dict
        Everything the results depend on (weights fingerprint, data, options, version).
    restart : bool, keyword-only
        Discard the saved parts instead of resuming them.
    log : callable, keyword-only
        Receives ``"<part>: cached"`` and the like (see :class:`Stages`).

    Raises
    ------
    ValueError
        If ``folder`` holds parts of a run with other arguments, or a damaged record.
    """

    def __init__(self, folder: str | Path | None, config: dict[str, Any], *, restart: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.config = plain(config)
        if self.folder is None:
            return
        if restart:
            self._remove_own_files()
        self.stages = Stages(self.folder / ".stages.json", log)
        for entry in self.stages.done.values():
            if entry.get("config") != self.config:
                raise _refusal(self.folder, differences(entry.get("config"), self.config))

    def part(self, name: str, config: dict[str, Any], compute: Callable[[], Any], *,
             save: Callable[[Any, Path], object], load: Callable[[Path], Any]):
        """Part ``name``'s result: ``compute()`` unless it is saved with ``config``.

        With a folder the result is always the one read back by ``load``
        (computed now or by an earlier run alike, so a resumed run gives
        what an uninterrupted one gives); without, ``compute()``'s.
        """
        if self.folder is None:
            return compute()
        target = self.folder / safe_name(name)

        def compute_and_save():
            result = compute()
            remove_dead_temps(self.folder, target.name)
            scratch = make_temp_dir(self.folder, target.name)
            try:
                save(result, scratch)
                if target.is_dir():  # a part saved, but not recorded, by a run stopped in between
                    shutil.rmtree(target)
                os.replace(scratch, target)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise

        self.stages.run(name, dict(self.config, part=config), compute_and_save, record={"config": self.config})
        try:
            return load(target)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise ValueError(f"the saved part {target} is damaged or not unitscope's ({one_line(exc)}); "
                             "pass restart=True (--restart) to start over") from None

    def finish(self) -> None:
        """The run is done: remove its parts and record, then the folder and ``.partial`` if left empty."""
        if self.folder is not None:
            self._remove_own_files()
            _remove_empty(self.folder)

    def _remove_own_files(self) -> None:
        record = self.folder / ".stages.json"
        try:
            names = read_json(record) if record.is_file() else {}
        except ValueError:
            names = {}  # a damaged record: the parts it named are unknown; nothing else is removed
        for name in names if isinstance(names, dict) else {}:
            part = self.folder / safe_name(str(name))
            remove_dead_temps(self.folder, part.name)
            if part.is_dir() and not part.is_symlink():
                shutil.rmtree(part)
        record.unlink(missing_ok=True)
        remove_dead_temps(self.folder, record.name)
