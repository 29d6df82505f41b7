"""Minimal images (SPEC section 3): one record per image searched, its tables, save and load.

Saved in ``RESULTS/<network>/minimal/<segmentation>``::

    images.csv      one row per searched image
    steps.csv       one row per removal
    objects.csv     (mask segmentations) how often each object survives, per scene
    diagnostic.csv  (with diagnostic objects) how often a scene's diagnostic objects survive
    examples.npz    for the first images: original and minimal (h, w, 3) uint8, kept-segment mask (h, w) bool
    minimal.json    options, counts, diagnostic, every record, and "examples": per example
                    the id and the names of its arrays in examples.npz

The report draws the example pairs from ``examples.npz``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unitscope.results.writing import read_npz, write_csv, write_json, write_npz
from unitscope.results.layout import DIAGNOSTIC_CSV, EXAMPLES_NPZ, IMAGES_CSV, MINIMAL, MINIMAL_JSON, OBJECTS_CSV
from unitscope.results.layout import STEPS_CSV, command_dir
from unitscope.results.schema import ResultFileError, read_checked_json

__all__ = ["MinimalImageRecord", "MinimalImagesResult", "MinimalRun", "load_minimal"]


@dataclass
class MinimalImageRecord:
    """The search on one image.

    :attr:`MinimalImagesResult.records` holds one per image searched.

    Attributes
    ----------
    index : int
        Position of the image in the data set.
    id : str
    label : int
        The correct class.
    label_name : str
    n_segments : int
    kept : list of int
        Segments of the minimal image (segment numbers ``0 .. n_segments-1``).
    steps : list of (int, float)
        ``(removed segment, correct-class score after the removal)`` per step.
    initial_score : float
        Correct-class score of the whole image.
    stop_segment, stop_score, stop_prediction
        The least harmful next removal, which made the image misclassified:
        the segment, the score after it and the class then predicted (None
        when every segment was removed and the image stayed correct).
    kept_fraction : float
        Share of the image's pixels in the kept segments.
    segment_objects : list of list of str
        For mask segmentations: the object names of each segment (empty for
        the background); empty for superpixels.
    objects_present, objects_kept : list of str
        Object classes in the image, and those still in the minimal image.
    """

    index: int
    id: str
    label: int
    label_name: str
    n_segments: int
    kept: list[int]
    steps: list[tuple[int, float]]
    initial_score: float
    stop_segment: int | None
    stop_score: float | None
    stop_prediction: int | None
    kept_fraction: float
    segment_objects: list[list[str]] = field(default_factory=list)
    objects_present: list[str] = field(default_factory=list)
    objects_kept: list[str] = field(default_factory=list)

    @property
    def scores(self) -> list[float]:
        """The score curve: the whole image's score, then the score after each step."""
        return [self.initial_score] + [score for _, score in self.steps]

    @property
    def final_score(self) -> float:
        """Correct-class score of the minimal image."""
        return self.scores[-1]


@dataclass
class MinimalImagesResult:
    """Minimal images of every correctly classified image searched.

    Attributes
    ----------
    records : list of MinimalImageRecord
    counts : dict of str to int
        ``seen`` (images looked at), ``evaluated`` (searched), ``incorrect``
        (misclassified, skipped), ``unlabelled`` (label -1, skipped),
        ``unreadable`` (dropped by the pool), ``candidates`` (candidate
        images scored).
    options : dict
        The options of the run.
    diagnostic : dict of str to list of str, or None
        Scene class -> its diagnostic objects, when given.
    examples : dict of str to (ndarray, ndarray)
        Image id -> ``(original, minimal)``, ``(H, W, 3)`` uint8, for the first images.
    kept_masks : dict of str to ndarray
        Image id -> ``(H, W)`` bool, the pixels of the kept segments, for the same images.
    """

    records: list[MinimalImageRecord]
    counts: dict[str, int]
    options: dict
    diagnostic: dict[str, list[str]] | None = None
    examples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    kept_masks: dict[str, np.ndarray] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per searched image (lists joined with ``;``)."""
        rows = []
        for r in self.records:
            rows.append({
                "index": r.index, "id": r.id, "label": r.label, "label_name": r.label_name,
                "n_segments": r.n_segments, "n_kept": len(r.kept), "n_steps": len(r.steps),
                "kept_fraction": r.kept_fraction, "initial_score": r.initial_score,
                "final_score": r.final_score, "stop_segment": r.stop_segment,
                "stop_score": r.stop_score, "stop_prediction": r.stop_prediction,
                "kept": ";".join(map(str, r.kept)),
                "objects_present": ";".join(r.objects_present),
                "objects_kept": ";".join(r.objects_kept),
            })
        columns = ["index", "id", "label", "label_name", "n_segments", "n_kept", "n_steps",
                   "kept_fraction", "initial_score", "final_score", "stop_segment", "stop_score",
                   "stop_prediction", "kept", "objects_present", "objects_kept"]
        return pd.DataFrame(rows, columns=columns)

    def steps_frame(self) -> pd.DataFrame:
        """One row per removal: ``index, id, step, removed, score`` (step 0 is the whole image)."""
        rows = []
        for r in self.records:
            rows.append({"index": r.index, "id": r.id, "step": 0, "removed": -1, "score": r.initial_score})
            for step, (segment, score) in enumerate(r.steps, start=1):
                rows.append({"index": r.index, "id": r.id, "step": step, "removed": segment, "score": score})
        return pd.DataFrame(rows, columns=["index", "id", "step", "removed", "score"])

    def object_shares(self) -> pd.DataFrame:
        """Per scene class and object class: how often the object survives in the minimal image.

        Columns ``scene, object, n_images, n_present, n_kept, share,
        share_given_present``: ``share = n_kept / n_images`` is the paper's
        number (share of the scene's minimal images that contain the object),
        ``share_given_present = n_kept / n_present`` counts only the images
        where the object was there to begin with.  Only objects present in at
        least one image of the scene are listed; rows are sorted by scene,
        then by decreasing share.
        """
        rows = []
        by_scene: dict[str, list[MinimalImageRecord]] = {}
        for r in self.records:
            by_scene.setdefault(r.label_name, []).append(r)
        for scene, records in by_scene.items():
            objects = sorted({o for r in records for o in r.objects_present})
            for obj in objects:
                n_present = sum(obj in r.objects_present for r in records)
                n_kept = sum(obj in r.objects_kept for r in records)
                rows.append({"scene": scene, "object": obj, "n_images": len(records),
                             "n_present": n_present, "n_kept": n_kept,
                             "share": n_kept / len(records), "share_given_present": n_kept / n_present})
        frame = pd.DataFrame(rows, columns=["scene", "object", "n_images", "n_present", "n_kept",
                                            "share", "share_given_present"])
        return frame.sort_values(["scene", "share", "object"], ascending=[True, False, True],
                                 kind="stable").reset_index(drop=True)

    def diagnostic_frame(self) -> pd.DataFrame:
        """How often each scene's diagnostic objects are kept (needs ``diagnostic``).

        Columns as :meth:`object_shares`; per scene one row per diagnostic
        object and one row with object ``"(any)"``: images where at least one
        diagnostic object is present / kept.
        """
        columns = ["scene", "object", "n_images", "n_present", "n_kept", "share", "share_given_present"]
        if not self.diagnostic:
            return pd.DataFrame(columns=columns)
        rows = []
        for scene, objects in self.diagnostic.items():
            records = [r for r in self.records if r.label_name == scene]
            n = len(records)
            for obj in list(objects) + ["(any)"]:
                if obj == "(any)":
                    present = [bool(set(objects) & set(r.objects_present)) for r in records]
                    kept = [bool(set(objects) & set(r.objects_kept)) for r in records]
                else:
                    present = [obj in r.objects_present for r in records]
                    kept = [obj in r.objects_kept for r in records]
                n_present, n_kept = sum(present), sum(kept)
                rows.append({"scene": scene, "object": obj, "n_images": n, "n_present": n_present,
                             "n_kept": n_kept, "share": n_kept / n if n else float("nan"),
                             "share_given_present": n_kept / n_present if n_present else float("nan")})
        return pd.DataFrame(rows, columns=columns)

    def merge(self, other: "MinimalImagesResult") -> "MinimalImagesResult":
        """Append the images of another run over other images with the same options (in place).

        Records and counts add up; examples are kept up to the run's ``examples`` option.
        Used to resume a long search chunk by chunk.

        Raises
        ------
        ValueError
            If the two runs used different options.
        """
        mine = {k: v for k, v in self.options.items() if k != "max_images"}
        theirs = {k: v for k, v in other.options.items() if k != "max_images"}
        if mine != theirs:
            raise ValueError("cannot merge minimal-image runs made with different options")
        self.records.extend(other.records)
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        limit = int(self.options.get("examples", 8) or 0)
        for image_id, pair in other.examples.items():
            if len(self.examples) >= limit:
                break
            self.examples.setdefault(image_id, pair)
            if image_id in other.kept_masks:
                self.kept_masks.setdefault(image_id, other.kept_masks[image_id])
        return self

    def save(self, out_dir: str | Path) -> Path:
        """Write the files of the module docstring into ``out_dir``."""
        out = Path(out_dir)
        write_csv(out / IMAGES_CSV, self.to_frame())
        write_csv(out / STEPS_CSV, self.steps_frame())
        if self.options.get("segmentation") == "masks":
            write_csv(out / OBJECTS_CSV, self.object_shares())
        if self.diagnostic:
            write_csv(out / DIAGNOSTIC_CSV, self.diagnostic_frame())
        examples, arrays = [], {}
        for n, (image_id, (original, minimal)) in enumerate(self.examples.items()):
            entry = {"id": image_id, "original": f"original_{n:03d}", "minimal": f"minimal_{n:03d}"}
            arrays[entry["original"]], arrays[entry["minimal"]] = original, minimal
            if image_id in self.kept_masks:
                entry["kept"] = f"kept_{n:03d}"
                arrays[entry["kept"]] = np.asarray(self.kept_masks[image_id], dtype=bool)
            examples.append(entry)
        write_npz(out / EXAMPLES_NPZ, **arrays)
        write_json(out / MINIMAL_JSON, {
            "experiment": "minimal_images", "options": self.options, "counts": self.counts,
            "diagnostic": self.diagnostic, "examples": examples,
            "records": [asdict(r) for r in self.records],
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "MinimalImagesResult":
        """Read a result written by :meth:`save`, checked as :func:`~unitscope.results.schema.read_checked_json`
        says (an older unitscope's folder, whose examples were PNG files, lacks ``examples.npz``)."""
        out = Path(out_dir)
        meta = read_checked_json(out / MINIMAL_JSON, MINIMAL, (IMAGES_CSV, OBJECTS_CSV, DIAGNOSTIC_CSV),
                                 what="minimal-images result")
        try:
            records = []
            for r in meta.get("records") or []:
                r = dict(r)
                r["steps"] = [(int(s), float(v)) for s, v in r["steps"]]
                records.append(MinimalImageRecord(**r))
        except (TypeError, ValueError, KeyError) as exc:
            raise ResultFileError(f"{out / MINIMAL_JSON}: a record is not what unitscope writes ({exc})") from None
        examples, kept_masks = {}, {}
        if meta["examples"]:
            arrays = read_npz(out / EXAMPLES_NPZ, what=f"the example images {MINIMAL_JSON} lists")
            for e in meta["examples"]:
                image_id = str(e.get("id", ""))
                examples[image_id] = (_array(arrays, e, "original", out), _array(arrays, e, "minimal", out))
                if e.get("kept") is not None:
                    kept_masks[image_id] = _array(arrays, e, "kept", out)
        return cls(records=records, counts=dict(meta["counts"]), options=dict(meta["options"]),
                   diagnostic=meta.get("diagnostic"), examples=examples, kept_masks=kept_masks)


def _array(arrays: dict[str, np.ndarray], entry: dict, key: str, out: Path) -> np.ndarray:
    name = entry.get(key)
    if name not in arrays:
        raise ResultFileError(f"{out / EXAMPLES_NPZ} has no array {name!r} ({key} of example "
                              f"{entry.get('id')!r} in {MINIMAL_JSON})")
    return arrays[name]


@dataclass
class MinimalRun:
    """One minimal-images run of a network, as the report shows it: where it was saved, and the result."""

    network: str
    name: str  # folder under <network>/minimal ("" for that folder itself)
    result: MinimalImagesResult

    @property
    def segmentation(self) -> str:
        return str(self.result.options.get("segmentation") or self.name)

    @property
    def images(self) -> pd.DataFrame:
        return self.result.to_frame()

    @property
    def examples(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self.result.examples

    @property
    def objects(self) -> pd.DataFrame | None:
        return self.result.object_shares() if self.result.options.get("segmentation") == "masks" else None

    @property
    def diagnostic(self) -> pd.DataFrame | None:
        return self.result.diagnostic_frame() if self.result.diagnostic else None


def load_minimal(results_dir: str | Path, network: str) -> list[MinimalRun]:
    """The minimal-images runs of a network: ``<network>/minimal`` and each folder in it holding ``minimal.json``."""
    base = command_dir(results_dir, network, MINIMAL)
    if not base.is_dir():
        return []
    folders = [base] + sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [MinimalRun(network=network, name="" if folder == base else folder.name,
                       result=MinimalImagesResult.load(folder))
            for folder in folders if (folder / MINIMAL_JSON).is_file()]
