"""A dissection as the study runs it: the network, its random-weights null, the census, the tiles.

One sequence, used by ``unitscope dissect`` and by :func:`run_study`:

1. dissect the network (and the null, when given) — each resumes from its
   own partial folder ``OUT/<name>/.partial/dissect``;
2. :func:`~unitscope.experiments.dissect.flag_null`: warn about layers
   where random weights find as many detectors as trained ones;
3. save both dissections and their object censuses under ``OUT/<name>/dissect``;
4. write the top segmentation tiles of each unit (``OUT/<name>/segmentations``).

Under ``torchrun`` every rank dissects its shard; only rank 0 saves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from unitscope.study.progress import Progress, step

__all__ = ["DissectionStudy", "dissect_study"]


@dataclass
class DissectionStudy:
    """What :func:`dissect_study` made: the dissection, its null (or None) and where they were saved."""

    result: object  # DissectionResult
    null: Optional[object]  # the null's DissectionResult
    folder: Path  # OUT/<network>/dissect

    @property
    def warnings(self) -> list[str]:
        """The network's warnings, then the null's own (prefixed with its name), each once."""
        result, runs = self.result, [r for r in (self.result, self.null) if r is not None]
        return list(dict.fromkeys(w if r is result else f"{r.network}: {w}" for r in runs
                                  for w in r.warnings if r is result or w not in result.warnings))


def dissect_study(model, layers: Sequence[str], data, *, network: str, out: str | Path, null_model=None,
                  null_result=None, segmentations: int = 0, segmentation_layers: Sequence[str] | None = None,
                  progress: Optional[Progress] = None, record=None, **options) -> DissectionStudy:
    """Dissect ``model`` (and its null), flag the null, save both with their censuses, write tiles.

    Parameters
    ----------
    model : nn.Module
    layers : sequence of str
        Spatial layers to dissect.
    data : annotated pool
    network : str
        The network's name: its folder under ``out``; the null is ``<network>-random``.
    out : path
        Results directory.
    null_model : nn.Module, optional
        The same architecture with random weights (e.g. :func:`~unitscope.study.inputs.random_null`).
    null_result : DissectionResult, optional
        A null dissected and saved before (one null shared by several networks, as
        ``unitscope objectives`` does): flagged against and censused with, not dissected or saved again.
    segmentations : int
        Top segmentation tiles per unit to write (0: none).
    segmentation_layers : sequence of str, optional
        Layers whose tiles are written (default: all of ``layers``).
    progress : callable, optional
        ``progress(description) -> (callback, bar)`` (:mod:`unitscope.study.progress`).
    record : RunRecord, optional
        Times the stages, records the networks and is written to the dissection folder.
    **options
        Passed to :func:`~unitscope.experiments.dissect.dissect` (``batch_size``,
        ``label_cache``, ``restart``, ...).

    Returns
    -------
    DissectionStudy

    Raises
    ------
    FileExistsError
        Before any work, if a tile folder holds tiles unitscope did not record.
    """
    from unitscope.experiments import _distributed as D
    from unitscope.experiments.census import object_census
    from unitscope.experiments.dissect import dissect, flag_null
    from unitscope.report.tiles import check_tile_folders
    from unitscope.study.segmentations import write_unit_segmentations

    out = Path(out)
    if segmentations:  # refuse foreign tiles now, not after the whole dissection
        check_tile_folders(out / network / "segmentations", list(segmentation_layers or layers))
    rank, _ = D.rank_and_world()
    progress = progress if rank == 0 else None
    timed = record.stage if record is not None else lambda name: contextlib.nullcontext()
    runs = [(network, model)] + ([(f"{network}-random", null_model)] if null_model is not None else [])
    results = {}
    for run_name, run_model in runs:
        with step(progress, f"dissect {run_name}") as callback, timed(f"dissect {run_name}"):
            results[run_name] = dissect(run_model, layers, data, network=run_name,
                                        work_dir=out / run_name / ".partial" / "dissect", progress=callback,
                                        **options)
        if record is not None:
            record.network(run_name, run_model, data)
    result, null = results[network], results.get(f"{network}-random", null_result)
    done = DissectionStudy(result, null, out / network / "dissect")
    if rank != 0:
        return done
    with timed("save"):
        if null is not None:
            flag_null(result, null)
        if null is not None and null is not null_result:
            null.save(out / null.network / "dissect")
            object_census(null).save(out / null.network / "dissect")
        result.save(done.folder)
        object_census(result, null=null).save(done.folder)
    if segmentations:
        with step(progress, f"segmentations {network}") as callback, timed("segmentations"):
            write_unit_segmentations(model, result, data, out / network / "segmentations", top=segmentations,
                                     layers=segmentation_layers, progress=callback)
    if record is not None:
        record.write(done.folder)
    return done
