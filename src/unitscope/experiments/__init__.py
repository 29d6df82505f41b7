"""The paper's experiments, each a function ``(model, layer(s), data, *, options) -> result``.

Results are dataclasses with ``to_frame()`` (pandas), ``save(out_dir)`` and
``load(out_dir)``; nothing here prints or renders.
"""

from unitscope.experiments.ablate import ablate_detectors
from unitscope.experiments.census import object_census
from unitscope.experiments.dissect import dissect
from unitscope.experiments.localize import LocalizationResult, localize_objects, object_detectors
from unitscope.experiments.empirical_rf import (EmpiricalRFResult, default_occluder, empirical_receptive_fields,
                                                 rf_size, summarise_receptive_fields, top_activations)
from unitscope.experiments.minimal_images import MinimalImageRecord, MinimalImagesResult, minimal_images
from unitscope.experiments.preference import layer_preference
from unitscope.results.preference import LayerPreferenceResult
from unitscope.experiments.segmentations import unit_segmentations
from unitscope.models.rf_window import RFWindow, theoretical_window
from unitscope.results.ablation import AblationResult
from unitscope.results.census import CensusResult
from unitscope.results.dissection import DissectionResult, LayerDissection
from unitscope.results.segmentations import UnitSegmentationsResult

__all__ = [  # one line per experiment: its result, then its functions
    "DissectionResult", "LayerDissection", "dissect",
    "CensusResult", "object_census",
    "LocalizationResult", "localize_objects", "object_detectors",
    "AblationResult", "ablate_detectors",
    "LayerPreferenceResult", "layer_preference",
    "MinimalImageRecord", "MinimalImagesResult", "minimal_images",
    "EmpiricalRFResult", "empirical_receptive_fields", "summarise_receptive_fields", "rf_size", "default_occluder",
    "top_activations", "RFWindow", "theoretical_window",
    "UnitSegmentationsResult", "unit_segmentations",
]
