"""Experiment 2b (SPEC section 4): unit segmentations, the top images of a unit masked by where it fires.

For each unit, its top images (highest max activation) are shown with only
the region the unit responds to: either its activation map, upsampled to
the image (bilinear) and thresholded, or its *empirical receptive field*
(the region of the averaged occlusion map above half its peak, from
:func:`~unitscope.experiments.empirical_receptive_fields`) placed at the
unit's max location, as in the paper's figures.  The result is one image
strip per unit for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import Trace, resolve_layer

from ._common import (
    input_channel_order,
    preprocessing_record,
    Progress,
    check_positive_int,
    eval_mode,
    iter_batches,
    model_device,
    model_dtype,
    normalisation,
    to_uint8,
)
from ._io import read_json, read_png, safe_name, write_csv, write_json, write_png
from unitscope.models.rf_window import RFWindow
from .empirical_rf import EmpiricalRFResult, _layer_output, top_activations

__all__ = ["UnitSegmentationsResult", "unit_segmentations"]

MASKS = ("activation", "rf")


@dataclass
class UnitSegmentationsResult:
    """Masked top images per unit.

    Attributes
    ----------
    layer : str
    units : list of int
    tiles : dict of int to ndarray
        Unit -> ``(H, W * top + gaps, 3)`` uint8 strip of its masked top images.
    table : DataFrame
        ``unit, rank, index, id, activation, threshold, mask_fraction``.
    options : dict
    network : str
    """

    layer: str
    units: list[int]
    tiles: dict[int, np.ndarray]
    table: pd.DataFrame
    options: dict = field(default_factory=dict)
    network: str = ""

    def to_frame(self) -> pd.DataFrame:
        frame = self.table.copy()
        frame.insert(0, "layer", self.layer)
        frame.insert(0, "network", self.network)
        return frame

    def save(self, out_dir: str | Path) -> Path:
        """Write ``segmentations.csv``, ``segmentations.json`` and ``<layer>/unit_<n>.png``.

        Strips that an earlier save into ``out_dir`` listed and this one does
        not (other units) are removed, so the folder holds one run's strips.
        """
        out = Path(out_dir)
        previous = _listed_strips(out / "segmentations.json")
        write_csv(out / "segmentations.csv", self.to_frame())
        files = {}
        for unit, tile in self.tiles.items():
            name = f"{safe_name(self.layer)}/unit_{int(unit):04d}.png"
            write_png(out / name, tile)
            files[str(int(unit))] = name
        write_json(out / "segmentations.json", {
            "experiment": "unit_segmentations", "network": self.network, "layer": self.layer,
            "units": [int(u) for u in self.units], "options": self.options, "tiles": files,
        })
        for name in previous - set(files.values()):
            (out / name).unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "UnitSegmentationsResult":
        out = Path(out_dir)
        meta = read_json(out / "segmentations.json")
        table = pd.read_csv(out / "segmentations.csv", dtype={"id": str}, keep_default_na=False)
        table = table.drop(columns=["network", "layer"])
        tiles = {int(u): read_png(out / name) for u, name in meta["tiles"].items()}
        return cls(layer=meta["layer"], units=list(meta["units"]), tiles=tiles, table=table,
                   options=dict(meta["options"]), network=meta.get("network", ""))


def _listed_strips(manifest: Path) -> set[str]:
    """The strips a ``segmentations.json`` lists, if it is one (only names :meth:`save` makes)."""
    try:
        tiles = read_json(manifest).get("tiles", {})
        names = {str(name) for name in tiles.values()}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()
    return {n for n in names if re.fullmatch(r"[A-Za-z0-9._-]+/unit_\d{4}\.png", n) and not n.startswith(".")}


def _strip(images: list[np.ndarray], gap: int = 2) -> np.ndarray:
    h = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    strip = np.full((h, width, 3), 255, dtype=np.uint8)
    x = 0
    for im in images:
        strip[: im.shape[0], x: x + im.shape[1]] = im
        x += im.shape[1] + gap
    return strip


def unit_segmentations(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    units: Sequence[int],
    top: int = 8,
    mask: str = "activation",
    threshold: float = 0.5,
    thresholds: Sequence[float] | np.ndarray | None = None,
    rf: EmpiricalRFResult | None = None,
    dim: float = 0.15,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    network: str = "",
    batch_size: int = 64,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> UnitSegmentationsResult:
    """Mask each unit's top images by the region it responds to.

    Parameters
    ----------
    model : nn.Module
    layer : str
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)``.
    units : sequence of int, keyword-only
        Channels to show.
    top : int, keyword-only
        Images per unit (its top images by max activation).
    mask : {"activation", "rf"}, keyword-only
        ``"activation"``: the activation map upsampled (bilinear) to the image
        and thresholded; ``"rf"``: the empirical RF of ``rf`` (region above
        half its peak) centred on the unit's max location.
    threshold : float, keyword-only
        For ``"activation"`` without ``thresholds``: the fraction of the
        unit's highest activation (over its top images) above which a pixel
        is kept.
    thresholds : array (C,), keyword-only
        Absolute per-channel thresholds (e.g. Network Dissection's top-0.5%
        quantiles), indexed by channel number.
    rf : EmpiricalRFResult, keyword-only
        Needed for ``mask="rf"``; its top images are reused when it covers the units.
    dim : float, keyword-only
        Brightness kept outside the mask (0 = black).
    mean, std, network, batch_size, num_workers, progress
        As for the other experiments.

    Returns
    -------
    UnitSegmentationsResult

    Raises
    ------
    LookupError
        For an unknown layer.
    ValueError
        For bad units or options (``mask="rf"`` without ``rf``, or ``rf`` of another layer).
    """
    resolve_layer(model, layer)
    top = check_positive_int(top, "top")
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    units = [int(u) for u in units]
    if not units:
        raise ValueError("units is empty")
    if rf is not None and rf.layer != layer:
        raise ValueError(f"rf is for layer {rf.layer!r}, not {layer!r}")
    if mask == "rf" and rf is None:
        raise ValueError("mask='rf' needs rf=, the layer's EmpiricalRFResult")
    if not 0 <= dim <= 1:
        raise ValueError(f"dim must be in [0, 1], got {dim}")
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input

    rf_rows = {int(u): k for k, u in enumerate(rf.units)} if rf is not None else {}
    if rf is not None and all(u in rf_rows for u in units) and rf.top_ids.shape[1] >= top:
        rows = [rf_rows[u] for u in units]
        top_values = rf.top_values[rows, :top]
        top_ids = rf.top_ids[rows, :top]
    else:
        _, top_values, top_ids, _ = top_activations(model, layer, data, top_k=top, units=units,
                                                   batch_size=batch_size, num_workers=num_workers)
    if thresholds is not None:
        thresholds = np.asarray(thresholds, dtype=np.float64)
        unit_thresholds = thresholds[units]
    else:
        unit_thresholds = threshold * top_values[:, 0].astype(np.float64)
    window = rf.theoretical if mask == "rf" else None

    union = sorted({int(i) for i in top_ids.flatten()})
    needed: dict[int, list[tuple[int, int]]] = {}
    for row in range(len(units)):
        for rank, image in enumerate(top_ids[row]):
            needed.setdefault(int(image), []).append((row, rank))
    pictures: dict[tuple[int, int], np.ndarray] = {}
    records = []
    device, dtype = model_device(model), model_dtype(model)
    units_t = torch.as_tensor(units)
    done = 0
    with torch.inference_mode(), eval_mode(model):
        for positions, images, metas, _ in iter_batches(data, batch_size, indices=union, num_workers=num_workers):
            with Trace(model, layer, stop=True, clone=False) as trace:
                model(images.to(device=device, dtype=dtype))
            out = _layer_output(trace, layer, images)[:, units_t.to(device)].float()
            h, w = images.shape[-2:]
            up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False).cpu().numpy()
            small = out.cpu().numpy()
            for k, (position, meta) in enumerate(zip(positions, metas)):
                picture = to_uint8(images[k], mean_t, std_t, channel_order=order).astype(np.float64)
                for row, rank in needed[position]:
                    if mask == "activation":
                        keep = up[k, row] > unit_thresholds[row]
                    else:
                        keep = _rf_mask(rf, rf_rows[units[row]], small[k, row], window, (h, w))
                    shade = np.where(keep[..., None], 1.0, dim)
                    pictures[(row, rank)] = np.round(picture * shade).astype(np.uint8)
                    records.append({"unit": units[row], "rank": rank, "index": position,
                                    "id": str(meta.get("id", position)),
                                    "activation": float(top_values[row, rank]),
                                    "threshold": float(unit_thresholds[row]) if mask == "activation" else float("nan"),
                                    "mask_fraction": float(keep.mean())})
            done += len(positions)
            if progress is not None:
                progress(done, len(union))
    tiles = {}
    for row, unit in enumerate(units):
        strip = [pictures[(row, rank)] for rank in range(top_ids.shape[1]) if (row, rank) in pictures]
        if strip:
            tiles[unit] = _strip(strip)
    table = pd.DataFrame(records, columns=["unit", "rank", "index", "id", "activation", "threshold",
                                           "mask_fraction"])
    table["_order"] = table["unit"].map({u: i for i, u in enumerate(units)})
    table = table.sort_values(["_order", "rank"], kind="stable").drop(columns="_order").reset_index(drop=True)
    options = {"top": top, "mask": mask, "threshold": threshold if thresholds is None else None,
               "dim": dim, "preprocessing": preprocessing_record(model, data)}
    return UnitSegmentationsResult(layer=layer, units=units, tiles=tiles, table=table, options=options,
                                   network=network)


def _rf_mask(rf: EmpiricalRFResult, row: int, activation: np.ndarray, window: RFWindow,
             image_size: tuple[int, int]) -> np.ndarray:
    """The unit's empirical RF (above half its peak) centred on its max location in this image."""
    h, w = image_size
    averaged = rf.maps[row]
    keep = np.zeros((h, w), dtype=bool)
    peak = float(averaged.max())
    if peak <= 0:
        return keep
    region = averaged > peak / 2
    i, j = divmod(int(np.argmax(activation)), activation.shape[1])
    r = rf.radius
    cy, cx = window.centre(i), window.centre(j)
    y0, x0 = cy - r, cx - r
    iy0, ix0 = max(0, y0), max(0, x0)
    iy1, ix1 = min(h, y0 + region.shape[0]), min(w, x0 + region.shape[1])
    if iy1 > iy0 and ix1 > ix0:
        keep[iy0:iy1, ix0:ix1] = region[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    return keep
