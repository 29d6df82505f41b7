"""One experiment run and saved into a results directory, as the experiment commands do it.

Each function runs one experiment of :mod:`unitscope.experiments` on opened
networks and pools, saves its typed result under ``out`` (the layout of
docs/ARCHITECTURE.md), resumes an interrupted run from its partial folder
and, given a :class:`~unitscope.study.record.RunRecord`, times the stages
and writes ``run.json`` beside the result.  They print nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Optional, Sequence

from unitscope.study.progress import Progress, step

__all__ = ["preference_study", "minimal_study", "rf_study", "localize_study", "ablate_study"]


def _timed(record):
    return record.stage if record is not None else lambda name: contextlib.nullcontext()


def _finish(result, folder: Path, record, networks: dict, data) -> Path:
    result.save(folder)
    if record is not None:
        for name, net in networks.items():
            record.network(name, net, data)
        record.write(folder)
    return folder


def preference_study(models: dict, layers, pools: Sequence[tuple[str, Path]], *, out: str | Path,
                     progress: Optional[Progress] = None, record=None, **options):
    """Layer preference of ``models`` over plain pools, saved in ``out/preference``.

    Each network sees the images prepared its own way: one scoring pass per
    preprocessing, merged.

    Parameters
    ----------
    models : dict
        Name -> network.
    layers : list of str or dict
        The layers of every network, or name -> its layers.
    pools : sequence of (source, folder)
        One plain image folder per source.
    out : path
    **options
        Passed to :func:`~unitscope.experiments.preference.layer_preference`.
    """
    from unitscope.data.open import open_pool
    from unitscope.experiments.preference import layer_preference
    from unitscope.models import model_info

    out = Path(out)
    groups: dict = {}
    for n, m in models.items():
        groups.setdefault(model_info(m).preprocessing, []).append(n)
    result = None
    for number, (pre, names) in enumerate(groups.items()):
        opened = [open_pool(Path(folder), kind="plain", source=source, preprocessing=pre) for source, folder in pools]
        with step(progress, "layer preference") as callback, _timed(record)(f"score {', '.join(names)}"):
            part = layer_preference(models={n: models[n] for n in names}, pools=opened, progress=callback,
                                    layers=layers if isinstance(layers, list) else {n: layers[n] for n in names},
                                    work_dir=out / ".partial" / ("preference" if len(groups) == 1
                                                                 else f"preference-{number}"), **options)
        if record is not None:
            for n in names:
                record.network(n, models[n], opened[0])
        result = part if result is None else result.merge(part)
    result.save(out / "preference")
    if record is not None:
        record.write(out / "preference")
    return result


def minimal_study(model, data, *, network: str, out: str | Path, segmentation: str = "slic",
                  progress: Optional[Progress] = None, record=None, log: Callable[[str], None] | None = None,
                  **options):
    """Minimal images of ``model`` on ``data``, saved in ``out/<network>/minimal/<masks|superpixels>``.

    The search resumes by chunk from ``out/<network>/.partial/minimal-<kind>``
    (``chunk``, ``restart`` and the other ``options`` go to
    :func:`~unitscope.experiments.minimal_images.minimal_images`).
    """
    from unitscope.experiments.minimal_images import minimal_images

    kind = "masks" if segmentation == "masks" else "superpixels"
    with step(progress, "minimal images") as callback, _timed(record)("search"):
        result = minimal_images(model, data, segmentation=segmentation, progress=callback, log=log,
                                work_dir=Path(out) / network / ".partial" / f"minimal-{kind}", **options)
    _finish(result, Path(out) / network / "minimal" / kind, record, {network: model}, data)
    return result


def rf_study(model, layers: Sequence[str], data, *, network: str, out: str | Path, units=None,
             max_images: int | None = None, progress: Optional[Progress] = None, record=None,
             log: Callable[[str], None] | None = None, **options):
    """Empirical receptive fields of ``layers``, saved in ``out/<network>/rf/<layer>`` with ``summary.csv``.

    Every layer and unit is checked before the first layer's results are
    written; the run resumes by layer from ``out/<network>/.partial/rf``.
    ``max_images``: only the first images of ``data``.  Returns the summary table.
    """
    from unitscope.experiments._common import check_spatial_layers
    from unitscope.experiments.empirical_rf import TIMING_STATS, empirical_receptive_fields
    from unitscope.results.receptive_fields import save_receptive_field_summary

    if max_images:
        data = data.subset(range(min(max_images, len(data))))
    shapes = check_spatial_layers(model, layers, data, purpose="a receptive field")
    fewest = min(shapes.items(), key=lambda item: item[1][0])
    if units and max(units) >= fewest[1][0]:
        raise ValueError(f"--units {max(units)} is out of range for layer {fewest[0]!r} with "
                         f"{fewest[1][0]} units (0 to {fewest[1][0] - 1})")
    folder = Path(out) / network / "rf"
    with step(progress, "receptive fields") as callback:
        results = empirical_receptive_fields(model, list(layers), data, units=units, network=network, log=log,
                                             work_dir=Path(out) / network / ".partial" / "rf", progress=callback,
                                             **options)
    for result in results:
        times = {stat: result.stats[stat] for stat in TIMING_STATS if stat in result.stats}
        if times and record is not None:  # wall times go to run.json, not to the results (a resumed layer has none)
            record.add_time(result.layer, sum(times.values()))
            for stat, seconds in times.items():
                record.add_time(f"{result.layer} {stat[:-2]}", seconds)
        result.save(folder / result.layer)
    summary = save_receptive_field_summary(folder, results)
    if record is not None:
        record.network(network, model, data)
        record.write(folder)
    return summary


def localize_study(model, layer: str, data, *, dissection: str | Path, network: str, out: str | Path,
                   progress: Optional[Progress] = None, record=None, **options):
    """Units of ``layer`` as object localizers, saved in ``out/<network>/localize``."""
    from unitscope.experiments.localize import localize_objects

    return _on_a_dissection(localize_objects, "localize", model, layer, data, dissection, network, out, progress,
                            record, options)


def ablate_study(model, layer: str, data, *, dissection: str | Path, network: str, out: str | Path,
                 progress: Optional[Progress] = None, record=None, **options):
    """The detectors of each object switched off, saved in ``out/<network>/ablate``."""
    from unitscope.experiments.ablate import ablate_detectors

    return _on_a_dissection(ablate_detectors, "ablate", model, layer, data, dissection, network, out, progress,
                            record, options)


def _on_a_dissection(experiment, name, model, layer, data, dissection, network, out, progress, record, options):
    """Run ``experiment`` on the units of a saved dissection, resuming from ``out/<network>/.partial/<name>``."""
    from unitscope.experiments.dissect import DissectionResult

    out = Path(out)
    with step(progress, name) as callback, _timed(record)(name):
        result = experiment(model, layer, data, dissection=DissectionResult.load(dissection),
                            work_dir=out / network / ".partial" / name, progress=callback, **options)
    _finish(result, out / network / name, record, {network: model}, data)
    return result
