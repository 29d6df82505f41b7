"""The ablation experiment's result (experiment 5): accuracy per class under each ablation, and its files.

An ablation folder (``RESULTS/<network>/ablate``, or one sub-folder per
ablated layer) holds::

    ablate.json      everything: network, layer, class_names, detectors, conditions, correct (K x classes),
                     totals, diagnostic, counts, options
    classes.csv      per (object, class): drop under the object's detectors off vs random units off
    summary.csv      per object: the class hurt most, whether it is a diagnostic scene of the object
    conditions.csv   per condition: the units switched off and the accuracy

:class:`AblationResult` is the whole result (:meth:`~AblationResult.save`,
:meth:`~AblationResult.load`); the CSVs are views of ``ablate.json``.
:class:`AblationTables` reads what the report shows (the CSVs as saved,
with ``ablate.json``'s counts and options) and :func:`load_ablations`
finds every ablation folder of a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.layout import ABLATE, ABLATE_JSON, CLASSES_CSV, CONDITIONS_CSV, SUMMARY_CSV
from unitscope.results.schema import ResultFileError, read_json, read_required_json, read_required_table, read_table
from unitscope.results.writing import write_csv, write_json

__all__ = ["AblationResult", "AblationTables", "load_ablations"]


@dataclass
class AblationResult:
    """Per-class accuracy of a classifier under each ablation condition.

    Attributes
    ----------
    network, layer : str
    class_names : list of str
        One per output class.
    detectors : dict of str to list of int
        Object -> the units switched off.
    conditions : list of dict
        ``{"kind": "baseline" | "detectors" | "random", "object": str or None,
        "draw": int or None, "units": list of int}``; condition 0 is the baseline.
    correct : ndarray of int64, shape (K, n_classes)
        Correctly classified images of each class under each condition.
    totals : ndarray of int64, shape (n_classes,)
        Labelled images of each class.
    diagnostic : dict of str to list of str, or None
        Scene class -> its diagnostic objects, when given.
    counts : dict
        ``images``, ``labelled``, ``unlabelled``, ``unreadable``.
    options : dict
    """

    network: str
    layer: str
    class_names: list[str]
    detectors: dict[str, list[int]]
    conditions: list[dict]
    correct: np.ndarray
    totals: np.ndarray
    diagnostic: dict[str, list[str]] | None = None
    counts: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    # -- derived numbers ---------------------------------------------------------
    def accuracy(self) -> np.ndarray:
        """``(K, n_classes)`` accuracy per condition and class (NaN for classes without images)."""
        totals = self.totals.astype(np.float64)
        return np.divide(self.correct, totals[None, :], out=np.full(self.correct.shape, np.nan),
                         where=totals[None, :] > 0)

    def overall_accuracy(self) -> np.ndarray:
        """``(K,)`` accuracy over all labelled images per condition."""
        n = int(self.totals.sum())
        return self.correct.sum(axis=1) / n if n else np.full(len(self.conditions), np.nan)

    def _rows(self, obj: str, kind: str) -> list[int]:
        return [k for k, c in enumerate(self.conditions) if c["kind"] == kind and c["object"] == obj]

    def _diagnostic_scenes(self, obj: str) -> list[str]:
        if not self.diagnostic:
            return []
        return [scene for scene, objects in self.diagnostic.items() if obj in objects]

    def to_frame(self) -> pd.DataFrame:
        """Per (object, class) for classes with images.

        Columns: network, layer, object, detectors (count), class, class_name,
        images, baseline_acc, ablated_acc, drop (baseline - ablated),
        random_drop_mean, random_drop_std (sample std over the draws; NaN for
        fewer than 2), effect (drop - random_drop_mean), diagnostic (the class
        is a diagnostic scene of the object; False without ``diagnostic``).
        """
        acc = self.accuracy()
        rows = []
        with_images = np.flatnonzero(self.totals > 0)
        for obj, units in self.detectors.items():
            (ablated,) = self._rows(obj, "detectors")
            randoms = self._rows(obj, "random")
            diagnostic = set(self._diagnostic_scenes(obj))
            for k in with_images:
                drop = acc[0, k] - acc[ablated, k]
                random_drops = acc[0, k] - acc[randoms, k]
                mean = float(random_drops.mean()) if len(randoms) else float("nan")
                std = float(random_drops.std(ddof=1)) if len(randoms) > 1 else float("nan")
                rows.append({
                    "network": self.network, "layer": self.layer, "object": obj, "detectors": len(units),
                    "class": int(k), "class_name": self.class_names[k], "images": int(self.totals[k]),
                    "baseline_acc": float(acc[0, k]), "ablated_acc": float(acc[ablated, k]),
                    "drop": float(drop), "random_drop_mean": mean, "random_drop_std": std,
                    "effect": float(drop - mean), "diagnostic": self.class_names[k] in diagnostic,
                })
        columns = ["network", "layer", "object", "detectors", "class", "class_name", "images",
                   "baseline_acc", "ablated_acc", "drop", "random_drop_mean", "random_drop_std",
                   "effect", "diagnostic"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> pd.DataFrame:
        """Per object: which class is hurt most, and (with ``diagnostic``) whether it is the object's scene.

        Columns: network, layer, object, detectors, units (``;``-separated),
        most_hurt (class name of the largest drop; first on ties; empty
        when no class loses accuracy),
        most_hurt_drop, most_hurt_effect, max_effect_class, max_effect,
        baseline_acc, ablated_acc, drop (overall accuracy), random_drop_mean,
        random_drop_std (overall), diagnostic_scenes (``;``-separated),
        diagnostic_rank (1 = a diagnostic scene is the most hurt; by drop,
        ties share the better rank; NaN when the object is diagnostic of no
        scene with images), diagnostic_most_hurt (``diagnostic_rank == 1``;
        None when undefined).
        """
        table = self.to_frame()
        overall = self.overall_accuracy()
        rows = []
        for obj, units in self.detectors.items():
            part = table[table["object"] == obj].reset_index(drop=True)
            (ablated,) = self._rows(obj, "detectors")
            randoms = self._rows(obj, "random")
            random_drops = overall[0] - overall[randoms]
            scenes = self._diagnostic_scenes(obj)
            row = {"network": self.network, "layer": self.layer, "object": obj, "detectors": len(units),
                   "units": ";".join(str(u) for u in units)}
            if len(part) and part["drop"].max() > 0:
                hurt = int(np.argmax(part["drop"].to_numpy()))
                best = int(np.nanargmax(part["effect"].to_numpy())) if part["effect"].notna().any() else hurt
                row.update({"most_hurt": part.loc[hurt, "class_name"], "most_hurt_drop": part.loc[hurt, "drop"],
                            "most_hurt_effect": part.loc[hurt, "effect"],
                            "max_effect_class": part.loc[best, "class_name"],
                            "max_effect": part.loc[best, "effect"]})
            else:
                row.update({"most_hurt": "", "most_hurt_drop": np.nan, "most_hurt_effect": np.nan,
                            "max_effect_class": "", "max_effect": np.nan})
            row.update({
                "baseline_acc": float(overall[0]), "ablated_acc": float(overall[ablated]),
                "drop": float(overall[0] - overall[ablated]),
                "random_drop_mean": float(random_drops.mean()) if randoms else np.nan,
                "random_drop_std": float(random_drops.std(ddof=1)) if len(randoms) > 1 else np.nan,
                "diagnostic_scenes": ";".join(scenes),
            })
            drops = part["drop"].to_numpy()
            diag = part["class_name"].isin(scenes).to_numpy()
            if diag.any():
                rank = 1 + int((drops > drops[diag].max()).sum())
                row["diagnostic_rank"] = rank
                row["diagnostic_most_hurt"] = rank == 1
            else:
                row["diagnostic_rank"] = np.nan
                row["diagnostic_most_hurt"] = None
            rows.append(row)
        columns = ["network", "layer", "object", "detectors", "units", "most_hurt", "most_hurt_drop",
                   "most_hurt_effect", "max_effect_class", "max_effect", "baseline_acc", "ablated_acc",
                   "drop", "random_drop_mean", "random_drop_std", "diagnostic_scenes", "diagnostic_rank",
                   "diagnostic_most_hurt"]
        return pd.DataFrame(rows, columns=columns)

    def conditions_frame(self) -> pd.DataFrame:
        """Per condition: condition, kind, object, draw, units (``;``-separated), images, correct, accuracy."""
        overall = self.overall_accuracy()
        rows = [{"condition": k, "kind": c["kind"], "object": c["object"] or "",
                 "draw": -1 if c["draw"] is None else c["draw"],
                 "units": ";".join(str(u) for u in c["units"]), "images": int(self.totals.sum()),
                 "correct": int(self.correct[k].sum()), "accuracy": float(overall[k])}
                for k, c in enumerate(self.conditions)]
        return pd.DataFrame(rows, columns=["condition", "kind", "object", "draw", "units", "images",
                                           "correct", "accuracy"])

    # -- files -------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write ``classes.csv``, ``summary.csv``, ``conditions.csv`` and ``ablate.json`` (atomically).

        ``ablate.json`` holds everything (the CSVs are views of it):
        network, layer, class_names, detectors, conditions, correct
        (K x n_classes), totals, diagnostic, counts, options.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / CLASSES_CSV, self.to_frame())
        write_csv(out / SUMMARY_CSV, self.summary())
        write_csv(out / CONDITIONS_CSV, self.conditions_frame())
        write_json(out / ABLATE_JSON, {
            "network": self.network, "layer": self.layer, "class_names": self.class_names,
            "detectors": self.detectors, "conditions": self.conditions, "correct": self.correct,
            "totals": self.totals, "diagnostic": self.diagnostic, "counts": self.counts,
            "options": self.options})
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "AblationResult":
        """Read a result written by :meth:`save` (``FileNotFoundError`` if ``out_dir`` holds none)."""
        out = Path(out_dir)
        meta = read_required_json(out / ABLATE_JSON, what="ablation result")
        missing = [key for key in ("network", "layer", "class_names", "detectors", "conditions", "correct", "totals")
                   if key not in meta]
        if missing:
            raise ResultFileError(f"{out / ABLATE_JSON} lacks {', '.join(missing)} (written by an older unitscope?)")
        n_classes = len(meta["class_names"])
        return cls(network=meta["network"], layer=meta["layer"], class_names=list(meta["class_names"]),
                   detectors={k: [int(u) for u in v] for k, v in meta["detectors"].items()},
                   conditions=meta["conditions"],
                   correct=np.asarray(meta["correct"], dtype=np.int64).reshape(-1, n_classes),
                   totals=np.asarray(meta["totals"], dtype=np.int64),
                   diagnostic=meta.get("diagnostic"), counts=meta.get("counts", {}),
                   options=meta.get("options", {}))


@dataclass
class AblationTables:
    """The saved tables of one ablation folder, as the report reads them.

    Attributes
    ----------
    folder : str
        The folder relative to ``<network>/ablate`` (``""`` for that folder itself).
    layer : str
    classes : DataFrame
        ``classes.csv`` (see :meth:`AblationResult.to_frame`).
    summary : DataFrame or None
        ``summary.csv`` (see :meth:`AblationResult.summary`).
    conditions : DataFrame or None
        ``conditions.csv``.
    counts, options : dict
        From ``ablate.json`` (empty when absent).
    """

    folder: str
    layer: str
    classes: pd.DataFrame
    summary: pd.DataFrame | None = None
    conditions: pd.DataFrame | None = None
    counts: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per (object, class) table."""
        return self.classes

    @classmethod
    def load(cls, folder: str | Path, *, name: str = "") -> "AblationTables":
        """Read the tables of the ablation saved in ``folder`` (``name``: its folder relative to ``ablate``).

        Raises
        ------
        FileNotFoundError
            If ``folder`` holds no ``classes.csv``.
        ResultFileError
            If a file cannot be read or lacks a column the report needs.
        """
        folder = Path(folder)
        classes = read_required_table(folder / CLASSES_CSV, ABLATE, what="ablation result")
        meta = read_json(folder / ABLATE_JSON) or {}
        layer = str(classes["layer"].iloc[0]) if "layer" in classes and len(classes) else str(
            meta.get("layer") or name)
        return cls(folder=name, layer=layer, classes=classes, summary=read_table(folder / SUMMARY_CSV, ABLATE),
                   conditions=read_table(folder / CONDITIONS_CSV, ABLATE), counts=dict(meta.get("counts") or {}),
                   options=dict(meta.get("options") or {}))


def load_ablations(results_dir: Path, network: str) -> list[AblationTables]:
    """Every ablation saved under ``RESULTS/<network>/ablate`` (a folder holding ``classes.csv``), sorted."""
    base = Path(results_dir) / network / ABLATE
    if not base.is_dir():
        return []
    folders = sorted(p.parent for p in base.rglob(CLASSES_CSV) if p.is_file())
    return [AblationTables.load(f, name="" if f == base else f.relative_to(base).as_posix()) for f in folders]
