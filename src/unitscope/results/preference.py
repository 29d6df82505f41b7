"""Layer preference (SPEC section 2): every image's score per layer, the top images, and their sources.

Saved in ``RESULTS/preference`` (several networks side by side)::

    fractions.csv      network, layer, source, count, fraction (of the layer's top images)
    top_images.csv     network, layer, rank, pool, index, id, source, score
    images.csv         pool, index, id, source (the scored images, in scoring order)
    scores.npz         one (N,) float64 array per (network, layer), named in preference.json "scores"
    thumbnails.npz     (h, w, 3) uint8 thumbnails of the first top images, named in preference.json "thumbnails"
    preference.json    top, sources, weights, preprocessing, and the two lists above

The report draws the thumbnails from ``thumbnails.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.writing import read_npz, write_csv, write_json, write_npz
from unitscope.results.layout import FRACTIONS_CSV, IMAGES_CSV, PREFERENCE, PREFERENCE_JSON, SCORES_NPZ
from unitscope.results.layout import THUMBNAILS_NPZ, TOP_IMAGES_CSV, preference_dir
from unitscope.results.schema import ResultFileError, read_checked_json, read_required_table

__all__ = ["LayerPreferenceResult", "Preference", "load_preference", "has_preference"]


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
        Per network, the preprocessing its images had.
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
        """Write the files of the module docstring into ``out_dir``."""
        out = Path(out_dir)
        write_csv(out / FRACTIONS_CSV, self.fractions())
        write_csv(out / TOP_IMAGES_CSV, self.top_images())
        write_csv(out / IMAGES_CSV, self.images)
        keys, arrays = [], {}
        for network, by_layer in self.scores.items():
            for layer, scores in by_layer.items():
                name = f"scores_{len(keys)}"
                keys.append({"network": network, "layer": layer, "array": name})
                arrays[name] = np.asarray(scores, dtype=np.float64)
        write_npz(out / SCORES_NPZ, **arrays)
        thumbs, pictures = [], {}
        for (network, layer), items in self.thumbnails.items():
            for rank, image_id, image in items:
                name = f"thumb_{len(thumbs):04d}"
                pictures[name] = np.asarray(image, dtype=np.uint8)
                thumbs.append({"network": network, "layer": layer, "rank": rank, "id": image_id, "array": name})
        write_npz(out / THUMBNAILS_NPZ, **pictures)
        write_json(out / PREFERENCE_JSON, {
            "experiment": "layer_preference", "top": self.top, "sources": self.sources,
            "scores": keys, "thumbnails": thumbs, "weights": self.weights, "preprocessing": self.preprocessing,
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "LayerPreferenceResult":
        """Read a result written by :meth:`save`, checked as :func:`~unitscope.results.schema.read_checked_json`
        says (an older unitscope's folder, whose thumbnails were PNG files, lacks ``thumbnails.npz``)."""
        out = Path(out_dir)
        meta = read_checked_json(out / PREFERENCE_JSON, PREFERENCE, (FRACTIONS_CSV, TOP_IMAGES_CSV),
                                 what="layer preference")
        images = read_required_table(out / IMAGES_CSV, PREFERENCE, what="scored images").astype(
            {"id": str, "source": str})
        arrays = read_npz(out / SCORES_NPZ, what="the scores of every image")
        scores: dict[str, dict[str, np.ndarray]] = {}
        for key in meta.get("scores") or []:
            scores.setdefault(str(key["network"]), {})[str(key["layer"])] = _array(arrays, key, out / SCORES_NPZ)
        thumbnails: dict[tuple[str, str], list] = {}
        if meta["thumbnails"]:
            pictures = read_npz(out / THUMBNAILS_NPZ, what=f"the thumbnails {PREFERENCE_JSON} lists")
            for t in meta["thumbnails"]:
                thumbnails.setdefault((str(t["network"]), str(t["layer"])), []).append(
                    (int(t["rank"]), str(t["id"]), _array(pictures, t, out / THUMBNAILS_NPZ)))
        return cls(images=images, scores=scores, top=int(meta["top"]), sources=list(meta["sources"]),
                   thumbnails=thumbnails, weights=dict(meta.get("weights") or {}),
                   preprocessing=dict(meta.get("preprocessing", {})))


def _array(arrays: dict[str, np.ndarray], entry: dict, path: Path) -> np.ndarray:
    name = entry.get("array")
    if name not in arrays:
        raise ResultFileError(f"{path} has no array {name!r}, which {PREFERENCE_JSON} names")
    return arrays[name]


@dataclass
class Preference:
    """The layer preference as the report shows it: the saved result and its tables, computed once."""

    result: LayerPreferenceResult
    fractions: pd.DataFrame  # network, layer, source, count, fraction
    top_images: pd.DataFrame  # network, layer, rank, pool, index, id, source, score

    @classmethod
    def of(cls, result: LayerPreferenceResult) -> "Preference":
        return cls(result=result, fractions=result.fractions(), top_images=result.top_images())

    @property
    def top(self) -> int:
        return self.result.top

    @property
    def sources(self) -> list[str]:
        return self.result.sources


def load_preference(results_dir: str | Path) -> Preference | None:
    """The layer preference of a results directory (``RESULTS/preference``); None when there is none."""
    folder = preference_dir(results_dir)
    if not (folder / PREFERENCE_JSON).is_file():
        return None
    return Preference.of(LayerPreferenceResult.load(folder))


def has_preference(results_dir: str | Path) -> bool:
    """Whether ``results_dir`` holds a layer preference."""
    return (preference_dir(results_dir) / PREFERENCE_JSON).is_file()
