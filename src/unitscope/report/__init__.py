"""The study report: one self-contained HTML page (plus a page per unit) from saved results.

>>> from unitscope.report import build_report
>>> build_report("results")  # doctest: +SKIP
PosixPath('results/report/index.html')

The report reads files only (see :mod:`unitscope.results` for the
layout); it never runs an experiment.
"""

from unitscope.report.build import build_report
from unitscope.report.measures import Finding
from unitscope.report.summary import summarise
from unitscope.results import ResultFileError, ResultSet, load_results

__all__ = ["build_report", "load_results", "ResultSet", "ResultFileError", "summarise", "Finding"]
