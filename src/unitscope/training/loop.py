"""The optimisation loop: AdamW, a one-cycle schedule, snapshots and resume.

One loop for every objective: each step takes the next ``batch_size``
images of the epoch's order, normalises and augments them (flips, zooms),
asks the objective for its inputs and targets, and takes one AdamW step.
At the steps asked for (log-spaced for snapshots) it writes a checkpoint
through ``save_snapshot``; at those steps and at the end of each epoch it
saves its resume state (:class:`~unitscope.training.resume.PartialTraining`).
Saving reads the model and touches no random generator, so a run with
snapshots ends with the same weights as one without, and a resumed run
the same as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .data import normalize
from .objectives import Objective
from .resume import PartialTraining

__all__ = ["LoopSettings", "optimise", "augment", "schedule"]


@dataclass
class LoopSettings:
    """The hyper-parameters of :func:`optimise` (see :func:`~unitscope.training.train_network`)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    label_smoothing: float
    max_zoom: float
    mean: Sequence[float]
    std: Sequence[float]
    steps: int | None = None
    permutations: torch.Tensor | None = None
    gap: int = 0
    snapshot_steps: Sequence[int] = field(default_factory=tuple)


def schedule(n_images: int, *, batch_size: int, epochs: int, steps: int | None = None) -> tuple[int, int, int]:
    """``(batch_size, steps_per_epoch, total_steps)`` of a run over ``n_images`` images.

    ``steps`` (when given) replaces ``epochs * steps_per_epoch``: a run
    over a smaller data set cycles over it for as many epochs as it takes.
    """
    bs = min(int(batch_size), int(n_images))
    per_epoch = int(n_images) // bs
    total = int(steps) if steps is not None else per_epoch * int(epochs)
    return bs, per_epoch, total


def augment(x: torch.Tensor, gen: torch.Generator, max_zoom: float) -> torch.Tensor:
    """Random horizontal flips and zoom-ins (random crop of 1/zoom of the side, resized back)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if max_zoom > 1:
        scale = 1.0 / (1.0 + torch.rand(n, generator=gen) * (max_zoom - 1.0))
        room = 1.0 - scale
        tx = (torch.rand(n, generator=gen) * 2 - 1) * room
        ty = (torch.rand(n, generator=gen) * 2 - 1) * room
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = scale, scale
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x.contiguous(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


def _rows(targets: Any, idx: torch.Tensor) -> Any:
    if isinstance(targets, dict):
        return {k: v[idx] for k, v in targets.items()}
    return targets[idx]


def optimise(model: nn.Module, objective: Objective, images: torch.Tensor, targets: Any,
             settings: LoopSettings, gen: torch.Generator, *, partial: PartialTraining | None = None,
             save_snapshot: Callable[[int], None] | None = None,
             progress: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns the per-epoch history (loss, seconds).

    ``images`` uint8 ``(N, 3, S, S)``; ``targets`` the objective's
    per-image targets.  With ``partial``, a saved state is resumed first
    and the state is saved at each snapshot step and each epoch's end.
    """
    bs, per_epoch, total = schedule(len(images), batch_size=settings.batch_size, epochs=settings.epochs,
                                    steps=settings.steps)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=total, pct_start=0.25)
    snapshot_steps = set(int(s) for s in settings.snapshot_steps)
    history: list[dict[str, Any]] = []
    step, first_epoch, position, order = 0, 0, 0, None
    running, seen = 0.0, 0
    saved = partial.load() if partial is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        step, first_epoch, position = int(saved["step"]), int(saved["epoch"]), int(saved["position"])
        order = saved["order"] if position else None
        running, seen = float(saved["running"]), int(saved["seen"])
        history = list(saved["history"])

    def save_state(epoch: int, at: int) -> None:
        if partial is None:
            return
        partial.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
                      "epoch": epoch, "position": at, "order": order if at else torch.zeros(0, dtype=torch.int64),
                      "running": running, "seen": seen, "history": history})

    if progress is not None:
        progress(step, total)
    epochs = -(-total // per_epoch)
    for epoch in range(first_epoch, epochs):
        t_epoch = time.perf_counter()
        if order is None or position == 0:
            order = torch.randperm(len(images), generator=gen)
            running, seen = 0.0, 0
        for k in range(position, per_epoch):
            if step == total:
                break
            idx = order[k * bs:(k + 1) * bs]
            x = augment(normalize(images[idx], settings.mean, settings.std), gen, settings.max_zoom)
            x, y = objective.batch(x, _rows(targets, idx), gen, permutations=settings.permutations,
                                   gap=settings.gap, mean=settings.mean, std=settings.std)
            loss = objective.loss(model(x), y, label_smoothing=settings.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
            seen += len(idx)
            step += 1
            if step in snapshot_steps:
                if save_snapshot is not None:
                    save_snapshot(step)
                if k + 1 < per_epoch:  # an epoch's last step is saved below, with its history
                    save_state(epoch, k + 1)
            if progress is not None:
                progress(step, total)
        position = 0
        history.append({"epoch": epoch + 1, "loss": running / max(seen, 1),
                        "seconds": time.perf_counter() - t_epoch})
        save_state(epoch + 1, 0)
    return history
