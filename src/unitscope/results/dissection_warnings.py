"""The plain sentences a dissection result carries: what to distrust in its numbers, and why.

Each warning is one line for the result's ``result.json``, the CLI and the
report: a pool too small for a layer's thresholds or top images, saturated
units (threshold = maximum), masks spread wider than the nominal share,
thresholds taken from the sketch where exact ones were asked for, concepts
with too few images to be labels, and a random-weights null as good as its
network (:func:`flag_null`).  How the thresholds themselves are computed is
:mod:`unitscope.experiments._thresholds` (torch); what they mean for a
saved result (:func:`is_strict`) is here, torch-free.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:
    from unitscope.results.dissection import DissectionResult

__all__ = ["MIN_TAIL_POSITIONS", "NULL_DETECTOR_RATIO", "EXACT_TAIL_BYTES", "is_strict", "saturation_warning",
           "coverage_warning", "sketch_warning", "pool_size_warnings", "support_warning", "null_warnings",
           "dissection_warnings", "flag_null"]

#: Positions per unit above the threshold below which the threshold is flagged as unstable.
MIN_TAIL_POSITIONS = 20

#: A null (random weights) with at least this share of the trained network's detectors is flagged.
NULL_DETECTOR_RATIO = 0.5

#: Memory allowed for the ``"netdissect"`` rule's exact tails (float32 values), over all layers.
EXACT_TAIL_BYTES = 1 << 30


def is_strict(rule: str) -> bool:
    """Whether ties at the threshold are off (every rule but ``"inclusive"``)."""
    return rule != "inclusive"


def saturation_warning(layer: str, saturated: np.ndarray, rule: str, *, dead: np.ndarray | None = None) -> list[str]:
    """One sentence when some units of ``layer`` are saturated (``dead``: constant over the pool)."""
    n = int(np.count_nonzero(saturated))
    if not n:
        return []
    n_dead = int(np.count_nonzero(saturated & dead)) if dead is not None else 0
    how = (f"{n_dead} of them dead (constant over the pool)" if n_dead == n else
           f"many positions tie at the top; {n_dead} of them dead (constant over the pool)" if n_dead else
           "many positions tie at the top")
    what = ("their masks are empty and none is a detector" if is_strict(rule) else
            "under the 'inclusive' rule ties count as on, so their masks are inflated")
    return [f"{layer}: {n} of {len(saturated)} units saturated (threshold = maximum: {how}); {what}"]


def coverage_warning(layer: str, coverage: np.ndarray | None, quantile: float) -> list[str]:
    """One sentence when some masks cover more than twice the nominal share of mask pixels.

    Coverage is counted on the upsampled masks the IoU sees: bilinear
    upsampling lowers it for peaked maps but spreads sparse ones (a unit
    whose threshold sits at or near its zero floor lights every pixel its
    few positive positions reach).
    """
    if coverage is None:
        return []
    wide = coverage > 2 * quantile
    if not wide.any():
        return []
    return [f"{layer}: {int(wide.sum())} of {len(coverage)} units cover more than twice the nominal {quantile:g} "
            f"of mask pixels (up to {float(coverage.max()):.3g}): sparse maps, spread by upsampling"]


def sketch_warning(layer: str, rule: str, *, exact: bool) -> list[str]:
    """One sentence when the ``"netdissect"`` thresholds had to come from the sketch."""
    if rule != "netdissect" or exact:
        return []
    return [f"{layer}: the exact 'netdissect' thresholds would need more than {EXACT_TAIL_BYTES >> 20} MB; "
            "they come from the streaming sketch (approximate)"]


def pool_size_warnings(layer: str, *, images: int, positions: int, quantile: float, top_k: int) -> list[str]:
    """Sentences when the pool is too small for ``layer``'s thresholds or top images."""
    out = []
    if images < top_k:
        out.append(f"{layer}: the pool has {images} images, fewer than top-k {top_k}: each unit's top images "
                   "are the whole pool, so its precision means little")
    tail = quantile * positions
    if tail < MIN_TAIL_POSITIONS:
        need = math.ceil(MIN_TAIL_POSITIONS / quantile)
        out.append(f"{layer}: the pool gives {positions} positions per unit, so the top {quantile:g} is "
                   f"{tail:.1f} positions: too few for a stable threshold (at least {MIN_TAIL_POSITIONS} "
                   f"are needed: {need} positions per unit)")
    return out


def support_warning(names: Iterable[str], *, min_support: int) -> list[str]:
    """One sentence naming the concepts left out as labels for lack of images."""
    names = list(names)
    if not names:
        return []
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return [f"{len(names)} concept(s) with fewer than {min_support} images in the pool are not used as "
            f"labels: {shown}"]


def null_warnings(trained: dict[str, int], null: dict[str, int], *, network: str) -> list[str]:
    """Sentences for layers where the random-weights null has as many detectors as the network.

    Parameters
    ----------
    trained, null : dict
        Detectors per layer of the network and of its null.
    """
    out = []
    for layer, count in trained.items():
        got = null.get(layer)
        if got and got >= NULL_DETECTOR_RATIO * count:
            out.append(f"{layer}: the random-weights null has {got} detectors against {count} for {network} "
                       "(at least half as many): the pool is too small or the labels too coarse for these "
                       "detectors to mean much")
    return out


def dissection_warnings(result: DissectionResult) -> list[str]:
    """The result's plain-sentence warnings: pool size, saturation, concepts left out as labels."""
    config = result.config
    out = []
    for name, ld in result.layers.items():
        out += pool_size_warnings(name, images=len(result.image_ids), positions=ld.positions,
                                  quantile=config["quantile"], top_k=config["top_k"])
        out += saturation_warning(name, ld.saturated, config["threshold_rule"], dead=ld.minima == ld.maxima)
        out += coverage_warning(name, ld.coverage, config["quantile"])
        out += sketch_warning(name, config["threshold_rule"], exact=ld.exact)
    unsupported = [c.name for c in result.concepts if not result.supported()[c.number - 1]]
    return out + support_warning(unsupported, min_support=config["min_support"])


def flag_null(result: DissectionResult, null: DissectionResult) -> list[str]:
    """Add to both results' warnings the layers where the random-weights ``null`` matches ``result``.

    Returns
    -------
    list of str
        The sentences added (see :data:`NULL_DETECTOR_RATIO`).
    """
    count = lambda r: {row.layer: int(row.detectors) for row in r.layer_summary().itertuples()}  # noqa: E731
    found = null_warnings(count(result), count(null), network=result.network)
    for r in (result, null):
        r.warnings.extend(w for w in found if w not in r.warnings)
    return found
