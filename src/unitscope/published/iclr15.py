"""The ICLR 2015 crowd annotations of AlexNet's units, read from their MATLAB file.

Zhou et al. (2015, Experiment 3) had three crowd workers annotate every unit
of five layers of Places205-AlexNet and ImageNet-AlexNet: a free-text
description, one of six category codes and the share of the unit's top
images that show the description.  The release (zhoubolei/cnnvisualizer,
``unit_annotation/unitAnnotation_<network>.mat``, MATLAB v5) holds

* ``layerAnnotation``, an ``(L, 2)`` cell array: per layer the unit table
  (one row per unit, ``(n_units, 9)``: three ``(description, code,
  precision)`` triples side by side) and the layer name;
* ``layerAverageCount``, ``(L, 6)``: per layer the share of its annotations
  (all three per unit counted) with each code, columns in code order 1-6.

The file does not number units: **unit ``i`` is row ``i`` of its layer's
table, counted from 0** (unitscope's numbering; MATLAB's would be ``i + 1``).
A missing or extra row would shift every later unit silently, so each
table's row count is checked against the layer's known width
(:data:`ALEXNET_UNITS`).

The file is read with :func:`scipy.io.loadmat`, which builds arrays and
never unpickles.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._source import MalformedFile, existing_file, load_mat, mat_text

__all__ = [
    "ALEXNET_UNITS",
    "ANNOTATION_COLUMNS",
    "CODE_TYPES",
    "Iclr15Annotations",
    "read_iclr15",
]

#: The release's category codes, mapped onto unitscope's type keys
#: (:data:`unitscope.taxonomy.TYPES`).  The names are those of the released
#: annotation interface: 1 scene, 2 object, 3 region or surface, 4 object
#: part, 5 texture or material, 6 simple elements and colours.
CODE_TYPES: dict[int, str] = {1: "scene", 2: "object", 3: "region", 4: "part", 5: "texture", 6: "simple"}

#: Units per layer of the Caffe reference AlexNet, by the names the release uses.
ALEXNET_UNITS: dict[str, int] = {
    "conv1": 96, "pool1": 96, "conv2": 256, "pool2": 256,
    "conv3": 384, "conv4": 384, "conv5": 256, "pool5": 256,
}

#: Columns of :attr:`Iclr15Annotations.annotations`.
ANNOTATION_COLUMNS = ["network", "layer", "unit", "annotator", "description", "type_code", "type", "precision"]

ANNOTATORS = 3
_CREATED = re.compile(r"Created on:\s*(\w{3} \w{3}\s+\d{1,2} \d\d:\d\d:\d\d \d{4})")


@dataclass(frozen=True)
class Iclr15Annotations:
    """One network's crowd annotations, as read (nothing derived but the type names).

    Attributes
    ----------
    network : str
        The name given to :func:`read_iclr15`.
    source : Path
        The file read.
    layers : tuple of str
        Layer names in the file's order.
    annotations : DataFrame
        One row per annotation, columns :data:`ANNOTATION_COLUMNS`: ``unit``
        counted from 0 (the row in the layer's table), ``annotator`` 1-3 (the
        triple's position in the row), ``type_code`` as stored and ``type``
        its unitscope key (:data:`CODE_TYPES`), ``precision`` as stored.
    layer_average : DataFrame
        The stored ``layerAverageCount``: columns ``network``, ``layer`` and
        ``code_1`` ... ``code_6`` (share of the layer's annotations with that
        code).
    created : str or None
        When MATLAB wrote the file (ISO 8601, from the file's header), if it says.
    """

    network: str
    source: Path
    layers: tuple[str, ...]
    annotations: pd.DataFrame
    layer_average: pd.DataFrame
    created: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-annotation table."""
        return self.annotations


def read_iclr15(
    path: str | Path, *, network: str, units_per_layer: Mapping[str, int] | None = ALEXNET_UNITS
) -> Iclr15Annotations:
    """Read a ``unitAnnotation_*.mat`` file of the ICLR 2015 release.

    Parameters
    ----------
    path : str or Path
        The MATLAB v5 file.
    network : str, keyword-only
        The name the rows are given (e.g. ``"places205-alexnet"``).
    units_per_layer : mapping of str to int or None, keyword-only
        Known layer widths: a layer named here must have exactly that many
        rows (units are implicit by row, so a missing row would go unseen).
        Layers not named are not checked; ``None`` checks none.

    Returns
    -------
    Iclr15Annotations

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    MalformedFile
        (a ``ValueError``) naming the file and what is wrong: not a MATLAB
        file, ``layerAnnotation`` or ``layerAverageCount`` missing or of the
        wrong shape, a unit row without three annotations, an empty
        description, a category code outside 1-6, a precision that is not a
        number in [0, 1], a layer with a row count other than its width.

    Examples
    --------
    >>> crowd = read_iclr15("unitAnnotation_places205-alexnet.mat", network="places205-alexnet")  # doctest: +SKIP
    >>> crowd.annotations.groupby("layer", sort=False)["unit"].nunique().tolist()  # doctest: +SKIP
    [96, 256, 384, 384, 256]
    """
    path = existing_file(path)
    contents = load_mat(path)
    cells = contents.get("layerAnnotation")
    if cells is None:
        raise MalformedFile(path, "no variable 'layerAnnotation' (not an ICLR 2015 unit annotation file)")
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.ndim != 2 or cells.shape[1] != 2:
        shape = getattr(cells, "shape", None)
        raise MalformedFile(path, "'layerAnnotation' should be an (L, 2) cell array (unit table, layer name), "
                            f"got shape {shape}")
    if cells.shape[0] == 0:
        raise MalformedFile(path, "'layerAnnotation' has no layers")
    layers: list[str] = []
    rows: list[dict[str, Any]] = []
    for index in range(cells.shape[0]):
        layer = mat_text(cells[index, 1])
        if not layer:
            raise MalformedFile(path, f"'layerAnnotation' row {index + 1}: the layer name (column 2) is not text")
        if layer in layers:
            raise MalformedFile(path, f"layer {layer!r} appears twice in 'layerAnnotation'")
        layers.append(layer)
        rows.extend(_layer_rows(path, network, layer, cells[index, 0], units_per_layer))
    average = _layer_average(path, contents.get("layerAverageCount"), network, layers)
    return Iclr15Annotations(
        network=network,
        source=path,
        layers=tuple(layers),
        annotations=pd.DataFrame(rows, columns=ANNOTATION_COLUMNS),
        layer_average=average,
        created=_created(contents.get("__header__")),
    )


def _number(cell: Any) -> float | None:
    """A MATLAB scalar (double, integer or logical) as a float, else None."""
    if isinstance(cell, np.ndarray) and cell.size == 1 and cell.dtype.kind in "biuf":
        return float(cell.item())
    return None


def _layer_rows(
    path: Path, network: str, layer: str, table: Any, widths: Mapping[str, int] | None
) -> list[dict[str, Any]]:
    if not isinstance(table, np.ndarray) or table.dtype != object or table.ndim != 2:
        raise MalformedFile(path, f"layer {layer!r}: the unit table should be a cell array, got {type(table).__name__}"
                            f" {getattr(table, 'shape', '')}")
    if table.shape[1] != 3 * ANNOTATORS:
        raise MalformedFile(path, f"layer {layer!r}: each unit row should hold {ANNOTATORS} annotations "
                            f"(description, category, precision) = {3 * ANNOTATORS} cells, got {table.shape[1]}")
    if table.shape[0] == 0:
        raise MalformedFile(path, f"layer {layer!r}: the unit table has no rows")
    expected = None if widths is None else widths.get(layer)
    if expected is not None and table.shape[0] != expected:
        raise MalformedFile(path, f"layer {layer!r} has {table.shape[0]} unit rows but {expected} units; units are "
                            "numbered by row, so rows cannot be missing or extra")
    rows = []
    for unit in range(table.shape[0]):
        for annotator in range(1, ANNOTATORS + 1):
            where = f"layer {layer!r} unit {unit} (row {unit + 1}) annotation {annotator}"
            description, code, precision = table[unit, 3 * annotator - 3: 3 * annotator]
            text = mat_text(description)
            if text is None or not text.strip():
                raise MalformedFile(path, f"{where}: the description is {'empty' if text is not None else 'not text'}"
                                    " (every unit needs three annotations)")
            number = _number(code)
            if number is None or number not in CODE_TYPES:
                shown = f"{number:g}" if number is not None else _shown(code)
                raise MalformedFile(path, f"{where}: category code {shown} is not one of 1-6")
            share = _number(precision)
            if share is None or not math.isfinite(share) or not 0.0 <= share <= 1.0:
                shown = f"{share:g}" if share is not None else _shown(precision)
                raise MalformedFile(path, f"{where}: precision {shown} is not a number in [0, 1]")
            rows.append({"network": network, "layer": layer, "unit": unit, "annotator": annotator,
                         "description": text, "type_code": int(number), "type": CODE_TYPES[int(number)],
                         "precision": share})
    return rows


def _shown(cell: Any) -> str:
    text = mat_text(cell)
    if text is not None:
        return repr(text)
    return f"<{type(cell).__name__} {getattr(cell, 'dtype', '')} {getattr(cell, 'shape', '')}>".replace(" >", ">")


def _layer_average(path: Path, table: Any, network: str, layers: list[str]) -> pd.DataFrame:
    if table is None:
        raise MalformedFile(path, "no variable 'layerAverageCount'")
    shape = (len(layers), len(CODE_TYPES))
    if not isinstance(table, np.ndarray) or table.dtype.kind not in "iuf" or table.shape != shape:
        raise MalformedFile(path, f"'layerAverageCount' should be a {shape} numeric matrix "
                            f"(one row per layer, one column per category code), got {getattr(table, 'shape', None)}")
    frame = pd.DataFrame(table.astype(float), columns=[f"code_{code}" for code in CODE_TYPES])
    frame.insert(0, "layer", layers)
    frame.insert(0, "network", network)
    return frame


def _created(header: Any) -> str | None:
    if not isinstance(header, bytes):
        return None
    found = _CREATED.search(header.decode("latin-1"))
    if not found:
        return None
    try:
        return datetime.strptime(" ".join(found.group(1).split()), "%a %b %d %H:%M:%S %Y").isoformat()
    except ValueError:
        return None
