"""Shared test toys: tiny pools and planted networks whose answers are known by construction.

One home for the toys more than one test file uses (STYLE.md, convention 8:
known answers on tiny hand-built networks).  Each toy's docstring says what
it is and the answer an experiment must give on it; a test that needs a
variant subclasses a toy in its own file.  Toys that once shared a name but
differ keep distinct names that say how:

=============================  ====================================================================
toy                            what it is (and its known answer)
=============================  ====================================================================
:class:`ToyPool`               thing masks in every channel, a scene label (dissection)
:class:`RawToyPool`            ``ToyPool`` with raw pixels (segmentation tiles)
:class:`IndicatorNet`          units: thing indicator, dead, background indicator
:class:`ZoomToyPool`           thing mask in channel 0 (zoomable), free channel 1, even/odd labels
:func:`toy_masks`              the masks ``ZoomToyPool`` is made of (every fourth image empty)
:class:`PlantedNet`            units copy channels 0 and 1; the head counts the thing (localisation)
:class:`BrightToyPool`         random images, the object is where channel 0 is bright
:class:`ScenePool`             scene k holds object k in channel k (ablation)
:class:`PlantedClassifier`     class k reads only unit k; switching it off gives "nothing"
:class:`LabelledTensorPool`    plain pool from a tensor, labels given (minimal images)
:class:`UnlabelledTensorPool`  plain pool from a tensor, one source, no labels (receptive fields)
:class:`SourcePool`            constant images from one named source (layer preference)
:func:`scaling_net`            conv of constant weight: channel mean = 3 * weight * value
:func:`make_broden`            a tiny Broden folder: a bright box on a dark floor, two scenes
:class:`HostilePickle`         unpickling it creates a file (state files must never be unpickled)
:func:`plant_pickle`           a pickled state file holding a ``HostilePickle``
:func:`planted_conv`           a 1x1 conv whose units copy (or negate) chosen image channels
:func:`hook_count`             forward hooks left on a model (0 after any run)
=============================  ====================================================================

The other shared test modules hold one idea each: ``fake_results.py`` a
hand-written results directory for the report, ``conftest_label.py`` the
labeling app's results and live server, ``token_nets.py`` a tiny vision
transformer with a planted token unit, ``reference_stats.py`` the dense
statistics the streaming ones are checked against, ``mask_samples.py``
annotation files in other datasets' formats.  Test files import from these,
never from one another.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from unitscope.data import Annotation, BrodenRecord, Concept, ConceptTable, write_broden


def hook_count(model: nn.Module) -> int:
    """Forward hooks left on ``model`` (0 after any run, failed or not)."""
    return sum(len(m._forward_hooks) for m in model.modules())


def planted_conv(out_channels: int, weights: dict, bias: dict | None = None) -> nn.Conv2d:
    """A 1x1 convolution of 3 channels, zero but for ``weights[(out, in)]`` and ``bias[out]``.

    Built as ``nn.Conv2d`` (so it draws its random initial values from the
    global generator as any network does) and then overwritten: its units are
    exact functions of the image's channels, planted detectors.
    """
    conv = nn.Conv2d(3, out_channels, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for (out, channel), value in weights.items():
            conv.weight[out, channel] = value
        for out, value in (bias or {}).items():
            conv.bias[out] = value
    return conv


# ---------------------------------------------------------------------------- dissection
class ToyPool(torch.utils.data.Dataset):
    """Images whose first channel is the mask of concept 1 ("thing"); the rest is concept 2.

    Every channel of image ``i`` is its 0/1 mask (``rng.random > 0.7`` from
    ``seed``, or the given ``masks``); "background" (2) is the complement and
    every image carries the scene label "bedroom" (3).  Labels are -1.  With
    :class:`IndicatorNet`, unit 0 is "thing" and unit 2 "background" at IoU 1,
    and the scene IoU of unit 0 is the thing's share of all pixels.
    """

    def __init__(self, n=24, size=8, seed=0, masks=None):
        rng = np.random.default_rng(seed)
        self.masks = masks if masks is not None else (rng.random((n, size, size)) > 0.7).astype(np.int64)
        self.concepts = ConceptTable([Concept(1, "thing", "object"), Concept(2, "background", "material"),
                                      Concept(3, "bedroom", "scene")])
        self.ids = [f"img{i}" for i in range(len(self.masks))]

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        image = torch.from_numpy(self.masks[i]).float()[None].repeat(3, 1, 1)
        return image, {"index": i, "id": self.ids[i], "label": -1, "source": "toy"}

    def annotation(self, i):
        thing = self.masks[i].copy()
        rest = np.where(thing == 0, 2, 0)
        return Annotation(masks={"object": [thing], "material": [rest]}, image_labels={"scene": [3]})

    def mask_shape(self, i):
        return self.masks[i].shape

    def shard(self, rank, world):
        n = len(self)
        return ToyPool(masks=self.masks[rank * n // world:(rank + 1) * n // world])


class RawToyPool(ToyPool):
    """:class:`ToyPool` with raw pixels for tiles: 250 where the thing is, 50 elsewhere."""

    def raw_image(self, i):
        return (self.masks[i][:, :, None].repeat(3, axis=2) * 200 + 50).astype(np.uint8)


class IndicatorNet(nn.Module):
    """Unit 0 = indicator of "thing", unit 1 = constant zero, unit 2 = indicator of background.

    ``conv`` is a 1x1 convolution of :class:`ToyPool`'s 8x8 images (unit 2 is
    ``1 - channel 0``); ``head`` flattens it into two logits.
    """

    def __init__(self):
        super().__init__()
        self.conv = planted_conv(3, {(0, 0): 1.0, (2, 0): -1.0}, {2: 1.0})
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

    def forward(self, x):
        return self.head(self.conv(x))


# ---------------------------------------------------------------------------- localisation
class ZoomToyPool(torch.utils.data.Dataset):
    """Image ``i``: channel 0 is the mask of "thing" (concept 1), enlarged ``zoom`` times from the
    annotation, channel 1 a free ``extra`` plane; label = image index mod 2.  "ghost" never appears.

    Unlike :class:`ToyPool`: the masks are given (see :func:`toy_masks`),
    only channel 0 holds them, images are labelled "even"/"odd", and the
    concepts are thing (1), ghost (2, an object with no pixels) and
    background (3, material).
    """

    concepts = ConceptTable([Concept(1, "thing", "object"), Concept(2, "ghost", "object"),
                             Concept(3, "background", "material")])

    def __init__(self, masks, *, zoom=1, extra=None):
        self.masks = np.asarray(masks, dtype=np.int64)
        self.zoom = zoom
        self.extra = extra
        self.ids = [f"img{i}" for i in range(len(self.masks))]
        self.class_names = ["even", "odd"]

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        big = np.kron(self.masks[i], np.ones((self.zoom, self.zoom), dtype=np.int64))
        image = torch.zeros(3, *big.shape)
        image[0] = torch.from_numpy(big).float()
        if self.extra is not None:
            image[1] = torch.from_numpy(self.extra[i]).float()
        return image, {"index": i, "id": self.ids[i], "label": i % 2, "source": "toy"}

    def annotation(self, i):
        thing = self.masks[i].copy()
        return Annotation(masks={"object": [thing], "material": [np.where(thing == 0, 3, 0)]})

    def mask_shape(self, i):
        return self.masks[i].shape

    def shard(self, rank, world):
        n = len(self)
        return ZoomToyPool(self.masks[rank * n // world:(rank + 1) * n // world], zoom=self.zoom)


def toy_masks(n=12, size=8, seed=0):
    """``n`` random 0/1 thing masks (``rng.random > 0.75``); every fourth image has no "thing"."""
    rng = np.random.default_rng(seed)
    masks = (rng.random((n, size, size)) > 0.75).astype(np.int64)
    masks[::4] = 0  # every fourth image has no "thing"
    return masks


class PlantedNet(nn.Module):
    """``conv`` unit 0 is exactly image channel 0, unit 1 channel 1, unit 2 is dead;
    the classifier reads unit 0's mean (more "thing" -> class 1).

    On :class:`ZoomToyPool`, unit 0 is a perfect "thing" detector (every
    localisation metric 1.0) and the predicted class is 1 exactly when
    ``10 * mean(thing) > 1``.  ``pool > 1`` average-pools the map first.
    """

    def __init__(self, pool: int = 1):
        super().__init__()
        self.conv = planted_conv(3, {(0, 0): 1.0, (1, 1): 1.0})
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
        with torch.no_grad():
            self.head[2].weight.zero_()
            self.head[2].weight[1, 0] = 10.0
            self.head[2].bias[:] = torch.tensor([1.0, 0.0])

    def forward(self, x):
        return self.head(self.pool(self.conv(x)))


class BrightToyPool:
    """Annotated pool of 6 8x8 images whose object mask is where the image is bright.

    Random images (``default_rng(0)``); the one concept "thing" covers the
    pixels whose channel 0 is above 0.5; labels alternate 0, 1; no
    ``mask_shape`` or ``shard``.
    """

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.images = torch.as_tensor(rng.random((6, 3, 8, 8)), dtype=torch.float32)
        self.concepts = ConceptTable.from_names({"object": ["thing"]})
        self.ids = [f"im{i}" for i in range(6)]

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return self.images[i], {"index": i, "id": self.ids[i], "label": i % 2}

    def annotation(self, i):
        return Annotation(masks={"object": [(self.images[i, 0] > 0.5).numpy().astype(np.int32)]}, image_labels={})


# ---------------------------------------------------------------------------- ablation
class ScenePool(torch.utils.data.Dataset):
    """Image ``i`` is of scene ``k = i % 3`` and holds one blob of object ``k`` in channel ``k``.

    Objects 1..3 are ``ScenePool.objects`` (apple, bell, cup) and concept 4
    ("ghost") never appears; ``ScenePool.scenes`` are the class names of
    :class:`PlantedClassifier` (orchard, church, kitchen, and "nothing", which
    no image is labelled).
    """

    objects = ["apple", "bell", "cup"]
    scenes = ["orchard", "church", "kitchen", "nothing"]
    concepts = ConceptTable([Concept(i + 1, name, "object") for i, name in enumerate(objects)]
                            + [Concept(4, "ghost", "object")])

    def __init__(self, n=12, size=8, seed=1):
        rng = np.random.default_rng(seed)
        self.masks = np.zeros((n, 3, size, size), dtype=np.int64)
        for i in range(n):
            k = i % 3
            y, x = rng.integers(0, size - 3, size=2)
            h, w = rng.integers(1, 4, size=2)
            self.masks[i, k, y:y + h, x:x + w] = 1
        self.ids = [f"im{i}" for i in range(n)]

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        return torch.from_numpy(self.masks[i]).float(), {"index": i, "id": self.ids[i], "label": i % 3}

    def annotation(self, i):
        label = np.zeros(self.masks.shape[2:], dtype=np.int64)
        for k in range(3):
            label[self.masks[i, k] == 1] = k + 1
        return Annotation(masks={"object": [label]})

    def mask_shape(self, i):
        return self.masks.shape[2:]


class PlantedClassifier(nn.Module):
    """``conv`` units 0..2 copy image channels 0..2 (detectors of apple, bell, cup); units 3..5 are
    constants the head ignores.  Logit k = 10 * mean(unit k) for k < 3; class 3 ("nothing") has a
    constant logit 0.05, so an image whose own unit is switched off is classified as "nothing"."""

    def __init__(self):
        super().__init__()
        self.conv = planted_conv(6, {(k, k): 1.0 for k in range(3)}, {3: 0.5, 4: 1.0, 5: 2.0})
        self.head = nn.Sequential(nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
        with torch.no_grad():
            self.head[3].weight.zero_()
            self.head[3].bias.zero_()
            for k in range(3):
                self.head[3].weight[k, k] = 10.0
            self.head[3].bias[3] = 0.05

    def forward(self, x):
        return self.head(self.conv(x))


# ---------------------------------------------------------------------------- plain pools
class LabelledTensorPool(Dataset):
    """A plain pool from a tensor of images ``(N, 3, H, W)`` and their class ``labels``.

    Ids ``img<i>``, source "test"; a label of -1 marks an unlabelled image.
    """

    def __init__(self, images: torch.Tensor, labels: list[int]) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], {"index": i, "id": f"img{i}", "source": "test", "label": self.labels[i]}


class QuadrantClassifier(nn.Module):
    """Class 0 scores 10 x the mean of channel 0 over the bottom-right quadrant; class 1 scores 6."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        evidence = x[:, 0, h // 2:, w // 2:].mean(dim=(1, 2)) * 10 + self.anchor
        return torch.stack([evidence, torch.full_like(evidence, 6.0)], dim=1)


def quadrants(pixels: np.ndarray) -> np.ndarray:
    """Segments 0..3: top-left, top-right, bottom-left, bottom-right."""
    h, w = pixels.shape[:2]
    labels = np.zeros((h, w), dtype=np.int64)
    labels[:h // 2, w // 2:] = 1
    labels[h // 2:, :w // 2] = 2
    labels[h // 2:, w // 2:] = 3
    return labels


class UnlabelledTensorPool(Dataset):
    """A plain pool: item ``(image, meta)`` from a tensor of images, all from ``source``, no labels.

    Ids ``<source>-<i>``, every label -1.
    """

    def __init__(self, images: torch.Tensor, source: str = "test") -> None:
        self.images = images
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], {"index": i, "id": f"{self.source}-{i}", "source": self.source, "label": -1}


class SourcePool(Dataset):
    """Images of constant value ``values[i]``; every item from one named source.

    Ids ``<source>/<i>``; with ``raw``, ``raw_image(i)`` is a (2 size, 3 size)
    picture of grey level ``50 * values[i]`` (for thumbnails).
    """

    def __init__(self, values, source: str, *, size: int = 8, raw: bool = False) -> None:
        self.values, self.source, self.size = list(values), source, size
        if raw:
            self.raw_image = lambda i: np.full((size * 2, size * 3, 3), int(self.values[i] * 50), np.uint8)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int):
        image = torch.full((3, self.size, self.size), float(self.values[i]))
        return image, {"index": i, "id": f"{self.source}/{i}", "source": self.source, "label": -1}


def scaling_net(weight: float) -> nn.Sequential:
    """conv (1x1, every weight ``weight``) -> relu -> pool: channel mean of 3 * weight * value."""
    net = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 2, 1, bias=False),
        relu=nn.ReLU(),
        pool=nn.MaxPool2d(2),
        flat=nn.Flatten(),
        fc=nn.Linear(2 * 4 * 4, 1),
    ))
    with torch.no_grad():
        net.conv.weight.fill_(weight)
    return net


def source_pools() -> list[SourcePool]:
    """"objects" (values 1.0, 1.5, 1.2) and "scenes" (2.0, 3.0, 2.5, 2.2): through
    ``scaling_net(1.0)`` every scene image outscores every object image."""
    return [SourcePool([1.0, 1.5, 1.2], "objects"), SourcePool([2.0, 3.0, 2.5, 2.2], "scenes")]


# ---------------------------------------------------------------------------- files
def make_broden(root: Path, n: int, size: int = 32, seed: int = 0) -> Path:
    """Random images with a bright square ("box", object) on a dark "floor" (material).

    ``n`` images ``im0000``.. of ``size`` px: dark noise (0..59) with one
    bright square of side 6..13 (the "box" mask, concept 1), "floor" (2)
    everywhere else, scene "room" (3) for even images and "yard" (4) for odd.
    Returns the Broden folder written at ``root``.
    """
    concepts = ConceptTable.from_names({"object": ["box"], "material": ["floor"], "scene": ["room", "yard"]})
    rng = np.random.default_rng(seed)

    def records():
        for i in range(n):
            image = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            obj = np.zeros((size, size), dtype=np.int32)
            s = int(rng.integers(6, 14))
            y, x = rng.integers(0, size - s, size=2)
            image[y:y + s, x:x + s] = rng.integers(180, 255, size=3, dtype=np.uint8)
            obj[y:y + s, x:x + s] = 1
            floor = np.where(obj == 0, 2, 0).astype(np.int32)
            yield BrodenRecord(id=f"im{i:04d}", image=image,
                               annotation=Annotation(masks={"object": [obj], "material": [floor]},
                                                     image_labels={"scene": [3 + i % 2]}))

    return write_broden(root, records(), concepts)


class HostilePickle:
    """Unpickling this creates the file ``path``: what a hostile state file would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant_pickle(path: Path, marker: Path, *, field: str = "payload") -> None:
    """Write at ``path`` a pickled state (``format``, ``key``, ``field``) whose loading creates ``marker``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"format": 1, "key": "x", field: HostilePickle(marker)}))


# ---------------------------------------------------------------------------- interrupting runs
def interrupt_after(calls):
    """A progress callback that stops the run (as Ctrl-C would) after ``calls`` reports."""
    seen = {"n": 0}

    def progress(done, total):
        seen["n"] += 1
        if seen["n"] >= calls:
            raise KeyboardInterrupt

    return progress


def counting():
    """``(seen, progress)``: a progress callback that appends each report's ``done`` to ``seen``."""
    seen = []
    return seen, lambda done, total: seen.append(done)


#: A world of 3 scenes and 6 objects at 64 px, with a few dozen images: training tests in seconds.
TINY_WORLD = dict(n_scenes=3, n_objects=6, size=64, n_train=24, n_val=12, n_dissect=4,
                  n_object_train=18, n_object_val=12)


def tiny_world(tmp_path_factory, **changes):
    """Generate :data:`TINY_WORLD` (with ``changes``) in a fresh temporary folder; its ``WorldPaths``."""
    from unitscope.data.world import generate_world

    return generate_world(tmp_path_factory.mktemp("world") / "w", workers=0, **dict(TINY_WORLD, **changes))
