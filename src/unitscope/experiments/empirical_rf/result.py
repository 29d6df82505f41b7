"""The result of an empirical-RF run: averaged maps, sizes, tables, and the files they are saved to.

A unit's averaged map is re-centred on its theoretical window (see the
package docstring); :func:`rf_size` reads the RF size off it.  ``save``
writes ``units.csv``, ``layer.csv``, ``maps.npz``, ``rf.json`` and a few
colour-mapped pictures; ``load`` reads them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .._io import colorize, read_json, write_csv, write_json, write_npz, write_png
from unitscope.models.rf_window import RFWindow

__all__ = ["EmpiricalRFResult", "rf_size", "summarise_receptive_fields", "TIMING_STATS"]

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
    network : str
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
        """Write ``units.csv``, ``layer.csv``, ``maps.npz``, ``rf.json`` and
        ``maps/unit_<n>.png`` (colour-mapped averaged maps of the first ``pictures`` units)."""
        out = Path(out_dir)
        write_csv(out / "units.csv", self.to_frame())
        write_csv(out / "layer.csv", self.summary())
        write_npz(out / "maps.npz", units=self.units, maps=self.maps, sizes=self.sizes,
                  top_ids=self.top_ids, top_values=self.top_values, locations=self.locations)
        written = []
        for unit, averaged in list(zip(self.units, self.maps))[:pictures]:
            name = f"maps/unit_{int(unit):04d}.png"
            write_png(out / name, colorize(averaged))
            written.append(name)
        write_json(out / "rf.json", {
            "experiment": "empirical_receptive_fields", "network": self.network, "layer": self.layer,
            "theoretical": {"size": self.theoretical.size, "stride": self.theoretical.stride,
                            "start": self.theoretical.start, "note": self.theoretical.note},
            "image_size": list(self.image_size), "occluder": self.occluder, "stride": self.stride,
            "options": self.options, "stats": {k: v for k, v in self.stats.items() if k not in TIMING_STATS},
            "pictures": written,
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "EmpiricalRFResult":
        """Read a result written by :meth:`save`."""
        out = Path(out_dir)
        meta = read_json(out / "rf.json")
        with np.load(out / "maps.npz") as arrays:
            data = {k: arrays[k].copy() for k in arrays.files}
        theo = meta["theoretical"]
        return cls(layer=meta["layer"], units=data["units"], maps=data["maps"],
                   sizes=data["sizes"].astype(np.float64), top_ids=data["top_ids"],
                   top_values=data["top_values"], locations=data["locations"],
                   theoretical=RFWindow(int(theo["size"]), int(theo["stride"]), int(theo["start"]),
                                        theo.get("note")),
                   image_size=tuple(meta["image_size"]), occluder=int(meta["occluder"]),
                   stride=int(meta["stride"]), options=dict(meta["options"]), stats=dict(meta["stats"]),
                   network=meta.get("network", ""))


def summarise_receptive_fields(results: Sequence[EmpiricalRFResult]) -> pd.DataFrame:
    """Concatenate the one-row summaries of several layers (the Table 1 of the paper)."""
    frames = [r.summary() for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
