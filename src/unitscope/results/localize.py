"""Localisation (SPEC section 7): tables per detector unit, per object, per layer, per example box, and files.

Saved in ``RESULTS/<network>/localize``::

    objects.csv, objects.json   per (layer, object): the combined detector's scores
    units.csv                   per (layer, object, unit), and the combined detector
    layers.csv                  per layer
    examples.csv                one row per example box
    examples.json               per example image: prediction, detections (boxes in input pixels) and
                                "picture": the names of its arrays in examples.npz
    examples.npz                per example: the image (h, w, 3) uint8, each detected object's combined
                                mask (sh, sw) bool, and "objects" (the objects in colour order)
    localize.json               network, layers, counts, options

The report draws the example pictures from ``examples.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.writing import read_npz, write_csv, write_json, write_npz
from unitscope.results.layout import EXAMPLES_CSV, EXAMPLES_JSON, EXAMPLES_NPZ, LAYERS_CSV, LOCALIZE, LOCALIZE_JSON
from unitscope.results.layout import OBJECTS_CSV, OBJECTS_JSON, UNITS_CSV, command_dir
from unitscope.results.schema import ResultFileError, read_json, read_required_json, read_table

__all__ = ["LocalizationResult", "load_localization"]


@dataclass
class LocalizationResult:
    """Localisation scores of the object detectors of one or more layers.

    Written by :meth:`save` as the files of ``RESULTS/<network>/localize``
    (see the module docstring).

    Attributes
    ----------
    network : str
    layers : list of str
    units : DataFrame
        One row per (layer, object, detector unit) plus one ``combined`` row
        per (layer, object); see :meth:`unit_frame`.
    objects : DataFrame
        One row per (layer, object); see :meth:`to_frame`.
    examples : list of dict
        Per example image: ``index, id, label, label_name, predicted,
        predicted_name, probability, image_size [H, W], mask_size [sh, sw],
        picture`` (``image``: the name of its image in :attr:`pictures`;
        ``masks``: per detection, the name of its mask, or None when nothing
        was detected) and ``detections``: per (layer, object) the combined
        detector's ``boxes`` (input-image pixels, ``[x0, y0, x1, y1]``, ends
        exclusive), ``gt_boxes`` (same units), ``present`` (ground truth has
        the object) and ``detected`` (the combined mask is not empty).
    pictures : dict of str to ndarray
        What the example pictures are drawn from: ``image_<rank>`` ``(H, W, 3)``
        uint8, ``mask_<rank>_<k>`` ``(sh, sw)`` bool and ``objects`` (every
        object studied, in the order that gives its colour).
    counts : dict
        ``images`` (scored), ``unreadable`` (dropped by the pool), ``labelled``,
        ``correct`` and ``accuracy`` of
        the scene class predicted in the same forward pass.
    options : dict
    """

    network: str
    layers: list[str]
    units: pd.DataFrame
    objects: pd.DataFrame
    examples: list[dict] = field(default_factory=list)
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Per (layer, object): the combined detector's scores and a summary of its units.

        Columns: network, layer, object, detectors (count), units
        (``;``-separated), images (containing the object), images_absent,
        ``mask_iou, mean_image_iou, box_iou, box_hit_rate, pointing,
        fire_rate_absent`` (combined detector), best_unit (highest mask IoU),
        best_unit_mask_iou, best_unit_pointing, mean_unit_mask_iou,
        mean_unit_pointing.
        """
        return self.objects.copy()

    def unit_frame(self) -> pd.DataFrame:
        """Per (layer, object, unit), plus the combined detector (``unit == -1``).

        Columns: network, layer, object, unit, kind (``unit`` / ``combined``),
        dissection_iou, threshold (NaN for combined rows), images,
        images_absent, ``mask_iou, mean_image_iou, box_iou, box_hit_rate,
        pointing, fire_rate_absent``.
        """
        return self.units.copy()

    def layer_summary(self) -> pd.DataFrame:
        """Per layer: objects, detector units, and mean scores over objects (combined) and units.

        Columns: network, layer, objects, detectors, images, ``mask_iou,
        box_iou, box_hit_rate, pointing`` (means over objects of the combined
        detector), unit_mask_iou, unit_pointing (means over detector units).
        """
        rows = []
        for layer in self.layers:
            obj = self.objects[self.objects["layer"] == layer]
            unit = self.units[(self.units["layer"] == layer) & (self.units["kind"] == "unit")]
            row = {"network": self.network, "layer": layer, "objects": len(obj),
                   "detectors": int(unit["unit"].nunique()), "images": int(self.counts.get("images", 0))}
            for metric in ("mask_iou", "box_iou", "box_hit_rate", "pointing"):
                row[metric] = float(obj[metric].mean()) if len(obj) else float("nan")
            row["unit_mask_iou"] = float(unit["mask_iou"].mean()) if len(unit) else float("nan")
            row["unit_pointing"] = float(unit["pointing"].mean()) if len(unit) else float("nan")
            rows.append(row)
        return pd.DataFrame(rows)

    def examples_frame(self) -> pd.DataFrame:
        """One row per example box: id, index, label_name, predicted_name, probability, layer,
        object, present, detected, box (0.. per detection, -1 when nothing was detected),
        x0, y0, x1, y1 (input-image pixels)."""
        rows = []
        for ex in self.examples:
            base = {k: ex.get(k) for k in ("id", "index", "label_name", "predicted_name", "probability")}
            for det in ex["detections"]:
                info = dict(base, layer=det["layer"], object=det["object"], present=det["present"],
                            detected=det["detected"])
                if not det["boxes"]:
                    rows.append(dict(info, box=-1, x0=np.nan, y0=np.nan, x1=np.nan, y1=np.nan))
                for k, (x0, y0, x1, y1) in enumerate(det["boxes"]):
                    rows.append(dict(info, box=k, x0=x0, y0=y0, x1=x1, y1=y1))
        columns = ["id", "index", "label_name", "predicted_name", "probability", "layer", "object",
                   "present", "detected", "box", "x0", "y0", "x1", "y1"]
        return pd.DataFrame(rows, columns=columns)

    # -- files -----------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write the files of the module docstring into ``out_dir`` (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / OBJECTS_CSV, self.objects)
        write_json(out / OBJECTS_JSON, self.objects.to_dict(orient="records"))
        write_csv(out / UNITS_CSV, self.units)
        write_csv(out / LAYERS_CSV, self.layer_summary())
        write_csv(out / EXAMPLES_CSV, self.examples_frame())
        write_json(out / EXAMPLES_JSON, self.examples)
        write_npz(out / EXAMPLES_NPZ, **self.pictures)
        write_json(out / LOCALIZE_JSON, {"network": self.network, "layers": self.layers,
                                         "counts": self.counts, "options": self.options})
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "LocalizationResult":
        """Read a result written by :meth:`save`: a missing file is a ``FileNotFoundError`` naming it (a
        folder of an older unitscope, whose example pictures were PNG files, lacks ``examples.npz``), a
        damaged one a :class:`~unitscope.results.schema.ResultFileError`."""
        out = Path(out_dir)
        meta = read_required_json(out / LOCALIZE_JSON, what="localization result")
        for name in (OBJECTS_CSV, UNITS_CSV):  # checked against their specs, then read as save wrote them
            if read_table(out / name, LOCALIZE) is None:
                raise FileNotFoundError(f"{out / name} is missing: it holds the scores {LOCALIZE_JSON} counts")
        objects = pd.read_csv(out / OBJECTS_CSV, dtype={"units": str}, keep_default_na=False, na_values=[""])
        objects["units"] = objects["units"].fillna("")
        units = pd.read_csv(out / UNITS_CSV)
        examples = read_json(out / EXAMPLES_JSON) or []
        pictures = read_npz(out / EXAMPLES_NPZ, what=f"the example images and masks {EXAMPLES_JSON} names") \
            if examples else {}
        for ex in examples:
            picture = ex.get("picture") or {}
            names = [picture.get("image")] + [m for m in picture.get("masks") or [] if m is not None]
            absent = [n for n in names if n not in pictures]
            if absent:
                raise ResultFileError(f"{out / EXAMPLES_NPZ} has no array {absent[0]!r}, which example "
                                      f"{ex.get('id')!r} of {EXAMPLES_JSON} names")
        return cls(network=meta.get("network", ""), layers=list(meta.get("layers") or []),
                   units=units, objects=objects, examples=examples, pictures=pictures,
                   counts=meta.get("counts", {}), options=meta.get("options", {}))


def load_localization(results_dir: str | Path, network: str) -> LocalizationResult | None:
    """The localisation of a network (``<network>/localize``); None when there is none."""
    folder = command_dir(results_dir, network, LOCALIZE)
    if not (folder / LOCALIZE_JSON).is_file():
        return None
    return LocalizationResult.load(folder)
