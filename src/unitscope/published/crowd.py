"""The ICLR 2015 crowd annotations as labeling-app answers, and each unit's consensus.

The labeling app (:mod:`unitscope.label`) stores an answer as a label, a
type and the images the annotator marked as not fitting, out of those shown;
its :func:`~unitscope.label.results.consensus` turns a unit's answers into
the consensus label and type, precision and agreement.  The published
annotations are brought into that shape rather than computed again:

* ``annotator``: ``iclr15-1`` ... ``iclr15-3``, the triple's position in the
  unit's row (a position, not a person: the crowd workers are anonymous);
* ``label``: the description, ``type``: the code's unitscope key;
* ``n_images`` / ``marked``: the release keeps only the precision, a share.
  Every precision in the real files is a multiple of 1/57 (the interface
  evidently scored 57 images, not the paper's 60), so the answers say
  57 images shown and ``(1 - precision) * 57`` marked, with placeholder
  image ids (``unnamed-1`` ...): ``Answer.precision`` then gives back the
  stored value (to 1e-12).  For other files the number of images is the
  smallest one up to 60 of which every precision is a share
  (:func:`images_shown`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import pandas as pd

from unitscope.label.results import consensus
from unitscope.label.storage import Answer

from ._source import MalformedFile
from .iclr15 import Iclr15Annotations

__all__ = ["CONSENSUS_COLUMNS", "MAX_IMAGES_SHOWN", "crowd_answers", "images_shown", "unit_consensus"]

#: The most top images a crowd task showed (the paper's top-60).
MAX_IMAGES_SHOWN = 60

#: Columns of :func:`unit_consensus`: those of the labeling app's ``human/units.csv``.
CONSENSUS_COLUMNS = ["network", "layer", "unit", "label", "type", "precision", "agreement", "n_annotations",
                     "type_agreement", "labels", "types"]

_SHARE_TOLERANCE = 1e-9


def images_shown(annotations: Iclr15Annotations) -> int:
    """The smallest number of images, up to 60, of which every stored precision is a share.

    Raises
    ------
    MalformedFile
        If there is none: the precisions cannot be told as "marked of shown".

    Examples
    --------
    For the real files this is 57.
    """
    precisions = annotations.annotations["precision"].to_numpy()
    for shown in range(1, MAX_IMAGES_SHOWN + 1):
        counts = precisions * shown
        if (abs(counts - counts.round()) <= _SHARE_TOLERANCE * shown).all():
            return shown
    raise MalformedFile(annotations.source, f"the precisions are not shares k/n of one number of images n <= "
                        f"{MAX_IMAGES_SHOWN}, so they cannot be stored as answers (marked of shown images)")


def crowd_answers(annotations: Iclr15Annotations) -> list[Answer]:
    """Every annotation as the labeling app's :class:`~unitscope.label.storage.Answer`.

    In the file's order: layer by layer, unit by unit, annotators 1-3.
    ``submitted_at`` is the file's creation time (empty if its header does
    not say), ``shown_at`` is unknown (None).
    """
    shown = images_shown(annotations)
    submitted = annotations.created or ""
    answers = []
    for row in annotations.annotations.itertuples(index=False):
        marked = shown - round(row.precision * shown)
        answers.append(Answer(
            annotator=f"iclr15-{row.annotator}", network=row.network, layer=row.layer, unit=int(row.unit),
            label=row.description, type=row.type, marked=tuple(f"unnamed-{i}" for i in range(1, marked + 1)),
            n_images=shown, shown_at=None, submitted_at=submitted,
        ))
    return answers


def unit_consensus(annotations: Iclr15Annotations) -> pd.DataFrame:
    """Each unit's consensus, computed by the labeling app's :func:`~unitscope.label.results.consensus`.

    Returns
    -------
    DataFrame
        One row per unit (file order), columns :data:`CONSENSUS_COLUMNS`:
        ``label`` / ``type`` the consensus description and type (ties: the
        alphabetically first label, the simplest type), ``precision`` the
        mean of the three precisions, ``agreement`` the share of annotators
        whose description is the consensus label, ``type_agreement`` the
        share who chose the consensus type; ``labels`` / ``types`` the three
        answers joined by ``;``.
    """
    return _consensus_frame(crowd_answers(annotations))


def _consensus_frame(answers: Sequence[Answer]) -> pd.DataFrame:
    """:func:`unit_consensus` of any answers, units in the order they first appear."""
    by_unit: dict[tuple[str, str, int], list[Answer]] = defaultdict(list)
    for answer in answers:
        by_unit[(answer.network, answer.layer, answer.unit)].append(answer)
    rows = []
    for (network, layer, unit), unit_answers in by_unit.items():
        agreed = consensus(unit_answers)
        rows.append({"network": network, "layer": layer, "unit": unit, "label": agreed.label, "type": agreed.type,
                     "precision": agreed.precision, "agreement": agreed.agreement,
                     "n_annotations": agreed.n_annotations, "type_agreement": agreed.type_agreement,
                     "labels": ";".join(agreed.labels), "types": ";".join(agreed.types)})
    return pd.DataFrame(rows, columns=CONSENSUS_COLUMNS)
