"""Segmentation pictures of a network: top-image tiles and unit strips (experiment 2b)."""

from __future__ import annotations

from pathlib import Path

from unitscope.results.layout import SEGMENTATION_TILE, UNIT_SEGMENTATIONS_JSON, layer_file_names
from unitscope.results.schema import ResultFileError, read_json

__all__ = ["load_unit_tiles", "load_segmentations"]


def load_unit_tiles(results_dir: Path, network: str) -> dict[tuple[str, int], Path]:
    """Unit segmentation strips of experiment 2b: every ``segmentations.json`` under ``<network>``."""
    base = Path(results_dir) / network
    tiles: dict[tuple[str, int], Path] = {}
    if not base.is_dir():
        return tiles
    for meta_path in sorted(base.rglob(UNIT_SEGMENTATIONS_JSON)):
        meta = read_json(meta_path) or {}
        layer = str(meta.get("layer", ""))
        for unit, name in (meta.get("tiles") or {}).items():
            if not (unit.isdigit() and isinstance(name, str)):
                raise ResultFileError(f"{meta_path}: tiles must map unit numbers to file names, "
                                       f"not {unit!r} to {name!r}")
            path = meta_path.parent / name
            if path.is_file():
                tiles[(layer, int(unit))] = path
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
