"""What a network is trained to predict: one object per training objective.

Every objective trains the same ``mini_alexnet`` (``conv1`` .. ``conv5``,
``fc6``, ``fc7``); only the last layer's outputs and the loss differ, so
each trained network is dissected exactly like SceneNet.  An objective
says which world images it reads (``dataset``: the scene-centric or the
object-centric ones), what its outputs are called (``class_names``), how a
batch of images becomes ``(inputs, targets)`` (:meth:`Objective.batch`),
the loss, and how held-out images are scored.  Keeping them here, apart
from the optimisation loop, is what lets the tests check each target on a
tiny batch.

==============  =========================================================
objective       what the network predicts
==============  =========================================================
``scene``       the scene class (SceneNet; Places-CNN in miniature)
``object``      the object class of object-centric images (ObjectNet)
``multilabel``  which objects an image shows (binary cross-entropy)
``multitask``   scene class and object presence (the two losses summed)
``rotation``    the rotation applied, 0/90/180/270 degrees (RotNet:
                Gidaris, Singh & Komodakis, ICLR 2018)
``jigsaw``      which of a fixed set of permutations shuffled the 3x3
                tiles (Noroozi & Favaro, ECCV 2016)
``shuffled``    scene labels permuted once (the memorisation control of
                Zhang et al., "Understanding deep learning requires
                rethinking generalization", ICLR 2017)
``colorization`` from the grey image, the quantised colour (chroma) of
                each cell of the ``conv5`` grid (Zhang, Isola & Efros,
                "Colorful image colorization", ECCV 2016: classification
                over quantised colours, here without class rebalancing)
==============  =========================================================

The multi-task network has one output layer whose first outputs are the
scene classes and the rest the objects: two linear heads on ``fc7``
written as one matrix, so the checkpoint stays a plain ``mini_alexnet``.
The colourisation network is ``mini_alexnet_dense``: the same modules,
its head a 1x1 convolution on ``conv5`` (one colour class per position).
The jigsaw puzzle is assembled back into one image (tiles with a small
random gap, so that edges do not give the order away) rather than fed to
a nine-branch siamese network: the trunk, and what dissection reads, are
the same as every other objective's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["OBJECTIVES", "OBJECTIVE_DESCRIPTIONS", "Objective", "get_objective", "network_name",
           "jigsaw_permutations", "rotate", "assemble_jigsaw", "shuffled_labels", "colorization_pair"]

#: Names of the training objectives, in the order tables list them.
OBJECTIVES: tuple[str, ...] = ("scene", "object", "multilabel", "multitask", "rotation", "jigsaw", "shuffled",
                               "colorization")

#: One line per objective.
OBJECTIVE_DESCRIPTIONS: dict[str, str] = {
    "scene": "scene classification of scene-centric images (SceneNet)",
    "object": "object classification of object-centric images (ObjectNet)",
    "multilabel": "which objects a scene-centric image shows (multi-label, binary cross-entropy)",
    "multitask": "scene class and object presence together (two heads, losses summed)",
    "rotation": "self-supervised: which rotation (0/90/180/270) was applied (RotNet, Gidaris et al. 2018)",
    "jigsaw": "self-supervised: which permutation shuffled 3x3 tiles (Noroozi & Favaro 2016)",
    "shuffled": "scene classification with labels permuted once (memorisation control, Zhang et al. 2017)",
    "colorization": "self-supervised: the colour of each conv5 cell from the grey image (Zhang et al. 2016)",
}

#: Colour classes of ``colorization``: the chroma plane (YCbCr's Cb, Cr) cut into this many bins a side.
CHROMA_BINS = 8
#: Side in pixels of a ``colorization`` target cell: the stride of ``conv5``.
CELL = 8

#: Seed offset of the shuffled labels' permutation (apart from the training seed's own streams).
_SHUFFLE_STREAM = 0x5EED


def network_name(objective: str) -> str:
    """The network's name: ``scenenet``, ``objectnet``, ``rotationnet`` ..."""
    get_objective(objective)
    return f"{objective}net"


def shuffled_labels(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """``labels`` permuted across images once: a pure function of ``(labels, seed)``.

    The same for every epoch (it is computed once per run) and for every
    run with the same seed.
    """
    gen = torch.Generator().manual_seed(int(seed) * 65537 + _SHUFFLE_STREAM)
    return labels[torch.randperm(labels.shape[0], generator=gen)]


def rotate(x: torch.Tensor, quarter_turns: torch.Tensor) -> torch.Tensor:
    """Rotate each image ``(N, C, H, W)`` counter-clockwise by ``quarter_turns[n] * 90`` degrees (square images)."""
    out = x.clone()
    for k in range(1, 4):
        chosen = quarter_turns == k
        if bool(chosen.any()):
            out[chosen] = torch.rot90(x[chosen], k, dims=(2, 3))
    return out


def jigsaw_permutations(count: int, *, seed: int = 0, tiles: int = 9) -> torch.Tensor:
    """A fixed set of ``count`` permutations of ``tiles`` tiles, far apart in Hamming distance.

    Greedy max-min selection (as Noroozi & Favaro) among permutations drawn
    from a seeded generator: the first is the identity's farthest random
    draw, each next one the candidate whose nearest chosen permutation is
    farthest.  Returns int64 ``(count, tiles)``; row ``p`` maps output
    cell ``i`` to source tile ``perm[p, i]``.
    """
    if int(count) < 2:
        raise ValueError(f"jigsaw needs at least 2 permutations, got {count}")
    rng = np.random.default_rng([int(seed), 9, int(count)])
    pool_size = max(20 * int(count), 2000)
    if tiles <= 8:
        pool = np.array(list(itertools.permutations(range(tiles))))
    else:
        pool = np.stack([rng.permutation(tiles) for _ in range(pool_size)])
    pool = np.unique(pool, axis=0)
    if len(pool) < count:
        raise ValueError(f"only {len(pool)} distinct permutations of {tiles} tiles, asked for {count}")
    chosen = [int(rng.integers(len(pool)))]
    nearest = (pool != pool[chosen[0]]).sum(1)
    for _ in range(int(count) - 1):
        nearest[chosen] = -1
        best = int(np.argmax(nearest))
        chosen.append(best)
        nearest = np.minimum(nearest, (pool != pool[best]).sum(1))
    return torch.from_numpy(pool[chosen].astype(np.int64))


def assemble_jigsaw(x: torch.Tensor, perms: torch.Tensor, *, gap: int,
                    jitter: torch.Tensor | None = None) -> torch.Tensor:
    """Cut each image into 3x3 cells and put them back shuffled, each tile inside a gap.

    Parameters
    ----------
    x : Tensor, shape (N, C, S, S)
    perms : Tensor, int64, shape (N, 9)
        Output cell ``i`` of image ``n`` shows source tile ``perms[n, i]``.
    gap : int
        Each tile is its cell less ``gap`` pixels a side; it is cut at an
        offset ``jitter`` inside its source cell and drawn centred in its
        target cell, on zeros (the mean after normalisation).
    jitter : Tensor, int64, shape (N, 9, 2), optional
        ``(dy, dx)`` in ``[0, gap]`` per source tile (default: centred).

    Returns
    -------
    Tensor, shape (N, C, S, S)
    """
    n, _, size, _ = x.shape
    cell = size // 3
    tile = cell - int(gap)
    if tile < 1:
        raise ValueError(f"jigsaw gap {gap} leaves no tile in a {cell} px cell")
    margin = (size - 3 * cell) // 2
    if jitter is None:
        jitter = torch.full((n, 9, 2), int(gap) // 2, dtype=torch.int64)
    out = torch.zeros_like(x)
    place = int(gap) // 2
    for b in range(n):
        for i in range(9):
            s = int(perms[b, i])
            sy = margin + (s // 3) * cell + int(jitter[b, s, 0])
            sx = margin + (s % 3) * cell + int(jitter[b, s, 1])
            ty = margin + (i // 3) * cell + place
            tx = margin + (i % 3) * cell + place
            out[b, :, ty:ty + tile, tx:tx + tile] = x[b, :, sy:sy + tile, sx:sx + tile]
    return out


def colorization_pair(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The grey input and colour classes of a normalised batch ``(N, 3, S, S)``.

    The grey image is the luma ``0.299 R + 0.587 G + 0.114 B`` put in all
    three channels and normalised like a colour image (so a dissection
    reads the network with colour images as usual).  The target of each
    ``CELL`` x ``CELL`` cell is its mean chroma (Cb, Cr in ``[-0.5, 0.5]``)
    binned into ``CHROMA_BINS`` a side: class ``cb * CHROMA_BINS + cr``,
    int64 ``(N, S / CELL, S / CELL)``.
    """
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    rgb = x * s + m
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    grey = (luma.unsqueeze(1) - m) / s
    chroma = torch.stack([(b - luma) / 1.772, (r - luma) / 1.402], 1)
    cells = F.avg_pool2d(chroma, CELL)
    bins = ((cells + 0.5) * CHROMA_BINS).floor().clamp(0, CHROMA_BINS - 1).long()
    return grey, bins[:, 0] * CHROMA_BINS + bins[:, 1]


@dataclass(frozen=True)
class Objective:
    """One training objective.

    Attributes
    ----------
    name : str
    dataset : str
        ``'scene'`` or ``'object'``: the world images it trains on.
    kind : str
        ``'class'`` (one label per image, cross-entropy), ``'presence'``
        (multi-label, binary cross-entropy), ``'both'`` (scene class +
        presence), ``'rotation'`` or ``'jigsaw'`` (pretext labels drawn per
        batch).
    """

    name: str
    dataset: str
    kind: str
    arch: str = "mini_alexnet"

    @property
    def network(self) -> str:
        return f"{self.name}net"

    @property
    def needs_presence(self) -> bool:
        """Whether its targets need each image's list of objects."""
        return self.kind in ("presence", "both")

    def class_names(self, scene_names: Sequence[str], object_names: Sequence[str], *,
                    permutations: int = 0) -> list[str]:
        """Names of the network's outputs (the pretext classes for a self-supervised head)."""
        if self.kind == "class":
            return list(scene_names if self.dataset == "scene" else object_names)
        if self.kind == "presence":
            return list(object_names)
        if self.kind == "both":
            return list(scene_names) + list(object_names)
        if self.kind == "rotation":
            return ["rot0", "rot90", "rot180", "rot270"]
        if self.kind == "colorization":
            return [f"cb{b}cr{r}" for b in range(CHROMA_BINS) for r in range(CHROMA_BINS)]
        return [f"perm{p:03d}" for p in range(int(permutations))]

    def image_targets(self, labels: torch.Tensor, presence: torch.Tensor | None, *, seed: int) -> Any:
        """Per-image targets of a data set: what :meth:`batch` indexes.

        ``labels`` int64 ``(N,)``; ``presence`` float ``(N, objects)`` (only
        for objectives that need it).  The pretext objectives draw their
        labels per batch and keep the class labels (unused by the loss).
        """
        if self.needs_presence and presence is None:
            raise ValueError(f"objective {self.name!r} needs the objects of every image")
        if self.name == "shuffled":
            return shuffled_labels(labels, seed)
        if self.kind == "presence":
            return presence
        if self.kind == "both":
            return {"scene": labels, "objects": presence}
        return labels

    def batch(self, x: torch.Tensor, targets: Any, gen: torch.Generator, *,
              permutations: torch.Tensor | None = None, gap: int = 0,
              mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)
              ) -> tuple[torch.Tensor, Any]:
        """Inputs and targets of one batch.

        ``x`` is the normalised, augmented batch ``(N, 3, S, S)``;
        ``targets`` the batch's rows of :meth:`image_targets`.  Only the
        pretext objectives draw from ``gen`` (so scene and object training
        consume the generator exactly as before objectives existed).
        ``mean``/``std`` (of the normalisation) let colourisation see the
        colours.
        """
        if self.kind == "colorization":
            grey, classes = colorization_pair(x, mean, std)
            return grey.contiguous(memory_format=torch.channels_last), classes
        if self.kind == "rotation":
            turns = torch.randint(0, 4, (x.shape[0],), generator=gen)
            return rotate(x, turns).contiguous(memory_format=torch.channels_last), turns
        if self.kind == "jigsaw":
            if permutations is None:
                raise ValueError("the jigsaw objective needs its permutations")
            index = torch.randint(0, permutations.shape[0], (x.shape[0],), generator=gen)
            jitter = torch.randint(0, int(gap) + 1, (x.shape[0], 9, 2), generator=gen)
            out = assemble_jigsaw(x, permutations[index], gap=gap, jitter=jitter)
            return out.contiguous(memory_format=torch.channels_last), index
        return x, targets

    def loss(self, outputs: torch.Tensor, targets: Any, *, label_smoothing: float = 0.0) -> torch.Tensor:
        """The training loss of a batch's outputs ``(N, outputs)``."""
        if self.kind == "presence":
            return F.binary_cross_entropy_with_logits(outputs, targets)
        if self.kind == "both":
            n_scenes = outputs.shape[1] - targets["objects"].shape[1]
            return (F.cross_entropy(outputs[:, :n_scenes], targets["scene"], label_smoothing=label_smoothing)
                    + F.binary_cross_entropy_with_logits(outputs[:, n_scenes:], targets["objects"]))
        return F.cross_entropy(outputs, targets, label_smoothing=label_smoothing)

    def scores(self, outputs: torch.Tensor, targets: Any) -> dict[str, float]:
        """Held-out scores of outputs ``(N, outputs)`` against the batch's targets.

        ``val_top1`` is the head's top-1 (for presence: the share of images
        whose top-scoring object is present); presence heads add micro
        ``val_f1`` (logit > 0) and ``val_label_accuracy``.
        """
        if self.kind in ("presence", "both"):
            objects = targets["objects"] if self.kind == "both" else targets
            logits = outputs[:, outputs.shape[1] - objects.shape[1]:]
            predicted = logits > 0
            truth = objects > 0.5
            tp = float((predicted & truth).sum())
            f1 = 2 * tp / max(float(predicted.sum() + truth.sum()), 1.0)
            out = {"val_f1": f1, "val_label_accuracy": float((predicted == truth).float().mean())}
            if self.kind == "both":
                n_scenes = outputs.shape[1] - objects.shape[1]
                out["val_top1"] = float((outputs[:, :n_scenes].argmax(1) == targets["scene"]).float().mean())
                out["val_presence_top1"] = float(truth.gather(1, logits.argmax(1, keepdim=True)).float().mean())
            else:
                out["val_top1"] = float(truth.gather(1, logits.argmax(1, keepdim=True)).float().mean())
            return out
        return {"val_top1": float((outputs.argmax(1) == targets).float().mean())}


_ALL = {
    "scene": Objective("scene", "scene", "class"),
    "object": Objective("object", "object", "class"),
    "multilabel": Objective("multilabel", "scene", "presence"),
    "multitask": Objective("multitask", "scene", "both"),
    "rotation": Objective("rotation", "scene", "rotation"),
    "jigsaw": Objective("jigsaw", "scene", "jigsaw"),
    "shuffled": Objective("shuffled", "scene", "class"),
    "colorization": Objective("colorization", "scene", "colorization", arch="mini_alexnet_dense"),
}


def get_objective(name: str) -> Objective:
    """The objective called ``name``.

    Raises
    ------
    ValueError
        If there is none, listing the names.
    """
    try:
        return _ALL[name]
    except (KeyError, TypeError):
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {name!r}") from None
