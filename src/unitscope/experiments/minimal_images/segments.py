"""Cutting an image into the segments the search removes.

1a: SLIC superpixels of the image the network sees, or the labels of a
user's function; 1b: the ground-truth object masks of an annotated pool, one
segment per concept region (or per connected instance) plus one for the
unlabelled rest, each segment named by its objects.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from unitscope.data.resample import resize_nearest


def cut_into_segments(
    pixels: torch.Tensor,
    position: int,
    *,
    method: str,
    segmentation: str | Callable[[np.ndarray], np.ndarray],
    data: Dataset,
    n_segments: int,
    compactness: float,
    categories: Sequence[str],
    split_instances: bool,
) -> tuple[np.ndarray, list[list[str]]]:
    """The segments of one image: ``(H, W)`` segment numbers ``0 .. n-1`` and each segment's objects.

    Parameters
    ----------
    pixels : Tensor
        ``(3, H, W)`` the image in pixel space (normalisation undone), on the CPU.
    position : int
        The image's index in ``data`` (what ``annotation`` takes).
    method : str
        ``"slic"``, ``"masks"``, or the name of the callable ``segmentation``.
    segmentation, n_segments, compactness, categories, split_instances, keyword-only
        As :func:`~unitscope.experiments.minimal_images.minimal_images` takes them.

    Returns
    -------
    segments : ndarray
        ``(H, W)`` int64 segment numbers.
    segment_objects : list of list of str
        For masks, the object names of each segment (empty for the
        background); empty for superpixels.

    Raises
    ------
    ValueError
        If a callable returns labels of another shape than the image.
    """
    shape = tuple(pixels.shape[-2:])
    if method == "masks":
        return _mask_segments(data, position, shape, categories, split_instances)
    hwc = pixels.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    if method == "slic":
        from skimage.segmentation import slic

        labels = slic(hwc, n_segments=n_segments, compactness=compactness, start_label=0,
                      channel_axis=-1)
    else:
        labels = np.asarray(segmentation(hwc))
        if labels.shape != shape:
            raise ValueError(f"segmentation returned shape {labels.shape}, expected {shape}")
    return _relabel(labels), []


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int64)


def _mask_segments(data: Dataset, position: int, shape: tuple[int, int], categories: Sequence[str],
                   split_instances: bool) -> tuple[np.ndarray, list[list[str]]]:
    annotation = data.annotation(position)
    combined = None
    for category in categories:
        for label_map in annotation.masks.get(category, []):
            label_map = np.asarray(label_map, dtype=np.int64)
            combined = label_map.copy() if combined is None else np.where(combined == 0, label_map, combined)
    if combined is None:
        combined = np.zeros(shape, dtype=np.int64)
    combined = resize_nearest(combined, shape)
    concepts = getattr(data, "concepts", None)

    def name(number: int) -> str:
        if concepts is not None:
            try:
                return concepts[number].name
            except KeyError:
                pass
        return str(number)

    if split_instances:
        from scipy import ndimage

        segments = np.zeros(shape, dtype=np.int64)
        owners: list[int] = []
        for number in np.unique(combined):
            parts, n = ndimage.label(combined == number, structure=np.ones((3, 3)))
            for k in range(1, n + 1):
                segments[parts == k] = len(owners)
                owners.append(int(number))
    else:
        owners_arr, inverse = np.unique(combined, return_inverse=True)
        segments = inverse.reshape(shape).astype(np.int64)
        owners = [int(v) for v in owners_arr]
    return segments, [[name(number)] if number else [] for number in owners]
