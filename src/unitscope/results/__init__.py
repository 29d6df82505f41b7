"""Every saved result of unitscope, defined once: its files, how they are read, what they must hold.

>>> from unitscope.results import load_results
>>> results = load_results("results")  # doctest: +SKIP

* :mod:`~unitscope.results.layout` names every path in a results directory
  (and the one :func:`~unitscope.results.layout.safe_name`);
* :mod:`~unitscope.results.schema` says what each file must hold and raises
  :class:`ResultFileError` (one line naming the file) when it does not;
* one module per kind of result reads it (and, for the typed kinds, writes it);
* :mod:`~unitscope.results.resultset` reads a whole results directory.

Torch-free: numpy, pandas and JSON only, so the report and the labeling app
can read results where torch is not installed.
"""

from unitscope.results import layout
from unitscope.results.ablation import AblationResult, AblationTables
from unitscope.results.census import CensusResult
from unitscope.results.dissection import DissectionResult, LayerDissection
from unitscope.results.dissection_tables import DissectionTables
from unitscope.results.emergence import EmergenceResult
from unitscope.results.human import HumanResults
from unitscope.results.objectives import ObjectivesResult
from unitscope.results.resultset import NetworkResults, ResultSet, find_networks, load_results
from unitscope.results.run import RunMetadata
from unitscope.results.schema import ResultFileError

__all__ = [
    "layout",
    "ResultFileError",
    "DissectionResult",
    "LayerDissection",
    "DissectionTables",
    "CensusResult",
    "EmergenceResult",
    "AblationResult",
    "AblationTables",
    "HumanResults",
    "ObjectivesResult",
    "RunMetadata",
    "ResultSet",
    "NetworkResults",
    "find_networks",
    "load_results",
]
