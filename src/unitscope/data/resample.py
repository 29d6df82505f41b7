"""Nearest-neighbour resizing of label maps: the one sampling rule for every mask unitscope resizes.

Label maps (concept numbers, segment ids, boolean masks) are resized by
copying pixels, never by blending values.  Which input pixel an output pixel
copies is decided here, once, for the Broden conversion, the dissection's
and the localisation's mask subsampling and the minimal images' segments:

    output pixel ``i`` of ``n`` copies the input pixel of ``m`` under its centre,
    ``x = (i + 0.5) * m / n``; when ``x`` falls exactly on the edge between two
    input pixels, the lower one: index ``ceil(x) - 1``

i.e. the nearest pixel centre, with the alignment of a bilinear image resize
(``align_corners=False``), so a resized mask stays on its object in the
resized image.  It is computed exactly in integers,
``((2i + 1) * m - 1) // (2n)``.

Why ties go down: shrinking by an even factor puts every output centre on an
edge, where either neighbour is half a pixel off.  Taking the lower one is
what flooring (``F.interpolate(mode="nearest")``, ``floor(i * m / n)``) gives
for a halving, which the dissection has always used for its 128 -> 64 px
masks, so those numbers did not move when the rules became one;
``PIL.Image.NEAREST`` and ``F.interpolate(mode="nearest-exact")`` take the
upper one there (and agree with this rule everywhere else).  Away from ties
the rule is the pixel-centre one, which flooring is not: shrinking by 3,
flooring keeps pixel ``3i`` (a pixel off the centre) where this rule keeps
``3i + 1``; enlarging by a whole factor all three agree.  One rule means a
pool converted to 64 px masks (``unitscope convert``) and dissected there
sees the very masks the dissection of the 128 px pool subsamples to.

Examples
--------
>>> nearest_indices(128, 64)[:3].tolist()
[0, 2, 4]
>>> nearest_indices(9, 3).tolist()
[1, 4, 7]
>>> nearest_indices(2, 6).tolist()
[0, 0, 0, 1, 1, 1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["nearest_indices", "nearest_picks", "resize_nearest", "subsampled_shape"]


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Input index sampled by each of ``size_out`` output pixels along one axis (pixel centres).

    Parameters
    ----------
    size_in, size_out : int
        Lengths of the axis before and after resizing (both >= 1).

    Returns
    -------
    ndarray of int64, shape (size_out,)
        ``((2i + 1) * size_in - 1) // (2 * size_out)`` (the module's rule),
        non-decreasing, within ``[0, size_in)``.
    """
    if size_in < 1 or size_out < 1:
        raise ValueError(f"cannot resize an axis of {size_in} pixels to {size_out}: sizes must be >= 1")
    return ((2 * np.arange(size_out, dtype=np.int64) + 1) * size_in - 1) // (2 * size_out)


def nearest_picks(shape_in: tuple[int, int], shape_out: tuple[int, int]) -> tuple:
    """An indexer that resizes ``(sh, sw)`` arrays to ``shape_out``: ``array[..., *picks]`` in effect.

    Along an axis that shrinks by a whole factor ``k`` the rule keeps every
    ``k``-th pixel from ``(k - 1) // 2``, and the indexer is a slice (a cheap view
    of the same numbers); otherwise the axes are index arrays made for
    ``np.ix_`` indexing.  Use as ``label_map[picks]`` on a 2-D map, or
    ``stack[(Ellipsis, *picks)]``.
    """
    picks = []
    for size_in, size_out in zip(shape_in, shape_out):
        index = nearest_indices(size_in, size_out)
        step = size_in // size_out
        regular = size_out > 1 and step * size_out == size_in
        picks.append(slice(int(index[0]), size_in, step) if regular else index)
    if not any(isinstance(p, slice) for p in picks):
        picks = list(np.ix_(*picks))
    return tuple(picks)


def resize_nearest(label_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a label map by nearest neighbour, sampling at pixel centres (the module's rule).

    Output pixel ``(r, c)`` of an ``(h, w)`` result takes the input pixel
    under its centre (ties to the lower pixel, see the module), the
    alignment of a bilinear image resize, so masks stay on their objects.  Label values are copied, never blended.

    Parameters
    ----------
    label_map : ndarray, shape (sh, sw)
    shape : (int, int)
        ``(h, w)`` of the result.

    Returns
    -------
    ndarray, shape (h, w), same dtype
        A new array (the input is never modified, nor returned).
    """
    label_map = np.asarray(label_map)
    sh, sw = label_map.shape
    h, w = shape
    if (h, w) == (sh, sw):
        return label_map.copy()
    return label_map[nearest_indices(sh, h)[:, None], nearest_indices(sw, w)[None, :]]


def subsampled_shape(shape: tuple[int, int], longest: int | None) -> tuple[int, int]:
    """``shape`` scaled down so that its longest side is ``longest`` (unchanged when it already fits).

    Each side is rounded to the nearest pixel and kept at least 1; ``longest``
    None or 0 keeps the shape (masks at their own resolution).
    """
    if longest and max(shape) > longest:
        scale = longest / max(shape)
        return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    return tuple(int(s) for s in shape)
