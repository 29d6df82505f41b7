"""The pool's annotations as label files: decoded once, beside the network, and kept.

During pass 1 a worker process decodes each batch's masks (on the CPU the
forward pass leaves idle) into a file that pass 2 reads back: per image the
concepts it holds, and per group of images sharing a mask shape the label
layers re-indexed over the group's concepts.  With a label cache, batches
of images with a stable annotation key are kept for later dissections of
the same pool (another network, layer or threshold).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unitscope.concepts import Annotation, ConceptTable
from unitscope.data.resample import nearest_picks, subsampled_shape
from unitscope.data.workers import worker_batches
from unitscope.experiments.resume import config_key
from unitscope.stats.pair_overlap import compact_labels


class _AnnotationView(Dataset):
    """Item ``i``: ``(label layers (L, sh, sw) int64 of concept index or -1, categories, concepts found)``.

    Image-level labels become whole-image layers.  Masks larger than
    ``mask_size`` (longest side) are subsampled by nearest neighbour at
    pixel centres, ties to the lower pixel (:mod:`unitscope.data.resample`;
    for a halving the pixels ``F.interpolate(mode="nearest")`` picks); the concepts found are
    counted at the masks' own resolution.
    """

    def __init__(self, pool, mask_size: int | None, num_concepts: int) -> None:
        self.pool = pool
        self.mask_size = mask_size
        self.num_concepts = num_concepts

    def __len__(self) -> int:
        return len(self.pool)

    def _target(self, shape: tuple[int, int]):
        """``(indexer, size)`` of the subsampled mask; the indexer is None to keep the native size."""
        size = subsampled_shape(shape, self.mask_size)
        if size == tuple(shape):
            return None, size
        return nearest_picks(shape, size), size

    def __getitem__(self, i: int):
        ann: Annotation = self.pool.annotation(i)
        target, out_shape = self._target(tuple(ann.mask_shape or self.pool.mask_shape(i)))
        layers, categories, found = [], [], []
        for category, maps in ann.masks.items():
            if maps:
                categories.append(category)
            for m in maps:
                m = np.asarray(m)
                found.append(np.flatnonzero(np.bincount(m.ravel(), minlength=1)))
                layers.append(m if target is None else m[target])
        for category, numbers in ann.image_labels.items():
            if numbers:
                categories.append(category)
            for number in numbers:
                found.append(np.array([number]))
                layers.append(np.full(out_shape, number, dtype=np.int64))
        if not layers:
            layers.append(np.zeros(out_shape, dtype=np.int64))
        found = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        found = found[(found > 0) & (found <= self.num_concepts)] - 1  # numbers -> indices
        stack = np.stack(layers).astype(np.int64) - 1  # number n -> index n - 1; none -> -1
        return torch.from_numpy(stack), sorted(set(categories)), found


class _LabelBatches(Dataset):
    """Item ``b``: the path of batch ``b``'s annotations, decoded, prepared for counting and saved.

    Runs in a worker process during pass 1, on the CPU the forward pass
    leaves idle; pass 2 reads the files back (:func:`_load_label_batch`).
    Each file holds the concepts found per image (for the pool's concept
    counts) and, per group of images sharing a mask shape, the label layers
    re-indexed over the group's concepts (:func:`compact_labels`).

    With a ``cache`` folder, a batch whose images all have an
    :meth:`~unitscope.data.annotated.AnnotatedPool.annotation_key` is saved
    there under a hash of those keys, the mask size and the concept table,
    and found there by any later dissection of the same images (another
    network, layer or threshold): annotations depend on the pool alone.
    Other batches go to the run's own folder.
    """

    def __init__(self, shard, batch_size: int, mask_size, concepts: ConceptTable, folder: Path, rank: int,
                 cache: Path | None = None):
        self.view = _AnnotationView(shard, mask_size, concepts.max_number)
        self.batch_size = batch_size
        self.folder = folder
        self.rank = rank
        self.cache = cache
        self.num_concepts = concepts.max_number
        self.categories = concepts.categories
        self.membership = torch.zeros(len(self.categories), self.num_concepts)  # category -> its concepts
        for c in concepts:
            self.membership[self.categories.index(c.category), c.number - 1] = 1.0
        geometry = getattr(shard, "geometry_key", None)
        # masks cropped or padded like the images are other annotations than the whole masks
        self._salt = config_key({"format": _LABEL_FORMAT, "mask_size": mask_size,
                                 "concepts": concepts.to_records(),
                                 **({"geometry": geometry()} if callable(geometry) and geometry() else {})})

    def __len__(self) -> int:
        return math.ceil(len(self.view) / self.batch_size)

    def _range(self, b: int) -> range:
        first = b * self.batch_size
        return range(first, min(first + self.batch_size, len(self.view)))

    def path(self, b: int) -> Path:
        """Where batch ``b``'s file goes (the cache when every image has a key)."""
        key_of = getattr(self.view.pool, "annotation_key", None)
        if self.cache is not None and key_of is not None:
            keys = [key_of(i) for i in self._range(b)]
            if all(k is not None for k in keys):
                return self.cache / f"{config_key({'salt': self._salt, 'images': keys})}.pt"
        return self.folder / f"labels_rank{self.rank}_{b:07d}.pt"

    def cached(self, b: int) -> str | None:
        """Batch ``b``'s file when the label cache has it already."""
        path = self.path(b)
        if self.cache is None or path.parent != self.cache or not path.exists():
            return None
        import zipfile

        # A cheap look (the archive's directory) that finds a truncated or foreign entry before
        # the run starts; a damaged entry is an error, never a silent decode (STYLE: caches).
        if not zipfile.is_zipfile(path):
            raise RuntimeError(f"the label cache entry {path} is corrupt (not a saved tensor file); "
                               "delete it (or the label cache folder) and run again")
        return str(path)

    def __getitem__(self, b: int) -> str:
        from unitscope._files import atomic_write_bytes

        path = self.path(b)
        items = [self.view[i] for i in self._range(b)]
        n = len(items)
        category_index = {cat: j for j, cat in enumerate(self.categories)}
        annotated = torch.zeros(n, len(self.categories))
        present = torch.zeros(n, self.num_concepts, dtype=torch.bool)
        for i, (_, cats, found) in enumerate(items):
            annotated[i, [category_index[c] for c in cats if c in category_index]] = 1.0
            present[i, torch.from_numpy(found)] = True
        valid = (annotated @ self.membership) > 0  # concepts whose category is annotated, per image
        by_shape: dict[tuple, list[int]] = {}
        for i, (labels, _, _) in enumerate(items):
            by_shape.setdefault(tuple(labels.shape[1:]), []).append(i)
        groups = []
        for shape, members in by_shape.items():
            depth = max(items[i][0].shape[0] for i in members)
            labels = torch.full((len(members), depth) + shape, -1, dtype=torch.int64)
            for j, i in enumerate(members):
                labels[j, : items[i][0].shape[0]] = items[i][0]
            concepts, index, area = compact_labels(labels.flatten(2), valid[members], self.num_concepts)
            groups.append({"members": members, "shape": shape, "concepts": concepts, "index": index,
                           "area": area, "valid": valid[members]})
        buffer = io.BytesIO()
        torch.save({"present": present, "groups": groups}, buffer)
        # (the label cache holds thousands of files, other runs write into it, and a damaged
        # entry is refused: no listing of the folder, no fsync per file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buffer.getvalue(), clean=False, durable=False)
        except OSError as exc:
            raise OSError(self._write_error(path.parent, exc)) from exc
        return str(path)

    def _write_error(self, folder: Path, exc: OSError) -> str:
        """One line naming the folder a label file could not be written to, and the way out."""
        reason = exc.strerror or str(exc)
        if self.cache is not None and folder == self.cache:
            return (f"cannot write the decoded-label cache in {folder} ({reason}); free space there or "
                    "dissect without it (--label-cache none)")
        return f"cannot write the dissection's decoded labels in {folder} ({reason}); free space there"


#: Version of the label files' layout (part of their cache key).  2: masks subsampled at pixel
#: centres (:mod:`unitscope.data.resample`); 1 floored, so its entries hold other pixels.
_LABEL_FORMAT = 2


def _load_label_batch(path: str | Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except FileNotFoundError as exc:
        raise RuntimeError(f"the dissection's decoded labels {path} are missing (was the label cache "
                           "cleaned during the run?); start the run again with restart=True") from exc
    except Exception as exc:
        import pickle

        from unitscope._files import one_line

        # (torch's own message for a refused object is a page of advice to load it unsafely)
        reason = ("it holds Python objects, not just tensors, and is never unpickled"
                  if isinstance(exc, pickle.UnpicklingError) else one_line(exc))
        raise RuntimeError(f"the dissection's decoded labels {path} are unreadable ({reason}); "
                           "delete that file and start the run again") from None


def _label_loader(label_batches: _LabelBatches, start_batch: int, num_workers: int):
    """The label file of each batch from ``start_batch`` on, in order, each once it is written.

    Batches found in the label cache are not decoded again; the others are
    decoded by a worker process (in this one when only a few are missing).
    """
    batches = range(start_batch, len(label_batches))
    cached = {b: label_batches.cached(b) for b in batches}  # (before the first batch: a damaged cache
    missing = [b for b in batches if cached[b] is None]      #  entry is refused up front)
    workers = max(1, num_workers) if len(missing) > 2 else 0
    decoded = worker_batches(label_batches, batch_size=None, sampler=missing, num_workers=workers,
                             prefetch_factor=4 if workers else None) if missing else None

    def tokens():
        try:
            for b in batches:
                yield cached[b] if cached[b] is not None else next(decoded)
        finally:
            # Stop the worker now rather than when the garbage collector gets to it: a failed
            # run's cleanup must not race with a label file still being written.
            if decoded is not None:
                decoded.close()

    return tokens()
