"""The entry point: :func:`minimal_images` checks its options, then runs the search."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .._common import (
    input_channel_order,
    preprocessing_record,
    class_names as _class_names,
    Progress,
    check_dataset,
    check_diagnostic,
    check_labels,
    check_positive_int,
    eval_mode,
    normalisation,
    weights_record,
)
from unitscope.results.minimal import MinimalImagesResult

from .chunks import search_in_chunks
from .search import _Search
from .segments import cut_into_segments

__all__ = ["FILLS", "SCORES", "minimal_images"]

FILLS = ("mean", "blur", "gray")
SCORES = ("probability", "logit")


def minimal_images(
    model: nn.Module,
    data: Dataset,
    *,
    segmentation: str | Callable[[np.ndarray], np.ndarray] = "slic",
    n_segments: int = 50,
    compactness: float = 10.0,
    categories: str | Sequence[str] = ("object",),
    split_instances: bool = False,
    fill: str = "mean",
    blur_sigma: float | None = None,
    score: str = "probability",
    max_images: int | None = None,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    diagnostic: Mapping[str, Sequence[str]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    examples: int = 8,
    batch_size: int = 64,
    round_batches: int = 4,
    num_workers: int = 0,
    chunk: int | None = None,
    work_dir: str | Path | None = None, restart: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MinimalImagesResult:
    """Find the minimal image of each correctly classified image by greedy segment removal.

    Parameters
    ----------
    model : nn.Module
        A classifier: ``model(x)`` returns ``(N, classes)`` scores.
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)`` with ``meta["label"]``
        the correct class (-1 = unlabelled, skipped).  For
        ``segmentation="masks"`` the data set must also have
        ``annotation(index)`` (and ``concepts`` for object names).
    segmentation : {"slic", "masks"} or callable, keyword-only
        ``"slic"`` (1a): SLIC superpixels of the image the network sees;
        ``"masks"`` (1b): one segment per concept region of the annotation's
        ``categories`` maps (overlaps: the earlier map wins), plus one for
        the unlabelled rest; a callable ``f(pixels (H, W, 3) float in [0, 1])
        -> (H, W) int labels``.
    n_segments, compactness : keyword-only
        SLIC parameters (``n_segments`` is SLIC's target, not an exact count).
    categories : str or list of str, keyword-only
        Annotation categories whose masks become segments (default object).
    split_instances : bool, keyword-only
        Split each concept region into its connected components (instances).
    fill : {"mean", "blur", "gray"}, keyword-only
        How removed segments are painted (see the module docstring).
    blur_sigma : float, keyword-only
        Gaussian sigma in pixels for ``fill="blur"`` (default image side / 20).
    score : {"probability", "logit"}, keyword-only
        The correct class's score: softmax probability or raw logit.
    max_images : int, keyword-only
        Stop after this many images have been searched (correctly classified ones).
    indices : sequence of int, keyword-only
        Which items of ``data`` to look at (default all, in order).
    class_names : list of str, keyword-only
        Class names (default: the model's metadata, else the data set's).
    diagnostic : dict of str to list of str, keyword-only
        Scene class name -> its diagnostic objects; the result then reports
        how often they are kept.
    mean, std : sequence of float, keyword-only
        The normalisation of ``data`` (default: the data set's transform,
        else the model's preprocessing metadata).
    examples : int, keyword-only
        Keep ``(original, minimal)`` pictures of this many images.
    batch_size : int, keyword-only
        Candidate images per forward pass.
    round_batches : int, keyword-only
        Images are added to a round until it holds this many batches of
        candidates (keeps batches full; more uses more memory).
    num_workers : int, keyword-only
    chunk : int, keyword-only
        Search the images this many at a time, merging the chunks' results
        (the unit of resumption; default: all in one search).  The chunks,
        not the work folder, decide the batches, so the result is the same
        with or without ``work_dir``.
    work_dir : path, keyword-only
        Where each finished chunk is saved (removed at the end); run again
        with the same arguments, the search resumes at the first unfinished
        chunk (see :mod:`unitscope.experiments.resume`).  Without ``chunk``,
        the whole search is one chunk.
    restart : bool, keyword-only
        Discard the chunks saved in ``work_dir`` instead of resuming them.
    log : callable, keyword-only
        Receives one line per chunk (``"chunk_00000: cached"`` when resumed).
    progress : callable, keyword-only
        ``progress(done, total)``: images finished (searched or skipped).

    Returns
    -------
    MinimalImagesResult

    Raises
    ------
    ValueError
        For an empty data set or a bad option; for ``"masks"`` on a data set
        without ``annotation``.
    LookupError
        If a diagnostic scene or object name is unknown.
    """
    total = check_dataset(data)
    batch_size = check_positive_int(batch_size, "batch_size")
    round_batches = check_positive_int(round_batches, "round_batches")
    if max_images is not None:
        max_images = check_positive_int(max_images, "max_images")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    if isinstance(categories, str):
        categories = (categories,)
    categories = tuple(categories)
    seg_name, n_segments = _check_segmentation(segmentation, data, n_segments)
    if indices is not None:
        indices = _check_indices(indices, total)
        total = len(indices)
    names = _class_names(model, data, class_names)
    check_labels(data, len(names) if names else None)
    diagnostic = check_diagnostic(diagnostic, names, getattr(data, "concepts", None))
    if chunk is not None or work_dir is not None:
        chunk = total if chunk is None else check_positive_int(chunk, "chunk")
        options = dict(segmentation=segmentation, n_segments=n_segments, compactness=compactness,
                       categories=categories, split_instances=split_instances, fill=fill, blur_sigma=blur_sigma,
                       score=score, class_names=class_names, diagnostic=diagnostic, mean=mean, std=std,
                       examples=examples, batch_size=batch_size, round_batches=round_batches,
                       num_workers=num_workers)
        # each chunk is a search of its own: minimal_images without a chunk or a work folder
        return search_in_chunks(minimal_images, model, data, chunk=chunk, indices=indices, max_images=max_images,
                                options=options, work_dir=work_dir, restart=restart, log=log, progress=progress)
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input
    counts = {"seen": 0, "evaluated": 0, "incorrect": 0, "unlabelled": 0, "unreadable": 0, "candidates": 0}
    options = {"segmentation": seg_name, "n_segments": n_segments if seg_name == "slic" else None,
               "compactness": compactness if seg_name == "slic" else None,
               "categories": list(categories) if seg_name == "masks" else None,
               "split_instances": split_instances if seg_name == "masks" else None,
               "fill": fill, "blur_sigma": blur_sigma, "score": score, "max_images": max_images,
               "batch_size": batch_size, "mean": mean_t.flatten().tolist(), "std": std_t.flatten().tolist(),
               **weights_record(model),
               "preprocessing": preprocessing_record(model, data)}
    cut = functools.partial(cut_into_segments, method=seg_name, segmentation=segmentation, data=data,
                            n_segments=n_segments, compactness=compactness, categories=categories,
                            split_instances=split_instances)
    search = _Search(model, data, cut=cut, fill=fill, blur_sigma=blur_sigma, score=score, mean=mean_t,
                     std=std_t, channel_order=order, batch_size=batch_size, counts=counts,
                     max_images=max_images, total=total, progress=progress)
    with torch.inference_mode(), eval_mode(model):
        records, kept_examples, kept_masks = search.run(search.images(indices=indices, num_workers=num_workers),
                                            names=names, target=round_batches * batch_size, examples=examples)
    rank = {position: n for n, position in enumerate(indices or [])}
    records.sort(key=lambda r: rank.get(r.index, r.index))
    return MinimalImagesResult(records=records, counts=counts, options=options,
                               diagnostic=diagnostic, examples=kept_examples, kept_masks=kept_masks)


def _check_segmentation(segmentation, data: Dataset, n_segments) -> tuple[str, int]:
    """The segmentation's name (a callable's ``__name__``) and the checked ``n_segments``."""
    if callable(segmentation):
        seg_name = getattr(segmentation, "__name__", "callable")
    elif segmentation in ("slic", "masks"):
        seg_name = segmentation
        if segmentation == "slic":
            n_segments = check_positive_int(n_segments, "n_segments")
        elif not callable(getattr(data, "annotation", None)):
            raise ValueError("segmentation='masks' needs an annotated pool (with annotation(index))")
    else:
        raise ValueError(f"segmentation must be 'slic', 'masks' or a callable, got {segmentation!r}")
    return seg_name, n_segments


def _check_indices(indices: Sequence[int], total: int) -> list[int]:
    """``indices`` as ints, each an item of a data set of ``total`` images."""
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("indices is empty: no images to analyse")
    bad = [i for i in indices if not 0 <= i < total]
    if bad:
        raise ValueError(f"indices out of range for a data set of {total} images: {bad[:5]}")
    return indices
