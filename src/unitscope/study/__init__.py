"""The study as library calls: what ``unitscope demo`` and ``unitscope dissect`` do, for notebooks too.

- :func:`run_study` / :class:`StudyConfig`: the whole study on the built-in
  world (world, training, dissection with its null, census, tiles, layer
  preference, minimal images, receptive fields, localisation, ablation,
  report); returns the results directory as a ``ResultSet``.  Each stage is
  skipped when it finished before with the same configuration.
- :func:`dissect_study`: dissection + random-weights null + ``flag_null`` +
  census + segmentation tiles, the one sequence behind ``unitscope dissect``.
- :func:`emergence_study`: every snapshot of a training run dissected, with
  the null, as an ``EmergenceResult`` (``unitscope emergence``).
- :func:`objectives_study`: the same network trained under each objective,
  dissected beside one random-weights null, compared (``unitscope objectives``).
- :class:`RunRecord`: the ``run.json`` a run writes beside its results.
- :func:`open_data`, :func:`network_name`, :func:`model_label`,
  :func:`random_null`, :func:`default_home`: what the steps open and how
  their folders are named.

Progress goes through ``progress(description) -> (callback, bar)`` factories
(:mod:`unitscope.study.progress`), status lines through a ``log`` callback;
nothing here prints.
"""

import importlib

#: public name -> the module defining it; imported on first use, so that the
#: command line (which reads ``unitscope.study.checks`` while it parses) starts
#: without loading torch
_HOMES = {
    "StudyConfig": "run", "run_study": "run", "DEMO_LAYERS": "run", "PREFERENCE_LAYERS": "run",
    "DissectionStudy": "dissect", "dissect_study": "dissect", "RunRecord": "record",
    "Inputs": "inputs", "open_data": "inputs", "network_name": "inputs", "model_label": "inputs",
    "random_null": "inputs", "default_home": "inputs", "write_unit_segmentations": "segmentations",
    "tqdm_bars": "progress", "convert_pool": "convert",
    "preference_study": "experiments", "minimal_study": "experiments", "rf_study": "experiments",
    "localize_study": "experiments", "ablate_study": "experiments", "emergence_study": "emergence",
    "objectives_study": "objectives",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
