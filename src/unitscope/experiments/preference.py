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
from dataclasses import dataclass, field
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

from ._common import (
    input_channel_order,
    preprocessing_record,
    Progress,
    check_dataset,
    check_layers,
    check_positive_int,
    eval_mode,
    iter_batches,
    model_device,
    model_dtype,
    normalisation,
    to_uint8,
    weights_record,
)
from ._io import read_json, read_png, safe_name, write_csv, write_json, write_npz, write_png
from .resume import BatchCheckpoints, data_key

__all__ = ["LayerPreferenceResult", "layer_preference"]


@dataclass
class LayerPreferenceResult:
    """Per-layer scores of every image, the top images, and their sources.

    Attributes
    ----------
    images : DataFrame
        One row per scored image, in scoring order: ``pool`` (position of its
        pool in the list given), ``index`` (position in that pool), ``id``,
        ``source``.
    scores : dict of str to dict of str to ndarray
        ``scores[network][layer]`` is ``(N,)`` float64, aligned with ``images``.
    top : int
        How many top images are counted per layer.
    sources : list of str
        Every source seen, in order of first appearance.
    thumbnails : dict of (str, str) to list of (int, str, ndarray)
        Per ``(network, layer)``: ``(rank, image id, (h, w, 3) uint8)`` of the
        first top images, kept for the report.
    weights : dict of str to dict
        Per network, the weights it had: ``weights`` (fingerprint) and
        ``weights_seed`` (seed of random weights, else None).
    preprocessing : dict of str to dict
        Per network, the preprocessing its images had (see
        :func:`~unitscope.experiments._common.preprocessing_record`).
    """

    images: pd.DataFrame
    scores: dict[str, dict[str, np.ndarray]]
    top: int
    sources: list[str]
    thumbnails: dict[tuple[str, str], list[tuple[int, str, np.ndarray]]] = field(default_factory=dict)
    weights: dict[str, dict] = field(default_factory=dict)
    preprocessing: dict[str, dict] = field(default_factory=dict)

    def merge(self, other: "LayerPreferenceResult") -> "LayerPreferenceResult":
        """The networks of both results side by side (the same images, each network's own preprocessing).

        Raises
        ------
        ValueError
            If the two were not scored on the same images in the same order,
            or share a network name.
        """
        if not self.images[["pool", "index", "id", "source"]].equals(other.images[["pool", "index", "id", "source"]]):
            raise ValueError("cannot merge layer preferences scored on different images")
        shared = set(self.scores) & set(other.scores)
        if shared:
            raise ValueError(f"both layer preferences have the network(s) {sorted(shared)}")
        return LayerPreferenceResult(
            images=self.images, scores={**self.scores, **other.scores}, top=self.top, sources=self.sources,
            thumbnails={**self.thumbnails, **other.thumbnails}, weights={**self.weights, **other.weights},
            preprocessing={**self.preprocessing, **other.preprocessing})

    @property
    def networks(self) -> list[str]:
        return list(self.scores)

    @property
    def layers(self) -> dict[str, list[str]]:
        return {network: list(by_layer) for network, by_layer in self.scores.items()}

    def top_indices(self, network: str, layer: str) -> np.ndarray:
        """Rows of :attr:`images` of the layer's top images, best first (ties: earlier row first)."""
        scores = np.asarray(self.scores[network][layer], dtype=np.float64)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        return np.argsort(-scores, kind="stable")[: self.top]

    def top_images(self) -> pd.DataFrame:
        """Columns ``network, layer, rank, pool, index, id, source, score`` (rank from 0)."""
        frames = []
        for network, by_layer in self.scores.items():
            for layer, scores in by_layer.items():
                rows = self.top_indices(network, layer)
                frame = self.images.iloc[rows].reset_index(drop=True)
                frame.insert(0, "rank", np.arange(len(rows)))
                frame.insert(0, "layer", layer)
                frame.insert(0, "network", network)
                frame["score"] = np.asarray(scores)[rows]
                frames.append(frame)
        columns = ["network", "layer", "rank", "pool", "index", "id", "source", "score"]
        return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)

    def fractions(self) -> pd.DataFrame:
        """Columns ``network, layer, source, count, fraction`` (fraction of the layer's top images)."""
        rows = []
        sources = self.images["source"].to_numpy()
        for network, by_layer in self.scores.items():
            for layer in by_layer:
                chosen = sources[self.top_indices(network, layer)]
                for source in self.sources:
                    count = int((chosen == source).sum())
                    rows.append({"network": network, "layer": layer, "source": source, "count": count,
                                 "fraction": count / len(chosen) if len(chosen) else float("nan")})
        return pd.DataFrame(rows, columns=["network", "layer", "source", "count", "fraction"])

    def to_frame(self) -> pd.DataFrame:
        """The per-layer source fractions (see :meth:`fractions`)."""
        return self.fractions()

    def save(self, out_dir: str | Path) -> Path:
        """Write ``fractions.csv``, ``top_images.csv``, ``images.csv``, ``scores.npz``,
        ``preference.json`` and ``top/<network>/<layer>/<rank>_<id>.png``."""
        out = Path(out_dir)
        write_csv(out / "fractions.csv", self.fractions())
        write_csv(out / "top_images.csv", self.top_images())
        write_csv(out / "images.csv", self.images)
        keys, arrays = [], {}
        for network, by_layer in self.scores.items():
            for layer, scores in by_layer.items():
                name = f"scores_{len(keys)}"
                keys.append({"network": network, "layer": layer, "array": name})
                arrays[name] = np.asarray(scores, dtype=np.float64)
        write_npz(out / "scores.npz", **arrays)
        thumbs = []
        for (network, layer), items in self.thumbnails.items():
            for rank, image_id, image in items:
                rel = Path("top") / safe_name(network) / safe_name(layer) / f"{rank:03d}_{safe_name(image_id)}.png"
                write_png(out / rel, image)
                thumbs.append({"network": network, "layer": layer, "rank": rank, "id": image_id,
                               "file": rel.as_posix()})
        write_json(out / "preference.json", {
            "experiment": "layer_preference", "top": self.top, "sources": self.sources,
            "scores": keys, "thumbnails": thumbs, "weights": self.weights, "preprocessing": self.preprocessing,
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "LayerPreferenceResult":
        """Read a result written by :meth:`save`."""
        out = Path(out_dir)
        meta = read_json(out / "preference.json")
        images = pd.read_csv(out / "images.csv", dtype={"id": str, "source": str}, keep_default_na=False)
        scores: dict[str, dict[str, np.ndarray]] = {}
        with np.load(out / "scores.npz") as arrays:
            for key in meta["scores"]:
                scores.setdefault(key["network"], {})[key["layer"]] = arrays[key["array"]].copy()
        thumbnails: dict[tuple[str, str], list] = {}
        for t in meta["thumbnails"]:
            thumbnails.setdefault((t["network"], t["layer"]), []).append(
                (int(t["rank"]), str(t["id"]), read_png(out / t["file"])))
        return cls(images=images, scores=scores, top=int(meta["top"]), sources=list(meta["sources"]),
                   thumbnails=thumbnails, weights=dict(meta.get("weights") or {}),
                   preprocessing=dict(meta.get("preprocessing", {})))


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
    work_dir: str | Path | None = None,
    checkpoint_every: int = 20,
    restart: bool = False,
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
