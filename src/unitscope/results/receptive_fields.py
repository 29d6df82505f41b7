"""Empirical receptive fields (SPEC section 4): averaged occlusion maps, sizes, tables, and their files.

A unit's averaged map is re-centred on its theoretical window (see
:mod:`unitscope.experiments.empirical_rf`); :func:`rf_size` reads the RF
size off it.  Saved in ``RESULTS/<network>/rf/<layer>``::

    units.csv   one row per unit
    layer.csv   the layer's one-row summary
    maps.npz    units, maps (U, 2R+1, 2R+1), sizes, top images, their values and max locations
    rf.json     the theoretical window, options, counts, and "pictures": the units whose
                maps the report draws (the first units studied)

The report draws the maps from ``maps.npz`` (colour-mapped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from unitscope.results.writing import read_npz, write_csv, write_json, write_npz
from unitscope.results.layout import LAYER_CSV, MAPS_NPZ, RF, RF_JSON, SUMMARY_CSV, UNITS_CSV, command_dir
from unitscope.results.schema import ResultFileError, read_required_json

__all__ = ["RFWindow", "EmpiricalRFResult", "rf_size", "summarise_receptive_fields", "save_receptive_field_summary",
           "TIMING_STATS", "ReceptiveFields", "load_receptive_fields"]

@dataclass(frozen=True)
class RFWindow:
    """Square theoretical receptive field of a layer.

    Attributes
    ----------
    size : int
        Side of the window in input pixels.
    stride : int
        Input pixels between neighbouring output positions.
    start : int
        First input pixel of output position 0's window (``-padding``).
    note : str or None
        Set (``"global: attention"``) for a layer whose units see the whole
        input: the window is then only a frame for centring occlusion maps
        on a unit's position (:func:`whole_image_window`), not its RF.
    """

    size: int
    stride: int
    start: int
    note: str | None = None

    def window(self, i: int) -> tuple[int, int]:
        """``[first, last + 1)`` input pixels of output position ``i``."""
        first = i * self.stride + self.start
        return first, first + self.size

    def centre(self, i: int) -> int:
        """Input pixel at the centre of position ``i``'s window (rounded down)."""
        return i * self.stride + self.start + (self.size - 1) // 2


#: Entries of ``stats`` that are wall times: kept in memory (benchmarks, the command's
#: run.json) but not written to rf.json, which is byte-identical between runs.
TIMING_STATS = ("topk_s", "occlusion_s")


def rf_size(averaged_map: np.ndarray) -> float:
    """Side of the square with the area of the region above half the map's peak (NaN if the peak <= 0)."""
    values = np.asarray(averaged_map, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return float("nan")
    return float(math.sqrt(int((values > peak / 2).sum())))


@dataclass
class EmpiricalRFResult:
    """Empirical receptive fields of a layer's units.

    Attributes
    ----------
    layer : str
    units : ndarray, shape (U,)
        Channel numbers of the units studied.
    maps : ndarray, shape (U, 2R+1, 2R+1)
        Averaged discrepancy maps; ``maps[u, R + dy, R + dx]`` is the mean
        absolute activation change when the occluder is centred ``(dy, dx)``
        pixels from the unit's RF centre.
    sizes : ndarray, shape (U,)
        RF size per unit (see :func:`rf_size`), in input pixels.
    top_ids, top_values : ndarray, shape (U, K)
        Each unit's top images (positions in the data set) and their max activations.
    locations : ndarray, shape (U, K, 2)
        Row and column of the max in the activation map, per top image.
    theoretical : RFWindow
        The window occlusion maps are centred on; for a layer whose units
        see the whole input (``theoretical.note``, e.g. ``"global:
        attention"``) a frame reaching across the image, and the tables'
        ``theoretical_size`` is then the image's side.
    image_size : (int, int)
    occluder, stride : int
    options : dict
    stats : dict
        ``images`` (distinct images occluded), ``copies`` (occluded forwards
        run, crops and unoccluded references included), ``copies_naive``
        (full-image forwards of the naive sweep: every grid position plus
        the reference, per image), ``pixels`` / ``pixels_naive`` (input
        pixels pushed through), ``topk_s`` and ``occlusion_s`` (seconds).
        An adaptive run adds ``copies_coarse`` and ``copies_refined``.
    network : str
    drawn : list of int or None
        The units whose maps the report draws (None: the first ``pictures`` of :meth:`save`).
    mode : str
        ``"exact"`` (every grid position occluded) or ``"adaptive"`` (the
        drill-down of :mod:`unitscope.experiments.empirical_rf.adaptive`).
    drill_down : dict or None
        The adaptive run's parameters, ``{"coarse": steps, "tolerance": fraction}``.
    """

    layer: str
    units: np.ndarray
    maps: np.ndarray
    sizes: np.ndarray
    top_ids: np.ndarray
    top_values: np.ndarray
    locations: np.ndarray
    theoretical: RFWindow
    image_size: tuple[int, int]
    occluder: int
    stride: int
    options: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    network: str = ""
    drawn: list[int] | None = None
    mode: str = "exact"
    drill_down: dict | None = None

    @property
    def theoretical_size(self) -> int:
        """The theoretical RF side in the tables: the image's side for units that see all of it."""
        return max(self.image_size) if self.theoretical.note else self.theoretical.size

    @property
    def radius(self) -> int:
        return (self.maps.shape[-1] - 1) // 2

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``network, layer, unit, rf_size, peak, n_images, theoretical_size``."""
        flat = self.maps.reshape(len(self.units), -1) if len(self.units) else np.zeros((0, 1))
        return pd.DataFrame({
            "network": self.network,
            "layer": self.layer,
            "unit": self.units.astype(int),
            "rf_size": self.sizes,
            "peak": flat.max(axis=1) if flat.shape[1] else np.zeros(len(self.units)),
            "n_images": (self.top_ids >= 0).sum(axis=1),
            "theoretical_size": self.theoretical_size,
        })

    def summary(self) -> pd.DataFrame:
        """One row: ``network, layer, n_units, n_measured, rf_mean, rf_std, rf_median,
        theoretical_size, theoretical_stride, occluder, stride, image_size, theoretical_note``
        (``theoretical_note``: ``"global: attention"`` when the units see the whole image, else empty).

        ``n_measured`` counts units with a finite size (dead units are left
        out of the mean and std); std is the population std (ddof 0).
        """
        sizes = self.sizes[np.isfinite(self.sizes)]
        return pd.DataFrame([{
            "network": self.network, "layer": self.layer, "n_units": len(self.units),
            "n_measured": len(sizes),
            "rf_mean": float(sizes.mean()) if len(sizes) else float("nan"),
            "rf_std": float(sizes.std()) if len(sizes) else float("nan"),
            "rf_median": float(np.median(sizes)) if len(sizes) else float("nan"),
            "theoretical_size": self.theoretical_size, "theoretical_stride": self.theoretical.stride,
            "occluder": self.occluder, "stride": self.stride,
            "image_size": f"{self.image_size[0]}x{self.image_size[1]}",
            "theoretical_note": self.theoretical.note or "",
        }])

    def save(self, out_dir: str | Path, *, pictures: int = 16) -> Path:
        """Write the files of the module docstring; the report draws the maps of the first ``pictures`` units."""
        out = Path(out_dir)
        write_csv(out / UNITS_CSV, self.to_frame())
        write_csv(out / LAYER_CSV, self.summary())
        write_npz(out / MAPS_NPZ, units=self.units, maps=self.maps, sizes=self.sizes,
                  top_ids=self.top_ids, top_values=self.top_values, locations=self.locations)
        # an exact run's rf.json is as it was before the adaptive mode existed (no "mode": exact is the default)
        adaptive = {} if self.mode == "exact" else {"mode": self.mode, "drill_down": self.drill_down}
        write_json(out / RF_JSON, {
            "experiment": "empirical_receptive_fields", "network": self.network, "layer": self.layer, **adaptive,
            "theoretical": {"size": self.theoretical.size, "stride": self.theoretical.stride,
                            "start": self.theoretical.start, "note": self.theoretical.note},
            "image_size": list(self.image_size), "occluder": self.occluder, "stride": self.stride,
            "options": self.options, "stats": {k: v for k, v in self.stats.items() if k not in TIMING_STATS},
            "pictures": self.drawn if self.drawn is not None else [int(u) for u in self.units[:pictures]],
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "EmpiricalRFResult":
        """Read a result written by :meth:`save`, or by an older unitscope (its map PNGs are not needed): a
        missing file is a ``FileNotFoundError`` naming it, a damaged one a ``ResultFileError``."""
        out = Path(out_dir)
        meta = read_required_json(out / RF_JSON, what="receptive-field result")
        data = read_npz(out / MAPS_NPZ, what="the averaged maps of the units")
        missing = [k for k in ("units", "maps", "sizes", "top_ids", "top_values", "locations") if k not in data]
        if missing:
            raise ResultFileError(f"{out / MAPS_NPZ} lacks the array(s) {', '.join(missing)}")
        theo = meta["theoretical"]
        return cls(layer=meta["layer"], units=data["units"], maps=data["maps"],
                   sizes=data["sizes"].astype(np.float64), top_ids=data["top_ids"],
                   top_values=data["top_values"], locations=data["locations"],
                   theoretical=RFWindow(int(theo["size"]), int(theo["stride"]), int(theo["start"]),
                                        theo.get("note")),
                   image_size=tuple(meta["image_size"]), occluder=int(meta["occluder"]),
                   stride=int(meta["stride"]), options=dict(meta.get("options") or {}),
                   stats=dict(meta["stats"]), network=meta.get("network", ""),
                   drawn=[int(u) for u in meta["pictures"] if isinstance(u, int)] or None,
                   mode=meta.get("mode", "exact"), drill_down=meta.get("drill_down"))


def summarise_receptive_fields(results: Sequence[EmpiricalRFResult]) -> pd.DataFrame:
    """Concatenate the one-row summaries of several layers (the Table 1 of the paper)."""
    frames = [r.summary() for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def save_receptive_field_summary(folder: str | Path, results: Sequence[EmpiricalRFResult]) -> pd.DataFrame:
    """Write :func:`summarise_receptive_fields` of ``results`` as ``folder/summary.csv`` (``<network>/rf``); return it."""
    summary = summarise_receptive_fields(results)
    write_csv(Path(folder) / SUMMARY_CSV, summary)
    return summary


@dataclass
class ReceptiveFields:
    """Empirical receptive fields of a network, every layer measured (``<network>/rf/<layer>``).

    Attributes
    ----------
    network : str
    results : list of EmpiricalRFResult
        One per layer, shallow to deep (by theoretical RF size; deeper layers see more).
    """

    network: str
    results: list[EmpiricalRFResult]

    @property
    def layers(self) -> pd.DataFrame:
        """The layers' one-row summaries (:meth:`EmpiricalRFResult.summary`), network set to :attr:`network`."""
        return summarise_receptive_fields(self.results).assign(network=self.network)

    @property
    def units(self) -> pd.DataFrame:
        """Every layer's units (:meth:`EmpiricalRFResult.to_frame`), network set to :attr:`network`."""
        frames = [r.to_frame() for r in self.results]
        if not frames:
            return pd.DataFrame(columns=["network", "layer", "unit", "rf_size"])
        return pd.concat(frames, ignore_index=True).assign(network=self.network)

    @property
    def maps(self) -> dict[tuple[str, int], np.ndarray]:
        """``(layer, unit) -> averaged map`` of the units the report draws (``rf.json`` "pictures")."""
        out = {}
        for r in self.results:
            drawn = set(r.drawn) if r.drawn is not None else None
            for unit, averaged in zip(r.units.tolist(), r.maps):
                if drawn is None or int(unit) in drawn:
                    out[(r.layer, int(unit))] = averaged
        return out


def load_receptive_fields(results_dir: str | Path, network: str) -> ReceptiveFields | None:
    """Every layer's result under ``<network>/rf`` (a folder per layer); None when there is none."""
    base = command_dir(results_dir, network, RF)
    if not base.is_dir():
        return None
    results = [EmpiricalRFResult.load(folder) for folder in sorted(base.iterdir())
               if folder.is_dir() and (folder / RF_JSON).is_file()]
    if not results:
        return None
    results.sort(key=lambda r: r.theoretical_size)  # stable: a depth order without the model
    return ReceptiveFields(network=network, results=results)
