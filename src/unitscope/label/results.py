"""From stored answers to per-unit and per-layer human labels.

Per unit (the paper's Experiment 3, human side):

* **consensus label**: the concept most annotators named. Labels are counted
  under :func:`~unitscope.label.taxonomy.label_key` (case, spaces and one
  plural ``s`` ignored); a tie goes to the alphabetically first key. The
  label shown is the group's most used spelling (shortest, then alphabetical,
  on ties), in :func:`~unitscope.label.taxonomy.normalize_label` form;
* **consensus type**: the most chosen type; a tie goes to the type listed
  first in :data:`~unitscope.label.taxonomy.TYPES`;
* **precision**: the mean over annotations of ``1 - marked / shown``;
* **agreement**: the share of annotations whose label is the consensus
  label (``type_agreement``: the same for types).

Per layer: the share of units of each type, mean precision, the share of
units with precision above 0.75 (the paper: about 60% of units), mean
agreement. Compared with the automatic labels of ``dissect/units.csv``:
label and type agreement rates and a confusion table of types.

Written beside the automatic tables::

    RESULTS/<network>/human/units.csv
    RESULTS/<network>/human/layers.csv
    RESULTS/<network>/human/compare.csv
    RESULTS/<network>/human/summary.json
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from unitscope.results.dissection_tables import DEFAULT_IOU_THRESHOLD, load_dissection
from unitscope.results.human import COMPARE_COLUMNS, LAYER_COLUMNS, UNIT_COLUMNS, HumanResults
from unitscope.results.layout import human_dir

from .catalog import UnitKey
from .records import Answer
from .opening import open_store
from .taxonomy import TYPES, label_key, labels_match, normalize_label

__all__ = [
    "UnitConsensus",
    "consensus",
    "human_results",
    "network_human_results",
    "write_human_results",
    "DETECTOR_IOU",
    "PRECISION_CUT",
]

#: IoU above which the automatic labeling calls a unit a detector (SPEC section 5).
DETECTOR_IOU = DEFAULT_IOU_THRESHOLD
#: Precision above which a unit counts as precise in ``precision_over_75``.
PRECISION_CUT = 0.75

NO_TYPE = "none"


@dataclass(frozen=True)
class UnitConsensus:
    """What the annotators of one unit agree on."""

    label: str
    type: str
    precision: float
    agreement: float
    type_agreement: float
    n_annotations: int
    labels: tuple[str, ...]
    types: tuple[str, ...]


def consensus(answers: Sequence[Answer]) -> UnitConsensus:
    """Consensus label and type, precision and agreement of one unit's answers.

    Parameters
    ----------
    answers : sequence of Answer
        The answers for a single unit (any order; the result does not depend
        on it except for the ``labels`` / ``types`` lists, kept in the given
        order).

    Raises
    ------
    ValueError
        If ``answers`` is empty or mixes units.

    Examples
    --------
    Three annotators, two say "bed", one marks 6 of 60 images:

    >>> from unitscope.label.records import Answer
    >>> def a(label, kind, marked):
    ...     return Answer("x", "net", "conv5", 1, label, kind, marked, 60, None, "t")
    >>> c = consensus([a("Bed", "object", ()), a("beds", "object", tuple("abcdef")),
    ...                a("pillow", "part", ())])
    >>> c.label, c.type, round(c.precision, 4), round(c.agreement, 4)
    ('bed', 'object', 0.9667, 0.6667)
    """
    if not answers:
        raise ValueError("consensus needs at least one answer")
    if len({answer.key for answer in answers}) != 1:
        raise ValueError("consensus takes the answers of a single unit")
    groups: dict[str, list[str]] = defaultdict(list)
    for answer in answers:
        groups[label_key(answer.label)].append(normalize_label(answer.label))
    winner = min(groups, key=lambda key: (-len(groups[key]), key))
    spellings = Counter(groups[winner])
    label = min(spellings, key=lambda text: (-spellings[text], len(text), text))
    type_votes = Counter(answer.type for answer in answers)
    kind = min(type_votes, key=lambda name: (-type_votes[name], TYPES.index(name) if name in TYPES else len(TYPES)))
    n = len(answers)
    return UnitConsensus(
        label=label,
        type=kind,
        precision=sum(answer.precision for answer in answers) / n,
        agreement=len(groups[winner]) / n,
        type_agreement=type_votes[kind] / n,
        n_annotations=n,
        labels=tuple(normalize_label(answer.label) for answer in answers),
        types=tuple(answer.type for answer in answers),
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _automatic(results_dir: Path, network: str) -> tuple[dict[UnitKey, dict[str, Any]], list[str]]:
    """The automatic labels of ``network`` by unit, and its layers in table order (empty without a dissection)."""
    dissection = load_dissection(results_dir, network)
    if dissection is None:
        return {}, []
    rows = dissection.units.to_dict(orient="records")
    table = {UnitKey(network, str(row["layer"]), int(row["unit"])): row for row in rows}
    return table, list(dict.fromkeys(str(row["layer"]) for row in rows))


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def network_human_results(network: str, answers: Sequence[Answer], results_dir: Path) -> HumanResults:
    """The human tables of one network from its answers (compared with ``results_dir``'s dissection, if any)."""
    automatic, layer_order = _automatic(results_dir, network)
    by_unit: dict[UnitKey, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_unit[answer.key].append(answer)
    for key in by_unit:
        if key.layer not in layer_order:
            layer_order.append(key.layer)
    keys = sorted(by_unit, key=lambda key: (layer_order.index(key.layer), key.unit))

    unit_rows, compare_rows = [], []
    per_layer: dict[str, list[UnitConsensus]] = defaultdict(list)
    for key in keys:
        agreed = consensus(by_unit[key])
        per_layer[key.layer].append(agreed)
        unit_rows.append(
            {
                "network": network,
                "layer": key.layer,
                "unit": key.unit,
                "label": agreed.label,
                "type": agreed.type,
                "precision": agreed.precision,
                "agreement": agreed.agreement,
                "n_annotations": agreed.n_annotations,
                "type_agreement": agreed.type_agreement,
                "labels": ";".join(agreed.labels),
                "types": ";".join(agreed.types),
            }
        )
        auto = automatic.get(key)
        if auto is not None:
            auto_type = auto.get("type", "") if auto.get("type", "") in TYPES else NO_TYPE
            compare_rows.append(
                {
                    "network": network,
                    "layer": key.layer,
                    "unit": key.unit,
                    "human_label": agreed.label,
                    "human_type": agreed.type,
                    "auto_label": auto.get("label", ""),
                    "auto_category": auto.get("category", ""),
                    "auto_type": auto_type,
                    "auto_iou": _float(auto.get("iou")),
                    "label_match": labels_match(agreed.label, auto.get("label", "")),
                    "type_match": agreed.type == auto_type,
                }
            )

    layer_rows = []
    for layer in layer_order:
        units = per_layer.get(layer)
        if not units:
            continue
        counts = Counter(unit.type for unit in units)
        row: dict[str, Any] = {"network": network, "layer": layer, "n_units": len(units)}
        row.update({f"share_{name}": counts[name] / len(units) for name in TYPES})
        row["mean_precision"] = _mean([unit.precision for unit in units])
        row["precision_over_75"] = _rate([unit.precision > PRECISION_CUT for unit in units])
        row["mean_agreement"] = _mean([unit.agreement for unit in units])
        row["mean_type_agreement"] = _mean([unit.type_agreement for unit in units])
        layer_rows.append(row)

    detectors = [row for row in compare_rows if row["auto_iou"] is not None and row["auto_iou"] > DETECTOR_IOU]
    auto_types = list(TYPES) + [NO_TYPE]
    confusion = {human: {auto: 0 for auto in auto_types} for human in TYPES}
    for row in compare_rows:
        confusion[row["human_type"]][row["auto_type"]] += 1
    all_units = [consensus(by_unit[key]) for key in keys]
    summary = {
        "network": network,
        "n_units_labelled": len(keys),
        "n_annotations": len(answers),
        "n_annotators": len({answer.annotator for answer in answers}),
        "mean_precision": _mean([unit.precision for unit in all_units]),
        "precision_over_75": _rate([unit.precision > PRECISION_CUT for unit in all_units]),
        "mean_agreement": _mean([unit.agreement for unit in all_units]),
        "mean_type_agreement": _mean([unit.type_agreement for unit in all_units]),
        "n_compared": len(compare_rows),
        "label_agreement_rate": _rate([row["label_match"] for row in compare_rows]),
        "type_agreement_rate": _rate([row["type_match"] for row in compare_rows]),
        "detectors": {
            "iou_above": DETECTOR_IOU,
            "n_compared": len(detectors),
            "label_agreement_rate": _rate([row["label_match"] for row in detectors]),
            "type_agreement_rate": _rate([row["type_match"] for row in detectors]),
        },
        "types": list(TYPES),
        "confusion": {"rows": "human type", "columns": "automatic type", "counts": confusion},
    }
    return HumanResults(
        network=network,
        units=pd.DataFrame(unit_rows, columns=UNIT_COLUMNS),
        layers=pd.DataFrame(layer_rows, columns=LAYER_COLUMNS),
        compare=pd.DataFrame(compare_rows, columns=COMPARE_COLUMNS),
        summary=summary,
    )


def human_results(results_dir: str | Path, *, db: str | Path | None = None) -> dict[str, HumanResults]:
    """Human labels of every network that has answers.

    Parameters
    ----------
    results_dir : str or Path
        The results directory (automatic labels are read from
        ``<network>/dissect/units.csv`` when present).
    db : str or Path, optional
        The labeling database (default ``results_dir/labels.sqlite``).

    Returns
    -------
    dict of str to HumanResults
        Keyed by network name, sorted; empty when there are no answers.

    Raises
    ------
    FileNotFoundError
        If the database does not exist.
    """
    results_dir = Path(results_dir)
    answers = open_store(results_dir, db, existing=True).answers()
    networks = sorted({answer.network for answer in answers})
    return {
        network: network_human_results(network, [a for a in answers if a.network == network], results_dir)
        for network in networks
    }


def write_human_results(results_dir: str | Path, *, db: str | Path | None = None) -> list[Path]:
    """Compute :func:`human_results` and save each network's tables.

    Returns
    -------
    list of Path
        The ``RESULTS/<network>/human`` folders written.
    """
    results_dir = Path(results_dir)
    computed = human_results(results_dir, db=db)
    return [result.save(human_dir(results_dir, network)) for network, result in computed.items()]
