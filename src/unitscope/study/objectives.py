"""Which objectives make object detectors emerge: :func:`objectives_study`, behind ``unitscope objectives``.

The same architecture (``mini_alexnet``), the same world and the same
training budget, under each training objective of :mod:`unitscope.training`
(scene and object classification, multi-label objects, multi-task,
self-supervised pretext tasks, shuffled scene labels); each network
dissected over the world's Broden pool with :func:`~unitscope.study.dissect_study`
beside one random-weights null of the same architecture (dissected once,
the ``random`` rows).  Stages, each run once per configuration (recorded in
``RESULTS/objectives/.stages.json`` by :class:`~unitscope.experiments.resume.Stages`,
so an interrupted run redoes only the objectives it had not finished):

1. ``random``: the null (``<first network>-random``, so the report pairs it with
   the first objective's network, ``scenenet`` by default);
2. one stage per objective: train (cached by configuration by the training
   package), dissect, census against the null.

The scene objective's network is ``scenenet`` and the object one's
``objectnet``, so the census and Experiment 4 sections of the report read the
results folder as they read the demo's.  The table
(:class:`~unitscope.results.ObjectivesResult`) is counted from the saved
dissections, so a second call with the same configuration trains and
dissects nothing.

Examples
--------
>>> from unitscope.study import objectives_study
>>> result = objectives_study(preset="study", out="results", home="cache", epochs=4)  # doctest: +SKIP
>>> result.best_layers()  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import unitscope
from unitscope.results.layout import OBJECTIVES_STAGES, dissect_dir, objectives_dir
from unitscope.results.objectives import RANDOM, ObjectivesResult, objective_rows
from unitscope.study.progress import Progress, step

__all__ = ["objectives_study", "OBJECTIVE_LAYERS", "NULL_SEED"]

#: The layers compared by default: every convolution of ``mini_alexnet``.
OBJECTIVE_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
#: The null's seed (the demo's null uses the same).
NULL_SEED = 1
#: The dissection of every network, as the demo's.
DISSECT_OPTIONS = dict(batch_size=50, mask_size="auto", threshold_rule="unitscope", min_support=10)
#: Training options that change how fast, not what is trained (left out of the stages' keys).
_NOT_CONFIGURATION = frozenset({"num_threads"})


def _check_names(given: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    chosen = list(dict.fromkeys(given))
    if not chosen:
        raise ValueError(f"no {what}s asked for; choose from {', '.join(known)}")
    for name in chosen:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LookupError(f"unknown {what} {name!r}{hint}; choose from {', '.join(known)}")
    return chosen


def _world_dir(world, preset: Optional[str], home: Path, progress: Optional[Progress]) -> Path:
    """The world directory: ``world`` as given (it must exist), or ``HOME/world-<preset>``, generated once."""
    from unitscope.data.world import generate_world, load_world

    if (world is None) == (preset is None):
        raise ValueError("give either a world directory (--world) or a preset (--preset study), not "
                         + ("both" if world is not None else "neither"))
    if world is not None:
        load_world(world)  # a missing or foreign folder: one line naming world.json
        return Path(world)
    with step(progress, f"world {preset}") as callback:
        return generate_world(home / f"world-{preset}", preset=preset, progress=callback).root


def _default_train(world_dir: Path, *, objective: str, cache_dir: Path, progress=None, **options):
    from unitscope.training import train_network

    return train_network(world_dir, objective=objective, cache_dir=cache_dir, progress=progress, **options)


def objectives_study(world: str | Path | None = None, *, out: str | Path, home: str | Path,
                     preset: Optional[str] = None, objectives: Optional[Sequence[str]] = None,
                     layers: Sequence[str] = OBJECTIVE_LAYERS, progress: Optional[Progress] = None,
                     log: Callable[[str], None] = lambda line: None, restart: bool = False,
                     train: Optional[Callable] = None, **train_options) -> ObjectivesResult:
    """Train the same architecture under each objective, dissect each beside the null, compare them.

    Parameters
    ----------
    world : path, optional
        A world made by ``unitscope world`` (or give ``preset``).
    out : path, keyword-only
        Results directory: ``OUT/<network>/dissect`` per objective and the null,
        ``OUT/objectives/objectives.csv|json``.
    home : path, keyword-only
        Cache root: trained weights in ``HOME/cache``, decoded masks in
        ``HOME/cache/labels``, a preset's world in ``HOME/world-<preset>``.
    preset : str, keyword-only
        A named world (``"study"``), generated once into ``HOME/world-<preset>``.
    objectives : sequence of str, keyword-only
        Default: every objective of ``unitscope.training.OBJECTIVES``, in its order.
    layers : sequence of str, keyword-only
        Layers of ``mini_alexnet`` to dissect (default: every convolution).
    progress : callable, keyword-only
        ``progress(description) -> (callback, bar)``: a bar per training and per dissection.
    log : callable, keyword-only
        Receives one-line status messages (``"objective rotation: cached"``).
    restart : bool, keyword-only
        Forget finished stages and partial dissections (trained weights stay cached).
    train : callable, keyword-only
        ``train(world_dir, objective=..., cache_dir=..., progress=..., **train_options)`` returning a
        ``TrainedNetwork`` (default :func:`unitscope.training.train_network`; tests pass a stand-in).
    **train_options
        Passed to ``train`` (``epochs``, ``width``, ``batch_size``, ``seed``, ``num_threads``, ...);
        the same for every objective.  An objective on other images than the scenes (``object``)
        also gets ``steps=scene_steps(world, epochs=..., batch_size=...)``: the same number of
        optimizer steps as the scene objectives, the same budget.

    Returns
    -------
    ObjectivesResult
        Also saved in ``OUT/objectives``.

    Raises
    ------
    LookupError
        An unknown objective or layer (with close matches), before any work.
    ValueError
        Both or neither of ``world`` and ``preset``; a damaged stage record.
    FileNotFoundError
        ``world`` is not a world directory.
    """
    from unitscope.data.world import world_fingerprint
    from unitscope.models import MINI_ALEXNET_LAYERS
    from unitscope.training import OBJECTIVES, network_name

    started = time.perf_counter()
    out, home = Path(out), Path(home)
    chosen = _check_names(list(objectives) if objectives is not None else list(OBJECTIVES), OBJECTIVES, "objective")
    layers = _check_names(list(layers), [n for n in MINI_ALEXNET_LAYERS if not n.startswith("fc")], "layer")
    world_dir = _world_dir(world, preset, home, progress)
    runner = _Runner(world_dir, out, home, layers, progress, log, restart, train or _default_train,
                     {k: v for k, v in train_options.items() if v is not None})
    budget = {k: v for k, v in runner.train_options.items() if k not in _NOT_CONFIGURATION}
    base = {"version": unitscope.__version__, "world": world_fingerprint(world_dir), "layers": layers,
            "train": budget, "dissect": DISSECT_OPTIONS}
    null_name = f"{network_name(chosen[0])}-random"
    runs = {RANDOM: runner.null(null_name, chosen[0], dict(base, objective=RANDOM, like=chosen[0],
                                                           seed=NULL_SEED))}
    for objective in chosen:
        runs[objective] = runner.objective(objective, null_name,
                                           dict(base, objective=objective, **runner.budget(objective)))
    return _save_result(out, chosen, runs, dict(world=str(world_dir), preset=preset, objectives=chosen,
                                                 layers=layers, train=budget,
                                                 dissect=DISSECT_OPTIONS, null=null_name, null_seed=NULL_SEED),
                        time.perf_counter() - started)


class _Runner:
    """The stages of one call: what they share (world, folders, training options) and how each runs."""

    def __init__(self, world_dir, out, home, layers, progress, log, restart, train, train_options):
        from unitscope.experiments.resume import Stages

        self.world_dir, self.out, self.home, self.layers = world_dir, out, home, layers
        self.progress, self.log, self.restart, self.train_fn = progress, log, restart, train
        self.train_options = train_options
        self.stages = Stages(objectives_dir(out) / OBJECTIVES_STAGES, log, restart=restart)
        self._trained: dict = {}

    def budget(self, objective: str) -> dict:
        """What the objective is trained with beyond the shared options: the scene images' optimizer steps
        for an objective on other images (``object``), so that every objective gets the same budget."""
        from unitscope.training import scene_steps
        from unitscope.training.objectives import get_objective

        if "steps" in self.train_options or get_objective(objective).dataset == "scene":
            return {}
        shared = {k: v for k, v in self.train_options.items() if k in ("epochs", "batch_size")}
        return {"steps": scene_steps(self.world_dir, **shared)}

    def _train(self, objective: str):
        """The objective's network, trained or loaded from the training cache (once per call)."""
        if objective not in self._trained:
            with step(self.progress, f"train {objective}") as callback:
                self._trained[objective] = self.train_fn(self.world_dir, objective=objective,
                                                         cache_dir=self.home / "cache", progress=callback,
                                                         **self.train_options, **self.budget(objective))
        return self._trained[objective]

    def _dissect(self, model, network: str, objective: str, null_result=None) -> None:
        from unitscope.data import BrodenPool
        from unitscope.data.world.export import WorldPaths
        from unitscope.models import model_info
        from unitscope.study.dissect import dissect_study
        from unitscope.study.record import RunRecord

        pool = BrodenPool(WorldPaths.of(self.world_dir).broden, preprocessing=model_info(model).preprocessing)
        record = RunRecord("objectives", {"objective": objective, "world": str(self.world_dir),
                                          "layers": self.layers, "train": self.train_options})
        dissect_study(model, self.layers, pool, network=network, out=self.out, null_result=null_result,
                      progress=self.progress, record=record, restart=self.restart,
                      label_cache=self.home / "cache" / "labels", **DISSECT_OPTIONS)

    def null(self, null_name: str, like: str, config: dict) -> dict:
        """Stage ``random``: the first objective's architecture with seeded random weights, dissected once."""
        from unitscope.models.registry import random_like

        def run():
            self._dissect(random_like(self._train(like).model, seed=NULL_SEED), null_name, RANDOM)

        self.stages.run(RANDOM, config, run, record={"network": null_name})
        return dict(self.stages.done[RANDOM], dissect_seconds=_dissect_seconds(self.out, null_name))

    def objective(self, objective: str, null_name: str, config: dict) -> dict:
        """Stage ``objective <name>``: train (cached), dissect with the null's census beside it."""
        from unitscope.experiments.dissect import DissectionResult

        from unitscope.training import network_name

        name, network = f"objective {objective}", network_name(objective)
        record = None
        if not self.stages.is_done(name, config):
            trained = self._train(objective)
            record = {"network": network, **_training_record(trained)}
            null = DissectionResult.load(dissect_dir(self.out, null_name))
            self.stages.run(name, config, lambda: self._dissect(trained.model, network, objective, null),
                            record=record)
        else:
            self.stages.run(name, config, lambda: None)  # logs "cached"
        run = dict(self.stages.done[name], dissect_seconds=_dissect_seconds(self.out, network))
        accuracy = run.get("accuracy")
        self.log(f"{objective} ({network}): trained in {run.get('train_seconds') or 0:.0f} s"
                 + (f", held-out accuracy {accuracy:.1%}" if accuracy is not None else ""))
        return run


def _training_record(trained) -> dict:
    """What the table keeps of a training: its held-out accuracy (and which one), time, cache state."""
    metrics = trained.metrics
    kind = metrics.get("accuracy_kind") or "val_top1"
    accuracy = metrics.get(kind, metrics.get("val_top1"))
    return {"accuracy": None if accuracy is None else float(accuracy), "accuracy_kind": kind,
            "train_seconds": float(metrics.get("train_seconds") or 0.0), "train_cached": bool(trained.cached),
            "steps": metrics.get("steps"),
            "weights_key": trained.key}


def _dissect_seconds(out: Path, network: str) -> Optional[float]:
    """The wall time of the network's dissection, from the ``run.json`` its dissection wrote."""
    from unitscope.results.run import RunMetadata

    try:
        stages = RunMetadata.load(dissect_dir(out, network)).stages
    except FileNotFoundError:
        return None
    seconds = stages.get(f"dissect {network}")
    return None if seconds is None else float(seconds)


def _save_result(out: Path, chosen: list[str], runs: dict, config: dict, seconds: float) -> ObjectivesResult:
    """The table counted from the saved dissections (objectives in order, then ``random``), saved."""
    import pandas as pd

    from unitscope.results.dissection_tables import load_dissection

    frames = []
    for objective in chosen + [RANDOM]:
        tables = load_dissection(out, runs[objective]["network"])
        frames.append(objective_rows(tables, objective, accuracy=runs[objective].get("accuracy")))
    result = ObjectivesResult(
        table=pd.concat(frames, ignore_index=True),
        runs={objective: {k: v for k, v in run.items() if k != "key"} for objective, run in runs.items()},
        config=config, wall_seconds=seconds)
    result.save(out)
    return result
