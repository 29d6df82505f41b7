"""Ground truth on the mask grid: each studied object's mask per image, at the annotation's resolution.

Masks are compared at the annotation's resolution ``(sh, sw)``, optionally
subsampled (nearest neighbour at pixel centres,
:func:`unitscope.data.resample.resize_nearest`) so that the longest side is
``mask_size``.
"""

from __future__ import annotations

import numpy as np

from unitscope.data.resample import resize_nearest, subsampled_shape


def _truth_masks(data, positions, numbers: dict[str, int],
                 mask_size: int | None) -> tuple[list[tuple[int, int]], list[dict[str, np.ndarray]]]:
    """Per image of a batch: its mask shape and ``{object: bool mask}`` at that (possibly reduced) shape."""
    annotations = [data.annotation(p) for p in positions]
    shapes = []
    for p, ann in zip(positions, annotations):
        shape = ann.mask_shape or tuple(data.mask_shape(p))
        shapes.append(subsampled_shape(shape, mask_size))
    truths = []  # per image: {object: bool mask at the (possibly reduced) mask shape}
    for ann, shape in zip(annotations, shapes):
        native = ann.mask_shape or shape
        truth = {}
        for obj, number in numbers.items():
            m = ann.concept_mask(number, native)
            truth[obj] = m if tuple(m.shape) == shape else resize_nearest(m, shape)
        truths.append(truth)
    return shapes, truths
