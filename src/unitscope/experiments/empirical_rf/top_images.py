"""Pass 1: each unit's top-K images by max activation (a streaming top-k, memory ``units x K``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.hooks import Trace, resolve_layer

from .._common import Progress, check_dataset, check_positive_int, eval_mode, iter_batches, model_device, model_dtype
from .layers import _check_units, _layer_output

__all__ = ["top_activations"]


def top_activations(model: nn.Module, layer: str, data: Dataset, *, top_k: int = 20, units: Sequence[int] | None = None,
                    batch_size: int = 64, num_workers: int = 0, progress: Progress | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Each unit's top-K images by max activation, in one streaming pass.

    Returns
    -------
    units : ndarray (U,)
    values : ndarray (U, K)
        Max activations, descending (ties: lower image position first).
    ids : ndarray (U, K)
        Positions of the images in ``data``.
    image_size : (int, int)
        ``(H, W)`` of the images.
    """
    from unitscope.stats import RunningTopK

    total = check_dataset(data)
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    resolve_layer(model, layer)
    device, dtype = model_device(model), model_dtype(model)
    topk = RunningTopK(top_k)
    chosen = None
    image_size = None
    done = 0
    with torch.inference_mode(), eval_mode(model):
        for positions, images, _, dropped in iter_batches(data, batch_size, num_workers=num_workers):
            done += len(positions) + dropped
            if positions:
                image_size = tuple(images.shape[-2:])
                with Trace(model, layer, stop=True, clone=False) as trace:
                    model(images.to(device=device, dtype=dtype))
                out = _layer_output(trace, layer, images)
                if chosen is None:
                    chosen = _check_units(units, out.shape[1], layer).to(out.device)
                maxima = out[:, chosen].flatten(2).amax(dim=2).float()
                topk.add(maxima, torch.as_tensor(positions, dtype=torch.int64, device=maxima.device))
            if progress is not None:
                progress(done, total)
    if chosen is None:
        raise ValueError("no readable images in data")
    values, ids = topk.result()
    return chosen.cpu().numpy(), values.cpu().numpy(), ids.cpu().numpy(), image_size
