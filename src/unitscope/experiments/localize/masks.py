"""Ground truth on the mask grid: each studied object's mask per image, at the annotation's resolution.

Masks are compared at the annotation's resolution ``(sh, sw)``, optionally
subsampled (nearest neighbour) so that the longest side is ``mask_size``.
"""

from __future__ import annotations

import numpy as np


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * mask.shape[0] // shape[0]).astype(np.int64)
    cols = (np.arange(shape[1]) * mask.shape[1] // shape[1]).astype(np.int64)
    return mask[rows][:, cols]


def _mask_shape(shape: tuple[int, int], mask_size: int | None) -> tuple[int, int]:
    if mask_size and max(shape) > mask_size:
        scale = mask_size / max(shape)
        return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    return tuple(int(s) for s in shape)



def _truth_masks(data, positions, numbers: dict[str, int],
                 mask_size: int | None) -> tuple[list[tuple[int, int]], list[dict[str, np.ndarray]]]:
    """Per image of a batch: its mask shape and ``{object: bool mask}`` at that (possibly reduced) shape."""
    annotations = [data.annotation(p) for p in positions]
    shapes = []
    for p, ann in zip(positions, annotations):
        shape = ann.mask_shape or tuple(data.mask_shape(p))
        shapes.append(_mask_shape(shape, mask_size))
    truths = []  # per image: {object: bool mask at the (possibly reduced) mask shape}
    for ann, shape in zip(annotations, shapes):
        native = ann.mask_shape or shape
        truth = {}
        for obj, number in numbers.items():
            m = ann.concept_mask(number, native)
            truth[obj] = m if tuple(m.shape) == shape else _resize_nearest(m, shape)
        truths.append(truth)
    return shapes, truths
