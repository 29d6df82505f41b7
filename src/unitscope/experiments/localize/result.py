"""The localisation result: its tables (per detector unit, per object, per layer, per example box) and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import read_json, read_png, write_csv, write_json, write_png
from .scores import METRICS


@dataclass
class LocalizationResult:
    """Localisation scores of a layer's object detectors.

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
        picture`` (PNG paths per layer, relative to the result folder) and
        ``detections``: per (layer, object) the combined detector's
        ``boxes`` (input-image pixels, ``[x0, y0, x1, y1]``, ends exclusive),
        ``gt_boxes`` (same units), ``present`` (ground truth has the object)
        and ``detected`` (the combined mask is not empty).
    pictures : dict of str to ndarray
        Relative PNG path -> ``(h, w, 3)`` uint8 picture (image, masks, boxes).
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
        """Write ``objects.csv``/``.json``, ``units.csv``, ``layers.csv``, ``examples.json``,
        ``examples.csv``, ``examples/<layer>/<rank>_<id>.png`` and ``localize.json``
        (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "objects.csv", self.objects)
        write_json(out / "objects.json", self.objects.to_dict(orient="records"))
        write_csv(out / "units.csv", self.units)
        write_csv(out / "layers.csv", self.layer_summary())
        write_csv(out / "examples.csv", self.examples_frame())
        write_json(out / "examples.json", self.examples)
        for path, picture in self.pictures.items():
            write_png(out / path, picture)
        write_json(out / "localize.json", {"network": self.network, "layers": self.layers,
                                           "counts": self.counts, "options": self.options})
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "LocalizationResult":
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``out_dir`` holds no localisation result.
        """
        out = Path(out_dir)
        if not (out / "localize.json").exists():
            raise FileNotFoundError(f"no localization result in {out} (missing localize.json)")
        meta = read_json(out / "localize.json")
        examples = read_json(out / "examples.json")
        pictures = {}
        for ex in examples:
            for path in ex.get("picture", {}).values():
                pictures[path] = read_png(out / path)
        objects = pd.read_csv(out / "objects.csv", dtype={"units": str}, keep_default_na=False,
                              na_values=[""])
        objects["units"] = objects["units"].fillna("")
        return cls(network=meta["network"], layers=list(meta["layers"]),
                   units=pd.read_csv(out / "units.csv"), objects=objects,
                   examples=examples, pictures=pictures, counts=meta.get("counts", {}),
                   options=meta.get("options", {}))


def _tables(network, layers, detectors, plan, dissection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``units`` and ``objects`` tables of a result, from the running sums in ``plan``."""
    unit_rows, object_rows = [], []
    for name in layers:
        ld = dissection.layers[name]
        for obj, units in detectors[name].items():
            scores = plan[name]["scores"][obj]
            metrics = scores.metrics()
            column = dissection.concepts.find(obj, "object").number - 1
            for s, unit in enumerate(units + [-1]):
                combined = unit < 0
                row = {"network": network, "layer": name, "object": obj, "unit": unit,
                       "kind": "combined" if combined else "unit",
                       "dissection_iou": np.nan if combined else float(ld.iou[unit, column]),
                       "threshold": np.nan if combined else float(ld.thresholds[unit]),
                       "images": scores.images, "images_absent": scores.absent}
                row.update({m: float(metrics[m][s]) for m in METRICS})
                unit_rows.append(row)
            unit_iou = metrics["mask_iou"][:-1]
            best = int(np.nanargmax(unit_iou)) if np.isfinite(unit_iou).any() else 0
            row = {"network": network, "layer": name, "object": obj, "detectors": len(units),
                   "units": ";".join(str(u) for u in units), "images": scores.images,
                   "images_absent": scores.absent}
            row.update({m: float(metrics[m][-1]) for m in METRICS})
            row.update({"best_unit": units[best], "best_unit_mask_iou": float(unit_iou[best]),
                        "best_unit_pointing": float(metrics["pointing"][best]),
                        "mean_unit_mask_iou": float(np.mean(unit_iou)),
                        "mean_unit_pointing": float(np.mean(metrics["pointing"][:-1]))})
            object_rows.append(row)
    unit_columns = ["network", "layer", "object", "unit", "kind", "dissection_iou", "threshold",
                    "images", "images_absent", *METRICS]
    object_columns = ["network", "layer", "object", "detectors", "units", "images", "images_absent",
                      *METRICS, "best_unit", "best_unit_mask_iou", "best_unit_pointing",
                      "mean_unit_mask_iou", "mean_unit_pointing"]
    return pd.DataFrame(unit_rows, columns=unit_columns), pd.DataFrame(object_rows, columns=object_columns)
