"""Loading an ImageFolder tree into memory, once, as a uint8 tensor.

The world's datasets are small (a few thousand 128 px images), so training
decodes every PNG once and then works on an in-memory ``(N, 3, H, W)``
uint8 tensor: no data loader, no per-epoch decoding.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from unitscope.data.decode import read_image

__all__ = ["InMemoryImages", "load_image_folder", "normalize"]

_EXTENSIONS = {".png", ".jpg", ".jpeg"}


@dataclass
class InMemoryImages:
    """Decoded images of an ImageFolder tree.

    Attributes
    ----------
    images : Tensor, uint8, shape (N, 3, H, W)
    labels : Tensor, int64, shape (N,)
        Index into ``class_names``.
    class_names : list of str
    paths : list of Path
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    paths: list[Path]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _decode(path: Path) -> np.ndarray:
    # The pools' decoder, so that training sees the pixels every experiment sees.
    return np.asarray(read_image(path))


def load_image_folder(root: str | Path, class_names: Sequence[str] | None = None, *,
                      threads: int = 2) -> InMemoryImages:
    """Decode every image of ``root/<class>/<file>`` into one uint8 tensor.

    Parameters
    ----------
    root : str or Path
    class_names : sequence of str, optional
        Class order (label = position).  Default: the sub-folder names,
        sorted (the ``ImageFolder`` convention).  Every name must have a
        folder.
    threads : int, optional
        Decoding threads (PIL releases the GIL while decoding).

    Returns
    -------
    InMemoryImages

    Raises
    ------
    FileNotFoundError
        If ``root`` or a class folder is missing.
    ValueError
        If there are no images, an image cannot be decoded, or images
        differ in size.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if class_names is None:
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    class_names = list(class_names)
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"class folder {folder} is missing")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _EXTENSIONS)
        paths += files
        labels += [k] * len(files)
    if not paths:
        raise ValueError(f"no images under {root}")
    with ThreadPoolExecutor(max(1, threads)) as pool:
        arrays = list(pool.map(_decode, paths, chunksize=64))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images under {root} differ in size: {sorted(shapes)[:3]}")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return InMemoryImages(images, torch.tensor(labels, dtype=torch.int64), class_names, paths)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` to normalised float32 (channels-last memory layout, faster on CPU)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    x = (images.float() - m) / s
    return x.contiguous(memory_format=torch.channels_last)
