"""Several layers' receptive fields, one after the other, each saved when done so a run resumes.

Each layer is one run of :func:`~.run.empirical_receptive_fields` (its own
data pass and sweep); with a work folder every finished layer is saved
there (:class:`~unitscope.experiments.resume.SavedParts`), and a run
started again with the same arguments loads those layers and carries on
at the first unfinished one.  Every layer and its units are checked before
the first one starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import unitscope

from ..resume import SavedParts, data_key, weights_fingerprint
from .layers import _check_units, check_rf_layers
from unitscope.results.receptive_fields import TIMING_STATS, EmpiricalRFResult

__all__ = ["layer_by_layer"]


def layer_by_layer(measure: Callable[..., EmpiricalRFResult], model, layers: Sequence[str], data, *,
                   options: dict, work_dir: str | Path | None, restart: bool, log,
                   progress) -> list[EmpiricalRFResult]:
    """``measure(model, layer, data, progress=..., **options)`` for each layer, resumed layer by layer."""
    windows = check_rf_layers(model, layers, data, rf=options.get("rf"))
    if options.get("units") is not None:
        for layer, (layout, _) in windows.items():
            _check_units(options["units"], layout.channels, layer)
    config = {"experiment": "empirical_receptive_fields", "weights": weights_fingerprint(model),
              "data": data_key(data), "layers": list(layers), "version": unitscope.__version__, **options}
    parts = SavedParts(work_dir, config, restart=restart, log=log)
    results, timings = [], {}
    for layer in layers:
        def run_layer(layer=layer):
            result = measure(model, layer, data, progress=progress, log=log, **options)
            timings[layer] = {stat: result.stats[stat] for stat in TIMING_STATS if stat in result.stats}
            return result

        result = parts.part(layer, {"layer": layer}, run_layer, save=lambda result, folder: result.save(folder),
                            load=EmpiricalRFResult.load)
        result.stats.update(timings.get(layer, {}))  # wall times are not saved: those of this run's layers
        results.append(result)
    parts.finish()
    return results
