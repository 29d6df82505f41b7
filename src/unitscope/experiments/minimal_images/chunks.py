"""A search cut into chunks of images, each saved when done, so an interrupted search resumes.

The images are taken ``chunk`` at a time, in order; each chunk is one
search (:func:`~.run.minimal_images` over its images, with what is left of
``max_images``), and the chunks' results are merged in order.  With a work
folder every finished chunk is saved there
(:class:`~unitscope.experiments.resume.SavedParts`): run again with the same
arguments, the search loads the chunks it has and carries on at the first
one it has not.  The chunks are the same whether or not the run was
interrupted, so the result is too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import unitscope

from ..resume import SavedParts, config_key, data_key, weights_fingerprint
from .result import MinimalImagesResult

__all__ = ["search_in_chunks"]


def search_in_chunks(search: Callable[..., MinimalImagesResult], model, data, *, chunk: int,
                     indices: list[int] | None, max_images: int | None, options: dict,
                     work_dir: str | Path | None, restart: bool, log, progress) -> MinimalImagesResult:
    """``search(model, data, indices=..., max_images=..., progress=..., **options)`` chunk by chunk, merged.

    ``progress(done, total)`` counts images over all chunks.
    """
    positions = list(range(len(data))) if indices is None else list(indices)
    labels = data.labels_key() if hasattr(data, "labels_key") else None
    segmentation = options["segmentation"]
    config = {
        "experiment": "minimal_images", "weights": weights_fingerprint(model), "data": data_key(data),
        "labels": config_key({"labels": labels}) if labels is not None else None,
        "indices": None if indices is None else config_key({"indices": positions}),
        "chunk": chunk, "max_images": max_images, "version": unitscope.__version__,
        **dict(options, segmentation=getattr(segmentation, "__name__", segmentation)),
    }
    parts = SavedParts(work_dir, config, restart=restart, log=log)
    merged, remaining = None, max_images
    for number, start in enumerate(range(0, len(positions), chunk)):
        if remaining is not None and remaining <= 0:
            break
        these = positions[start:start + chunk]

        def report(done, total, offset=start):
            if progress is not None:
                progress(offset + done, len(positions))

        def run_chunk(these=these, quota=remaining, report=report):
            return search(model, data, indices=these, max_images=quota, progress=report, **options)

        part = parts.part(f"chunk_{number:05d}", {"indices": [these[0], these[-1]], "quota": remaining},
                          run_chunk, save=lambda result, folder: result.save(folder),
                          load=MinimalImagesResult.load)
        merged = part if merged is None else merged.merge(part)
        if remaining is not None:
            remaining -= part.counts.get("evaluated", 0)
    merged.options["max_images"] = max_images
    parts.finish()
    return merged
