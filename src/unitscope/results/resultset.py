"""Read a results directory into plain data: one loader per kind of result.

The report never imports the experiments: it reads the files they saved
(the layout of ``docs/ARCHITECTURE.md``)::

    RESULTS/run.json                                  configuration, versions, timings
    RESULTS/preference/                               fractions.csv, top_images.csv, preference.json, *.npz
    RESULTS/<network>/dissect/                        units.csv, layers.csv, concepts.csv, census_*.csv
    RESULTS/<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg
    RESULTS/<network>/minimal/[<run>/]minimal.json    + images.csv, objects.csv, diagnostic.csv, examples.npz
    RESULTS/<network>/rf/<layer>/rf.json              + layer.csv, units.csv, maps.npz
    RESULTS/<network>/**/segmentations.json           unit segmentation strips (experiment 2b), + .csv, .npz
    RESULTS/<network>/localize/                       objects.csv, units.csv, examples.json, examples.npz, ...
    RESULTS/<network>/ablate/**/ablate.json           + classes.csv, summary.csv, conditions.csv
    RESULTS/<network>/human/                          units.csv, layers.csv, compare.csv, summary.json
    RESULTS/emergence/<network>/                      units.csv, emergence.csv, emergence.json (training snapshots)
    RESULTS/objectives/                               objectives.csv, objectives.json (objectives compared)

Every loader returns ``None`` (or an empty container) when its files are
absent, so a partial result set gives a partial report.  A file that exists
but does not hold what its writer writes raises
:class:`~unitscope.results.schema.ResultFileError` naming the file: a broken
result is reported, never silently skipped.  What each file must hold is
written down once, in :mod:`unitscope.results.schema`;
the checks across files (a ``units.csv`` with fewer rows than ``layers.csv``
counts) are with each kind's reader (:mod:`unitscope.results.dissection_tables`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unitscope.results.ablation import AblationTables, load_ablations
from unitscope.results.census import CensusResult, load_census
from unitscope.results.dissection_tables import DissectionTables, load_dissection
from unitscope.results.emergence import EmergenceResult, load_emergence
from unitscope.results.human import HumanResults, load_human
from unitscope.results.layout import NETWORK_FOLDERS, NOT_NETWORKS, NULL_SUFFIX, REPORT_MANIFEST
from unitscope.results.localize import LocalizationResult, load_localization
from unitscope.results.minimal import MinimalRun, load_minimal
from unitscope.results.objectives import ObjectivesResult, load_objectives
from unitscope.results.preference import Preference, has_preference, load_preference
from unitscope.results.receptive_fields import ReceptiveFields, load_receptive_fields
from unitscope.results.run import RunMetadata, load_run
from unitscope.results.segmentations import UnitStrip, load_segmentations, load_unit_tiles

__all__ = ["NetworkResults", "ResultSet", "find_networks", "load_results"]


def find_networks(results_dir: Path, run: RunMetadata | None = None) -> list[str]:
    """Every network folder of ``results_dir`` (nulls included), ``run.json`` order first, then sorted."""
    results_dir = Path(results_dir)
    found = sorted(
        p.name for p in results_dir.iterdir()
        if p.is_dir() and p.name not in NOT_NETWORKS and not p.name.startswith(".")
        and not (p / REPORT_MANIFEST).exists()
        and any((p / sub).is_dir() for sub in NETWORK_FOLDERS)
    ) if results_dir.is_dir() else []
    listed = list(run.networks) if run is not None else []
    return [n for n in listed if n in found] + [n for n in found if n not in listed]


@dataclass
class NetworkResults:
    """Everything saved for one network."""

    name: str
    null: str | None  # name of its random-weights null when present
    dissection: DissectionTables | None
    census: CensusResult | None
    segmentations: dict[tuple[str, int], list[dict]]
    minimal: list[MinimalRun]
    rf: ReceptiveFields | None
    unit_tiles: dict[tuple[str, int], UnitStrip]  # experiment 2b: what each unit's strip shows
    localize: LocalizationResult | None
    ablate: list[AblationTables]  # one per ablated layer (folder); empty when none
    human: HumanResults | None
    info: dict = field(default_factory=dict)  # run.json networks[name]


@dataclass
class ResultSet:
    """A whole results directory, as read by :func:`load_results`."""

    root: Path
    run: RunMetadata | None
    networks: list[NetworkResults]  # the networks shown side by side
    nulls: dict[str, NetworkResults]  # null networks by name
    preference: Preference | None
    emergence: dict[str, EmergenceResult] = field(default_factory=dict)  # training runs' snapshots, by name
    objectives: ObjectivesResult | None = None  # `unitscope objectives`: the objectives compared

    def network(self, name: str) -> NetworkResults:
        for n in self.networks:
            if n.name == name:
                return n
        raise LookupError(f"no network {name!r} in the results; have {[n.name for n in self.networks]}")


def _load_network(results_dir: Path, name: str, info: dict) -> NetworkResults:
    dissection = load_dissection(results_dir, name)
    layers = dissection.layer_names if dissection is not None else []
    return NetworkResults(
        name=name, null=None, dissection=dissection, census=load_census(results_dir, name),
        segmentations=load_segmentations(results_dir, name, layers),
        minimal=load_minimal(results_dir, name), rf=load_receptive_fields(results_dir, name),
        unit_tiles=load_unit_tiles(results_dir, name),
        localize=load_localization(results_dir, name),
        ablate=load_ablations(results_dir, name),
        human=load_human(results_dir, name), info=dict(info or {}),
    )


def load_results(results_dir: str | Path, *, networks: list[str] | None = None) -> ResultSet:
    """Read every section's files under ``results_dir``.

    Parameters
    ----------
    results_dir : str or Path
    networks : list of str, optional
        The networks to show side by side (default: every network folder
        found, except ``<name>-random`` folders whose ``<name>`` is present:
        those are the nulls of their network).

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a directory.
    LookupError
        If a requested network has no results.
    ResultFileError
        If a result file exists but cannot be read.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    run = load_run(root)
    found = find_networks(root, run)
    if networks is None:
        chosen = [n for n in found if not (n.endswith(NULL_SUFFIX) and n[: -len(NULL_SUFFIX)] in found)]
    else:
        chosen = list(dict.fromkeys(networks))
        missing = [n for n in chosen if n not in found]
        if missing:
            raise LookupError(f"no results for network(s) {', '.join(missing)} in {root}; found: "
                              f"{', '.join(found) or 'none'}")
    emergence = load_emergence(root)
    if not found and not has_preference(root) and not emergence:
        raise LookupError(f"{root} holds no unitscope results (no <network>/dissect, minimal, rf, ... folder and "
                          "no preference/); point the report at the --out of an experiment")
    infos = run.networks if run is not None else {}
    loaded = [_load_network(root, name, infos.get(name, {})) for name in chosen]
    nulls: dict[str, NetworkResults] = {}
    for net in loaded:
        null_name = net.name + NULL_SUFFIX
        if null_name in found and null_name not in chosen:
            nulls[null_name] = _load_network(root, null_name, infos.get(null_name, {}))
            net.null = null_name
        elif net.census is not None and len(net.census.objects) and (
                net.census.objects["network"] == null_name).any():
            net.null = null_name
    return ResultSet(root=root, run=run, networks=loaded, nulls=nulls, preference=load_preference(root),
                     emergence=emergence, objectives=load_objectives(root))
