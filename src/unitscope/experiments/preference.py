"""Pre-experiment (SPEC section 2): which images each layer prefers.

Each image of a mixed pool (object-centric and scene-centric sources) is
scored, per layer, by the layer's activation averaged over all units and
all positions; the top images of each layer are counted by source.  The
paper found that early layers prefer the same images in the object CNN and
the scene CNN, and that from conv4 on the preference follows the training
data (fc7: ~78% of ImageNet-CNN's top-100 images from ImageNet, ~76% of
Places-CNN's from SUN).

One forward pass per batch traces every studied layer of a network at once
and stops after the deepest one.  All scores are kept (one float per image
and layer: 200k images x 10 layers is 16 MB), so the top can be re-cut
afterwards.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

import unitscope
from unitscope.hooks import TraceDict, extra_tokens_of, spatial_map
from unitscope.results.preference import LayerPreferenceResult

from ._common import (Progress, check_dataset, check_layers, check_positive_int, eval_mode, input_channel_order,
                      iter_batches, model_device, model_dtype, normalisation, preprocessing_record, to_uint8,
                      weights_record)
from .resume import BatchCheckpoints, data_key

__all__ = ["layer_preference"]


def _thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is ``size``, then centre-crop a square."""
    pil = Image.fromarray(image)
    w, h = pil.size
    scale = size / min(w, h)
    pil = pil.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = pil.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(pil.crop((left, top, left + size, top + size)), dtype=np.uint8).copy()


def _raw_image(pool: Dataset, index: int, model: nn.Module) -> np.ndarray:
    raw = getattr(pool, "raw_image", None)
    if callable(raw):
        return to_uint8(raw(index))
    image = pool[index][0]
    mean, std = normalisation(model, pool)
    return to_uint8(image, mean, std, channel_order=input_channel_order(model, pool))


def _patches(out: torch.Tensor, layer: str, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """A token grid's patches (its class token is not a position); other sequences as they are."""
    try:
        return spatial_map(out, layer=layer, batch=images.shape[0], image_size=images.shape[-2:],
                           extra_tokens=extra_tokens_of(model))
    except ValueError:  # not a patch grid: every value counts, as for a fully connected layer
        return out


def layer_preference(
    models: nn.Module | Mapping[str, nn.Module],
    layers: Sequence[str] | Mapping[str, Sequence[str]] | None,
    pools: Dataset | Sequence[Dataset],
    *,
    top: int = 100,
    batch_size: int = 64,
    num_workers: int = 0,
    thumbnails: int = 8,
    thumbnail_size: int = 96,
    work_dir: str | Path | None = None, checkpoint_every: int = 20, restart: bool = False,
    progress: Progress | None = None,
) -> LayerPreferenceResult:
    """Score every image by each layer's mean activation and count the top images by source.

    Parameters
    ----------
    models : nn.Module or dict of str to nn.Module
        The networks, by name (a single module is called ``"network"``).  All
        see the same image tensors, so the pools' transform must suit them all.
    layers : list of str, dict of str to list of str, or None
        Dotted layer names, the same for every network (list) or per network
        (dict); None takes each model's ``default_layers`` metadata.
    pools : Dataset or list of Dataset
        Image pools; item ``(image (3, H, W), meta)`` with ``meta["source"]``
        naming the pool (else the pool's ``source`` attribute, else
        ``"pool<i>"``).
    top : int, keyword-only
        Top images counted per layer (default 100, as in the paper).
    batch_size, num_workers : int, keyword-only
        Data loading.
    thumbnails : int, keyword-only
        How many top images per layer to keep as thumbnails (0 for none).
    thumbnail_size : int, keyword-only
        Side of the square thumbnails in pixels.
    work_dir, checkpoint_every, restart : keyword-only
        Folder for checkpoints of the scores so far (every ``checkpoint_every``
        batches; None: none), from which a run started again with the same
        arguments resumes to the same result, unless ``restart``
        (:class:`~unitscope.experiments.resume.BatchCheckpoints`).
    progress : callable, keyword-only
        ``progress(done, total)`` called after each batch (images done).

    Returns
    -------
    LayerPreferenceResult

    Raises
    ------
    LookupError
        If a layer does not exist in its network.
    ValueError
        If there are no networks, no layers, or no images.

    Notes
    -----
    A layer's score of an image is ``output.mean()`` over every dimension but
    the batch one (units and positions, or units alone for a linear layer);
    for a transformer's token grid the positions are its patches, its class
    token left out (:func:`unitscope.hooks.spatial_map`).
    Ties in the ranking are broken by scoring order (pool order, then index).
    """
    if isinstance(models, nn.Module):
        models = {"network": models}
    models = dict(models)
    if not models:
        raise ValueError("no networks given")
    top = check_positive_int(top, "top")
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(pools, Dataset):
        pools = [pools]
    pools = list(pools)
    if not pools:
        raise ValueError("no image pools given")
    net_layers: dict[str, list[str]] = {}
    for name, model in models.items():
        if isinstance(layers, Mapping):
            if name not in layers:
                raise LookupError(f"no layers given for network {name!r} (layers has {sorted(layers)})")
            chosen = layers[name]
        elif layers is None:
            from unitscope.models.info import model_info

            chosen = model_info(model).default_layers
            if not chosen:
                raise ValueError(f"network {name!r} has no default layers: pass layers explicitly")
        else:
            chosen = [layers] if isinstance(layers, str) else layers
        net_layers[name] = check_layers(model, chosen)
    total = sum(check_dataset(pool, f"pool {i}") for i, pool in enumerate(pools))

    rows: list[tuple[int, int, str, str]] = []
    chunks: dict[str, dict[str, list[np.ndarray]]] = {n: {l: [] for l in ls} for n, ls in net_layers.items()}
    done = 0
    weights = {n: weights_record(m) for n, m in models.items()}
    checkpoints = BatchCheckpoints(work_dir, {
        "experiment": "preference", "weights": {n: w["weights"] for n, w in weights.items()},
        "layers": net_layers, "pools": [data_key(pool) for pool in pools],
        "sources": [str(getattr(pool, "source", "")) for pool in pools], "batch_size": batch_size,
        "version": unitscope.__version__,
    }, every=checkpoint_every, restart=restart)
    skip, saved = checkpoints.resume()
    if saved is not None:
        rows, chunks, done = saved["rows"], saved["chunks"], saved["done"]
    batch_no = 0
    with torch.inference_mode(), contextlib.ExitStack() as stack:
        for model in models.values():
            stack.enter_context(eval_mode(model))
        for p, pool in enumerate(pools):
            default_source = str(getattr(pool, "source", f"pool{p}"))
            n_batches = -(-len(pool) // batch_size)
            first = min(max(skip - batch_no, 0), n_batches)  # batches of this pool done before
            batch_no += first
            batches = iter_batches(pool, batch_size, indices=range(first * batch_size, len(pool)),
                                   num_workers=num_workers) if first < n_batches else ()
            for positions, images, metas, dropped in batches:
                done += len(positions) + dropped
                batch_no += 1
                if not positions:
                    checkpoints.done(batch_no, lambda: {"rows": rows, "chunks": chunks, "done": done})
                    continue
                for position, meta in zip(positions, metas):
                    rows.append((p, position, str(meta.get("id", f"{p}/{position}")),
                                 str(meta.get("source", default_source))))
                for name, model in models.items():
                    x = images.to(device=model_device(model), dtype=model_dtype(model))
                    with TraceDict(model, net_layers[name], stop=True) as traces:
                        model(x)
                    for layer, trace in traces.items():
                        out = trace.output
                        if not isinstance(out, torch.Tensor):
                            raise ValueError(f"layer {layer!r} of {name!r} does not output a tensor")
                        if out.dim() == 3:
                            out = _patches(out, layer, model, x)
                        score = out.double().flatten(1).mean(dim=1)
                        chunks[name][layer].append(score.cpu().numpy())
                checkpoints.done(batch_no, lambda: {"rows": rows, "chunks": chunks, "done": done})
                if progress is not None:
                    progress(done, total)
    if not rows:
        checkpoints.finish()
        raise ValueError("no readable images in the pools")
    # (the thumbnails below read images again: an interruption there resumes after the scoring)
    checkpoints.done(batch_no, lambda: {"rows": rows, "chunks": chunks, "done": done}, force=True)
    images_frame = pd.DataFrame(rows, columns=["pool", "index", "id", "source"])
    scores = {n: {l: np.concatenate(c) for l, c in by_layer.items()} for n, by_layer in chunks.items()}
    sources = list(dict.fromkeys(images_frame["source"]))
    result = LayerPreferenceResult(images=images_frame, scores=scores, top=top, sources=sources,
                                   weights=weights,
                                   preprocessing={n: preprocessing_record(m, pools[0]) for n, m in models.items()})

    if thumbnails:
        cache: dict[tuple[int, int], np.ndarray] = {}
        for network, by_layer in scores.items():
            for layer in by_layer:
                items = []
                for rank, row in enumerate(result.top_indices(network, layer)[:thumbnails]):
                    p, index, image_id = (int(images_frame.at[row, "pool"]), int(images_frame.at[row, "index"]),
                                          str(images_frame.at[row, "id"]))
                    if (p, index) not in cache:
                        cache[(p, index)] = _thumbnail(_raw_image(pools[p], index, models[network]),
                                                       thumbnail_size)
                    items.append((rank, image_id, cache[(p, index)]))
                result.thumbnails[(network, layer)] = items
    checkpoints.finish()
    return result
