"""Which units of a layer detect which object, read from a dissection result.

A *detector* of object ``c`` is a unit whose best concept (by dissection IoU)
is ``c`` and whose IoU exceeds the threshold.  Localising or ablating needs
the dissection of the very network given: :func:`check_dissected_network`
refuses another network's labels.
"""

from __future__ import annotations

import difflib
from typing import Sequence

from torch import nn

from ..resume import weights_fingerprint


def _dissection_layer(dissection, layer: str) -> None:
    if layer not in dissection.layers:
        names = list(dissection.layers)
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise LookupError(f"layer {layer!r} is not in the dissection result{hint} "
                          f"(dissected layers: {', '.join(names) or 'none'})")


def check_dissected_network(model: nn.Module, dissection) -> str:
    """The weights fingerprint of ``model``, refused when ``dissection`` was made from other weights.

    Localising or ablating with the labels of another network's units gives
    numbers about nothing; the dissection records the fingerprint of the
    weights it saw (``config["weights"]``), so the mismatch is caught here.
    A dissection that records none (hand-made, or older) is taken on trust.

    Raises
    ------
    ValueError
        Naming both networks and both fingerprints.
    """
    from unitscope.models.info import model_info

    fingerprint = weights_fingerprint(model)
    recorded = (getattr(dissection, "config", None) or {}).get("weights")
    if recorded is not None and recorded != fingerprint:
        info = model_info(model)
        given = info.arch + (f" with weights {info.weights}" if info.weights else "")
        if info.seed is not None:
            given += f" (seed {info.seed})"
        raise ValueError(
            f"the dissection of {dissection.network!r} was made from other weights (fingerprint "
            f"{recorded}) than the network given, {given} (fingerprint {fingerprint}); pass the "
            "network that was dissected, or dissect this one first"
        )
    return fingerprint


def _threshold(dissection, iou_threshold: float | None) -> float:
    threshold = float(dissection.config.get("iou_threshold", 0.04) if iou_threshold is None else iou_threshold)
    if not 0 <= threshold < 1:  # NaN too: no unit would be a detector, silently
        raise ValueError(f"iou_threshold must be in [0, 1), got {threshold}")
    return threshold


def object_detectors(dissection, layer: str, *, objects: str | Sequence[str] | None = None,
                     iou_threshold: float | None = None) -> dict[str, list[int]]:
    """The units of ``layer`` that dissection labelled with each object.

    Parameters
    ----------
    dissection : DissectionResult
    layer : str
    objects : str or list of str, keyword-only
        Object names to keep (default: every object with at least one detector).
    iou_threshold : float, keyword-only
        A unit is a detector when its best IoU exceeds this (default: the
        dissection's own threshold).

    Returns
    -------
    dict of str to list of int
        Object name -> sorted unit indices, objects in concept-number order
        (or in the order given).

    Raises
    ------
    LookupError
        If ``layer`` was not dissected, or an object name is not an object
        concept of the dissection.
    ValueError
        If a named object has no detector in the layer, or (``objects=None``)
        the layer has no object detector at all.
    """
    _dissection_layer(dissection, layer)
    threshold = _threshold(dissection, iou_threshold)
    frame = dissection.unit_frame(layer, iou_threshold=threshold)
    detectors = frame[frame["detector"] & (frame["category"] == "object")]
    order = {c.name: c.number for c in dissection.concepts.in_category("object")}
    found: dict[str, list[int]] = {}
    for name in sorted(set(detectors["label"]), key=lambda n: order.get(n, 0)):
        found[name] = sorted(int(u) for u in detectors.loc[detectors["label"] == name, "unit"])
    if objects is None:
        if not found:
            raise ValueError(f"layer {layer!r} has no object detectors (no unit labelled with an "
                             f"object at IoU > {threshold})")
        return found
    names = [objects] if isinstance(objects, str) else [str(o) for o in objects]
    if not names:
        raise ValueError("objects is empty: name at least one object (or pass None for all)")
    unknown = [n for n in names if n not in order]
    if unknown:
        close = {n: difflib.get_close_matches(n, list(order), n=3, cutoff=0.6) for n in unknown}
        hints = "; ".join(f"{n!r}: close matches {', '.join(c)}" for n, c in close.items() if c)
        raise LookupError(f"not object concepts of the dissection: {unknown}" + (f" ({hints})" if hints else ""))
    missing = [n for n in names if n not in found]
    if missing:
        have = ", ".join(found) or "none"
        raise ValueError(f"no detectors of {', '.join(repr(n) for n in missing)} in layer {layer!r} "
                         f"(IoU > {threshold}); objects with detectors there: {have}")
    return {n: found[n] for n in dict.fromkeys(names)}



def _detectors_per_layer(dissection, layers, objects, threshold) -> dict[str, dict[str, list[int]]]:
    if objects is None or len(layers) == 1:
        return {name: object_detectors(dissection, name, objects=objects, iou_threshold=threshold)
                for name in layers}
    wanted = [objects] if isinstance(objects, str) else [str(o) for o in objects]
    result = {}
    for name in layers:
        found = object_detectors(dissection, name, iou_threshold=threshold) if _has_objects(
            dissection, name, threshold) else {}
        result[name] = {o: found[o] for o in wanted if o in found}
    nowhere = [o for o in wanted if not any(o in d for d in result.values())]
    if nowhere:
        # let the single-layer check name the problem precisely (unknown name or no detector)
        object_detectors(dissection, layers[0], objects=nowhere, iou_threshold=threshold)
        raise ValueError(f"no detectors of {nowhere} in layers {layers} (IoU > {threshold})")
    return result


def _has_objects(dissection, layer, threshold) -> bool:
    frame = dissection.unit_frame(layer, iou_threshold=threshold)
    return bool((frame["detector"] & (frame["category"] == "object")).any())

