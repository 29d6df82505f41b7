"""Published results of real networks: read, checked, and analysed as unitscope analyses its own.

The study's question is about real networks (AlexNet trained on Places vs on
ImageNet) whose weights are not at hand; their published per-unit results
are.  This package reads them and computes the paper's numbers from them:

* :func:`read_iclr15`: the ICLR 2015 crowd annotations (three per unit of
  five AlexNet layers); :func:`unit_consensus` gives each unit's consensus
  with the labeling app's own code, :func:`layer_table` Experiment 3 per
  layer, :func:`check_layer_average` checks it against the file's
  ``layerAverageCount``;
* :func:`read_netdissect`: Network Dissection's released unit tables;
  :func:`netdissect_census` counts detectors and unique concepts by best
  label per unit and per category, :func:`read_netdissect_summary` /
  :func:`compare_with_summary` check the latter against their summary;
* :func:`crowd_object_detectors`, :func:`scene_vs_object`,
  :func:`scene_vs_object_sentence`: Experiment 4, Places beside ImageNet.

:func:`import_iclr15` and :func:`import_netdissect` (``unitscope import``)
write them into a results directory, for the census and the report.

``python -m unitscope.published [FOLDER]`` prints all of it for the
released files.  Torch-free: numpy, pandas, scipy.io and
:mod:`unitscope.label`'s consensus.
"""

from __future__ import annotations

from ._source import MalformedFile
from .crowd import crowd_answers, images_shown, unit_consensus
from .experiment3 import check_layer_average, layer_average, layer_table
from unitscope.results.scene_vs_object import scene_vs_object, scene_vs_object_sentence

from .experiment4 import crowd_object_detectors
from .importing import import_iclr15, import_netdissect
from .iclr15 import ALEXNET_UNITS, CODE_TYPES, Iclr15Annotations, read_iclr15
from .netdissect import netdissect_categories, netdissect_census, read_netdissect
from .netdissect_summary import SUMMARY_NAMES, compare_with_summary, read_netdissect_summary

__all__ = [
    "ALEXNET_UNITS",
    "CODE_TYPES",
    "Iclr15Annotations",
    "MalformedFile",
    "SUMMARY_NAMES",
    "check_layer_average",
    "compare_with_summary",
    "crowd_answers",
    "crowd_object_detectors",
    "images_shown",
    "import_iclr15",
    "import_netdissect",
    "layer_average",
    "layer_table",
    "netdissect_categories",
    "netdissect_census",
    "read_iclr15",
    "read_netdissect",
    "read_netdissect_summary",
    "scene_vs_object",
    "scene_vs_object_sentence",
    "unit_consensus",
]
