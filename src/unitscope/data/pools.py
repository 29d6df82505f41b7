"""Image pools: datasets of ``(image tensor, meta)`` with stable ids and sources.

Every pool is a :class:`torch.utils.data.Dataset`.  Item ``i`` is
``(image, meta)``: ``image`` a float tensor ``(3, H, W)`` after the pool's
transform, ``meta`` a dict with

``index``
    position of the item in *this* pool (``pool.raw_image(meta["index"])``);
``global_index``
    position in the pool this one was cut from by :meth:`Pool.subset` /
    :meth:`Pool.shard` (equal to ``index`` for an uncut pool), so sharded runs
    can merge per-image results into the single-process order;
``id``
    a stable string id: the image's path relative to the pool's image folder,
    without extension, with ``/`` separators (``"kitchen/0001"``);
``source``, ``label`` (class index or ``-1``), ``path`` (the file, as str).

Pools are plain picklable objects (no open files), so they work with
``DataLoader(num_workers > 0)``; batch them with :func:`collate`, which stacks
the images and keeps the metas as a list.

Bad files: by default a missing or corrupt image raises
:class:`~unitscope.data.errors.CorruptFileError` naming the file.  With
``skip_bad=True`` files that are missing or whose header cannot be read are
dropped when the pool is built, and files that fail to decode later are
returned as :class:`SkippedItem` (which :func:`collate` drops and lists in
``metas.skipped``); both are recorded in ``pool.skipped`` as
``(path, reason)`` -- read-time skips only in the process that read them.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .decode import DECODE_ERRORS, check_file, check_header, read_image
from .errors import CorruptFileError
from .transforms import image_transform, to_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "Pool",
    "PlainPool",
    "SkippedItem",
    "BatchMetas",
    "collate",
    "read_image",
]

#: File extensions treated as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Kept under its old name for the readers that import it from here.
_DECODE_ERRORS = DECODE_ERRORS


@dataclass(frozen=True)
class PoolItem:
    """One entry of a pool: image file, stable id, class label and pool-specific extras."""

    id: str
    path: Path
    label: int = -1
    extra: Any = None


@dataclass(frozen=True)
class SkippedItem:
    """Returned by ``pool[i]`` in place of ``(image, meta)`` for a bad file when ``skip_bad=True``."""

    index: int
    id: str
    path: str
    reason: str


class BatchMetas(list):
    """The metas of a batch (a list of dicts) plus ``skipped``: ``(path, reason)`` of dropped items."""

    def __init__(self, metas: Iterable[dict] = (), skipped: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(metas)
        self.skipped = list(skipped)


def collate(batch: Sequence[Any]) -> tuple[torch.Tensor, BatchMetas]:
    """Batch pool items for a DataLoader: stack images, keep metas as a list.

    Parameters
    ----------
    batch : sequence
        Items returned by a pool: ``(image, meta)`` pairs or :class:`SkippedItem`.

    Returns
    -------
    images : Tensor
        ``(N, 3, H, W)`` (``(0,)`` when every item was skipped).
    metas : BatchMetas
        A list of the N meta dicts; ``metas.skipped`` lists ``(path, reason)``
        of the items dropped because their files were bad.

    Raises
    ------
    ValueError
        If the images do not all have the same shape (give the pool a
        transform that resizes).
    """
    images, metas, skipped = [], [], []
    for item in batch:
        if isinstance(item, SkippedItem):
            skipped.append((item.path, item.reason))
            continue
        image, meta = item
        images.append(image)
        metas.append(meta)
    if not images:
        return torch.empty(0), BatchMetas(metas, skipped)
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot batch images of different shapes {sorted(shapes)}; give the pool a "
            "transform (or preprocessing) that resizes them to one size"
        )
    return torch.stack(images), BatchMetas(metas, skipped)


def _resolve_transform(transform: Callable | None, preprocessing: Any, *, crop: bool) -> Callable:
    if transform is not None and preprocessing is not None:
        raise ValueError("give either transform or preprocessing, not both")
    if transform is not None:
        if not callable(transform):
            raise ValueError(f"transform must be callable, got {transform!r}")
        return transform
    if preprocessing is not None:
        return image_transform(preprocessing, crop=crop)
    return to_tensor


class Pool(Dataset):
    """Base class of every pool; see the module docstring for the item contract.

    Subclasses fill ``self._items`` (a list of :class:`PoolItem`) and may add
    meta keys by overriding :meth:`_extra_meta`.
    """

    #: Default geometry when a pool is given a preprocessing (see transforms).
    _crop_by_default = True

    def __init__(
        self,
        items: Sequence[PoolItem],
        *,
        source: str,
        transform: Callable | None = None,
        preprocessing: Any = None,
        class_names: Sequence[str] = (),
        skip_bad: bool = False,
        skipped: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._items = list(items)
        self._global = np.arange(len(self._items), dtype=np.int64)
        self._source = str(source)
        self.transform = _resolve_transform(transform, preprocessing, crop=self._crop_by_default)
        self._class_names = list(class_names)
        self.skip_bad = bool(skip_bad)
        #: ``(path, reason)`` of every file skipped so far (``skip_bad=True``).
        self.skipped: list[tuple[str, str]] = list(skipped)

    # -- the Dataset protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def _check_index(self, index: int) -> int:
        n = len(self._items)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a pool of {n} images")
        return index % n if n else index

    def __getitem__(self, index: int):
        index = self._check_index(index)
        item = self._items[index]
        try:
            image = self.transform(self._read(index))
            meta = self._meta(index)
            meta.update(self._extra_meta(index))
        except CorruptFileError as exc:
            if not self.skip_bad:
                raise
            self.skipped.append((str(exc.path), exc.reason))
            return SkippedItem(index, item.id, str(exc.path), exc.reason)
        return image, meta

    def _meta(self, index: int) -> dict:
        item = self._items[index]
        return {
            "index": index,
            "global_index": int(self._global[index]),
            "id": item.id,
            "source": self._source,
            "label": item.label,
            "path": str(item.path),
        }

    def _extra_meta(self, index: int) -> dict:
        return {}

    def _read(self, index: int) -> Image.Image:
        """The decoded RGB image of item ``index``; pools that know its size check it here."""
        return read_image(self._items[index].path)

    # -- accessors ------------------------------------------------------------
    def raw_image(self, index: int) -> np.ndarray:
        """The original pixels of image ``index``, ``(H, W, 3)`` uint8 (no transform)."""
        return np.asarray(self._read(self._check_index(index)), dtype=np.uint8).copy()

    def meta(self, index: int) -> dict:
        """The meta dict of item ``index`` without decoding the image."""
        index = self._check_index(index)
        meta = self._meta(index)
        return meta

    @property
    def source(self) -> str:
        """The pool's name, carried by every item as ``meta["source"]``."""
        return self._source

    @property
    def ids(self) -> list[str]:
        """Every item's stable image id, in pool order."""
        return [item.id for item in self._items]

    @property
    def labels(self) -> list[int]:
        """Every item's class index (``-1``: no class), in pool order."""
        return [item.label for item in self._items]

    @property
    def paths(self) -> list[Path]:
        """Every item's image file, in pool order."""
        return [item.path for item in self._items]

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by label (empty when the pool has no classes)."""
        return list(self._class_names)

    @property
    def global_indices(self) -> np.ndarray:
        """For each item, its index in the uncut pool (see :meth:`subset`)."""
        return self._global.copy()

    # -- cutting --------------------------------------------------------------
    def _copy_with(self, positions: np.ndarray) -> "Pool":
        new = copy.copy(self)
        new._items = [self._items[i] for i in positions]
        new._global = self._global[positions].copy()
        new.skipped = list(self.skipped)
        new._reset_caches()
        return new

    def _reset_caches(self) -> None:
        """Forget per-pool caches (called on cut copies)."""

    def subset(self, indices: Iterable[int]) -> "Pool":
        """A pool of the given items, in the given order.

        ``meta["index"]`` restarts at 0 in the subset; ``meta["global_index"]``
        keeps the index in the uncut pool.

        Raises
        ------
        IndexError
            If an index is out of range.
        """
        positions = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        n = len(self._items)
        bad = positions[(positions < -n) | (positions >= n)]
        if bad.size:
            raise IndexError(f"indices {bad[:5].tolist()} out of range for a pool of {n} images")
        return self._copy_with(positions % n if n else positions)

    def shard(self, rank: int, world_size: int, *, mode: str = "contiguous") -> "Pool":
        """The part of the pool that process ``rank`` of ``world_size`` handles.

        Parameters
        ----------
        rank, world_size : int
            ``0 <= rank < world_size``.
        mode : {"contiguous", "strided"}
            ``"contiguous"`` (default): rank ``r`` takes items
            ``[r * n // world_size, (r + 1) * n // world_size)``, so the shards
            concatenated in rank order are the pool in its original order.
            ``"strided"``: rank ``r`` takes items ``r, r + world_size, ...``
            (balances pools sorted by class).  Either way the shards partition
            the pool exactly and each keeps the pool's order.

        Raises
        ------
        ValueError
            On an invalid rank, world size or mode.
        """
        if int(world_size) < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if not 0 <= int(rank) < int(world_size):
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        n = len(self._items)
        if mode == "contiguous":
            positions = np.arange(rank * n // world_size, (rank + 1) * n // world_size)
        elif mode == "strided":
            positions = np.arange(rank, n, world_size)
        else:
            raise ValueError(f"mode must be 'contiguous' or 'strided', got {mode!r}")
        return self._copy_with(positions.astype(np.int64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self._source!r}, {len(self)} images)"


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _unique_ids(relpaths: Sequence[str]) -> list[str]:
    """Ids are relative paths without extension, or with it where two files share a stem."""
    stems = [os.path.splitext(p)[0] for p in relpaths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else p for s, p in zip(stems, relpaths)]


def existing_folder(root: str | Path, what: str) -> Path:
    """``root`` with ``~`` expanded and resolved; a ``FileNotFoundError`` naming ``what`` unless it is a folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{what} {root} does not exist or is not a folder")
    return root.resolve()


def scan_images(root: Path, *, recursive: bool = True) -> list[str]:
    """Sorted relative posix paths of the image files under ``root``."""
    found = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(root)
            for name in filenames:
                if _is_image_name(name):
                    found.append((rel / name).as_posix())
    else:
        found = [p.name for p in root.iterdir() if p.is_file() and _is_image_name(p.name)]
    return sorted(found)


class PlainPool(Pool):
    """A folder of images, optionally one sub-folder per class (ImageFolder style).

    Parameters
    ----------
    root : str or Path
        The folder.  When it has sub-folders holding images, each immediate
        sub-folder is a class (labels ``0, 1, ...`` in sorted name order, as
        ``torchvision.datasets.ImageFolder``); images directly in ``root`` then
        get label ``-1``.  Without sub-folders every label is ``-1``.
    source : str, optional
        The pool's name (``meta["source"]``); defaults to the folder's name.
    transform : callable, optional
        ``PIL.Image -> tensor (3, H, W)``.
    preprocessing : object, optional
        Alternative to ``transform``: anything with ``input_size``, ``mean``,
        ``std``; builds ``image_transform(preprocessing, crop=True)``.  With
        neither, images are returned at their size in ``[0, 1]``.
    recursive : bool, optional
        Look into sub-folders (default).  ``False``: only files directly in
        ``root``, no classes.
    skip_bad : bool, optional
        Skip and count bad files instead of raising (see module docstring).
    label_pattern : str, optional
        A regular expression whose first group, matched against each file
        name, is the integer class label (e.g. ``r"^(\\d+)_"`` for ImageNet
        samples named ``0042_n01234_name.jpg``); overrides folder classes.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    ValueError
        If it holds no images (or none readable, with ``skip_bad``).

    Notes
    -----
    The order is the sorted relative paths, the same on every machine.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        source: str | None = None,
        transform: Callable | None = None,
        preprocessing: Any = None,
        recursive: bool = True,
        skip_bad: bool = False,
        label_pattern: str | None = None,
    ) -> None:
        self.root = existing_folder(root, "image folder")
        relpaths = scan_images(self.root, recursive=recursive)
        if not relpaths:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {self.root}")
        class_names = sorted({p.split("/")[0] for p in relpaths if "/" in p}) if recursive else []
        class_index = {name: i for i, name in enumerate(class_names)}
        items, skipped = [], []
        for relpath, image_id in zip(relpaths, _unique_ids(relpaths)):
            path = self.root / relpath
            label = class_index.get(relpath.split("/")[0], -1) if "/" in relpath else -1
            if label_pattern is not None:
                match = re.search(label_pattern, Path(relpath).name)
                if match is None:
                    raise ValueError(f"file name {relpath!r} does not match label pattern {label_pattern!r}")
                label = int(match.group(1))
            # Without skip_bad only a stat per file: a missing or empty file is refused before any work.
            reason = check_header(path) if skip_bad else check_file(path)
            if reason is not None:
                if not skip_bad:
                    raise CorruptFileError(path, reason)
                skipped.append((str(path), reason))
                continue
            items.append(PoolItem(image_id, path, label))
        if not items:
            raise ValueError(f"none of the {len(relpaths)} images in {self.root} is readable")
        super().__init__(items, source=self.root.name if source is None else source, class_names=class_names,
                         transform=transform, preprocessing=preprocessing, skip_bad=skip_bad, skipped=skipped)
