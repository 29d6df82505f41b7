"""The study as library calls: what ``unitscope demo`` and ``unitscope dissect`` do, for notebooks too.

- :func:`run_study` / :class:`StudyConfig`: the whole study on the built-in
  world (world, training, dissection with its null, census, tiles, layer
  preference, minimal images, receptive fields, localisation, ablation,
  report); returns the results directory as a ``ResultSet``.  Each stage is
  skipped when it finished before with the same configuration.
- :func:`dissect_study`: dissection + random-weights null + ``flag_null`` +
  census + segmentation tiles, the one sequence behind ``unitscope dissect``.
- :class:`RunRecord`: the ``run.json`` a run writes beside its results.
- :func:`open_data`, :func:`network_name`, :func:`model_label`,
  :func:`random_null`, :func:`default_home`: what the steps open and how
  their folders are named.

Progress goes through ``progress(description) -> (callback, bar)`` factories
(:mod:`unitscope.study.progress`), status lines through a ``log`` callback;
nothing here prints.
"""

from unitscope.study.dissect import DissectionStudy, dissect_study
from unitscope.study.inputs import default_home, model_label, network_name, open_data, random_null
from unitscope.study.record import RunRecord
from unitscope.study.run import DEMO_LAYERS, PREFERENCE_LAYERS, StudyConfig, run_study

__all__ = [
    "StudyConfig", "run_study", "DEMO_LAYERS", "PREFERENCE_LAYERS", "DissectionStudy", "dissect_study",
    "RunRecord", "open_data", "network_name", "model_label", "random_null", "default_home",
]
