"""The greedy search: remove the least harmful segment while the class stays correct.

Every candidate removal of a step is scored, and the candidates of *several
images* share each forward batch: images are searched side by side, each
round gathers the candidates of every active image, and rounds are refilled
with new images so batches stay full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .._common import Progress, iter_batches, model_device, model_dtype, to_uint8
from .candidates import _Slots, normalised_fill
from unitscope.results.minimal import MinimalImageRecord


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


class _Search:
    """The searches of one run: its settings, counts, device slots and active images.

    Parameters
    ----------
    model : nn.Module
        The classifier (the caller runs :meth:`run` in eval mode, under
        ``torch.inference_mode``).
    data : Dataset
    cut : callable
        ``cut(pixels (3, H, W), position) -> (segments (H, W), segment objects)``.
    fill, blur_sigma, score : keyword-only
        As :func:`~unitscope.experiments.minimal_images.minimal_images` takes them.
    mean, std : Tensor, keyword-only
        ``(3, 1, 1)`` the normalisation of ``data``.
    channel_order : str, keyword-only
        The channel order of the inputs (pictures are drawn in RGB whatever it is).
    batch_size : int, keyword-only
    counts : dict of str to int, keyword-only
        The run's counts, updated in place.
    max_images, total, progress : keyword-only
        The search stops after ``max_images`` images; ``progress(done, total)``.
    """

    def __init__(self, model: nn.Module, data: Dataset, *, cut: Callable, fill: str, blur_sigma: float | None,
                 score: str, mean: torch.Tensor, std: torch.Tensor, channel_order: str, batch_size: int,
                 counts: dict[str, int], max_images: int | None, total: int,
                 progress: Progress | None) -> None:
        self.model, self.data, self.cut = model, data, cut
        self.fill, self.blur_sigma, self.score = fill, blur_sigma, score
        self.mean, self.std, self.channel_order = mean, std, channel_order
        self.device, self.dtype = model_device(model), model_dtype(model)
        self.batch_size, self.counts = batch_size, counts
        self.max_images, self.total, self.progress = max_images, total, progress
        self.slots: _Slots | None = None  # made for the first image: every image must have its size
        self.active: list[_State] = []

    def class_score(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(N,)`` the correct class's score of each row: softmax probability or raw logit."""
        logits = logits.float()
        if self.score == "probability":
            logits = torch.softmax(logits, dim=1)
        return logits.gather(1, labels.view(-1, 1)).flatten()

    def start(self, position: int, image: torch.Tensor, meta: dict, label: int, initial: float) -> _State:
        """Cut a correctly classified image into segments and put it in a slot."""
        pixels = (image.float().cpu() * self.std + self.mean)
        segments, seg_objects = self.cut(pixels, position)
        n_seg = int(segments.max()) + 1
        fill_n = normalised_fill(pixels, self.fill, self.blur_sigma, self.mean, self.std)
        if self.slots is None:
            self.slots = _Slots(tuple(image.shape), device=self.device, dtype=self.dtype)
        elif tuple(image.shape) != self.slots.shape:
            raise ValueError(f"all images must have one size: {tuple(image.shape)} after {self.slots.shape}")
        image = image.cpu()
        return _State(
            position=position, meta=meta, label=label, image=image,
            slot=self.slots.add(image, fill_n, segments), segments=segments, n_segments=n_seg,
            kept=list(range(n_seg)), initial_score=initial, segment_objects=seg_objects,
        )

    def images(self, *, indices: Sequence[int] | None, num_workers: int) -> Iterator[_State]:
        """The searches to run: each correctly classified image, started; the others counted."""
        counts, device, dtype = self.counts, self.device, self.dtype
        started = 0
        for positions, images, metas, dropped in iter_batches(self.data, self.batch_size, indices=indices,
                                                              num_workers=num_workers):
            counts["unreadable"] += dropped
            counts["seen"] += dropped
            if not positions:
                continue
            labels = torch.as_tensor([int(m.get("label", -1)) for m in metas], dtype=torch.int64)
            logits = self.model(images.to(device=device, dtype=dtype))
            if logits.dim() != 2:
                raise ValueError(f"the model must return (N, classes) scores, got shape {tuple(logits.shape)}")
            predicted = logits.argmax(dim=1).cpu()
            valid = labels >= 0
            scores = torch.full((len(positions),), float("nan"))
            if bool(valid.any()):
                scores[valid] = self.class_score(logits[valid.to(logits.device)],
                                                 labels[valid].to(logits.device)).cpu()
            for k, (position, meta) in enumerate(zip(positions, metas)):
                counts["seen"] += 1
                label = int(labels[k])
                if label < 0:
                    counts["unlabelled"] += 1
                elif int(predicted[k]) != label:
                    counts["incorrect"] += 1
                else:
                    yield self.start(position, images[k], meta, label, float(scores[k]))
                    started += 1
                    if self.max_images is not None and started >= self.max_images:
                        return
                self.report()

    def report(self) -> None:
        """Tell ``progress`` the images finished: searched of ``max_images``, else searched or skipped of ``total``."""
        if self.progress is None:
            return
        if self.max_images is not None:
            self.progress(self.counts["evaluated"], self.max_images)
        else:
            self.progress(self.counts["seen"] - len(self.active), self.total)

    def run(self, source: Iterator[_State], *, names: list[str] | None, target: int,
            examples: int) -> tuple[list[MinimalImageRecord], dict[str, tuple[np.ndarray, np.ndarray]],
                                    dict[str, np.ndarray]]:
        """Search every image of ``source``, rounds of about ``target`` candidates.

        Returns the records in the order the searches ended, the
        ``(original, minimal)`` images of the first ``examples`` of them and
        their kept-segment masks (``(H, W)`` bool), by image id.
        """
        counts, active = self.counts, self.active
        mean_t, std_t, order = self.mean, self.std, self.channel_order
        records: list[MinimalImageRecord] = []
        kept_examples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        kept_masks: dict[str, np.ndarray] = {}
        exhausted = False
        while True:
            while not exhausted and sum(len(s.kept) for s in active) < target:
                try:
                    active.append(next(source))
                except StopIteration:
                    exhausted = True
            if not active:
                break
            finished = _search_round(self.model, self.slots, active, self.batch_size, self.class_score, counts)
            for state in finished:
                active.remove(state)
                record = _record(state, names)
                records.append(record)
                counts["evaluated"] += 1
                if len(kept_examples) < examples:
                    kept_examples[record.id] = (to_uint8(state.image, mean_t, std_t, channel_order=order),
                                                to_uint8(self.slots.current[state.slot], mean_t, std_t,
                                                         channel_order=order))
                    kept_masks[record.id] = np.isin(state.segments, record.kept)
                self.slots.release(state.slot)
                self.report()
        return records, kept_examples, kept_masks


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
