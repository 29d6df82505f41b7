"""Experiment 4: which object categories units detect, and why those (SPEC section 6).

From a saved or fresh :class:`~unitscope.experiments.dissect.DissectionResult`:

- per layer, the number of detector units of each object class and the
  number of distinct objects detected;
- Pearson and Spearman correlations, with bootstrap 95 % intervals (objects
  resampled with replacement), between an object's detector count and
  (a) its frequency in the pool (images containing it) and
  (b) the number of scene classes for which it is the most informative
  object;
- a sweep of the IoU threshold (0.02 to 0.10) and, when given, the same
  counts for a null network (random weights, same architecture).

*Most informative* is defined from the pool's own annotations: for scene
``s`` and object ``o``, ``score(o, s) = P(o | s) log(P(o | s) / P(o))``,
the share of the mutual information between "o present" and "scene is s"
that scene ``s`` contributes (large when ``o`` is both common in ``s`` and
rarer elsewhere).  An object counts for scene ``s`` when it is among the
``informative_top`` objects of highest score there (default 1).  The
paper reports 0.54 (frequency) and 0.84 (informative scenes).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from unitscope.results.census import DEFAULT_SWEEP, CensusResult, layer_counts
from unitscope.results.dissection import DissectionResult

__all__ = ["CensusResult", "object_census", "informative_scenes", "correlation_with_ci"]

def informative_scenes(result: DissectionResult, *, top: int = 1) -> tuple[pd.Series, pd.DataFrame]:
    """For every object, the number of scene classes where it is among the ``top`` most informative.

    Returns
    -------
    counts : Series indexed by object name (all objects of the vocabulary)
    table : DataFrame (scene, object, p_object_given_scene, p_object, score, rank)
        Empty when the pool has no scene labels.
    """
    concepts = result.concepts
    objects = concepts.in_category("object")
    scenes = concepts.in_category("scene")
    counts = pd.Series(0, index=[o.name for o in objects], dtype=float)
    n_images = max(len(result.image_ids), 1)
    images = result.concept_images
    rows = []
    for s in scenes:
        n_s = images[s.number - 1]
        if n_s == 0:
            continue
        scored = []
        for o in objects:
            p_o = images[o.number - 1] / n_images
            p_os = result.cooccurrence[o.number - 1, s.number - 1] / n_s
            score = p_os * np.log(p_os / p_o) if p_os > 0 and p_o > 0 else 0.0
            scored.append((score, o.name, p_os, p_o))
        scored.sort(key=lambda t: (-t[0], t[1]))
        for rank, (score, name, p_os, p_o) in enumerate(scored, start=1):
            rows.append({"scene": s.name, "object": name, "p_object_given_scene": p_os,
                         "p_object": p_o, "score": score, "rank": rank})
            if rank <= top and score > 0:
                counts[name] += 1
    if not scenes:
        counts[:] = np.nan
    return counts, pd.DataFrame(rows)


def correlation_with_ci(x: Sequence[float], y: Sequence[float], *, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict:
    """Pearson and Spearman correlation of ``x`` and ``y`` with percentile bootstrap intervals.

    Pairs are resampled with replacement ``n_boot`` times; resamples where a
    variable is constant are skipped.  NaN where undefined (fewer than 3
    pairs, or a constant variable).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    out = {"n": int(len(x))}
    names = ("pearson", "spearman")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        for name in names:
            out.update({name: np.nan, f"{name}_lo": np.nan, f"{name}_hi": np.nan})
        return out
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[samples], y[samples]
    usable = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    xs, ys = xs[usable], ys[usable]
    alpha = (1 - level) / 2
    ranked = {"pearson": (xs, ys), "spearman": (sps.rankdata(xs, axis=1), sps.rankdata(ys, axis=1))}
    out["pearson"] = float(sps.pearsonr(x, y)[0])
    out["spearman"] = float(sps.spearmanr(x, y)[0])
    for name, (a, b) in ranked.items():
        if len(a):
            boot = _rowwise_pearson(a, b)
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
        else:
            out[f"{name}_lo"] = out[f"{name}_hi"] = np.nan
    return out


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _counts(result: DissectionResult, threshold: float) -> pd.DataFrame:
    return pd.DataFrame([layer_counts(result.unit_frame(layer, iou_threshold=threshold), network=result.network,
                                      layer=layer, iou_threshold=threshold) for layer in result.layers])


def object_census(
    result: DissectionResult,
    *,
    null: DissectionResult | None = None,
    iou_threshold: float | None = None,
    sweep: Sequence[float] = DEFAULT_SWEEP,
    informative_top: int = 1,
    n_boot: int = 1000,
    seed: int = 0,
) -> CensusResult:
    """Count detectors per object class and correlate them with frequency and informativeness.

    Parameters
    ----------
    result : DissectionResult
    null : DissectionResult, keyword-only
        The same layers of a random-weights network over the same pool.
    iou_threshold : float, keyword-only
        Detector threshold (default: the one the dissection used).
    sweep : sequence of float, keyword-only
        IoU thresholds of the sweep.
    informative_top : int, keyword-only
        How many objects count as "most informative" per scene.
    n_boot, seed : int, keyword-only
        Bootstrap resamples and their seed.

    Returns
    -------
    CensusResult
    """
    if informative_top < 1:
        raise ValueError(f"informative_top must be >= 1, got {informative_top}")
    threshold = result.config.get("iou_threshold", 0.04) if iou_threshold is None else iou_threshold
    informative, informative_table = informative_scenes(result, top=informative_top)
    objects = result.concepts.in_category("object")
    frequency = pd.Series({o.name: int(result.concept_images[o.number - 1]) for o in objects})
    object_rows, correlation_rows = [], []
    for net in [result] + ([null] if null is not None else []):
        for layer in net.layers:
            units = net.unit_frame(layer, iou_threshold=threshold)
            det = units[units["detector"] & (units["category"] == "object")]
            per_object = det["label"].value_counts()
            counts = np.array([int(per_object.get(o.name, 0)) for o in objects])
            for o, c in zip(objects, counts):
                object_rows.append({"network": net.network, "layer": layer, "object": o.name,
                                    "detectors": int(c), "frequency": int(frequency[o.name]),
                                    "informative_scenes": informative[o.name]})
            for against, values in (("frequency", frequency.values), ("informative_scenes", informative.values)):
                row = {"network": net.network, "layer": layer, "against": against}
                row.update(correlation_with_ci(counts, values, n_boot=n_boot, seed=seed))
                correlation_rows.append(row)
    sweep_frames = [_counts(net, t) for net in [result] + ([null] if null is not None else [])
                    for t in sorted(set(sweep) | {threshold})]
    sweep_frame = pd.concat(sweep_frames, ignore_index=True)
    layers_frame = sweep_frame[np.isclose(sweep_frame["iou_threshold"], threshold)].reset_index(drop=True)
    return CensusResult(
        objects=pd.DataFrame(object_rows), layers=layers_frame,
        correlations=pd.DataFrame(correlation_rows), sweep=sweep_frame, informative=informative_table,
        config={"network": result.network, "null": null.network if null is not None else None,
                "iou_threshold": threshold, "informative_top": informative_top, "n_boot": n_boot,
                "seed": seed, "definition": "score(o, s) = P(o|s) log(P(o|s) / P(o))"})
