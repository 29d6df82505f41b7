"""Which crop of an image, occluded at which grid positions, serves which units.

A unit's activation at a location depends only on the input pixels inside
its theoretical window, so occluder positions that miss the window are
skipped and each occluded copy is only the window's crop (see the package
docstring for why the numbers are those of the full forward).  Units of an
image are grouped into crops by :func:`_plan_groups`; each crop becomes one
:class:`_Group`, the unit of work of the occlusion engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unitscope.models.rf_window import RFWindow

__all__ = ["COPY_OVERHEAD_PIXELS"]

#: Fixed cost of one forward copy, in input pixels: small crops do not run at full speed
#: (measured on CPUs for mini_alexnet: about a 32x32 crop's worth per copy).
COPY_OVERHEAD_PIXELS = 1024


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
    #: flat indices into the grid rectangle of the positions to occlude (None: all of them, row-major)
    positions: np.ndarray | None = None
    #: what the adaptive drill-down carries from its coarse pass to the refining one (see .adaptive)
    coarse: object = None
    #: the crop's clean activations for incremental inference (unitscope.models.incremental), once computed
    clean: object = None

    @property
    def copies(self) -> int:
        if self.positions is not None:
            return 1 + len(self.positions)
        return 1 + self.rectangle_positions

    @property
    def rectangle_positions(self) -> int:
        return (self.gy1 - self.gy0) * (self.gx1 - self.gx0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.base.shape[1], self.base.shape[2]


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


def _image_groups(image: torch.Tensor, position: int, targets, *, full_values: np.ndarray, scale: float,
                  units: np.ndarray, window: RFWindow, image_size, occluder, stride, grid, crop) -> list[_Group]:
    """The crop groups of one top image, ready for the occlusion engine.

    Parameters
    ----------
    image : Tensor, shape (3, H + 2 occluder, W + 2 occluder)
        The normalised image with a zero margin of ``occluder`` on each side.
    position : int
        The image's position in the data set.
    targets : list of (row, i, j)
        Each unit row that has the image in its top-K, and its max location.
    full_values : ndarray, shape (U,)
        Every unit's activation at its max in the full forward pass.
    scale : float
        The layer's largest absolute activation on the image.
    units : ndarray, shape (U,)
        Channel numbers of the unit rows.
    """
    groups = []
    for (ay, by, ax, bx), (gy0, gy1, gx0, gx1), members in _plan_groups(targets, window, image_size, occluder,
                                                                        stride, grid, crop):
        ti = np.asarray([i - ay // window.stride for _, i, _ in members], dtype=np.int64)
        tj = np.asarray([j - ax // window.stride for _, _, j in members], dtype=np.int64)
        member_rows = np.asarray([row for row, _, _ in members])
        groups.append(_Group(
            slot=position,
            base=image[:, ay:by + 2 * occluder, ax:bx + 2 * occluder],
            ay=ay, ax=ax, gy0=gy0, gy1=gy1, gx0=gx0, gx1=gx1, rows=member_rows,
            units=units[member_rows].astype(np.int64), ti=ti, tj=tj,
            centre_y=np.asarray([window.centre(i) for _, i, _ in members]),
            centre_x=np.asarray([window.centre(j) for _, _, j in members]),
            full_values=full_values[member_rows].astype(np.float64),
            scale=scale,
        ))
    return groups
