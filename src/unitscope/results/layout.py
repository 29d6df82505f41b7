"""Every path in a results directory, named once.

Writers (the experiments, ``unitscope label results``, the run records) and
readers (the report, the labeling app) spell a result's file names only
through this module, so a name changes in one place::

    RESULTS/run.json                                   study metadata (unitscope demo)
    RESULTS/preference/                                layer preference, networks side by side
    RESULTS/<network>/<command>/run.json               one command's options, versions, times
    RESULTS/<network>/dissect/                         units.csv|json, layers.csv, concepts.csv, result.json,
                                                       layer_<layer>.npz, pool.npz, census_*.csv, census.json
    RESULTS/<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg
    RESULTS/<network>/segmentations/<layer>/tiles.json the tiles unitscope wrote
    RESULTS/<network>/.partial/<experiment>/           resume state of an unfinished run
    RESULTS/<network>/minimal/ rf/ localize/ ablate/   the other experiments
    RESULTS/<network>/human/                           units.csv, layers.csv, compare.csv, summary.json
                                                       (imported crowd labels: answers.csv, run.json)
    RESULTS/emergence/<network>/                       units.csv, emergence.csv, emergence.json, timings.json
                                                       (a training run's snapshots dissected; .partial/ meanwhile)
    RESULTS/objectives/                                objectives.csv, objectives.json (`unitscope objectives`)

Layer names and image ids become file names through :func:`safe_name`
(the one rule).  Older versions wrote some layer names character by
character (``layer4[0]`` -> ``layer4_0_``); :func:`layer_file_names` lists
every spelling a reader should try.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "RUN_JSON", "DISSECT", "UNITS_CSV", "UNITS_JSON", "LAYERS_CSV", "CONCEPTS_CSV", "RESULT_JSON", "POOL_NPZ",
    "CENSUS_OBJECTS_CSV", "CENSUS_LAYERS_CSV", "CENSUS_CORRELATIONS_CSV", "CENSUS_SWEEP_CSV",
    "CENSUS_INFORMATIVE_CSV", "CENSUS_JSON", "SEGMENTATIONS", "TILES_JSON", "SEGMENTATION_TILE",
    "UNIT_SEGMENTATIONS_JSON", "UNIT_SEGMENTATIONS_CSV", "UNIT_SEGMENTATIONS_NPZ", "PARTIAL", "HUMAN", "ANSWERS_CSV",
    "COMPARE_CSV", "SUMMARY_JSON",
    "PREFERENCE", "FRACTIONS_CSV", "TOP_IMAGES_CSV", "IMAGES_CSV", "SCORES_NPZ", "THUMBNAILS_NPZ",
    "PREFERENCE_JSON", "OBJECTIVES", "OBJECTIVES_CSV", "OBJECTIVES_JSON", "OBJECTIVES_STAGES", "MINIMAL", "MINIMAL_JSON", "EXAMPLES_NPZ", "OBJECTS_CSV", "DIAGNOSTIC_CSV", "STEPS_CSV",
    "RF", "RF_JSON", "LAYER_CSV", "MAPS_NPZ", "LOCALIZE", "LOCALIZE_JSON", "OBJECTS_JSON", "EXAMPLES_CSV",
    "EXAMPLES_JSON", "ABLATE", "ABLATE_JSON", "CLASSES_CSV", "SUMMARY_CSV", "CONDITIONS_CSV", "REPORT",
    "EMERGENCE", "EMERGENCE_CSV", "EMERGENCE_JSON", "EMERGENCE_TIMINGS_JSON",
    "REPORT_MANIFEST", "CONCEPTS_VOCABULARY", "NETWORK_FOLDERS", "NOT_NETWORKS", "NULL_SUFFIX", "IMAGE_SUFFIXES",
    "safe_name", "layer_file_names", "layer_npz", "network_dir", "command_dir", "run_json", "dissect_dir",
    "segmentations_dir", "partial_dir", "human_dir", "preference_dir", "emergence_root", "emergence_dir",
    "emergence_partial_dir", "objectives_dir",
]

# --------------------------------------------------------------------------- file names
#: Run metadata: ``RESULTS/run.json`` (the study) and ``<network>/<command>/run.json`` (one command).
RUN_JSON = "run.json"

#: The dissection folder ``<network>/dissect`` and its files.
DISSECT = "dissect"
UNITS_CSV = "units.csv"
UNITS_JSON = "units.json"
LAYERS_CSV = "layers.csv"
CONCEPTS_CSV = "concepts.csv"
RESULT_JSON = "result.json"
POOL_NPZ = "pool.npz"

#: The census, saved beside the dissection it counts.
CENSUS_OBJECTS_CSV = "census_objects.csv"
CENSUS_LAYERS_CSV = "census_layers.csv"
CENSUS_CORRELATIONS_CSV = "census_correlations.csv"
CENSUS_SWEEP_CSV = "census_sweep.csv"
CENSUS_INFORMATIVE_CSV = "census_informative.csv"
CENSUS_JSON = "census.json"

#: Top-image segmentations ``<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg``.
SEGMENTATIONS = "segmentations"
TILES_JSON = "tiles.json"
SEGMENTATION_TILE = re.compile(r"^(\d+)_(.+)\.(jpe?g|png)$", re.IGNORECASE)
#: Unit segmentation strips (experiment 2b), in any experiment folder; the report draws them from the arrays.
UNIT_SEGMENTATIONS_JSON = "segmentations.json"
UNIT_SEGMENTATIONS_CSV = "segmentations.csv"
UNIT_SEGMENTATIONS_NPZ = "segmentations.npz"

#: Resume state of unfinished runs: ``<network>/.partial/<experiment>/``.
PARTIAL = ".partial"

#: Human labels, written by ``unitscope label results`` (``answers.csv``: by ``unitscope import iclr15``).
HUMAN = "human"
ANSWERS_CSV = "answers.csv"
COMPARE_CSV = "compare.csv"
SUMMARY_JSON = "summary.json"

PREFERENCE = "preference"
FRACTIONS_CSV = "fractions.csv"
TOP_IMAGES_CSV = "top_images.csv"
IMAGES_CSV = "images.csv"
SCORES_NPZ = "scores.npz"
#: The thumbnails of the top images, as arrays (the report draws them).
THUMBNAILS_NPZ = "thumbnails.npz"
PREFERENCE_JSON = "preference.json"

#: ``unitscope objectives``: one table of every objective's networks (their dissections are ordinary
#: ``<network>/dissect`` folders beside it).
OBJECTIVES = "objectives"
OBJECTIVES_CSV = "objectives.csv"
OBJECTIVES_JSON = "objectives.json"
#: Its stage record (``experiments.resume.Stages``): which objectives are trained and dissected.
OBJECTIVES_STAGES = ".stages.json"

MINIMAL = "minimal"
MINIMAL_JSON = "minimal.json"
#: What the example pictures are made of, as arrays (minimal images and localisation; the report draws them).
EXAMPLES_NPZ = "examples.npz"
OBJECTS_CSV = "objects.csv"
DIAGNOSTIC_CSV = "diagnostic.csv"
STEPS_CSV = "steps.csv"

RF = "rf"
RF_JSON = "rf.json"
LAYER_CSV = "layer.csv"
MAPS_NPZ = "maps.npz"

LOCALIZE = "localize"
LOCALIZE_JSON = "localize.json"
OBJECTS_JSON = "objects.json"
EXAMPLES_CSV = "examples.csv"
EXAMPLES_JSON = "examples.json"

ABLATE = "ablate"
ABLATE_JSON = "ablate.json"
CLASSES_CSV = "classes.csv"
SUMMARY_CSV = "summary.csv"
CONDITIONS_CSV = "conditions.csv"

#: Snapshots of a training run dissected (``unitscope emergence``): ``emergence/<network>/``.
EMERGENCE = "emergence"
EMERGENCE_CSV = "emergence.csv"
EMERGENCE_JSON = "emergence.json"
#: The seconds each snapshot took: apart, so that the other files are the same bytes when a run is repeated.
EMERGENCE_TIMINGS_JSON = "timings.json"

#: The report's default folder, and the manifest that marks a folder as a report (never a network).
REPORT = "report"
REPORT_MANIFEST = ".unitscope-report"
#: ``RESULTS/concepts.csv``: extra concept names offered to human labelers (optional).
CONCEPTS_VOCABULARY = CONCEPTS_CSV

#: Sub-folders that mark a folder of ``RESULTS`` as a network's results.
NETWORK_FOLDERS = (DISSECT, SEGMENTATIONS, MINIMAL, RF, LOCALIZE, ABLATE, HUMAN)
#: Folders of ``RESULTS`` that are never networks.
NOT_NETWORKS = frozenset({REPORT, PREFERENCE, EMERGENCE, OBJECTIVES})
#: Suffix of a random-weights null network (``<network>-random``).
NULL_SUFFIX = "-random"
#: Picture files an experiment folder may hold.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


# --------------------------------------------------------------------------- names
def safe_name(text: str) -> str:
    """The file-name-safe form of a layer name, image id or network name.

    Every run of characters other than letters, digits, ``.``, ``_`` and
    ``-`` becomes one ``_``; leading and trailing ``_`` are dropped; an empty
    result is ``_``.

    Examples
    --------
    >>> safe_name("layer4[0].conv1")
    'layer4_0_.conv1'
    >>> safe_name("a/b c")
    'a_b_c'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "_"


def _per_character(text: str) -> str:
    # The rule dissection files were named by before safe_name was the only one.
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in str(text))


def layer_file_names(layer: str) -> list[str]:
    """Every spelling of ``layer`` a writer may have used in a file name: as is, :func:`safe_name`, older rule."""
    return list(dict.fromkeys([str(layer), safe_name(layer), _per_character(layer)]))


def layer_npz(layer: str) -> str:
    """The arrays of one dissected layer: ``layer_<safe name>.npz``."""
    return f"layer_{safe_name(layer)}.npz"


# --------------------------------------------------------------------------- folders
def network_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/<network>``."""
    return Path(root) / network


def command_dir(root: str | Path, network: str, command: str) -> Path:
    """``RESULTS/<network>/<command>``: where a command writes (and its ``run.json``)."""
    return Path(root) / network / command


def run_json(folder: str | Path) -> Path:
    """The run metadata of ``folder`` (``RESULTS`` or a command's folder)."""
    return Path(folder) / RUN_JSON


def dissect_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/<network>/dissect``."""
    return Path(root) / network / DISSECT


def segmentations_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/<network>/segmentations``."""
    return Path(root) / network / SEGMENTATIONS


def partial_dir(root: str | Path, network: str, experiment: str) -> Path:
    """``RESULTS/<network>/.partial/<experiment>``: resume state of an unfinished run."""
    return Path(root) / network / PARTIAL / experiment


def human_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/<network>/human``."""
    return Path(root) / network / HUMAN


def preference_dir(root: str | Path) -> Path:
    """``RESULTS/preference`` (several networks side by side)."""
    return Path(root) / PREFERENCE


def emergence_root(root: str | Path) -> Path:
    """``RESULTS/emergence``: one folder per training run whose snapshots were dissected."""
    return Path(root) / EMERGENCE


def emergence_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/emergence/<network>``."""
    return Path(root) / EMERGENCE / network


def emergence_partial_dir(root: str | Path, network: str) -> Path:
    """``RESULTS/emergence/<network>/.partial``: the snapshots of an unfinished run (one dissection each)."""
    return Path(root) / EMERGENCE / network / PARTIAL


def objectives_dir(root: str | Path) -> Path:
    """``RESULTS/objectives`` (the objectives compared, ``unitscope objectives``)."""
    return Path(root) / OBJECTIVES
