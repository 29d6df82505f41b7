"""Writing the world to disk: ImageFolder trees, a Broden pool and ``world.json``.

Layout of a world directory::

    DIR/world.json                              definition + generation config + statistics
    DIR/scenes/{train,val}/<scene>/<id>.png     scene-centric ImageFolder (SceneNet's data)
    DIR/objects/{train,val}/<object>/<id>.png   object-centric ImageFolder (ObjectNet's data)
    DIR/broden/                                 Broden layout: held-out annotated scene images
    DIR/scenes_noobjects/val/<scene>/<id>.png   scenes/val with every object painted over
                                                by its background (the objects-removed control)

Each image is a pure function of ``(seed, split, index)`` (see
:func:`~unitscope.data.world.render.image_rng`), so images are rendered in
parallel worker processes in any order and the bytes do not depend on the
number of workers.  The directory is assembled in a temporary sibling and
moved into place with :func:`os.replace`: an interrupted run leaves nothing
half-written.  Asking again for a world that already exists with the same
configuration returns it without work.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from ..staging import make_staging_dir, move_into_place, remove_stale_staging
from .catalogue import default_world
from .definition import WorldDefinition
from .presets import world_preset
from .render import MIN_SIZE, compose_object_image, compose_scene, image_rng

__all__ = [
    "WORLD_FORMAT_VERSION",
    "DEFAULT_SIZES",
    "WorldPaths",
    "generate_world",
    "load_world",
    "world_fingerprint",
]

#: Bump when the drawing code changes what a seed produces.
WORLD_FORMAT_VERSION = 1

#: Default number of images per set (scene-centric, balanced over classes).
DEFAULT_SIZES = {
    "n_train": 5000,
    "n_val": 1000,
    "n_dissect": 1000,
    "n_object_train": 3600,
    "n_object_val": 720,
    "n_dissect_objects": 0,
}

_PNG = {"format": "PNG", "compress_level": 1}


@dataclass(frozen=True)
class WorldPaths:
    """Where the parts of a generated world live.

    Attributes
    ----------
    root, world_json : Path
    scenes_train, scenes_val : Path
        ImageFolder trees of the scene-centric dataset.
    objects_train, objects_val : Path
        ImageFolder trees of the object-centric dataset.
    broden : Path
        The annotated held-out pool (Broden layout).
    scenes_noobjects_val : Path
        ``scenes/val`` with the objects removed.
    seconds : float
        Time spent generating (0 when the world already existed).
    """

    root: Path
    world_json: Path
    scenes_train: Path
    scenes_val: Path
    objects_train: Path
    objects_val: Path
    broden: Path
    scenes_noobjects_val: Path
    seconds: float = 0.0

    @classmethod
    def of(cls, root: str | Path, *, seconds: float = 0.0) -> "WorldPaths":
        root = Path(root).expanduser().resolve()
        return cls(
            root=root,
            world_json=root / "world.json",
            scenes_train=root / "scenes" / "train",
            scenes_val=root / "scenes" / "val",
            objects_train=root / "objects" / "train",
            objects_val=root / "objects" / "val",
            broden=root / "broden",
            scenes_noobjects_val=root / "scenes_noobjects" / "val",
            seconds=seconds,
        )

    def dataset(self, task: str, split: str) -> Path:
        """The ImageFolder root of ``task`` (``'scene'``/``'object'``) and ``split`` (``'train'``/``'val'``)."""
        table = {
            ("scene", "train"): self.scenes_train, ("scene", "val"): self.scenes_val,
            ("object", "train"): self.objects_train, ("object", "val"): self.objects_val,
            ("scene_noobjects", "val"): self.scenes_noobjects_val,
        }
        try:
            return table[(task, split)]
        except KeyError:
            raise ValueError(f"no dataset for task {task!r} and split {split!r}; "
                             f"choose from {sorted(table)}") from None


def load_world(world_dir: str | Path) -> tuple[WorldDefinition, dict[str, Any]]:
    """Read ``world.json``: the definition and the whole document (config, statistics).

    Raises
    ------
    FileNotFoundError
        If the directory or its ``world.json`` is missing.
    ValueError
        If ``world.json`` is not a readable world description.
    """
    path = Path(world_dir).expanduser() / "world.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {world_dir} a world made by `unitscope world`?")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != "unitscope.world":
            raise ValueError("not a unitscope world description")
        return WorldDefinition.from_dict(doc["definition"]), doc
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is corrupt or not a world description: {exc}") from None


def world_fingerprint(world_dir: str | Path) -> str:
    """SHA-256 of ``world.json`` (definition, generation config and statistics)."""
    path = Path(world_dir).expanduser() / "world.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {world_dir} a world made by `unitscope world`?")
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# rendering jobs (run in worker processes)

_JOB_STATE: dict[str, Any] = {}


#: Largest image side: beyond it a world is gigabytes and hours to render, not a test bed.
MAX_SIZE = 1024


def _init_worker(defn_dict: dict, size: int, seed: int, tmp: str) -> None:
    _JOB_STATE.update(defn=WorldDefinition.from_dict(defn_dict), size=size, seed=seed, tmp=Path(tmp))


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **_PNG)


def _run_chunk(chunk: tuple[str, str, int, int]) -> list[dict]:
    """Render images ``[start, stop)`` of one set; write files or return Broden records."""
    kind, split, start, stop = chunk
    defn: WorldDefinition = _JOB_STATE["defn"]
    size, seed, tmp = _JOB_STATE["size"], _JOB_STATE["seed"], _JOB_STATE["tmp"]
    out = []
    for i in range(start, stop):
        rng = image_rng(seed, f"{kind}/{split}", i)
        if kind == "scene":
            r = compose_scene(defn, rng, size, scene=i % len(defn.scenes))
            cls = defn.scene_names[r.label]
        else:
            r = compose_object_image(defn, rng, size, obj=i % len(defn.objects))
            cls = defn.object_names[r.label]
        obj_map = r.annotation.masks["object"][0]
        visible = np.flatnonzero(np.bincount(obj_map.ravel(), minlength=1)[1:]) + 1
        item = {"kind": kind, "split": split, "index": i, "label": r.label,
                "objects": [int(v) for v in visible]}
        image_id = f"{split}_{i:06d}"
        if split == "dissect":
            item["id"] = f"{kind}_{i:06d}"
            item["image"] = r.image
            item["annotation"] = {
                "masks": {k: [m.astype(np.uint16) for m in v] for k, v in r.annotation.masks.items()},
                "image_labels": r.annotation.image_labels,
            }
        else:
            root = tmp / ("scenes" if kind == "scene" else "objects") / split / cls
            _save(root / f"{image_id}.png", r.image)
            if kind == "scene" and split == "val":
                _save(tmp / "scenes_noobjects" / split / cls / f"{image_id}.png", r.background)
        out.append(item)
    return out


def _chunks(kind: str, split: str, n: int, step: int) -> list[tuple[str, str, int, int]]:
    return [(kind, split, a, min(a + step, n)) for a in range(0, n, step)]


def _results(chunks, defn: WorldDefinition, size: int, seed: int, tmp: Path, workers: int) -> Iterator[list[dict]]:
    args = (defn.to_dict(), size, seed, str(tmp))
    if workers <= 1:
        _init_worker(*args)
        for c in chunks:
            yield _run_chunk(c)
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(workers, initializer=_init_worker, initargs=args) as pool:
        yield from pool.imap(_run_chunk, chunks)


def _generation_config(n_scenes, n_objects, seed, size, sizes, preset) -> dict[str, Any]:
    config = {"n_scenes": int(n_scenes), "n_objects": int(n_objects), "seed": int(seed), "size": int(size),
              **{k: int(v) for k, v in sizes.items()}}
    if preset is not None:  # only then: a default world's world.json is as before presets existed
        config["preset"] = preset
    return config


def _complete(paths: WorldPaths) -> bool:
    return all(p.exists() for p in (paths.world_json, paths.scenes_train, paths.scenes_val,
                                     paths.objects_train, paths.objects_val, paths.broden,
                                     paths.scenes_noobjects_val))


def generate_world(
    out_dir: str | Path,
    *,
    n_scenes: int = 10,
    n_objects: int = 24,
    seed: int = 0,
    size: int = 128,
    n_train: int = DEFAULT_SIZES["n_train"],
    n_val: int = DEFAULT_SIZES["n_val"],
    n_dissect: int = DEFAULT_SIZES["n_dissect"],
    n_object_train: int = DEFAULT_SIZES["n_object_train"],
    n_object_val: int = DEFAULT_SIZES["n_object_val"],
    n_dissect_objects: int = DEFAULT_SIZES["n_dissect_objects"],
    definition: WorldDefinition | None = None,
    preset: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[..., Any] | None = None,
) -> WorldPaths:
    """Generate the synthetic world and write it to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        The world directory (see the module docstring for its layout).
    n_scenes, n_objects : int, optional
        Scene and object classes of :func:`default_world` (10 and 24).
    seed : int, optional
        Same seed, same bytes.  Also chooses the class subset (see
        :func:`default_world`).
    size : int, optional
        Image side in pixels (default 128).
    n_train, n_val : int, optional
        Scene-centric images for training and validation (balanced over scenes).
    n_dissect : int, optional
        Held-out annotated scene images written to ``broden/``.
    n_object_train, n_object_val : int, optional
        Object-centric images (balanced over objects).
    n_dissect_objects : int, optional
        Object-centric images added to ``broden/`` (default 0: the Broden
        pool is scene-centric, like the paper's SUN images).
    definition : WorldDefinition, optional
        Use this world instead of ``default_world(n_scenes, n_objects, seed)``.
    preset : str, optional
        Use a named world instead (``'study'``: 34 scenes, 92 objects; see
        :mod:`~unitscope.data.world.presets`); its counts replace
        ``n_scenes`` and ``n_objects``, and ``seed`` only changes the images.
    workers : int, optional
        Rendering processes (default: the number of CPUs; 0 or 1 renders in
        this process).  The output does not depend on it.
    overwrite : bool, optional
        Replace an existing world with a different configuration.
    progress : callable, optional
        Called as ``progress(done, total)`` with image counts.

    Returns
    -------
    WorldPaths

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds something else (another world, other files)
        and ``overwrite`` is false.
    ValueError
        On bad counts or sizes, or both ``definition`` and ``preset``.
    LookupError
        If ``preset`` names no preset.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir).expanduser().resolve()
    sizes = {"n_train": n_train, "n_val": n_val, "n_dissect": n_dissect, "n_object_train": n_object_train,
             "n_object_val": n_object_val, "n_dissect_objects": n_dissect_objects}
    for key, value in sizes.items():
        if int(value) != value or value < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    if n_train < 1 or n_val < 1 or n_object_train < 1 or n_object_val < 1:
        raise ValueError("n_train, n_val, n_object_train and n_object_val must be at least 1")
    if n_dissect + n_dissect_objects < 1:
        raise ValueError("the Broden pool needs at least one image (n_dissect or n_dissect_objects)")
    if int(size) != size or not MIN_SIZE <= size <= MAX_SIZE or int(size) % 16:
        raise ValueError(f"size must be a multiple of 16 (mini_alexnet's constraint) from {MIN_SIZE} to "
                         f"{MAX_SIZE}, got {size}")
    if definition is not None and preset is not None:
        raise ValueError("pass a world definition or a preset, not both")
    if preset is not None:
        definition = world_preset(preset)
    defn = definition if definition is not None else default_world(n_scenes, n_objects, seed)
    if definition is not None:
        n_scenes, n_objects = len(defn.scenes), len(defn.objects)
    config = _generation_config(n_scenes, n_objects, seed, size, sizes, preset)

    remove_stale_staging(out_dir)  # a killed run's hidden .<name>.tmp-* (tens of MB)
    paths = WorldPaths.of(out_dir)
    if out_dir.exists():
        same = False
        if paths.world_json.is_file():
            try:
                stored_defn, doc = load_world(out_dir)
                same = (doc.get("generation") == config and doc.get("format_version") == WORLD_FORMAT_VERSION
                        and stored_defn == defn and _complete(paths))
            except ValueError:
                same = False
        if same:
            return paths
        if not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise FileExistsError(
                f"{out_dir} already exists and is not this world (different configuration or not a "
                "world); pass overwrite=True to replace it"
            )

    total = n_train + n_val + n_dissect + n_object_train + n_object_val + n_dissect_objects
    done = 0
    if progress is not None:
        progress(0, total)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_staging_dir(out_dir)
    try:
        step = 50
        chunks = (_chunks("scene", "dissect", n_dissect, step) + _chunks("object", "dissect", n_dissect_objects, step)
                  + _chunks("scene", "train", n_train, step) + _chunks("scene", "val", n_val, step)
                  + _chunks("object", "train", n_object_train, step)
                  + _chunks("object", "val", n_object_val, step))
        n_objects_total = len(defn.objects)
        counts = {
            "scenes/train": np.zeros(n_objects_total, np.int64),
            "broden": np.zeros(n_objects_total, np.int64),
        }
        by_scene = np.zeros((len(defn.scenes), n_objects_total), np.int64)
        first_object = defn.concepts().find(defn.object_names[0], "object").number
        results = _results(chunks, defn, size, seed, tmp, workers)

        def records():
            from unitscope.data.broden import BrodenRecord
            from unitscope.concepts import Annotation

            nonlocal done
            for batch in results:
                for item in batch:
                    objs = np.asarray(item["objects"], np.int64) - first_object
                    if item["split"] == "dissect":
                        counts["broden"][objs] += 1
                        ann = item["annotation"]
                        yield BrodenRecord(
                            id=item["id"], image=item["image"], split="train",
                            annotation=Annotation(masks=ann["masks"], image_labels=ann["image_labels"]),
                        )
                    elif item["kind"] == "scene" and item["split"] == "train":
                        counts["scenes/train"][objs] += 1
                        by_scene[item["label"], objs] += 1
                    done += 1
                if progress is not None:
                    progress(done, total)

        from unitscope.data.broden import write_broden

        gen = records()
        write_broden(tmp / "broden", gen, defn.concepts())
        for _ in gen:  # the rest of the sets: files were written by the workers
            pass

        doc = {
            "format": "unitscope.world",
            "format_version": WORLD_FORMAT_VERSION,
            "generation": config,
            "definition": defn.to_dict(),
            "layout": {
                "scenes": "scenes/{train,val}/<scene>/<split>_<index>.png",
                "objects": "objects/{train,val}/<object>/<split>_<index>.png",
                "scenes_noobjects": "scenes_noobjects/val/<scene>/val_<index>.png",
                "broden": "broden/ (index.csv, label.csv, category.csv, c_*.csv, images/)",
            },
            "statistics": {
                "object_image_counts": {
                    split: {name: int(c) for name, c in zip(defn.object_names, arr)}
                    for split, arr in counts.items()
                },
                "object_image_counts_by_scene": {
                    scene: {name: int(c) for name, c in zip(defn.object_names, row)}
                    for scene, row in zip(defn.scene_names, by_scene)
                },
                "scene_images": {"train": n_train, "val": n_val, "dissect": n_dissect},
            },
        }
        (tmp / "world.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        move_into_place(tmp, out_dir, overwrite=True)  # a different world was refused above unless overwrite
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return WorldPaths.of(out_dir, seconds=time.perf_counter() - started)
