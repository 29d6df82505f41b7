"""Adaptive drill-down: occlude on a coarse grid first, then at the paper's stride only where it matters.

Krypton's "adaptive drill-down" (Nakandala, Kumar and Papakonstantinou,
SIGMOD 2019) applied to the empirical receptive field.  For each crop group
(:mod:`.crops`) the occluder first visits every ``coarse``-th position of the
fine grid in each direction (the last row and column always included, so
every fine position lies in a cell of coarse positions).  The fine positions
in between are then either occluded too, or given the bilinear
interpolation of their cell's four coarse values.

A cell is occluded at every fine position when, for some unit of the group,
one of its corners is *active*: its coarse discrepancy is above ``tolerance``
times the unit's coarse peak **and** so is the interpolation error estimate
there (:func:`interpolation_error`: the second differences of the coarse
values, zero where the map is flat or changes linearly).  So cells of small
values are interpolated between small values, and large values that change
linearly are interpolated exactly; what is refined is the map's peaks, edges
and bends, and the cells next to them (a peak's tail may reach into a cell
whose corners are all small).  (Before, every cell with a corner above the tolerance was
refined, however smooth the map was there.)  Every occluded position has
the numbers of ``mode="exact"``.

The error is not bounded a priori: a response narrower than a coarse cell,
lying between coarse positions, is missed, and the fine map is not smooth
-- each grid position has its own random patch, and a shift of one fine step
uncovers other pixels -- so where nothing is refined the interpolation is
off by that roughness.  ``benchmarks/rf_deep.py`` measures the error and the
speed-up against the exact sweep.  The drill-down pays where a unit's map is
compact or smooth at the coarse scale; where the map is rough at the fine
scale over most of the window (deep layers of random networks), nearly every
cell is refined and the coarse pass is extra work (about ``1 / coarse^2``).
With a coarse step of at most the occluder's side, each pixel is covered by a
coarse occluder, which is why the default coarse step is ``4`` fine steps
(12 px at 224 px with the 11 px occluder: 1 px between neighbouring
occluders).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .crops import _Group

__all__ = ["DEFAULT_COARSE", "DEFAULT_TOLERANCE", "MODES"]

#: Fine grid steps per coarse step, and the negligible fraction of a unit's coarse peak.
DEFAULT_COARSE, DEFAULT_TOLERANCE = 4, 0.01
MODES = ("exact", "adaptive")


def interpolation_error(coarse: np.ndarray) -> np.ndarray:
    """How far linear interpolation next to each coarse node may be off: ``(ny, nx, T)`` from ``(ny, nx, T)``.

    The larger of the node's second differences along the rows and along the
    columns (``|f(i-1) - 2 f(i) + f(i+1)|``; at the border the node's value
    repeated outside, so there it is the first difference): zero where the
    coarse values are flat or change linearly -- there the interpolation is
    trusted, however large the values -- and large next to a peak, an edge or
    a bend.  Between two nodes a response narrower than a coarse step leaves
    no trace, and the fine map's roughness between nodes (each grid position
    has its own random patch) is not seen either: the benchmark measures the
    error that remains.
    """
    padded = np.pad(coarse, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = np.abs(padded[:-2, 1:-1] - 2 * coarse + padded[2:, 1:-1])
    cols = np.abs(padded[1:-1, :-2] - 2 * coarse + padded[1:-1, 2:])
    return np.maximum(rows, cols)


def _nodes(n: int, coarse: int) -> np.ndarray:
    """Coarse indices along an axis of ``n`` fine positions: every ``coarse``-th, and the last."""
    nodes = np.arange(0, n, coarse)
    return nodes if nodes[-1] == n - 1 else np.append(nodes, n - 1)


def _interpolation(n: int, nodes: np.ndarray) -> np.ndarray:
    """``(n, len(nodes))`` weights of linear interpolation from the nodes to every position."""
    eye = np.eye(len(nodes))
    return np.stack([np.interp(np.arange(n), nodes, eye[k]) for k in range(len(nodes))], axis=1)


@dataclass
class _Stage:
    """Where a group is in the drill-down: its coarse nodes, and (refining) the coarse discrepancies."""

    rows: np.ndarray
    cols: np.ndarray
    coarse_discrepancy: np.ndarray | None = None  # (len(rows), len(cols), T) once the coarse pass ran


class DrillDown:
    """Turns exact crop groups into coarse ones, and finished coarse groups into refining ones."""

    def __init__(self, *, coarse: int, tolerance: float) -> None:
        self.coarse, self.tolerance = coarse, tolerance

    def coarse_copies(self, hy: int, wx: int) -> int:
        """Copies of the coarse pass over a rectangle of ``hy x wx`` positions (its reference included)."""
        return 1 + len(_nodes(hy, self.coarse)) * len(_nodes(wx, self.coarse))

    def refinement_at_most(self, hy: int, wx: int) -> int:
        """The most copies the refining pass can add: every other position and its own reference."""
        others = hy * wx + 1 - self.coarse_copies(hy, wx)
        return others + 1 if others else 0

    def coarse_group(self, group: _Group) -> _Group:
        """The group occluded only at its coarse nodes (row-major, like the exact sweep)."""
        rows = _nodes(group.gy1 - group.gy0, self.coarse)
        cols = _nodes(group.gx1 - group.gx0, self.coarse)
        width = group.gx1 - group.gx0
        group.positions = (rows[:, None] * width + cols[None, :]).ravel()
        group.coarse = _Stage(rows, cols)
        return group

    def finish(self, group: _Group, discrepancy: np.ndarray) -> tuple[_Group | None, np.ndarray | None]:
        """``(refining group, None)`` after a coarse pass that found something to refine, else
        ``(None, full discrepancy (hy, wx, T))`` to paint."""
        stage: _Stage = group.coarse
        hy, wx = group.gy1 - group.gy0, group.gx1 - group.gx0
        if stage.coarse_discrepancy is None:
            coarse = discrepancy.reshape(len(stage.rows), len(stage.cols), -1)
            refine = self._to_refine(coarse, stage, (hy, wx))
            if len(refine):
                follow = dataclasses.replace(group, values=None, filled=0, positions=refine,
                                             coarse=_Stage(stage.rows, stage.cols, coarse))
                return follow, None
            return None, self._fill(coarse, stage, (hy, wx))
        full = self._fill(stage.coarse_discrepancy, stage, (hy, wx)).reshape(hy * wx, -1)
        full[group.positions] = discrepancy
        return None, full.reshape(hy, wx, -1)

    def _to_refine(self, coarse: np.ndarray, stage: _Stage, shape: tuple[int, int]) -> np.ndarray:
        """Flat indices of the fine positions (not coarse nodes) in a cell whose interpolation may be off
        by more than the tolerance of a unit's peak.

        A corner is *active* for a unit when both its value and its interpolation error estimate
        (:func:`interpolation_error`) exceed the tolerance of the unit's coarse peak: a cell of small
        values is interpolated between small values, a cell where the map changes linearly is
        interpolated exactly, however large its values.
        """
        bar = self.tolerance * coarse.max(axis=(0, 1))  # (T,)
        active = ((coarse > bar) & (interpolation_error(coarse) > bar)).any(axis=2)  # (ny, nx) coarse nodes
        # a cell (between consecutive nodes) is refined when any of its four corners is active
        cells = active[:-1, :-1] | active[1:, :-1] | active[:-1, 1:] | active[1:, 1:]
        # and so are its four neighbours: a peak's tail reaching into a cell whose corners are all
        # below the tolerance is missed otherwise (it was the largest error on mini_alexnet's conv5)
        grown = cells.copy()
        grown[1:] |= cells[:-1]
        grown[:-1] |= cells[1:]
        grown[:, 1:] |= cells[:, :-1]
        grown[:, :-1] |= cells[:, 1:]
        cells = grown
        mask = np.zeros(shape, dtype=bool)
        if cells.size == 0:  # a single row or column of nodes: the nodes' neighbours
            for k in np.flatnonzero(active.ravel()):
                i, j = divmod(int(k), active.shape[1])
                mask[stage.rows[max(i - 1, 0)]:stage.rows[min(i + 1, len(stage.rows) - 1)] + 1,
                     stage.cols[max(j - 1, 0)]:stage.cols[min(j + 1, len(stage.cols) - 1)] + 1] = True
        for i, j in zip(*np.nonzero(cells)):
            mask[stage.rows[i]:stage.rows[i + 1] + 1, stage.cols[j]:stage.cols[j + 1] + 1] = True
        mask[np.ix_(stage.rows, stage.cols)] = False  # already occluded
        return np.flatnonzero(mask)

    @staticmethod
    def _fill(coarse: np.ndarray, stage: _Stage, shape: tuple[int, int]) -> np.ndarray:
        """The coarse discrepancies ``(ny, nx, T)`` interpolated bilinearly onto the fine grid ``(hy, wx, T)``."""
        wy, wx = _interpolation(shape[0], stage.rows), _interpolation(shape[1], stage.cols)
        return np.einsum("ia,abt,jb->ijt", wy, coarse, wx)
