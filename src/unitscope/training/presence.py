"""Which objects each scene image of a world shows, recomputed from the world's definition.

The world writes per-image object lists only for its Broden (dissection)
images.  Every image is a pure function of ``(seed, split, index)``
(:func:`~unitscope.data.world.render.image_rng`), so the lists of the
training and held-out scene images are recomputed by drawing each image
again, exactly as the world's export drew it, and reading which objects
stayed visible.  Drawing costs a few milliseconds an image, so the result
is kept under ``<cache_dir>/presence/`` keyed by the world's fingerprint
(a tensor file read with ``weights_only=True``); the world's own files are
never touched.  Each time, a few of the redrawn images are compared with
the files on disk, pixel for pixel, so a world whose images were not made
by this code is refused instead of trained on wrong targets.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from unitscope._files import atomic_write_bytes, one_line
from unitscope.data.world.export import load_world, world_fingerprint
from unitscope.data.world.render import compose_scene, image_rng

__all__ = ["image_index", "scene_objects", "scene_presence"]

#: Redrawn images compared with the files on disk, per call.
CHECKED_IMAGES = 3


def image_index(path: Path) -> int:
    """The world's image index of ``<split>_<index>.png``."""
    try:
        return int(Path(path).stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path} is not named <split>_<index> as the world writes its images") from None


def scene_objects(world_dir: str | Path, split: str, indices: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Redraw scene images ``indices`` of ``split``: presence ``(n, objects)`` bool and the images.

    The images are returned so that callers can check them against the
    files (``(H, W, 3)`` uint8 each).
    """
    defn, doc = load_world(world_dir)
    gen = doc.get("generation", {})
    seed, size = int(gen.get("seed", 0)), int(gen.get("size", 128))
    first = defn.concepts().find(defn.object_names[0], "object").number
    presence = np.zeros((len(indices), len(defn.objects)), bool)
    images = []
    for row, i in enumerate(indices):
        r = compose_scene(defn, image_rng(seed, f"scene/{split}", int(i)), size, scene=int(i) % len(defn.scenes))
        counts = np.bincount(r.annotation.masks["object"][0].ravel(), minlength=first + len(defn.objects))
        presence[row] = counts[first:first + len(defn.objects)] > 0
        images.append(r.image)
    return presence, images


def scene_presence(world_dir: str | Path, split: str, paths: Sequence[Path], images: torch.Tensor, *,
                   cache_dir: str | Path | None = None) -> torch.Tensor:
    """Object presence of the scene images at ``paths`` (float ``(N, objects)``, 1 = visible).

    Parameters
    ----------
    world_dir : str or Path
    split : {'train', 'val'}
    paths : sequence of Path
        The image files, as :func:`~unitscope.training.data.load_image_folder` lists them.
    images : Tensor, uint8, shape (N, 3, H, W)
        Their pixels, for the check.
    cache_dir : str or Path, optional
        Keep the lists under ``cache_dir/presence/`` (default: recompute).

    Raises
    ------
    ValueError
        If a redrawn image differs from its file (the world was not made by
        this version's drawing code, or was edited).
    """
    indices = [image_index(p) for p in paths]
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir).expanduser() / "presence" / f"{world_fingerprint(world_dir)[:16]}-{split}.pt"
    table = _read(cache, indices) if cache is not None else None
    if table is None:
        presence, _ = scene_objects(world_dir, split, sorted(set(indices)))
        order = {i: k for k, i in enumerate(sorted(set(indices)))}
        table = torch.from_numpy(presence[[order[i] for i in indices]].astype(np.float32))
        if cache is not None:
            buffer = io.BytesIO()
            torch.save({"indices": torch.tensor(indices, dtype=torch.int64), "presence": table}, buffer)
            atomic_write_bytes(cache, buffer.getvalue())
    _check_some(world_dir, split, indices, images, paths)
    return table


def _read(cache: Path, indices: Sequence[int]) -> torch.Tensor | None:
    if not cache.is_file():
        return None
    try:
        doc = torch.load(cache, weights_only=True)
        table, listed = doc["presence"], doc["indices"].tolist()
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"object-presence cache {cache} is corrupt ({one_line(exc)}); delete it") from None
    if listed != list(indices) or table.shape[0] != len(listed):
        raise ValueError(f"object-presence cache {cache} lists other images than {len(indices)} of the world; "
                         "delete it")
    return table


def _check_some(world_dir, split: str, indices: Sequence[int], images: torch.Tensor, paths) -> None:
    rows = np.linspace(0, len(indices) - 1, min(CHECKED_IMAGES, len(indices))).astype(int).tolist()
    _, drawn = scene_objects(world_dir, split, [indices[r] for r in rows])
    for r, pixels in zip(rows, drawn):
        if not np.array_equal(images[r].permute(1, 2, 0).numpy(), pixels):
            raise ValueError(f"{paths[r]} differs from the image its world definition draws; "
                             "regenerate the world with this unitscope (`unitscope world`)")
