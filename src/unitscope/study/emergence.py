"""How detectors emerge during training: every snapshot of a run dissected over one pool.

:func:`emergence_study` is what ``unitscope emergence`` calls:

1. the snapshots are opened one by one and checked (one architecture, the
   layers exist) and fingerprinted, before any dissection;
2. a result saved with the same configuration (the snapshots' weights, the
   layers, the pool, the options) is returned as it is: no dissection;
3. otherwise each snapshot is dissected
   (:func:`~unitscope.experiments.dissect.dissect`, one forward pass with
   the activation cache on disk) and its per-unit labels saved as a part
   (:class:`~unitscope.experiments.resume.SavedParts` in
   ``RESULTS/emergence/<network>/.partial``): a killed run started again
   loads the snapshots it finished and resumes the one it was in from that
   dissection's own checkpoint;
4. the same architecture with random weights (the null) is dissected once,
   as the reference row;
5. the :class:`~unitscope.results.EmergenceResult` is saved in
   ``RESULTS/emergence/<network>/`` and the partial run removed.

The pool's masks are decoded once, by the first snapshot, into the label
cache; every later snapshot reads them back, so a snapshot costs about one
forward pass of the pool (``benchmarks/emergence_cost.py`` measures it).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from unitscope.study.progress import Progress, step

__all__ = ["emergence_study"]

#: dissect() options that change how a run goes, not what it finds (left out of the configuration key)
_NOT_KEYED = ("num_workers", "checkpoint_every", "restart", "work_dir", "label_cache", "progress")


def emergence_study(snapshots, layers: Sequence[str] | None, data, *, network: str, out: str | Path,
                    null: bool = True, seed: int = 0, preprocessing: dict | None = None, device: str = "cpu",
                    label_cache: str | Path | None = None, restart: bool = False,
                    progress: Optional[Progress] = None, log: Callable[[str], None] | None = None,
                    record=None, **dissect_options):
    """Dissect every snapshot of a training run (and the random-weights null) over ``data``.

    Parameters
    ----------
    snapshots : path or sequence of (int, path or nn.Module)
        A snapshot folder (its ``snapshots.json``, :mod:`unitscope.training.snapshots`)
        or ``(step, checkpoint path or network)`` pairs.
    layers : sequence of str or None
        Spatial layers to dissect (None: the first snapshot's default layers).
    data : annotated pool
        Transformed for the snapshots (the same pool for every one).
    network : str, keyword-only
        The run's name: its folder ``out/emergence/<network>``.
    out : path, keyword-only
        Results directory.
    null : bool, keyword-only
        Also dissect the architecture with random weights drawn from ``seed``.
    preprocessing : dict, keyword-only
        Preprocessing options the checkpoints are opened with
        (:func:`~unitscope.models.opening.preprocessing_options`).
    device : str, keyword-only
        Where the checkpoints' networks (and the null) run; networks given
        in memory run where they are.
    label_cache : path, keyword-only
        Where the pool's decoded masks are kept (for this run's snapshots and
        later dissections).  None: a folder of the run's own, removed at the end.
    restart : bool, keyword-only
        Discard a partial run (and a saved result) instead of resuming (returning) it.
    progress : callable, keyword-only
        ``progress(description) -> (callback, bar)``: one bar per snapshot's dissection.
    log : callable, keyword-only
        Status lines (``"step-00000004: cached"``).
    record : RunRecord, optional
        Times each snapshot and is written beside the result (``run.json``).
    **dissect_options
        Passed to :func:`~unitscope.experiments.dissect.dissect` (``batch_size``,
        ``iou_threshold``, ``quantile``, ...).

    Returns
    -------
    EmergenceResult

    Raises
    ------
    FileNotFoundError
        A snapshot folder without its manifest, or a missing checkpoint.
    LookupError
        A layer the network does not have.
    ValueError
        A snapshot of another architecture than the first, a partial run with
        other arguments (``restart=True`` starts over), a bad option.
    """
    from unitscope.experiments.emergence import (check_architecture, null_of, open_snapshot, snapshot_entries,
                                                 snapshot_units)
    from unitscope.experiments.resume import SavedParts, config_key, data_key, weights_fingerprint
    from unitscope.results import EmergenceResult, layout
    from unitscope.results.emergence import read_units

    entries = snapshot_entries(snapshots)

    def opened(entry):
        model = open_snapshot(entry, preprocessing)
        return model if model is entry[1] else model.to(device)

    first = opened(entries[0])
    layers = _checked_layers(first, layers, data)
    fingerprints = []
    for entry in entries:
        model = first if entry is entries[0] else opened(entry)
        check_architecture(model, first, entry, entries[0])
        fingerprints.append(weights_fingerprint(model))
    null_model = null_of(first, seed=seed).to(device) if null else None
    keyed = {k: v for k, v in dissect_options.items() if k not in _NOT_KEYED}
    config = {"network": network, "layers": layers, "data": data_key(data), "options": keyed,
              "iou_threshold": float(dissect_options.get("iou_threshold", 0.04)),
              "snapshots": [{"step": s, "weights": f} for (s, _), f in zip(entries, fingerprints)],
              "null": {"seed": seed, "weights": weights_fingerprint(null_model)} if null else None,
              "version": _version()}
    config["key"] = config_key(config)
    folder = layout.emergence_dir(out, network)
    say = log or (lambda line: None)
    if not restart and (folder / layout.EMERGENCE_JSON).is_file():
        saved = EmergenceResult.load(folder)
        if saved.key == config["key"]:
            say(f"emergence {network}: cached ({folder})")
            return saved
    work = layout.emergence_partial_dir(out, network)
    parts = SavedParts(work, {k: v for k, v in config.items() if k != "key"}, restart=restart, log=say)
    own_labels = label_cache is None
    labels = work / "labels" if own_labels else Path(label_cache)
    wall: dict[str, float] = {}

    def dissected(name: str, model_of: Callable, at: int | None):
        def compute():
            from unitscope.experiments.dissect import dissect

            with step(progress, f"dissect {name}") as callback:
                start = time.perf_counter()
                result = dissect(model_of(), layers, data, network=network, work_dir=work / "dissect",
                                 progress=callback, label_cache=labels, restart=restart, **dissect_options)
                return snapshot_units(result, step=at), time.perf_counter() - start

        def save(value, target: Path):
            from unitscope.results.emergence import write_units
            from unitscope.results.writing import write_json

            write_units(target / layout.UNITS_CSV, value[0])
            write_json(target / "part.json", {"wall_s": value[1]})

        def load(target: Path):
            from unitscope.results.schema import read_required_json

            return read_units(target / layout.UNITS_CSV), float(
                read_required_json(target / "part.json", what="snapshot part")["wall_s"])

        context = record.stage(f"dissect {name}") if record is not None else contextlib.nullcontext()
        with context:
            units, seconds = parts.part(name, {"name": name}, compute, save=save, load=load)
        wall[name if at is None else str(at)] = seconds
        return units

    frames = [dissected(f"step {s}", (lambda e=(s, src): opened(e)), s)
              for s, src in entries]
    if null_model is not None:
        frames.append(dissected("random", lambda: null_model, None))
    import pandas as pd

    result = EmergenceResult(network=network, units=pd.concat(frames, ignore_index=True),
                             steps=[s for s, _ in entries], wall_s=wall,
                             config=dict(config, pool=_pool_record(data), label_cache=str(labels) if not own_labels
                                         else None))
    result.save(folder)
    if own_labels and labels.is_dir():
        shutil.rmtree(labels)  # the run's own folder under .partial, filled only by its dissections
    parts.finish()
    if record is not None:
        record.network(network, first, data)
        record.write(folder)
    return result


def _checked_layers(model, layers, data) -> list[str]:
    """``layers`` (else the network's default layers), checked before any work: each exists and is a map."""
    from unitscope.experiments._common import check_spatial_layers
    from unitscope.hooks import resolve_layer
    from unitscope.models import model_info

    layers = [layers] if isinstance(layers, str) else list(layers or model_info(model).default_layers)
    if not layers:
        raise ValueError("give the layers to dissect: the snapshots' network has no default layers")
    for layer in layers:
        resolve_layer(model, layer)
    return list(check_spatial_layers(model, layers, data, purpose="emergence"))


def _pool_record(data) -> dict:
    return {"type": type(data).__name__, "images": len(data), "root": str(getattr(data, "root", "") or "")}


def _version() -> str:
    import unitscope

    return unitscope.__version__
