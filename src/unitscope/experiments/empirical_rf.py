"""Experiment 2a (SPEC section 4): empirical receptive fields by occlusion.

For a unit (a channel of a layer): take its top-K images (highest max
activation); slide a patch of random pixels over each image (11x11 on a
grid of stride 3 at 224 px, both scaled with the resolution); the
discrepancy at each occluder position is the absolute change of the unit's
activation at the location of its maximum in the original image.  The
discrepancy maps, re-centred on that location, are averaged over the K
images: the unit's empirical receptive field.

How the work is shared and cut
------------------------------
* One pass over the data finds every unit's top-K images (a streaming top-k,
  memory ``units x K``).
* Each distinct image in the union of the top-K sets gets one set of
  occluded forward passes that serves every unit having it in its top-K.
* A unit's activation at a location depends only on the input pixels inside
  its theoretical receptive field (the *window*), so (``crop=True``)

  - occluder positions that do not touch the window are skipped (their
    discrepancy is exactly zero), and
  - each occluded copy is only the window's crop, not the whole image.

  The crop starts on a multiple of the layer's total stride, so the crop's
  output grid is the full output grid shifted; and where the window reaches
  past the image border, the crop is taken up to that border, so the
  network pads there exactly as in the full pass.  Inside the crop no
  position on the path to the unit reads padding that the full pass would
  not, hence the numbers are those of the full forward (up to the rounding
  of convolution algorithms on different input sizes).  Each crop group
  also runs its unoccluded crop and (``check=True``) compares it with the
  full forward: a wrong theoretical RF raises instead of giving wrong maps.
  Units of an image whose maxima lie at the same location share a crop;
  nearby locations are clustered into one crop of their windows' bounding
  box when that costs less than separate sweeps (see ``_plan_groups``).
  The gain is largest for early layers (small windows): for a layer whose
  window covers most of the image, the sweep is the full-image one.

Re-centring and size
--------------------
The averaged map is indexed by pixel offset from the centre of the unit's
theoretical window at its max location (the activation-map location mapped
into the image by the RF stride and start); each occluder position paints
its discrepancy on the ``stride x stride`` cell around the occluder's centre.
Offsets farther than ``size // 2 + occluder + stride`` cannot be touched by
an occluder that reaches the window, so the map stops there.  The map is the
sum over the unit's top images divided by their number.

The RF size of a unit is the side of the square with the same area as the
region of its averaged map above half the map's peak (``sqrt(#pixels >
peak / 2)``), in input pixels; NaN for a unit whose map is all zero (a dead
unit).  As in the paper, the map is seen through the occluder: a pixel
counts when an occluder *centred* on it changes the unit, so the region
grows by up to the occluder's side (a 7-px window read with a 6-px
occluder measures about 8-9 px).

Transformers and global layers
------------------------------
A token layer is read as the map of its patches
(:func:`unitscope.hooks.spatial_map`), and its images are always occluded
whole: a transformer takes no input but one of its own size.  A layer whose
units see the whole image (after self-attention, or a squeeze-and-excitation
gate) has no theoretical window; its maps are centred on the centre of the
unit's cell of the grid (a patch) and reach across the whole image, and its
theoretical size is reported as the image's side with the note (``"global:
attention"``) in ``rf.json`` and ``layer.csv``.

Cost: one pass over the data, then per distinct top image one sweep of
(at most) ``((H - occluder) / stride + 1)^2`` occluded copies plus one
unoccluded reference per crop; memory ``units x (2R+1)^2`` floats for the maps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import SpatialLayout, Trace, check_spatial, extra_tokens_of, resolve_layer, spatial_map

from ._common import (
    preprocessing_record,
    Progress,
    check_dataset,
    check_positive_int,
    check_spatial_layers,
    eval_mode,
    iter_batches,
    model_device,
    model_dtype,
    normalisation,
    weights_record,
)
from ._io import colorize, read_json, write_csv, write_json, write_npz, write_png
from ._rf_geometry import RFWindow, as_window, theoretical_window

__all__ = [
    "EmpiricalRFResult",
    "empirical_receptive_fields",
    "summarise_receptive_fields",
    "rf_size",
    "default_occluder",
    "top_activations",
    "check_rf_layers",
]

#: The paper's occluder at 224 px: an 11x11 patch moved with stride 3.
PAPER_OCCLUDER, PAPER_STRIDE, PAPER_RESOLUTION = 11, 3, 224


def default_occluder(resolution: int) -> tuple[int, int]:
    """``(occluder side, stride)`` scaled from the paper's 11 and 3 at 224 px (each at least 1).

    >>> default_occluder(224), default_occluder(128)
    ((11, 3), (6, 2))
    """
    scale = resolution / PAPER_RESOLUTION
    return max(1, round(PAPER_OCCLUDER * scale)), max(1, round(PAPER_STRIDE * scale))


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


def _layer_output(trace: Trace, layer: str, images: torch.Tensor) -> torch.Tensor:
    """The traced output of ``images`` as maps ``(N, C, H, W)`` (token grids reshaped)."""
    return spatial_map(trace.output, layer=layer, batch=images.shape[0], image_size=images.shape[-2:],
                       extra_tokens=extra_tokens_of(trace.model))


def check_rf_layers(model: nn.Module, layers: Sequence[str], data: Dataset, *,
                    rf=None) -> dict[str, tuple[SpatialLayout, RFWindow]]:
    """Each layer's map layout and theoretical window, or the refusal an RF run would end in.

    One forward pass of the pool's first image.  Call it before any work
    (the CLI does, for every layer of a run, before the first one starts).

    Raises
    ------
    ValueError
        For a layer that is not a spatial map, or whose units see the whole
        input on a grid of cells that are not square.
    """
    check_dataset(data)
    sample = data[0][0].unsqueeze(0)
    layouts = check_spatial(model, list(layers), sample.to(device=model_device(model), dtype=model_dtype(model)))
    return {layer: (layout, as_window(rf) if rf is not None else
                    theoretical_window(model, layer, input_shape=tuple(sample.shape[-2:]),
                                       grid=(layout.height, layout.width)))
            for layer, layout in layouts.items()}


def _check_units(units, channels: int, layer: str) -> torch.Tensor:
    if units is None:
        return torch.arange(channels)
    units = [int(u) for u in units]
    if not units:
        raise ValueError("units is empty")
    bad = [u for u in units if not 0 <= u < channels]
    if bad:
        raise ValueError(f"units out of range for layer {layer!r} with {channels} channels "
                         f"(0 to {channels - 1}): {bad[:5]}")
    if len(set(units)) != len(units):
        raise ValueError("units has duplicates")
    return torch.as_tensor(units)


def top_activations(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    top_k: int = 20,
    units: Sequence[int] | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Each unit's top-K images by max activation, in one streaming pass.

    Returns
    -------
    units : ndarray (U,)
    values : ndarray (U, K)
        Max activations, descending (ties: lower image position first).
    ids : ndarray (U, K)
        Positions of the images in ``data``.
    image_size : (int, int)
        ``(H, W)`` of the images.
    """
    from unitscope.stats import RunningTopK

    total = check_dataset(data)
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    resolve_layer(model, layer)
    device, dtype = model_device(model), model_dtype(model)
    topk = RunningTopK(top_k)
    chosen = None
    image_size = None
    done = 0
    with torch.inference_mode(), eval_mode(model):
        for positions, images, _, dropped in iter_batches(data, batch_size, num_workers=num_workers):
            done += len(positions) + dropped
            if positions:
                image_size = tuple(images.shape[-2:])
                with Trace(model, layer, stop=True, clone=False) as trace:
                    model(images.to(device=device, dtype=dtype))
                out = _layer_output(trace, layer, images)
                if chosen is None:
                    chosen = _check_units(units, out.shape[1], layer).to(out.device)
                maxima = out[:, chosen].flatten(2).amax(dim=2).float()
                topk.add(maxima, torch.as_tensor(positions, dtype=torch.int64, device=maxima.device))
            if progress is not None:
                progress(done, total)
    if chosen is None:
        raise ValueError("no readable images in data")
    values, ids = topk.result()
    return chosen.cpu().numpy(), values.cpu().numpy(), ids.cpu().numpy(), image_size


# --------------------------------------------------------------------------- occlusion engine


@dataclass
class _Group:
    """One crop of one image, occluded at a rectangle of grid positions, serving some units."""

    slot: int  # the image's number in the union
    base: torch.Tensor  # (3, hc + 2o, wc + 2o) normalised crop, zero margin o for pasting
    ay: int  # crop origin in the image
    ax: int
    gy0: int  # grid rows [gy0, gy1), columns [gx0, gx1)
    gy1: int
    gx0: int
    gx1: int
    rows: np.ndarray  # (T,) row of each target in the units list
    units: np.ndarray  # (T,) channel numbers
    ti: np.ndarray  # (T,) target row / column in the crop's output
    tj: np.ndarray
    centre_y: np.ndarray  # (T,) RF centre of each target in image pixels
    centre_x: np.ndarray
    full_values: np.ndarray  # (T,) activation in the full forward pass
    scale: float  # the layer's largest activation on the image (for the check)
    values: np.ndarray = None  # (copies, T)
    filled: int = 0

    @property
    def copies(self) -> int:
        return 1 + (self.gy1 - self.gy0) * (self.gx1 - self.gx0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.base.shape[1], self.base.shape[2]


class _Occluder:
    """Builds occluded copies, runs them in full batches, paints the averaged maps."""

    def __init__(self, model, layer, *, occluder, stride, grid, bank, batch_size, maps, radius, check,
                 rtol, on_group_done):
        self.model, self.layer = model, layer
        self.o, self.st = occluder, stride
        self.ny, self.nx = grid
        self.bank = bank  # (ny * nx, o, o, 3)
        self.batch_size = batch_size
        self.maps, self.radius = maps, radius
        self.check = check
        self.rtol = rtol
        self.on_group_done = on_group_done
        self.queues: dict[tuple[int, int], list[list]] = {}
        self.pending: dict[tuple[int, int], int] = {}
        self.copies = 0
        self.pixels = 0
        self.arange_o = None

    def submit(self, group: _Group) -> None:
        group.values = np.zeros((group.copies, len(group.rows)), dtype=np.float64)
        key = group.shape
        self.queues.setdefault(key, []).append([group, 0])
        self.pending[key] = self.pending.get(key, 0) + group.copies
        while self.pending[key] >= self.batch_size:
            self._run(key)

    def flush(self) -> None:
        for key in list(self.queues):
            while self.pending.get(key, 0) > 0:
                self._run(key)

    def _pieces(self, key):
        """Take up to batch_size copies from the queue: [(group, first, last)]."""
        queue, room, pieces = self.queues[key], self.batch_size, []
        while queue and room > 0:
            group, first = queue[0]
            last = min(group.copies, first + room)
            pieces.append((group, first, last))
            room -= last - first
            if last == group.copies:
                queue.pop(0)
            else:
                queue[0][1] = last
        self.pending[key] -= self.batch_size - room
        return pieces

    def _paste_indices(self, group: _Group, first: int, last: int, offset: int):
        """Batch rows, patch rows/columns (in the padded crop) and bank entries of the occluded copies."""
        copy = np.arange(max(first, 1), last)
        if not len(copy):
            return None
        p = copy - 1
        width = group.gx1 - group.gx0
        gy, gx = group.gy0 + p // width, group.gx0 + p % width
        return (copy - first + offset, gy * self.st - group.ay + self.o, gx * self.st - group.ax + self.o,
                gy * self.nx + gx)

    def _run(self, key) -> None:
        pieces = self._pieces(key)
        if not pieces:
            return
        o = self.o
        hp, wp = key
        total = sum(b - a for _, a, b in pieces)
        base = pieces[0][0].base
        batch = torch.empty((total, 3, hp, wp), dtype=base.dtype, device=base.device)
        offset, pastes = 0, []
        for group, a, b in pieces:
            batch[offset:offset + b - a] = group.base
            paste = self._paste_indices(group, a, b, offset)
            if paste is not None:
                pastes.append(paste)
            offset += b - a
        if pastes:
            rows_b, rows_y, rows_x, bank = (torch.from_numpy(np.concatenate(c)).to(base.device)
                                            for c in zip(*pastes))
            if self.arange_o is None or self.arange_o.device != base.device:
                self.arange_o = torch.arange(o, device=base.device)
            ry = rows_y.unsqueeze(1) + self.arange_o  # (m, o)
            rx = rows_x.unsqueeze(1) + self.arange_o
            # advanced indices around a slice: the result is (m, o, o, 3), like the bank
            batch[rows_b[:, None, None], :, ry[:, :, None], rx[:, None, :]] = self.bank[bank]
        inputs = batch[:, :, o:hp - o, o:wp - o]
        with Trace(self.model, self.layer, stop=True, clone=False) as trace:
            self.model(inputs)
        out = _layer_output(trace, self.layer, inputs)
        self.copies += total
        self.pixels += total * (hp - 2 * o) * (wp - 2 * o)
        # every target of every copy in one gather and one transfer
        copy_i, unit_i, row_i, col_i, start = [], [], [], [], 0
        for group, a, b in pieces:
            n, t = b - a, len(group.units)
            copy_i.append(np.repeat(np.arange(start, start + n), t))
            unit_i.append(np.tile(group.units, n))
            row_i.append(np.tile(group.ti, n))
            col_i.append(np.tile(group.tj, n))
            start += n
        index = [torch.from_numpy(np.concatenate(c)).to(out.device) for c in (copy_i, unit_i, row_i, col_i)]
        values = out[index[0], index[1], index[2], index[3]].double().cpu().numpy()
        start = 0
        for group, a, b in pieces:
            size = (b - a) * len(group.units)
            group.values[a:b] = values[start:start + size].reshape(b - a, len(group.units))
            start += size
            group.filled += b - a
            if group.filled == group.copies:
                self._finish(group)

    def _finish(self, group: _Group) -> None:
        reference = group.values[0]
        if self.check:
            tolerance = self.rtol * np.maximum(np.abs(group.full_values), group.scale) + 1e-6
            bad = np.abs(reference - group.full_values) > tolerance
            if bad.any():
                k = int(np.argmax(bad))
                raise RuntimeError(
                    f"the receptive-field crop of layer {self.layer!r} does not reproduce the full "
                    f"forward pass (unit {int(group.units[k])}: {reference[k]:.6g} vs "
                    f"{group.full_values[k]:.6g}); the theoretical receptive field is probably wrong "
                    "for this network: pass rf= explicitly or crop=False"
                )
        hy, wx = group.gy1 - group.gy0, group.gx1 - group.gx0
        discrepancy = np.abs(group.values[1:] - reference).reshape(hy, wx, len(group.rows))
        st, r = self.st, self.radius
        side = 2 * r + 1
        cells = np.repeat(np.repeat(discrepancy, st, axis=0), st, axis=1)  # (hy*st, wx*st, T)
        top = group.gy0 * st + self.o // 2 - st // 2
        left = group.gx0 * st + self.o // 2 - st // 2
        for t, row in enumerate(group.rows):
            y0 = top - int(group.centre_y[t]) + r
            x0 = left - int(group.centre_x[t]) + r
            cy0, cx0 = max(0, y0), max(0, x0)
            cy1, cx1 = min(side, y0 + cells.shape[0]), min(side, x0 + cells.shape[1])
            if cy1 > cy0 and cx1 > cx0:
                self.maps[row, cy0:cy1, cx0:cx1] += cells[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, t]
        group.base = None
        group.values = None
        self.on_group_done(group)


def _check_tolerance(device: torch.device, dtype: torch.dtype) -> float:
    """Relative tolerance of the crop check: float32 on a CPU agrees to ~1e-6; GPUs may use
    TF32 convolutions (10-bit mantissa) and half precision is coarser still."""
    if dtype in (torch.float16, torch.bfloat16):
        return 5e-2
    return 5e-3 if device.type != "cpu" else 1e-4


def _grid_range(w0: int, w1: int, occluder: int, stride: int, n: int) -> tuple[int, int]:
    """Grid positions ``[g0, g1)`` whose occluder ``[g*stride, g*stride + occluder)`` meets ``[w0, w1)``."""
    g0 = max(0, (w0 - occluder) // stride + 1)
    g1 = min(n, (w1 - 1) // stride + 1)
    return g0, max(g0, g1)


def _crop_range(w0: int, w1: int, total_stride: int, size: int) -> tuple[int, int]:
    """Crop ``[a, b)`` holding the window ``[w0, w1)``: ``a`` on the stride grid, image borders kept."""
    a = 0 if w0 <= 0 else (w0 // total_stride) * total_stride
    b = size if w1 >= size else w1
    return a, b


def empirical_receptive_fields(
    model: nn.Module,
    layer: str,
    data: Dataset,
    *,
    top_k: int = 20,
    units: Sequence[int] | None = None,
    occluder: int | None = None,
    stride: int | None = None,
    rf=None,
    crop: bool = True,
    check: bool = True,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    network: str = "",
    batch_size: int = 64,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> EmpiricalRFResult:
    """Empirical receptive fields of a layer's units by occlusion of their top images.

    Parameters
    ----------
    model : nn.Module
    layer : str
        Dotted name of a layer with ``(N, C, H, W)`` output.
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)``, all the same size.
    top_k : int, keyword-only
        Top images per unit (default 20).
    units : sequence of int, keyword-only
        Channels to study (default all).
    occluder, stride : int, keyword-only
        Side of the random-pixel patch and its grid step, in pixels (default:
        the paper's 11 and 3 at 224 px, scaled with the image side; 6 and 2
        at 128 px).
    rf : RFWindow, (size, stride, start) or ReceptiveField, keyword-only
        The layer's theoretical receptive field (default:
        ``unitscope.models.receptive_field``; see ``_rf_geometry``).
    crop : bool, keyword-only
        Occlude only inside the RF window and forward only its crop (exact;
        see the module docstring).  False runs the naive full-image sweep.
    check : bool, keyword-only
        Compare each crop's unoccluded activation with the full forward pass.
    seed : int, keyword-only
        Seed of the occluder's random pixels (uniform in ``[0, 1]`` RGB,
        normalised; one patch per grid position, shared by all images).
    mean, std : sequence of float, keyword-only
        The data's normalisation (default: the data set's transform, else the
        model's metadata).
    network : str, keyword-only
        Name recorded in the result.
    batch_size, num_workers : int, keyword-only
    progress : callable, keyword-only
        ``progress(done, total)``: images of the data pass, then occluded images.

    Returns
    -------
    EmpiricalRFResult

    Raises
    ------
    LookupError
        If the layer does not exist.
    ValueError
        For an empty data set, a layer without spatial output, bad units or options.
    RuntimeError
        If ``check`` finds that the crop does not reproduce the full pass.
    """
    resolve_layer(model, layer)
    n_data = check_dataset(data)
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    # Before the data pass: a layer that is not spatial, or has no window, is refused up front.
    layout, window = check_rf_layers(model, [layer], data, rf=rf)[layer]
    crop_asked = crop
    if layout.is_token_grid or window.note:
        # a transformer takes only inputs of its own size, and a unit that sees the whole input
        # has no smaller crop: occlude whole images
        crop = False
    if units is not None:
        _check_units(units, layout.channels, layer)  # before the top-k pass, not after its first batch
    started = time.perf_counter()

    def stage(offset: int):
        if progress is None:
            return None
        return lambda done, total: progress(offset + done, n_data + n_union[0])

    n_union = [n_data]
    units_arr, top_values, top_ids, (h, w) = top_activations(
        model, layer, data, top_k=top_k, units=units, batch_size=batch_size, num_workers=num_workers,
        progress=stage(0))
    topk_seconds = time.perf_counter() - started
    default_o, default_st = default_occluder(min(h, w))
    occluder = default_o if occluder is None else check_positive_int(occluder, "occluder")
    stride = default_st if stride is None else check_positive_int(stride, "stride")
    if occluder > min(h, w):
        raise ValueError(f"occluder ({occluder} px) is larger than the images ({h}x{w})")
    if window.size < 1 or window.stride < 1:
        raise ValueError(f"bad receptive field {window}")
    ny, nx = (h - occluder) // stride + 1, (w - occluder) // stride + 1
    radius = window.size // 2 + occluder + stride
    side = 2 * radius + 1
    n_units = len(units_arr)
    maps = np.zeros((n_units, side, side), dtype=np.float64)
    device, dtype = model_device(model), model_dtype(model)
    mean_t, std_t = normalisation(model, data, mean, std)

    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.rand((ny * nx, occluder, occluder, 3), generator=generator)
    bank = ((noise - mean_t.view(1, 1, 1, 3)) / std_t.view(1, 1, 1, 3)).to(device=device, dtype=dtype)

    # which units occlude which image
    by_image: dict[int, list[int]] = {}
    for row in range(n_units):
        for image in top_ids[row]:
            by_image.setdefault(int(image), []).append(row)
    union = sorted(by_image)
    n_union[0] = len(union)
    locations = np.full(top_ids.shape + (2,), -1, dtype=np.int64)
    rank_of = {(row, int(image)): k for row in range(n_units) for k, image in enumerate(top_ids[row])}
    groups_left: dict[int, int] = {}
    done_images = [0]
    report = stage(n_data)

    def group_done(group: _Group) -> None:
        groups_left[group.slot] -= 1
        if groups_left[group.slot] == 0:
            done_images[0] += 1
            if report is not None:
                report(done_images[0], len(union))

    engine = _Occluder(model, layer, occluder=occluder, stride=stride, grid=(ny, nx), bank=bank,
                       batch_size=batch_size, maps=maps, radius=radius, check=check and crop,
                       rtol=_check_tolerance(device, dtype), on_group_done=group_done)
    pixels_naive = len(union) * (ny * nx + 1) * h * w
    units_t = torch.as_tensor(units_arr)
    occlusion_started = time.perf_counter()
    with torch.inference_mode(), eval_mode(model):
        for positions, images, _, _ in iter_batches(data, batch_size, indices=union, num_workers=num_workers):
            images = images.to(device=device, dtype=dtype)
            with Trace(model, layer, stop=True, clone=False) as trace:
                model(images)
            out = _layer_output(trace, layer, images)
            oh, ow = out.shape[-2:]
            selected = out[:, units_t.to(out.device)].float()  # (B, U, oh, ow)
            flat = selected.flatten(2)
            best = flat.argmax(dim=2).cpu().numpy()  # (B, U): first maximum
            layer_peak = flat.abs().flatten(1).amax(dim=1).cpu().numpy()  # (B,)
            best_value = flat.gather(2, torch.as_tensor(best, device=flat.device).unsqueeze(2)).squeeze(2)
            best_value = best_value.cpu().numpy()
            padded = torch.nn.functional.pad(images, (occluder, occluder, occluder, occluder))
            for k, position in enumerate(positions):
                rows = by_image[position]
                targets = []
                for row in rows:
                    i, j = divmod(int(best[k, row]), ow)
                    locations[row, rank_of[(row, position)]] = (i, j)
                    targets.append((row, i, j))
                groups = _plan_groups(targets, window, (h, w), occluder, stride, (ny, nx), crop)
                groups_left[position] = len(groups)
                for (ay, by, ax, bx), (gy0, gy1, gx0, gx1), members in groups:
                    ti = np.asarray([i - ay // window.stride for _, i, _ in members], dtype=np.int64)
                    tj = np.asarray([j - ax // window.stride for _, _, j in members], dtype=np.int64)
                    member_rows = np.asarray([row for row, _, _ in members])
                    group = _Group(
                        slot=position,
                        base=padded[k, :, ay:by + 2 * occluder, ax:bx + 2 * occluder],
                        ay=ay, ax=ax, gy0=gy0, gy1=gy1, gx0=gx0, gx1=gx1, rows=member_rows,
                        units=units_arr[member_rows].astype(np.int64), ti=ti, tj=tj,
                        centre_y=np.asarray([window.centre(i) for _, i, _ in members]),
                        centre_x=np.asarray([window.centre(j) for _, _, j in members]),
                        full_values=best_value[k, member_rows].astype(np.float64),
                        scale=float(layer_peak[k]),
                    )
                    engine.submit(group)
        engine.flush()
    counts = (top_ids >= 0).sum(axis=1).clip(min=1)
    maps /= counts[:, None, None]
    sizes = np.asarray([rf_size(m) for m in maps], dtype=np.float64)
    stats = {
        "images": len(union), "copies": engine.copies, "copies_naive": len(union) * (ny * nx + 1),
        "pixels": engine.pixels, "pixels_naive": pixels_naive,
        "topk_s": topk_seconds, "occlusion_s": time.perf_counter() - occlusion_started,
    }
    options = {"top_k": top_k, "crop": crop, "crop_asked": crop_asked, "layout": layout.describe(),
               "check": check, "seed": seed, "batch_size": batch_size,
               "mean": mean_t.flatten().tolist(), "std": std_t.flatten().tolist(),
               **weights_record(model),
               "preprocessing": preprocessing_record(model, data)}
    return EmpiricalRFResult(
        layer=layer, units=units_arr, maps=maps.astype(np.float32), sizes=sizes, top_ids=top_ids,
        top_values=top_values, locations=locations, theoretical=window, image_size=(h, w),
        occluder=occluder, stride=stride, options=options, stats=stats, network=network)


#: Entries of ``stats`` that are wall times: kept in memory (benchmarks, the command's
#: run.json) but not written to rf.json, which is byte-identical between runs.
TIMING_STATS = ("topk_s", "occlusion_s")

#: Fixed cost of one forward copy, in input pixels: small crops do not run at full speed
#: (measured on CPUs for mini_alexnet: about a 32x32 crop's worth per copy).
COPY_OVERHEAD_PIXELS = 1024


def _plan_groups(targets, window: RFWindow, image_size, occluder, stride, grid, crop):
    """Split one image's ``(row, i, j)`` targets into crop groups.

    Targets at the same location always share a group.  Locations are then
    clustered greedily (row-major order): a location joins the cluster whose
    bounding-box crop grows the estimated cost least, or starts its own when
    that is cheaper.  The cost of a group is ``copies x (crop pixels +
    COPY_OVERHEAD_PIXELS)``.  Without ``crop`` there is one group: the whole
    image at every grid position.

    Returns ``[((ay, by, ax, bx), (gy0, gy1, gx0, gx1), members)]`` where
    ``[ay, by) x [ax, bx)`` is the crop and ``members`` its targets.
    """
    h, w = image_size
    ny, nx = grid
    if not crop:
        return [((0, h, 0, w), (0, ny, 0, nx), targets)]

    def layout(bounds):
        wy0, wy1, wx0, wx1 = bounds
        ay, by = _crop_range(wy0, wy1, window.stride, h)
        ax, bx = _crop_range(wx0, wx1, window.stride, w)
        gy0, gy1 = _grid_range(wy0, wy1, occluder, stride, ny)
        gx0, gx1 = _grid_range(wx0, wx1, occluder, stride, nx)
        cost = (1 + (gy1 - gy0) * (gx1 - gx0)) * ((by - ay) * (bx - ax) + COPY_OVERHEAD_PIXELS)
        return (ay, by, ax, bx), (gy0, gy1, gx0, gx1), cost

    def union(a, b):
        return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])

    by_location: dict[tuple[int, int], list] = {}
    for target in targets:
        by_location.setdefault((target[1], target[2]), []).append(target)
    clusters: list[list] = []  # [bounds, cost, members]
    for (i, j) in sorted(by_location):
        bounds = window.window(i) + window.window(j)
        alone = layout(bounds)[2]
        best, best_extra = None, alone
        for k, (c_bounds, c_cost, _) in enumerate(clusters):
            extra = layout(union(c_bounds, bounds))[2] - c_cost
            if extra < best_extra:
                best, best_extra = k, extra
        if best is None:
            clusters.append([bounds, alone, list(by_location[(i, j)])])
        else:
            cluster = clusters[best]
            cluster[0] = union(cluster[0], bounds)
            cluster[1] += best_extra
            cluster[2].extend(by_location[(i, j)])
    groups = []
    for bounds, _, members in clusters:
        crop_box, grid_box, _ = layout(bounds)
        groups.append((crop_box, grid_box, members))
    return groups
