"""The occluder and the engine that sweeps it: occluded copies in full batches, painted into the maps.

The occluder is a patch of random pixels, one patch per grid position
(:func:`default_occluder` scales the paper's 11 px and 3 px at 224 px).
:class:`_Occluder` takes crop groups (:mod:`.crops`), fills batches of
occluded copies across groups of the same shape, reads every target unit in
one gather, checks each crop's unoccluded copy against the full forward, and
adds each group's discrepancies to the units' maps.
"""

from __future__ import annotations

import numpy as np
import torch

from unitscope.hooks import Trace

from .crops import _Group
from .layers import _layer_output

__all__ = ["default_occluder", "PAPER_OCCLUDER", "PAPER_STRIDE", "PAPER_RESOLUTION"]

#: The paper's occluder at 224 px: an 11x11 patch moved with stride 3.
PAPER_OCCLUDER, PAPER_STRIDE, PAPER_RESOLUTION = 11, 3, 224


def default_occluder(resolution: int) -> tuple[int, int]:
    """``(occluder side, stride)`` scaled from the paper's 11 and 3 at 224 px (each at least 1).

    >>> default_occluder(224), default_occluder(128)
    ((11, 3), (6, 2))
    """
    scale = resolution / PAPER_RESOLUTION
    return max(1, round(PAPER_OCCLUDER * scale)), max(1, round(PAPER_STRIDE * scale))


class _Occluder:
    """Builds occluded copies, runs them in full batches, paints the averaged maps."""

    def __init__(self, model, layer, *, occluder, stride, grid, bank, batch_size, maps, radius, check,
                 rtol, drill=None, incremental=None, on_copies=None):
        self.model, self.layer = model, layer
        #: an IncrementalChain (unitscope.models.incremental): each copy recomputes only what its occluder reaches
        self.incremental = incremental
        self.o, self.st = occluder, stride
        self.ny, self.nx = grid
        self.bank = bank  # (ny * nx, o, o, 3)
        self.batch_size = batch_size
        self.maps, self.radius = maps, radius
        self.check = check
        self.rtol = rtol
        self.drill = drill
        self.on_copies = on_copies
        self.queues: dict[tuple[int, int], list[list]] = {}
        self.pending: dict[tuple[int, int], int] = {}
        self.copies = 0
        self.pixels = 0
        #: copies of the whole sweep (set by the caller from :meth:`planned_copies`), an adaptive
        #: group's refinement counted at its most until its coarse pass decides
        self.expected = 0
        self.arange_o = None
        self._draining = False

    def submit(self, group: _Group) -> None:
        self._enqueue(group if self.drill is None else self.drill.coarse_group(group))
        self._drain(self.batch_size)

    def flush(self) -> None:
        self._drain(1)

    def _enqueue(self, group: _Group) -> None:
        group.values = np.zeros((group.copies, len(group.rows)), dtype=np.float64)
        key = group.shape
        self.queues.setdefault(key, []).append([group, 0])
        self.pending[key] = self.pending.get(key, 0) + group.copies

    def _drain(self, least: int) -> None:
        """Run batches of every shape with at least ``least`` copies waiting (first shapes first)."""
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                key = next((k for k, n in self.pending.items() if n >= least), None)
                if key is None:
                    return
                self._run(key)
        finally:
            self._draining = False

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
        p = copy - 1 if group.positions is None else group.positions[copy - 1]
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
        # every target of every copy in one gather and one transfer
        copy_i, unit_i, row_i, col_i, start = [], [], [], [], 0
        for group, a, b in pieces:
            n, t = b - a, len(group.units)
            copy_i.append(np.repeat(np.arange(start, start + n), t))
            unit_i.append(np.tile(group.units, n))
            row_i.append(np.tile(group.ti, n))
            col_i.append(np.tile(group.tj, n))
            start += n
        index = [torch.from_numpy(np.concatenate(c)).to(inputs.device) for c in (copy_i, unit_i, row_i, col_i)]
        if self.incremental is None:
            with Trace(self.model, self.layer, stop=True, clone=False) as trace:
                self.model(inputs)
            out = _layer_output(trace, self.layer, inputs)
            values = out[index[0], index[1], index[2], index[3]]
        else:
            values = self._incremental(pieces, inputs, pastes, index)
        values = values.double().cpu().numpy()
        self.copies += total
        self.pixels += total * (hp - 2 * o) * (wp - 2 * o)
        if self.on_copies is not None:
            self.on_copies(self.copies, self.expected)
        start = 0
        for group, a, b in pieces:
            size = (b - a) * len(group.units)
            group.values[a:b] = values[start:start + size].reshape(b - a, len(group.units))
            start += size
            group.filled += b - a
            if group.filled == group.copies:
                self._finish(group)

    def _incremental(self, pieces, inputs: torch.Tensor, pastes, index) -> torch.Tensor:
        """The targets ``index`` (copy, unit, row, column) of the batch, through the incremental chain."""
        o, groups, which = self.o, [], []
        for group, a, b in pieces:
            if group.clean is None:
                group.clean = self.incremental.prepare(group.base[None, :, o:-o, o:-o],
                                                       targets=list(zip(group.ti.tolist(), group.tj.tolist())))
            if not any(g is group for g in groups):
                groups.append(group)
            which.extend([next(k for k, g in enumerate(groups) if g is group)] * (b - a))
        changed = np.zeros((len(inputs), 4), dtype=np.int64)  # unoccluded copies: nothing changed
        for rows_b, rows_y, rows_x, _ in pastes:  # patch corners in the crop padded by o
            changed[rows_b] = np.stack([rows_y - o, rows_y, rows_x - o, rows_x], axis=1)
        return self.incremental.read([g.clean for g in groups], np.asarray(which), inputs, changed, *index)

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
        discrepancy = np.abs(group.values[1:] - reference)
        if self.drill is None:
            discrepancy = discrepancy.reshape(hy, wx, len(group.rows))
        else:
            follow, discrepancy = self.drill.finish(group, discrepancy)
            if group.coarse.coarse_discrepancy is None:  # a coarse pass: its refinement is now known
                hy_wx = (group.gy1 - group.gy0, group.gx1 - group.gx0)
                self.expected += (follow.copies if follow is not None else 0) - self.drill.refinement_at_most(*hy_wx)
            if follow is not None:
                group.base = group.values = group.clean = None
                self._enqueue(follow)
                return
        self._paint(group, discrepancy)

    def _paint(self, group: _Group, discrepancy: np.ndarray) -> None:
        """Add a group's discrepancies ``(hy, wx, T)`` to its units' maps, each occluder's on its cell."""
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
        group.base = group.values = group.clean = None


def _check_tolerance(device: torch.device, dtype: torch.dtype) -> float:
    """Relative tolerance of the crop check: float32 on a CPU agrees to ~1e-6; GPUs may use
    TF32 convolutions (10-bit mantissa) and half precision is coarser still."""
    if dtype in (torch.float16, torch.bfloat16):
        return 5e-2
    return 5e-3 if device.type != "cpu" else 1e-4
