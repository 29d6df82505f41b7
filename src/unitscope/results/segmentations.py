"""Segmentation pictures of a network: top-image tiles, and the unit strips of experiment 2b.

The tiles (``<network>/segmentations/<layer>/<unit>/<rank>_<id>.jpg``) are
the JPEG files the labeling app shows (written by
:mod:`unitscope.report.tiles`).  A unit segmentation result (experiment 2b,
in any experiment folder) holds what each unit's strip shows, as arrays;
the report draws the strips (:func:`unitscope.report.pictures.unit_strip`)::

    segmentations.csv    one row per (unit, rank): network, layer, unit, rank, index, id,
                         activation, threshold, mask_fraction
    segmentations.npz    image_<index>: each top image as the network saw it, (H, W, 3) uint8;
                         mask_<unit>_<rank>: where the unit fires on it, (H, W) bool
    segmentations.json   network, layer, units, options (``dim``: brightness kept outside a
                         mask), and "tiles": per unit, in rank order, the names of its
                         image and mask in segmentations.npz
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.layout import SEGMENTATION_TILE, UNIT_SEGMENTATIONS_CSV, UNIT_SEGMENTATIONS_JSON
from unitscope.results.layout import UNIT_SEGMENTATIONS_NPZ, layer_file_names, safe_name
from unitscope.results.schema import CsvSpec, ResultFileError, read_csv, read_json, read_required_json
from unitscope.results.writing import read_npz, write_csv, write_json, write_npz

__all__ = ["UnitSegmentationsResult", "UnitStrip", "load_unit_tiles", "load_segmentations"]

_TABLE = CsvSpec(required=("unit", "rank", "index", "id"), integers=("unit", "rank", "index"),
                 text=("network", "layer", "id"), keep_default_na=False, na_values={"threshold": [""]})


@dataclass
class UnitSegmentationsResult:
    """Each unit's top images and where it fires on them: what its strip shows.

    Attributes
    ----------
    layer : str
    units : list of int
    table : DataFrame
        ``unit, rank, index, id, activation, threshold, mask_fraction``, by unit (in
        :attr:`units` order) then rank.
    images : dict of int to ndarray
        Pool position -> the image as the network saw it, ``(H, W, 3)`` uint8.
    masks : dict of (int, int) to ndarray
        ``(unit, rank)`` -> where the unit fires on that top image, ``(H, W)`` bool.
    options : dict
        ``dim`` (brightness kept outside the mask in the strip), ``top``, ``mask``, ...
    network : str
    """

    layer: str
    units: list[int]
    table: pd.DataFrame
    images: dict[int, np.ndarray] = field(default_factory=dict)
    masks: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    network: str = ""

    @property
    def dim(self) -> float:
        """Brightness the strip keeps outside a unit's mask."""
        return float(self.options.get("dim", 0.15))

    def strip(self, unit: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(image, mask)`` of each of ``unit``'s top images, by rank: what its strip shows.

        Raises
        ------
        LookupError
            If the result has no images for ``unit``.
        """
        rows = self.table[self.table["unit"] == int(unit)]
        if not len(rows):
            raise LookupError(f"no unit segmentations of unit {unit} (units: {self.units})")
        return [(self.images[int(r.index)], self.masks[(int(unit), int(r.rank))]) for r in rows.itertuples()]

    def to_frame(self) -> pd.DataFrame:
        frame = self.table.copy()
        frame.insert(0, "layer", self.layer)
        frame.insert(0, "network", self.network)
        return frame

    def save(self, out_dir: str | Path) -> Path:
        """Write the files of the module docstring into ``out_dir``.

        Strip pictures an older unitscope saved there (``<layer>/unit_<n>.png``,
        listed in its ``segmentations.json``) are removed: the arrays replace them.
        """
        out = Path(out_dir)
        older = _png_strips(out / UNIT_SEGMENTATIONS_JSON)
        tiles: dict[str, list[dict]] = {}
        for r in self.table.itertuples():
            tiles.setdefault(str(int(r.unit)), []).append(
                {"rank": int(r.rank), "image": f"image_{int(r.index)}", "mask": f"mask_{int(r.unit)}_{int(r.rank)}"})
        arrays = {f"image_{int(i)}": np.asarray(image, dtype=np.uint8) for i, image in sorted(self.images.items())}
        arrays.update({f"mask_{int(u)}_{int(k)}": np.asarray(mask, dtype=bool)
                       for (u, k), mask in sorted(self.masks.items())})
        write_csv(out / UNIT_SEGMENTATIONS_CSV, self.to_frame())
        write_npz(out / UNIT_SEGMENTATIONS_NPZ, **arrays)
        write_json(out / UNIT_SEGMENTATIONS_JSON, {
            "experiment": "unit_segmentations", "network": self.network, "layer": self.layer,
            "units": [int(u) for u in self.units], "options": self.options, "tiles": tiles,
        })
        for name in older:
            (out / name).unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "UnitSegmentationsResult":
        """Read a result written by :meth:`save`: a missing file is a ``FileNotFoundError`` naming it (a
        folder of an older unitscope, whose strips were PNG files, lacks ``segmentations.npz``), a
        damaged one a :class:`~unitscope.results.schema.ResultFileError`."""
        out = Path(out_dir)
        path = out / UNIT_SEGMENTATIONS_JSON
        meta = read_required_json(path, what="unit segmentations")
        tiles = meta["tiles"]
        if not all(isinstance(unit, str) and unit.isdigit() for unit in tiles):
            raise ResultFileError(f"{path}: tiles must map unit numbers to their images and masks, not "
                                  f"{next(u for u in tiles if not u.isdigit())!r}")
        arrays = read_npz(out / UNIT_SEGMENTATIONS_NPZ, what=f"the images and masks {UNIT_SEGMENTATIONS_JSON} names")
        images, masks = {}, {}
        for unit, entries in tiles.items():
            if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
                raise ResultFileError(f"{path}: the tiles of unit {unit} must be a list of JSON objects")
            for entry in entries:
                image, mask, rank = entry.get("image"), entry.get("mask"), entry.get("rank")
                index = re.fullmatch(r"image_(\d+)", str(image))
                if not (index and isinstance(mask, str) and isinstance(rank, int)):
                    raise ResultFileError(f"{path}: a tile of unit {unit} must name its rank, image_<index> "
                                          f"and mask, not {entry}")
                for name in (image, mask):
                    if name not in arrays:
                        raise ResultFileError(f"{out / UNIT_SEGMENTATIONS_NPZ} has no array {name!r}, which unit "
                                              f"{unit} of {UNIT_SEGMENTATIONS_JSON} names")
                images[int(index.group(1))] = arrays[image]
                masks[(int(unit), rank)] = arrays[mask].astype(bool)
        table = read_csv(out / UNIT_SEGMENTATIONS_CSV, _TABLE)
        if table is None:
            raise FileNotFoundError(f"{out / UNIT_SEGMENTATIONS_CSV} is missing: it holds the rows "
                                    f"{UNIT_SEGMENTATIONS_JSON} lists")
        table = table.drop(columns=["network", "layer"], errors="ignore")
        return cls(layer=meta["layer"], units=[int(u) for u in meta.get("units") or []], table=table,
                   images=images, masks=masks, options=dict(meta.get("options") or {}),
                   network=meta.get("network", ""))


def _png_strips(manifest: Path) -> list[str]:
    """The strip pictures an older ``segmentations.json`` lists (only names its writer made), if it is one."""
    try:
        tiles = read_json(manifest) or {}
        names = {str(name) for name in tiles.get("tiles", {}).values() if isinstance(name, str)}
    except (OSError, ValueError, AttributeError, TypeError):
        return []
    return sorted(n for n in names if re.fullmatch(r"[A-Za-z0-9._-]+/unit_\d{4}\.png", n) and not n.startswith("."))


@dataclass(frozen=True)
class UnitStrip:
    """One unit's strip in a results directory: its result, and where the report draws it.

    Attributes
    ----------
    folder : str
        The result's folder relative to the results directory (``scenenet/rf/segmentations``).
    result : UnitSegmentationsResult
    unit : int
    """

    folder: str
    result: UnitSegmentationsResult
    unit: int

    @property
    def picture(self) -> str:
        """Where the report draws the strip, mirroring its arrays: ``<folder>/<layer>/unit_<n>.png``."""
        return f"{self.folder}/{safe_name(self.result.layer)}/unit_{self.unit:04d}.png"


def load_unit_tiles(results_dir: Path, network: str) -> dict[tuple[str, int], UnitStrip]:
    """Unit segmentation strips of experiment 2b: every ``segmentations.json`` under ``<network>``."""
    root = Path(results_dir)
    base = root / network
    tiles: dict[tuple[str, int], UnitStrip] = {}
    if not base.is_dir():
        return tiles
    for meta_path in sorted(base.rglob(UNIT_SEGMENTATIONS_JSON)):
        result = UnitSegmentationsResult.load(meta_path.parent)
        folder = meta_path.parent.relative_to(root).as_posix()
        for unit in dict.fromkeys(result.table["unit"].tolist()):
            tiles[(result.layer, int(unit))] = UnitStrip(folder, result, int(unit))
    return tiles


def load_segmentations(results_dir: Path, network: str, layers: list[str]) -> dict[tuple[str, int], list[dict]]:
    """Top-image segmentations ``<network>/segmentations/<layer>/<unit>/<rank>_<id>.jpg``.

    Returns ``(layer, unit) -> [{"rank", "id", "path"}, ...]`` sorted by rank.
    """
    base = Path(results_dir) / network / "segmentations"
    out: dict[tuple[str, int], list[dict]] = {}
    if not base.is_dir():
        return out
    for layer in layers:
        folder = next((base / f for f in layer_file_names(layer) if (base / f).is_dir()), None)
        if folder is None:
            continue
        for unit_dir in folder.iterdir():
            if not (unit_dir.is_dir() and unit_dir.name.isdigit()):
                continue
            images = []
            for f in unit_dir.iterdir():
                match = SEGMENTATION_TILE.match(f.name)
                if match and f.is_file():
                    images.append({"rank": int(match.group(1)), "id": match.group(2), "path": f})
            if images:
                out[(layer, int(unit_dir.name))] = sorted(images, key=lambda d: d["rank"])
    return out
