"""Experiment 1 (SPEC section 3): minimal image representations.

For each correctly classified image: cut it into segments, then repeatedly
remove the segment whose removal lowers the correct class's score least,
until the image is no longer classified correctly.  The minimal image is the
last correctly classified one.  1a uses SLIC superpixels; 1b uses the
ground-truth object masks of an annotated pool, so one can ask which objects
survive (the paper: bedroom -> bed 87%, wall 28%, window 21%).

Speed.  Every candidate removal of a step is scored, and the candidates of
*several images* share each forward batch: images are searched side by side,
each round gathers the candidates of every active image, and rounds are
refilled with new images so batches stay full (a lone image with 12 segments
would otherwise waste most of a 64-image batch).  Candidate images are built
on the model's device with one ``torch.where`` per batch.

Filling removed segments.  Work is done in pixel space (``[0, 1]`` RGB, the
network's normalisation undone), then normalised: ``fill="mean"`` paints the
normalisation mean colour (the training set's average colour: a zero input),
``"gray"`` paints 0.5 gray, ``"blur"`` shows a Gaussian-blurred copy of the
image (colour and layout kept, detail gone).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from ._common import (
    input_channel_order,
    preprocessing_record,
    class_names as _class_names,
    Progress,
    check_dataset,
    check_labels,
    check_positive_int,
    eval_mode,
    iter_batches,
    model_device,
    model_dtype,
    normalisation,
    to_uint8,
    weights_record,
)
from ._io import read_json, read_png, safe_name, write_csv, write_json, write_png

__all__ = ["MinimalImageRecord", "MinimalImagesResult", "minimal_images"]

FILLS = ("mean", "blur", "gray")
SCORES = ("probability", "logit")


@dataclass
class MinimalImageRecord:
    """The search on one image.

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
    """

    records: list[MinimalImageRecord]
    counts: dict[str, int]
    options: dict
    diagnostic: dict[str, list[str]] | None = None
    examples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

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
        return self

    def save(self, out_dir: str | Path) -> Path:
        """Write ``images.csv``, ``steps.csv``, ``minimal.json`` (everything, for :meth:`load`),
        ``objects.csv`` and ``diagnostic.csv`` (mask segmentations) and
        ``examples/<n>_<id>_original.png`` / ``_minimal.png`` pairs."""
        out = Path(out_dir)
        write_csv(out / "images.csv", self.to_frame())
        write_csv(out / "steps.csv", self.steps_frame())
        if self.options.get("segmentation") == "masks":
            write_csv(out / "objects.csv", self.object_shares())
        if self.diagnostic:
            write_csv(out / "diagnostic.csv", self.diagnostic_frame())
        examples = []
        for n, (image_id, (original, minimal)) in enumerate(self.examples.items()):
            stem = f"examples/{n:03d}_{safe_name(image_id)}"
            write_png(out / f"{stem}_original.png", original)
            write_png(out / f"{stem}_minimal.png", minimal)
            examples.append({"id": image_id, "original": f"{stem}_original.png",
                             "minimal": f"{stem}_minimal.png"})
        write_json(out / "minimal.json", {
            "experiment": "minimal_images", "options": self.options, "counts": self.counts,
            "diagnostic": self.diagnostic, "examples": examples,
            "records": [asdict(r) for r in self.records],
        })
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "MinimalImagesResult":
        """Read a result written by :meth:`save`."""
        out = Path(out_dir)
        meta = read_json(out / "minimal.json")
        records = []
        for r in meta["records"]:
            r = dict(r)
            r["steps"] = [(int(s), float(v)) for s, v in r["steps"]]
            records.append(MinimalImageRecord(**r))
        examples = {e["id"]: (read_png(out / e["original"]), read_png(out / e["minimal"]))
                    for e in meta["examples"]}
        return cls(records=records, counts=dict(meta["counts"]), options=dict(meta["options"]),
                   diagnostic=meta["diagnostic"], examples=examples)


# --------------------------------------------------------------------------- search state


@dataclass
class _State:
    """One image's search: bookkeeping on the CPU (no device synchronisation per step),
    pixels in a slot of :class:`_Slots` on the device."""

    position: int
    meta: dict
    label: int
    image: torch.Tensor  # (3, H, W) normalised input, on the CPU
    slot: int
    segments: np.ndarray  # (H, W) segment numbers
    n_segments: int
    kept: list[int]
    initial_score: float
    segment_objects: list[list[str]]
    steps: list[tuple[int, float]] = field(default_factory=list)
    stop: tuple[int, float, int] | None = None


class _Slots:
    """Device buffers of the images being searched, one slot each, reused as searches end.

    ``current[k]`` is slot k's image with its removed segments filled,
    ``fill[k]`` the fill, ``segments[k]`` the flattened segment map.  A batch
    of candidates is then a few whole-batch operations whatever the mix of
    images in it (a gather and a ``where``), with no per-round stacking.
    """

    def __init__(self, shape: tuple[int, int, int], *, device, dtype) -> None:
        self.shape, self.device, self.dtype = shape, device, dtype
        self.current = torch.empty((0,) + shape, device=device, dtype=dtype)
        self.fill = torch.empty((0,) + shape, device=device, dtype=dtype)
        self.segments = torch.empty((0, shape[1] * shape[2]), device=device, dtype=torch.int32)
        self.free: list[int] = []

    def add(self, image: torch.Tensor, fill: torch.Tensor, segments: np.ndarray) -> int:
        if not self.free:
            grow = max(8, len(self.current))
            self.free = list(range(len(self.current), len(self.current) + grow))
            self.current = torch.cat([self.current, self.current.new_empty((grow,) + self.shape)])
            self.fill = torch.cat([self.fill, self.fill.new_empty((grow,) + self.shape)])
            self.segments = torch.cat([self.segments, self.segments.new_empty((grow,) + self.segments.shape[1:])])
        slot = self.free.pop(0)
        self.current[slot] = image.to(device=self.device, dtype=self.dtype)
        self.fill[slot] = fill.to(device=self.device, dtype=self.dtype)
        self.segments[slot] = torch.from_numpy(segments.reshape(-1).astype(np.int32)).to(self.device)
        return slot

    def remove_segments(self, slots: list[int], segments: list[int]) -> None:
        """Fill segment ``segments[i]`` of slot ``slots[i]`` for every i (slots distinct), in one go."""
        if not slots:
            return
        slots_t = torch.as_tensor(slots, dtype=torch.int64).to(self.device)
        segments_t = torch.as_tensor(segments, dtype=torch.int32).to(self.device)
        mask = (self.segments[slots_t] == segments_t.unsqueeze(1)).view(len(slots), 1, *self.shape[1:])
        self.current[slots_t] = torch.where(mask, self.fill[slots_t], self.current[slots_t])

    def candidates(self, slots: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)``: slot ``slots[i]``'s current image with segment ``segments[i]`` filled."""
        mask = self.segments[slots] == segments.unsqueeze(1)
        mask = mask.view(len(slots), 1, *self.shape[1:])
        return torch.where(mask, self.fill[slots], self.current[slots])

    def release(self, slot: int) -> None:
        self.free.append(slot)


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int64)


def _resize_nearest(label_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize by pixel centres (a mask at any resolution onto the input grid)."""
    sh, sw = label_map.shape
    h, w = shape
    rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)
    return label_map[rows[:, None], cols[None, :]]


def _mask_segments(data: Dataset, position: int, shape: tuple[int, int], categories: Sequence[str],
                   split_instances: bool) -> tuple[np.ndarray, list[list[str]]]:
    annotation = data.annotation(position)
    combined = None
    for category in categories:
        for label_map in annotation.masks.get(category, []):
            label_map = np.asarray(label_map, dtype=np.int64)
            combined = label_map.copy() if combined is None else np.where(combined == 0, label_map, combined)
    if combined is None:
        combined = np.zeros(shape, dtype=np.int64)
    combined = _resize_nearest(combined, shape)
    concepts = getattr(data, "concepts", None)

    def name(number: int) -> str:
        if concepts is not None:
            try:
                return concepts[number].name
            except KeyError:
                pass
        return str(number)

    if split_instances:
        from scipy import ndimage

        segments = np.zeros(shape, dtype=np.int64)
        owners: list[int] = []
        for number in np.unique(combined):
            parts, n = ndimage.label(combined == number, structure=np.ones((3, 3)))
            for k in range(1, n + 1):
                segments[parts == k] = len(owners)
                owners.append(int(number))
    else:
        owners_arr, inverse = np.unique(combined, return_inverse=True)
        segments = inverse.reshape(shape).astype(np.int64)
        owners = [int(v) for v in owners_arr]
    return segments, [[name(number)] if number else [] for number in owners]


def _fill_image(pixels: torch.Tensor, fill: str, blur_sigma: float | None) -> torch.Tensor:
    """The fill in pixel space, ``(3, H, W)`` in ``[0, 1]`` (``mean`` is handled by the caller)."""
    if fill == "gray":
        return torch.full_like(pixels, 0.5)
    from scipy import ndimage

    sigma = blur_sigma if blur_sigma is not None else max(pixels.shape[-2:]) / 20
    blurred = ndimage.gaussian_filter(pixels.cpu().numpy().astype(np.float64), sigma=(0, sigma, sigma),
                                      mode="nearest")
    return torch.from_numpy(blurred.astype(np.float32))


def minimal_images(
    model: nn.Module,
    data: Dataset,
    *,
    segmentation: str | Callable[[np.ndarray], np.ndarray] = "slic",
    n_segments: int = 50,
    compactness: float = 10.0,
    categories: str | Sequence[str] = ("object",),
    split_instances: bool = False,
    fill: str = "mean",
    blur_sigma: float | None = None,
    score: str = "probability",
    max_images: int | None = None,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    diagnostic: Mapping[str, Sequence[str]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    examples: int = 8,
    batch_size: int = 64,
    round_batches: int = 4,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> MinimalImagesResult:
    """Find the minimal image of each correctly classified image by greedy segment removal.

    Parameters
    ----------
    model : nn.Module
        A classifier: ``model(x)`` returns ``(N, classes)`` scores.
    data : Dataset
        Items ``(image (3, H, W) normalised, meta)`` with ``meta["label"]``
        the correct class (-1 = unlabelled, skipped).  For
        ``segmentation="masks"`` the data set must also have
        ``annotation(index)`` (and ``concepts`` for object names).
    segmentation : {"slic", "masks"} or callable, keyword-only
        ``"slic"`` (1a): SLIC superpixels of the image the network sees;
        ``"masks"`` (1b): one segment per concept region of the annotation's
        ``categories`` maps (overlaps: the earlier map wins), plus one for
        the unlabelled rest; a callable ``f(pixels (H, W, 3) float in [0, 1])
        -> (H, W) int labels``.
    n_segments, compactness : keyword-only
        SLIC parameters (``n_segments`` is SLIC's target, not an exact count).
    categories : str or list of str, keyword-only
        Annotation categories whose masks become segments (default object).
    split_instances : bool, keyword-only
        Split each concept region into its connected components (instances).
    fill : {"mean", "blur", "gray"}, keyword-only
        How removed segments are painted (see the module docstring).
    blur_sigma : float, keyword-only
        Gaussian sigma in pixels for ``fill="blur"`` (default image side / 20).
    score : {"probability", "logit"}, keyword-only
        The correct class's score: softmax probability or raw logit.
    max_images : int, keyword-only
        Stop after this many images have been searched (correctly classified ones).
    indices : sequence of int, keyword-only
        Which items of ``data`` to look at (default all, in order).
    class_names : list of str, keyword-only
        Class names (default: the model's metadata, else the data set's).
    diagnostic : dict of str to list of str, keyword-only
        Scene class name -> its diagnostic objects; the result then reports
        how often they are kept.
    mean, std : sequence of float, keyword-only
        The normalisation of ``data`` (default: the data set's transform,
        else the model's preprocessing metadata).
    examples : int, keyword-only
        Keep ``(original, minimal)`` pictures of this many images.
    batch_size : int, keyword-only
        Candidate images per forward pass.
    round_batches : int, keyword-only
        Images are added to a round until it holds this many batches of
        candidates (keeps batches full; more uses more memory).
    num_workers : int, keyword-only
    progress : callable, keyword-only
        ``progress(done, total)``: images finished (searched or skipped).

    Returns
    -------
    MinimalImagesResult

    Raises
    ------
    ValueError
        For an empty data set or a bad option; for ``"masks"`` on a data set
        without ``annotation``.
    LookupError
        If a diagnostic scene or object name is unknown.
    """
    total = check_dataset(data)
    batch_size = check_positive_int(batch_size, "batch_size")
    round_batches = check_positive_int(round_batches, "round_batches")
    if max_images is not None:
        max_images = check_positive_int(max_images, "max_images")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    if isinstance(categories, str):
        categories = (categories,)
    categories = tuple(categories)
    if callable(segmentation):
        seg_name = getattr(segmentation, "__name__", "callable")
    elif segmentation in ("slic", "masks"):
        seg_name = segmentation
        if segmentation == "slic":
            n_segments = check_positive_int(n_segments, "n_segments")
        elif not callable(getattr(data, "annotation", None)):
            raise ValueError("segmentation='masks' needs an annotated pool (with annotation(index))")
    else:
        raise ValueError(f"segmentation must be 'slic', 'masks' or a callable, got {segmentation!r}")
    if indices is not None:
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("indices is empty: no images to analyse")
        bad = [i for i in indices if not 0 <= i < total]
        if bad:
            raise ValueError(f"indices out of range for a data set of {total} images: {bad[:5]}")
        total = len(indices)
    names = _class_names(model, data, class_names)
    check_labels(data, len(names) if names else None)
    diagnostic = _check_diagnostic(diagnostic, names, data)
    mean_t, std_t = normalisation(model, data, mean, std)
    order = input_channel_order(model, data)  # pictures are drawn in RGB whatever the input
    device, dtype = model_device(model), model_dtype(model)
    counts = {"seen": 0, "evaluated": 0, "incorrect": 0, "unlabelled": 0, "unreadable": 0, "candidates": 0}
    options = {"segmentation": seg_name, "n_segments": n_segments if seg_name == "slic" else None,
               "compactness": compactness if seg_name == "slic" else None,
               "categories": list(categories) if seg_name == "masks" else None,
               "split_instances": split_instances if seg_name == "masks" else None,
               "fill": fill, "blur_sigma": blur_sigma, "score": score, "max_images": max_images,
               "batch_size": batch_size, "mean": mean_t.flatten().tolist(), "std": std_t.flatten().tolist(),
               **weights_record(model),
               "preprocessing": preprocessing_record(model, data)}

    def class_score(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if score == "probability":
            logits = torch.softmax(logits, dim=1)
        return logits.gather(1, labels.view(-1, 1)).flatten()

    slots: list[_Slots | None] = [None]

    def make_state(position: int, image: torch.Tensor, meta: dict, label: int, initial: float) -> _State:
        pixels = (image.float().cpu() * std_t + mean_t)
        shape = tuple(pixels.shape[-2:])
        if seg_name == "masks":
            segments, seg_objects = _mask_segments(data, position, shape, categories, split_instances)
        else:
            hwc = pixels.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
            if seg_name == "slic":
                from skimage.segmentation import slic

                labels = slic(hwc, n_segments=n_segments, compactness=compactness, start_label=0,
                              channel_axis=-1)
            else:
                labels = np.asarray(segmentation(hwc))
                if labels.shape != shape:
                    raise ValueError(f"segmentation returned shape {labels.shape}, expected {shape}")
            segments, seg_objects = _relabel(labels), []
        n_seg = int(segments.max()) + 1
        if fill == "mean":
            fill_n = torch.zeros_like(pixels)
        else:
            fill_n = (_fill_image(pixels, fill, blur_sigma) - mean_t) / std_t
        if slots[0] is None:
            slots[0] = _Slots(tuple(image.shape), device=device, dtype=dtype)
        elif tuple(image.shape) != slots[0].shape:
            raise ValueError(f"all images must have one size: {tuple(image.shape)} after {slots[0].shape}")
        image = image.cpu()
        return _State(
            position=position, meta=meta, label=label, image=image,
            slot=slots[0].add(image, fill_n, segments), segments=segments, n_segments=n_seg,
            kept=list(range(n_seg)), initial_score=initial, segment_objects=seg_objects,
        )

    def states() -> Iterator[_State]:
        started = 0
        for positions, images, metas, dropped in iter_batches(data, batch_size, indices=indices,
                                                              num_workers=num_workers):
            counts["unreadable"] += dropped
            counts["seen"] += dropped
            if not positions:
                continue
            labels = torch.as_tensor([int(m.get("label", -1)) for m in metas], dtype=torch.int64)
            logits = model(images.to(device=device, dtype=dtype))
            if logits.dim() != 2:
                raise ValueError(f"the model must return (N, classes) scores, got shape {tuple(logits.shape)}")
            predicted = logits.argmax(dim=1).cpu()
            valid = labels >= 0
            scores = torch.full((len(positions),), float("nan"))
            if bool(valid.any()):
                scores[valid] = class_score(logits[valid.to(logits.device)],
                                            labels[valid].to(logits.device)).cpu()
            for k, (position, meta) in enumerate(zip(positions, metas)):
                counts["seen"] += 1
                label = int(labels[k])
                if label < 0:
                    counts["unlabelled"] += 1
                elif int(predicted[k]) != label:
                    counts["incorrect"] += 1
                else:
                    yield make_state(position, images[k], meta, label, float(scores[k]))
                    started += 1
                    if max_images is not None and started >= max_images:
                        return
                _report()

    def _report() -> None:
        if progress is None:
            return
        if max_images is not None:
            progress(counts["evaluated"], max_images)
        else:
            progress(counts["seen"] - len(active), total)

    records: list[MinimalImageRecord] = []
    kept_examples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    active: list[_State] = []
    target = round_batches * batch_size
    with torch.inference_mode(), eval_mode(model):
        source = states()
        exhausted = False
        while True:
            while not exhausted and sum(len(s.kept) for s in active) < target:
                try:
                    active.append(next(source))
                except StopIteration:
                    exhausted = True
            if not active:
                break
            finished = _search_round(model, slots[0], active, batch_size, class_score, counts)
            for state in finished:
                active.remove(state)
                record = _record(state, names)
                records.append(record)
                counts["evaluated"] += 1
                if len(kept_examples) < examples:
                    kept_examples[record.id] = (to_uint8(state.image, mean_t, std_t, channel_order=order),
                                                to_uint8(slots[0].current[state.slot], mean_t, std_t,
                                                         channel_order=order))
                slots[0].release(state.slot)
                _report()
    order = {position: rank for rank, position in enumerate(indices or [])}
    records.sort(key=lambda r: order.get(r.index, r.index))
    return MinimalImagesResult(records=records, counts=counts, options=options,
                               diagnostic=diagnostic, examples=kept_examples)


def _search_round(model, slots: _Slots, active: list[_State], batch_size: int, class_score,
                  counts) -> list[_State]:
    """Score every candidate removal of every active image; take one step each.

    Returns the states whose search ended.
    """
    slot_list = [state.slot for state in active for _ in state.kept]
    segment_list = [segment for state in active for segment in state.kept]
    label_list = [state.label for state in active for _ in state.kept]
    device = slots.device
    slot_t = torch.as_tensor(slot_list, dtype=torch.int64).to(device)
    segment_t = torch.as_tensor(segment_list, dtype=torch.int32).to(device)
    label_t = torch.as_tensor(label_list, dtype=torch.int64).to(device)
    scores, predictions = [], []
    for start in range(0, len(slot_list), batch_size):
        end = start + batch_size
        logits = model(slots.candidates(slot_t[start:end], segment_t[start:end]))
        scores.append(class_score(logits, label_t[start:end].to(logits.device)))
        predictions.append(logits.argmax(dim=1))
    counts["candidates"] += len(slot_list)
    scores_t, predictions_t = torch.cat(scores).cpu(), torch.cat(predictions).cpu()
    finished, removed_slots, removed_segments = [], [], []
    start = 0
    for state in active:
        n = len(state.kept)
        best = int(torch.argmax(scores_t[start:start + n]))  # first maximum: lower segment on ties
        segment, best_score, predicted = state.kept[best], float(scores_t[start + best]), int(predictions_t[start + best])
        start += n
        if predicted == state.label:
            removed_slots.append(state.slot)
            removed_segments.append(segment)
            state.kept.remove(segment)
            state.steps.append((segment, best_score))
            if not state.kept:
                finished.append(state)
        else:
            state.stop = (segment, best_score, predicted)
            finished.append(state)
    slots.remove_segments(removed_slots, removed_segments)
    return finished


def _record(state: _State, names: list[str] | None) -> MinimalImageRecord:
    kept = sorted(state.kept)
    objects_present = sorted({o for objs in state.segment_objects for o in objs})
    objects_kept = sorted({o for s in kept for o in (state.segment_objects[s] if state.segment_objects else [])})
    label_name = names[state.label] if names and 0 <= state.label < len(names) else str(state.label)
    return MinimalImageRecord(
        index=state.position, id=str(state.meta.get("id", state.position)), label=state.label,
        label_name=label_name, n_segments=state.n_segments, kept=kept, steps=list(state.steps),
        initial_score=state.initial_score,
        stop_segment=None if state.stop is None else state.stop[0],
        stop_score=None if state.stop is None else state.stop[1],
        stop_prediction=None if state.stop is None else state.stop[2],
        kept_fraction=float(np.isin(state.segments, kept).mean()),
        segment_objects=[list(o) for o in state.segment_objects],
        objects_present=objects_present, objects_kept=objects_kept,
    )


def _check_diagnostic(diagnostic, names, data) -> dict[str, list[str]] | None:
    if diagnostic is None:
        return None
    diagnostic = {str(scene): [str(o) for o in objects] for scene, objects in dict(diagnostic).items()}
    if names:
        unknown = [scene for scene in diagnostic if scene not in names]
        if unknown:
            raise LookupError(f"diagnostic scenes not among the class names: {unknown} (classes: {names[:12]})")
    concepts = getattr(data, "concepts", None)
    if concepts is not None:
        known = set(concepts.names())
        unknown = sorted({o for objs in diagnostic.values() for o in objs if o not in known})
        if unknown:
            raise LookupError(f"diagnostic objects not in the pool's concepts: {unknown}")
    return diagnostic
