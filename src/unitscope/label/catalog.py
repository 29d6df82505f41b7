"""What there is to label: the units and their segmentations in a results directory.

The labeling app reads only saved results (files), never experiment
internals. The contract it reads::

    RESULTS/<network>/dissect/units.csv
        network,layer,unit,label,category,type,iou,threshold,precision,top_images
    RESULTS/<network>/segmentations/<layer>/<unit>/<rank>_<image-id>.jpg
    RESULTS/concepts.csv                      (optional: number,name,category)

Both are read through :mod:`unitscope.results` (the dissection's tables,
the layout's names and its file-name rule for layers), like the report.

A unit can be labelled when its segmentation folder holds at least one image.
Image files are found by listing folders, and requests for images are answered
only by looking the name up in this catalog, so a request can never reach a
file outside it. A results folder may come from someone else (an archive, a
shared drive), so its links are not trusted either: an image is listed and
served only while it is a regular file whose real path lies inside its
network's ``segmentations`` folder, and only bytes that start like a JPEG or
PNG are served (:func:`read_image`).
"""

from __future__ import annotations

import csv
import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import pandas as pd

from unitscope.results import layout
from unitscope.results.dissection_tables import DissectionTables

__all__ = [
    "UnitKey",
    "SegmentationImage",
    "UnitEntry",
    "Catalog",
    "load_catalog",
    "read_image",
    "network_dirs",
]

_MISSING = {"", "-", "none", "nan"}
_IMAGE_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
#: Segmentation tiles are small pictures; anything larger is not one of ours.
MAX_IMAGE_BYTES = 32 * 2**20


class UnitKey(NamedTuple):
    """A unit: a channel ``unit`` of layer ``layer`` of network ``network``."""

    network: str
    layer: str
    unit: int

    def __str__(self) -> str:
        return f"{self.network}/{self.layer}/{self.unit}"


@dataclass(frozen=True)
class SegmentationImage:
    """One of a unit's top segmentations, as written by the dissection."""

    rank: int
    image_id: str
    name: str
    path: Path


@dataclass(frozen=True)
class UnitEntry:
    """A unit that can be labelled, with what the automatic labeling said about it."""

    key: UnitKey
    images: tuple[SegmentationImage, ...]
    auto_label: str = ""
    auto_category: str = ""
    auto_type: str = ""
    auto_iou: float | None = None

    def image(self, name: str) -> SegmentationImage | None:
        """The image called ``name``, or None if the unit has no such image."""
        for image in self.images:
            if image.name == name:
                return image
        return None

    @property
    def image_ids(self) -> tuple[str, ...]:
        return tuple(image.image_id for image in self.images)


@dataclass(frozen=True)
class Catalog:
    """Every labelable unit of a results directory, in a stable order."""

    results_dir: Path
    units: tuple[UnitEntry, ...]
    vocabulary: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {entry.key: entry for entry in self.units})

    @property
    def keys(self) -> tuple[UnitKey, ...]:
        return tuple(entry.key for entry in self.units)

    def get(self, key: UnitKey) -> UnitEntry | None:
        """The unit ``key``, or None when it is not in the catalog."""
        return self._index.get(key)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.units)


def _image_root(results_dir: Path, network: str) -> Path:
    # Resolved, so that a segmentations folder moved to another disk and linked back still works.
    return layout.segmentations_dir(results_dir, network).resolve()


def _regular_file_inside(path: Path, root: Path) -> Path | None:
    """The real path of ``path`` if it is a regular file inside ``root``, else None."""
    try:
        real = path.resolve(strict=True)
        return real if real.is_relative_to(root) and stat.S_ISREG(real.stat().st_mode) else None
    except (OSError, RuntimeError):  # a dangling link, a loop, a permission error
        return None


def _segmentations(folder: Path, *, root: Path, n_images: int | None) -> tuple[SegmentationImage, ...]:
    if not folder.is_dir():
        return ()
    found = []
    for path in folder.iterdir():
        match = layout.SEGMENTATION_TILE.match(path.name)
        if match and _regular_file_inside(path, root) is not None:
            found.append(SegmentationImage(int(match.group(1)), match.group(2), path.name, path))
    found.sort(key=lambda image: (image.rank, image.name))
    return tuple(found[:n_images])


def read_image(catalog: Catalog, key: UnitKey, name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of image ``name`` of unit ``key``, or None.

    None unless the catalog lists that image and, checked again now (the
    folder may have changed since the catalog was made), it is a regular file
    whose real path lies inside the network's ``segmentations`` folder and
    whose bytes start like a JPEG or PNG. The file is opened without following
    a link in its last component and checked on the open descriptor, so it
    cannot be swapped between the check and the read.
    """
    entry = catalog.get(key)
    image = entry.image(name) if entry is not None else None
    if image is None:
        return None
    real = _regular_file_inside(image.path, _image_root(catalog.results_dir, key.network))
    if real is None:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block
    try:
        descriptor = os.open(real, flags)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IMAGE_BYTES:
            return None
        data = handle.read(MAX_IMAGE_BYTES + 1)
    media = next((media for magic, media in _IMAGE_MAGIC.items() if data.startswith(magic)), None)
    return (data, media) if media is not None and len(data) <= MAX_IMAGE_BYTES else None


def _unit_folders(segmentations: Path, layer: str) -> dict[int, Path]:
    """The unit folders of ``layer``, under whichever spelling of its name the writer used."""
    folders: dict[int, Path] = {}
    for name in layout.layer_file_names(layer):
        layer_dir = segmentations / name
        if layer_dir.is_dir():
            for path in layer_dir.iterdir():
                if path.is_dir() and path.name.isdigit():
                    folders.setdefault(int(path.name), path)
            break
    return folders


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def network_dirs(results_dir: str | Path) -> list[Path]:
    """Folders of ``results_dir`` that hold a ``dissect/units.csv``, sorted by name.

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a directory.
    LookupError
        If no network folder holds a ``dissect/units.csv``.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {results_dir} does not exist")
    found = sorted(p.parent.parent for p in results_dir.glob(f"*/{layout.DISSECT}/{layout.UNITS_CSV}") if p.is_file())
    if not found:
        raise LookupError(f"{results_dir} holds no <network>/{layout.DISSECT}/{layout.UNITS_CSV}; "
                          "run the dissection first")
    return found


def _unit_rows(folder: Path, network: str) -> list[dict]:
    """The rows of a dissection's units table (label, category, type, iou as saved: a label ``none`` stays ``none``)."""
    units = DissectionTables.load(folder, network=network).units
    units = units.assign(layer=units["layer"].astype(str), unit=units["unit"].astype(int))
    return [{k: ("" if isinstance(v, float) and pd.isna(v) and k != "iou" else v) for k, v in row.items()}
            for row in units.to_dict(orient="records")]


def _check_layers(layers: Sequence[str] | None, tables: dict[str, list[dict]]) -> None:
    present = list(dict.fromkeys(row["layer"] for rows in tables.values() for row in rows))
    unknown = [layer for layer in layers or () if layer not in present]
    if not unknown:
        return
    close = [match for layer in unknown for match in difflib.get_close_matches(layer, present, n=3, cutoff=0.5)]
    hint = f"; close matches: {', '.join(dict.fromkeys(close))}" if close else ""
    shown = ", ".join(present[:20]) + (f", ... ({len(present)} in all)" if len(present) > 20 else "")
    raise LookupError(
        f"layer(s) {', '.join(unknown)} not in the {layout.UNITS_CSV} of {', '.join(tables)}{hint}; "
        f"layers present: {shown}"
    )


def load_catalog(
    results_dir: str | Path,
    *,
    n_images: int | None = 60,
    networks: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
) -> Catalog:
    """Find the units of ``results_dir`` that can be labelled.

    Parameters
    ----------
    results_dir : str or Path
        A results directory (see the module docstring for its layout).
    n_images : int or None, optional
        How many top segmentations to show per unit (the paper showed 60);
        None: all of them.
    networks, layers : sequence of str, optional
        Keep only these networks / layer names (default: all).

    Returns
    -------
    Catalog
        Units ordered by network, then layer in ``units.csv`` order, then unit
        number; the concept vocabulary (sorted, distinct automatic labels plus
        the names in ``RESULTS/concepts.csv`` when present).

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a directory.
    LookupError
        If it holds no ``<network>/dissect/units.csv``, or a requested
        network or layer is not there (the message lists the ones present).
    ValueError
        If ``n_images`` is not positive or a ``units.csv`` is malformed.
    """
    if n_images is not None and (isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1):
        raise ValueError(f"n_images (--images) must be at least 1, got {n_images!r}")
    found = {path.name: path for path in network_dirs(results_dir)}
    results_dir = Path(results_dir).resolve()
    wanted = list(found) if not networks else list(networks)
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise LookupError(f"network(s) {', '.join(unknown)} not in {results_dir}; available: {', '.join(found)}")

    vocabulary: set[str] = set()
    units: list[UnitEntry] = []
    tables = {name: _unit_rows(found[name] / layout.DISSECT, name) for name in wanted}
    _check_layers(layers, tables)
    for name in wanted:
        rows = tables[name]
        layer_order: dict[str, int] = {}
        for row in rows:
            layer_order.setdefault(row["layer"], len(layer_order))
            label = row.get("label", "").strip()
            if label.lower() not in _MISSING:
                vocabulary.add(label)
        if layers:
            rows = [row for row in rows if row["layer"] in layers]
        rows.sort(key=lambda row: (layer_order[row["layer"]], int(row["unit"])))
        folders: dict[str, dict[int, Path]] = {}
        root = _image_root(results_dir, name)
        for row in rows:
            layer, unit = row["layer"], int(row["unit"])
            if layer not in folders:
                folders[layer] = _unit_folders(found[name] / layout.SEGMENTATIONS, layer)
            folder = folders[layer].get(unit)
            images = _segmentations(folder, root=root, n_images=n_images) if folder is not None else ()
            if not images:
                continue
            units.append(
                UnitEntry(
                    key=UnitKey(name, layer, unit),
                    images=images,
                    auto_label=row.get("label", ""),
                    auto_category=row.get("category", ""),
                    auto_type=row.get("type", ""),
                    auto_iou=_float_or_none(row.get("iou", "")),
                )
            )
    vocabulary.update(_concept_names(results_dir / layout.CONCEPTS_VOCABULARY))
    return Catalog(results_dir=results_dir, units=tuple(units), vocabulary=tuple(sorted(vocabulary, key=str.lower)))


def _concept_names(path: Path) -> Iterable[str]:
    if not path.is_file():
        return ()
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "name" not in (reader.fieldnames or ()):
            raise ValueError(f"{path}: missing column 'name'")
        return [row["name"].strip() for row in reader if (row["name"] or "").strip().lower() not in _MISSING]
