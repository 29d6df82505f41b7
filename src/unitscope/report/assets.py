"""What the report's pages link to: result files, plots, and the pictures drawn from saved arrays.

:class:`Assets` turns a file into a link relative to the page, draws plots
into ``REPORT/plots`` and pictures (from the arrays the experiments saved,
with :mod:`unitscope.report.pictures`) into ``REPORT/pictures``;
:func:`table` and :func:`cell` shape a frame for the templates.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from unitscope.report.pictures import png_bytes
from unitscope.results.layout import safe_name

__all__ = ["Assets", "HINTS", "PERCENT_COLUMNS", "table", "cell", "unit_page_path"]

HINTS = {
    "run": "No run.json: the configuration, versions and timings are written by `unitscope demo`.",
    "preference": "No layer-preference results: run `unitscope preference ... --out RESULTS`.",
    "minimal": "No minimal-image results: run `unitscope minimal ... --out RESULTS`.",
    "rf": "No receptive-field results: run `unitscope rf ... --out RESULTS`.",
    "semantics": "No dissection results: run `unitscope dissect --model MODEL --data POOL --out RESULTS`.",
    "census": "No object census: `unitscope dissect ... --out RESULTS` writes it (add `--null` for the "
              "random-weights null).",
    "localize": "No localisation results: run `unitscope localize ... --out RESULTS`.",
    "ablate": "No ablation results: run `unitscope ablate ... --out RESULTS`.",
    "human": "No human labels: collect them with `unitscope label serve RESULTS`, then write them with "
             "`unitscope label results --results RESULTS`.",
    "crowd": "No imported crowd labels: `unitscope import iclr15 unitAnnotation_places205-alexnet.mat --network "
             "alexnet-places205 --out RESULTS` (README: The paper's own data; `make published`).",
    "published": "No imported published results: `unitscope import iclr15 FILE.mat --network NAME --out RESULTS` or "
                 "`unitscope import netdissect FILE.csv --network NAME --layer LAYER --out RESULTS` "
                 "(README: The paper's own data; `make published`).",
    "reference": "No reference networks: import Network Dissection's tables beside your dissections with "
                 "`unitscope import netdissect caffe_reference_places365.csv --network alexnet-places365 "
                 "--layer conv5 --out RESULTS` (README: The paper's own data).",
}


# --------------------------------------------------------------------------- assets
class Assets:
    """Links to result files from the report's pages, and where plots and pictures go.

    Parameters
    ----------
    out : Path
        The report folder (holds ``index.html``).
    root : Path
        The results directory.
    copy : bool
        Copy every linked file into ``out/files`` (a report folder that can
        be moved on its own) instead of linking to it in place.
    """

    def __init__(self, out: Path, root: Path, *, copy: bool = False) -> None:
        self.out = Path(os.path.abspath(out))
        self.root = Path(os.path.abspath(root))
        self.copy = copy
        self.plots_dir = self.out / "plots"
        self.pictures_dir = self.out / "pictures"
        self.plotted: list[Path] = []
        self._relative_dirs: dict[tuple[str, str], str] = {}

    def _target(self, path: Path) -> str:
        path = os.path.abspath(path)
        if not self.copy or Path(path).is_relative_to(self.out):  # the report's own files stay where they are
            return path
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            rel = Path("external") / safe_name(os.path.dirname(path)) / os.path.basename(path)
        target = self.out / "files" / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Contents only: the copy gets the umask's permissions, not the result file's.
            shutil.copyfile(path, target)
        return str(target)

    def url(self, path: Path, page_dir: Path | None = None) -> str:
        """A relative, percent-encoded link from ``page_dir`` (default: the report folder) to ``path``."""
        target = self._target(path)
        folder, name = os.path.split(target)
        start = os.path.abspath(page_dir) if page_dir is not None else str(self.out)
        key = (folder, start)
        if key not in self._relative_dirs:  # thousands of links share a few folders: relpath once per pair
            self._relative_dirs[key] = Path(os.path.relpath(folder, start)).as_posix()
        rel = self._relative_dirs[key]
        return quote(name if rel == "." else f"{rel}/{name}")

    def picture(self, rel: str, draw: Callable[[], np.ndarray]) -> Path:
        """Draw a picture into ``pictures/<rel>`` (PNG) once; its path.

        ``rel`` mirrors where the picture's arrays lie in the results
        (``<network>/rf/<layer>/maps/unit_0003.png``), so every picture has
        one place however many pages show it.
        """
        path = self.pictures_dir / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png_bytes(draw()))
        return path

    def plot(self, name: str, draw: Callable[[Path], Path | None]) -> str | None:
        """Draw a plot into ``plots/<name>.png``; its link from the report folder, or None if nothing was drawn."""
        path = draw(self.plots_dir / f"{safe_name(name)}.png")
        if path is None:
            return None
        self.plotted.append(path)
        return quote(Path(os.path.relpath(path, self.out)).as_posix())


#: Columns shown as percentages wherever they appear.
PERCENT_COLUMNS = re.compile(r"^(share(_.*)?|.*_share|fraction|kept_fraction|precision_over_75|.*_rate|pointing|"
                             r".*_pointing|.*accuracy|.*_acc|label_agreement_rate|type_agreement_rate|annotation_share_.*|"
                             r".*_agree_type)$")


def table(frame: pd.DataFrame | None, columns: Sequence[str] | None = None, *,
          rename: dict[str, str] | None = None, limit: int | None = None) -> dict[str, Any]:
    """A frame as ``{"columns", "rows", "total", "percent"}`` (only ``columns`` that exist; first ``limit`` rows).

    ``percent`` flags the columns whose values are shares (shown as percentages).
    """
    if frame is None or not len(frame.columns):
        return {"columns": [], "rows": [], "total": 0, "percent": []}
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    rename = rename or {}
    shown = frame[columns] if limit is None else frame[columns].head(limit)
    rows = [[cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    return {"columns": [rename.get(c, c.replace("_", " ")) for c in columns], "rows": rows, "total": len(frame),
            "percent": [bool(PERCENT_COLUMNS.match(str(c))) for c in columns]}


def cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def unit_page_path(network: str, layer: str, unit: int) -> str:
    """Path of a unit's page relative to the report folder."""
    return f"units/{safe_name(network)}/{safe_name(layer)}/{int(unit)}.html"
