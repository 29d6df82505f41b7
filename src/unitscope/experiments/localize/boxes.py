"""Boxes: the 8-connected components of a mask, their bounding boxes, and box IoU."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: 8-connectivity for connected components (diagonal neighbours belong together).
_CONNECTIVITY = np.ones((3, 3), dtype=bool)


def component_boxes(mask: np.ndarray) -> np.ndarray:
    """Bounding boxes of the 8-connected components of a boolean mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (h, w)

    Returns
    -------
    ndarray of int64, shape (n, 4)
        ``(x0, y0, x1, y1)`` per component, ends exclusive, in component
        order (raster order of each component's first pixel).
    """
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=_CONNECTIVITY)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for k, sl in enumerate(ndimage.find_objects(labels)):
        boxes[k] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes ``(x0, y0, x1, y1)`` (ends exclusive).

    Parameters
    ----------
    a : ndarray, shape (n, 4)
    b : ndarray, shape (m, 4)

    Returns
    -------
    ndarray of float64, shape (n, m)
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _to_image_boxes(boxes: np.ndarray, spacing) -> list[list[float]]:
    """Boxes on the mask grid in pixels of the network's input (``spacing`` = ``(H / sh, W / sw)``)."""
    sy, sx = spacing
    return [[round(float(x0 * sx), 3), round(float(y0 * sy), 3), round(float(x1 * sx), 3), round(float(y1 * sy), 3)]
            for x0, y0, x1, y1 in boxes]
