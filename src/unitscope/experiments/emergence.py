"""The snapshots of a training run as networks: opened, checked to be one architecture, and their null.

What :func:`unitscope.study.emergence_study` dissects: each snapshot is a
checkpoint file (read with ``weights_only=True`` through
:func:`~unitscope.models.loading.load_model`) or a network already in
memory.  Every snapshot must be the architecture of the first (same
parameter names and shapes), or the run stops before any dissection, in
one line naming the snapshot.  The null is the same architecture with
seeded random weights (:func:`~unitscope.models.registry.random_like` for a
registry network, every parameter drawn again otherwise).  A snapshot's
dissection becomes rows of the emergence result's ``units.csv``
(:func:`snapshot_units`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Union

import pandas as pd
import torch
from torch import nn

from unitscope.results.dissection import DissectionResult
from unitscope.results.emergence import UNIT_COLUMNS

__all__ = ["SnapshotEntry", "snapshot_entries", "open_snapshot", "snapshot_name", "architecture",
           "check_architecture", "null_of", "snapshot_units"]

#: ``(step, checkpoint path or network)``
SnapshotEntry = tuple[int, Union[str, Path, nn.Module]]


def snapshot_entries(snapshots) -> list[SnapshotEntry]:
    """``snapshots`` as ``(step, path or network)`` pairs in step order.

    A folder is read with :func:`~unitscope.training.snapshots.read_snapshots`
    (its ``snapshots.json``); a sequence of pairs is checked: positive,
    distinct integer steps.

    Raises
    ------
    FileNotFoundError
        A folder without a manifest, or a checkpoint it names that is missing.
    ValueError
        An empty sequence, a step that is not a positive integer or is repeated.
    """
    from unitscope.training.snapshots import read_snapshots

    if isinstance(snapshots, (str, Path)):
        return [(s.step, s.path) for s in read_snapshots(snapshots)]
    entries = list(snapshots)
    if not entries:
        raise ValueError("emergence needs at least one snapshot")
    for entry in entries:
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ValueError(f"a snapshot is a (step, checkpoint path or network) pair, not {entry!r}")
        step = entry[0]
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"a snapshot's step must be a positive integer, not {step!r}")
    steps = [int(e[0]) for e in entries]
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise ValueError(f"snapshot step(s) given more than once: {', '.join(map(str, repeated))}")
    return sorted(((int(s), m) for s, m in entries), key=lambda e: e[0])


def snapshot_name(entry: SnapshotEntry) -> str:
    """How messages name a snapshot: its file, else its step."""
    step, source = entry
    return f"{source} (step {step})" if isinstance(source, (str, Path)) else f"the snapshot of step {step}"


def open_snapshot(entry: SnapshotEntry, preprocessing: dict | None = None) -> nn.Module:
    """The snapshot's network (in eval mode): its checkpoint loaded, or the network given."""
    from unitscope.models.loading import load_model

    _, source = entry
    if isinstance(source, nn.Module):
        return source
    return load_model(None, weights=Path(source), preprocessing=preprocessing or None)


def architecture(model: nn.Module) -> tuple:
    """What two snapshots of one run share: the architecture's name and every parameter's name and shape."""
    from unitscope.models.info import model_info

    return (model_info(model).arch, tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()))


def check_architecture(model: nn.Module, first: nn.Module, entry: SnapshotEntry, first_entry: SnapshotEntry) -> None:
    """Refuse a snapshot of another architecture than the first snapshot's (one line naming both)."""
    mine, theirs = architecture(model), architecture(first)
    if mine == theirs:
        return
    if mine[0] != theirs[0]:
        what = f"it is a {mine[0]}, not a {theirs[0]}"
    else:
        names = dict(theirs[1])
        differs = next((k for k, shape in mine[1] if names.get(k) != shape), None) or next(
            k for k in names if k not in dict(mine[1]))
        what = f"its parameter {differs!r} differs"
    raise ValueError(f"{snapshot_name(entry)} is not the architecture of {snapshot_name(first_entry)} ({what}): "
                     "the snapshots of one emergence run must be one architecture")


def null_of(model: nn.Module, *, seed: int) -> nn.Module:
    """The same architecture as ``model`` with random weights drawn from ``seed`` (the global generator untouched)."""
    from unitscope.models.info import ModelInfo, attach_info
    from unitscope.models.loading import reinitialised
    from unitscope.models.registry import random_like

    if getattr(model, "_unitscope_build", None) is not None:
        return random_like(model, seed=seed)
    twin = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reinitialised(twin)
    if isinstance(getattr(model, "unitscope_info", None), ModelInfo):
        attach_info(twin, dataclasses.replace(model.unitscope_info, weights="random", seed=seed))
    return twin


def snapshot_units(result: DissectionResult, *, step: int | None) -> pd.DataFrame:
    """One snapshot's dissection as rows of ``units.csv`` (``step`` None: the null's rows)."""
    units = result.to_frame()
    frame = units.assign(step=pd.array([step] * len(units), dtype="Int64"), null=step is None)
    return frame[UNIT_COLUMNS].reset_index(drop=True)
