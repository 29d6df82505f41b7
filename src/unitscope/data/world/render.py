"""Procedural drawing of scene-centric and object-centric images with exact masks.

A scene image is a random background (:mod:`.surfaces`, independent of the
scene class) with the scene's objects placed by region: ground objects stand
below the horizon and shrink with distance (drawn far to near, so near ones
occlude far ones), wall objects hang above it, sky objects float high.  An
object-centric image is one large centred object on a random background
with a few small clutter objects behind it.

Every image is a pure function of the world definition, the random
generator and the size: seed the generator from ``(seed, split, index)``
(:func:`image_rng`) and any image can be made alone, in any order, in any
process.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from unitscope.concepts import Annotation

from .canvas import Canvas, Frame
from .definition import WorldDefinition
from .figures import draw_design
from .objects import DRAWERS
from .surfaces import draw_background

__all__ = [
    "Rendering",
    "PlacedObject",
    "image_rng",
    "compose_scene",
    "compose_object_image",
    "render_scene",
    "render_object_image",
    "color_names_map",
]

#: Smallest image side the drawing code supports.
MIN_SIZE = 32


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one image: a pure function of ``(seed, split, index)``."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode("utf-8")), int(index)])


@dataclass
class PlacedObject:
    """One drawn object instance: class name, instance id on the canvas, box ``(x, y, w, h)`` in px."""

    name: str
    instance: int
    box: tuple[float, float, float, float]


@dataclass
class Rendering:
    """One rendered image with everything known about it.

    Attributes
    ----------
    image : ndarray, uint8, shape (H, W, 3)
    background : ndarray, uint8, shape (H, W, 3)
        The same image with every object painted over by its background
        (the objects-removed control).
    annotation : Annotation
        Pixel maps for ``color``, ``object``, ``part``, ``material``,
        ``texture``; the ``scene`` image label for scene images.
    label : int
        Scene index (scene images) or object index (object images).
    instances : ndarray, int32, shape (H, W)
        Instance id per pixel (0 = background); ``objects`` lists them.
    objects : list of PlacedObject
    """

    image: np.ndarray
    background: np.ndarray
    annotation: Annotation
    label: int
    instances: np.ndarray
    objects: list[PlacedObject] = field(default_factory=list)

    def instance_mask(self, instance: int) -> np.ndarray:
        """Boolean mask of one drawn instance (its visible pixels)."""
        return self.instances == instance


class _Numbers:
    """Concept numbers of a world, cached per definition (computing the table costs ~1 ms)."""

    _cache: dict[int, tuple[WorldDefinition, dict]] = {}

    @classmethod
    def of(cls, defn: WorldDefinition) -> dict[str, dict[str, int]]:
        hit = cls._cache.get(id(defn))
        if hit is not None and hit[0] is defn:
            return hit[1]
        table = defn.concepts()
        numbers: dict[str, dict[str, int]] = {}
        for c in table:
            numbers.setdefault(c.category, {})[c.name] = c.number
        if len(cls._cache) > 16:
            cls._cache.clear()
        cls._cache[id(defn)] = (defn, numbers)
        return numbers


_COLOR_LUTS: dict[tuple, np.ndarray] = {}


def _nearest_colour_lut(protos: np.ndarray) -> np.ndarray:
    """Index of the nearest prototype for every 24-bit RGB value (16 MiB, built once per process)."""
    key = tuple(map(tuple, protos.astype(int).tolist()))
    lut = _COLOR_LUTS.get(key)
    if lut is None:
        gb = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), -1).reshape(-1, 2)
        gb = gb.astype(np.float32)
        lut = np.empty(256 ** 3, np.uint8)
        p = protos.astype(np.float32)
        d_gb = ((gb[:, None, :] - p[None, :, 1:]) ** 2).sum(-1)
        for r in range(256):
            d = d_gb + (float(r) - p[None, :, 0]) ** 2
            lut[r * 65536:(r + 1) * 65536] = d.argmin(1)
        _COLOR_LUTS[key] = lut
    return lut


def color_names_map(image: np.ndarray, defn: WorldDefinition) -> np.ndarray:
    """Per-pixel basic colour concept: the nearest colour prototype in RGB.

    Parameters
    ----------
    image : ndarray, uint8, shape (H, W, 3)
    defn : WorldDefinition

    Returns
    -------
    ndarray, int32, shape (H, W)
        Concept numbers of the ``color`` category (nearest prototype by
        Euclidean distance in RGB; ties go to the first colour in
        ``defn.colors``).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    numbers = _Numbers.of(defn)["color"]
    names = list(defn.colors)
    protos = np.array([defn.colors[n] for n in names], np.float32)
    rgb = image.astype(np.int32)
    nearest = _nearest_colour_lut(protos)[(rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]]
    lut = np.array([numbers[n] for n in names], np.int32)
    return lut[nearest]


def _check(defn: WorldDefinition, size: int) -> None:
    if not isinstance(defn, WorldDefinition):
        raise ValueError(f"expected a WorldDefinition, got {type(defn).__name__}")
    if int(size) < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} px, got {size}")


def _photometry(rng: np.random.Generator, size: int):
    """Global gain and bias of one image (exposure), drawn with its background.

    No per-pixel sensor noise: the surfaces carry their own textures, and
    noise-free objects keep PNGs small and colour names clean.
    """
    del size
    return np.float32(rng.uniform(0.85, 1.15)), np.float32(rng.uniform(-15, 15))


def _finish(cv: Canvas, photometry, background: np.ndarray, defn: WorldDefinition,
            placed: list[PlacedObject], label: int, scene_number: int | None) -> Rendering:
    """Apply the exposure, identical for image and background; build the annotation."""
    gain, bias = photometry

    def develop(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(x * gain + bias), 0, 255).astype(np.uint8)

    image = develop(cv.image)
    bg = develop(background)
    numbers = _Numbers.of(defn)
    lut = np.zeros(len(placed) + 1, np.int32)
    for p in placed:
        lut[p.instance] = numbers["object"][p.name]
    masks = {
        "color": [color_names_map(image, defn)],
        "object": [lut[cv.instance]],
        "part": [cv.part.copy()],
        "material": [cv.material.copy()],
        "texture": [cv.texture.copy()],
    }
    labels = {"scene": [scene_number]} if scene_number is not None else {}
    visible = set(np.flatnonzero(np.bincount(cv.instance.ravel(), minlength=len(placed) + 1)).tolist())
    placed = [p for p in placed if p.instance in visible]
    return Rendering(image, bg, Annotation(masks=masks, image_labels=labels), int(label),
                     cv.instance.copy(), placed)


def _draw(cv: Canvas, defn: WorldDefinition, rng: np.random.Generator, name: str,
          box: tuple[float, float, float, float], placed: list[PlacedObject]) -> None:
    cv.current_instance = len(placed) + 1
    x, y, w, h = box
    frame = Frame(cv, x, y, w, h, mirror=bool(rng.random() < 0.5))
    design = defn.object(name).design
    if design is None:
        DRAWERS[name](frame, rng)
    else:
        draw_design(frame, rng, design)
    placed.append(PlacedObject(name, cv.current_instance, box))
    cv.current_instance = 0


def _scene_objects(defn: WorldDefinition, rng: np.random.Generator, scene_index: int) -> list[str]:
    """Which object instances an image of the scene contains (rules, diagnostic rate, distractors)."""
    scene = defn.scenes[scene_index]
    diagnostic = set(scene.diagnostic)
    present: list[str] = []
    diag_rules = [r for r in scene.rules if r.object in diagnostic]
    if rng.random() < defn.diagnostic_rate:
        # At least one diagnostic object: resample until one is drawn.
        for _ in range(100):
            chosen = [r for r in diag_rules if rng.random() < max(r.probability, 1e-3)]
            if chosen:
                break
        else:  # pragma: no cover - vanishingly unlikely
            chosen = diag_rules[:1]
        for r in chosen:
            present += [r.object] * int(rng.integers(r.min_count, r.max_count + 1))
    for r in scene.rules:
        if r.object in diagnostic:
            continue
        if rng.random() < r.probability:
            present += [r.object] * int(rng.integers(r.min_count, r.max_count + 1))
    others, weights = _distractor_weights(defn, scene_index)
    n_distractors = int(rng.poisson(defn.distractor_rate))
    for _ in range(min(n_distractors, 3)):
        present.append(others[int(rng.choice(len(others), p=weights))])
    return present


def _distractor_weights(defn: WorldDefinition, scene_index: int) -> tuple[list[str], np.ndarray]:
    """Objects that may appear as distractors in a scene, and their probabilities.

    Never the scene's own diagnostic objects; other scenes' diagnostic
    objects with a quarter of the weight of the rest, so that they stay
    rare outside their scene.
    """
    diagnostic = set(defn.scenes[scene_index].diagnostic)
    anywhere = {d for s in defn.scenes for d in s.diagnostic}
    others = [o for o in defn.object_names if o not in diagnostic]
    w = np.array([defn.foreign_diagnostic_weight if o in anywhere else 1.0 for o in others])
    return others, w / w.sum()


def _overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy


def _place(defn: WorldDefinition, rng: np.random.Generator, names: list[str], size: int,
           horizon: int) -> list[tuple[str, tuple[float, float, float, float], float]]:
    """Boxes for each object, with a depth key (draw in increasing key)."""
    out = []
    ground_boxes: list[tuple[float, float, float, float]] = []
    ground_room = size - horizon
    for name in names:
        obj = defn.object(name)
        if obj.region == "sky":
            h = obj.height * rng.uniform(0.7, 1.3) * size
            w = h * obj.aspect
            top_max = max(0.02 * size, 0.75 * horizon - h)
            y = rng.uniform(0.02 * size, top_max) if top_max > 0.02 * size else 0.02 * size
            x = rng.uniform(-0.1 * w, size - 0.9 * w)
            out.append((name, (x, y, w, h), -2.0))
        elif obj.region == "wall":
            h = obj.height * rng.uniform(0.8, 1.25) * size
            h = min(h, max(horizon - 0.08 * size, 0.1 * size))
            w = h * obj.aspect
            lo, hi = 0.04 * size, horizon - h - 0.03 * size
            y = rng.uniform(lo, hi) if hi > lo else lo
            x = rng.uniform(0.0, max(size - w, 1.0))
            out.append((name, (x, y, w, h), -1.0))
        else:
            t = rng.uniform(0.1, 1.0)
            bottom = horizon + t * ground_room + 0.03 * size
            scale = 0.75 + 0.6 * t
            h = obj.height * scale * rng.uniform(0.85, 1.15) * size
            w = h * obj.aspect
            best, best_cost = None, None
            for _ in range(4):  # prefer spots that do not hide earlier objects
                x = rng.uniform(-0.15 * w, size - 0.85 * w)
                box = (x, bottom - h, w, h)
                cost = sum(_overlap(box, g) for g in ground_boxes)
                if best is None or cost < best_cost:
                    best, best_cost = box, cost
            ground_boxes.append(best)
            out.append((name, best, bottom))
    return out


def compose_scene(defn: WorldDefinition, rng: np.random.Generator, size: int = 128, *,
                  scene: int | str | None = None) -> Rendering:
    """Draw one scene-centric image with its annotation and objects-removed twin.

    Parameters
    ----------
    defn : WorldDefinition
    rng : numpy.random.Generator
        Consumed; seed it with :func:`image_rng` for reproducible datasets.
    size : int, optional
        Image side in pixels (default 128, at least 32).
    scene : int or str, optional
        Scene index or name; drawn uniformly when omitted.

    Returns
    -------
    Rendering
    """
    _check(defn, size)
    scene_index = _chosen_index(scene, rng, len(defn.scenes), defn.scene_index, "scene")
    numbers = _Numbers.of(defn)
    cv = Canvas(size, numbers=numbers)
    horizon = draw_background(cv, rng, upper_surfaces=defn.upper_surfaces,
                              lower_surfaces=defn.lower_surfaces, top_surfaces=defn.top_surfaces)
    background = cv.image.copy()
    # Everything drawn so far (background, photometry) is independent of the scene class.
    photometry = _photometry(rng, size)
    names = _scene_objects(defn, rng, scene_index)
    boxes = _place(defn, rng, names, size, horizon)
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][2], i))
    placed: list[PlacedObject] = []
    for i in order:
        name, box, _ = boxes[i]
        _draw(cv, defn, rng, name, box, placed)
    return _finish(cv, photometry, background, defn, placed, scene_index,
                   numbers["scene"][defn.scenes[scene_index].name])


def _chosen_index(choice: int | str | None, rng: np.random.Generator, count: int, index_of, what: str) -> int:
    """``choice`` as a class index: drawn uniformly when None, looked up by name, or checked."""
    if choice is None:
        return int(rng.integers(count))
    if isinstance(choice, str):
        return index_of(choice)
    index = int(choice)
    if not 0 <= index < count:
        raise ValueError(f"{what} index {index} out of range 0..{count - 1}")
    return index


def compose_object_image(defn: WorldDefinition, rng: np.random.Generator, size: int = 128, *,
                         obj: int | str | None = None, clutter: int | None = None) -> Rendering:
    """Draw one object-centric image: a large centred object on a cluttered background.

    Parameters
    ----------
    defn : WorldDefinition
    rng : numpy.random.Generator
    size : int, optional
    obj : int or str, optional
        Object index or name; drawn uniformly when omitted.
    clutter : int, optional
        Number of small clutter objects behind it (default: 0 to 3 at random).

    Returns
    -------
    Rendering
        ``label`` is the object index; the annotation has no scene label.
    """
    _check(defn, size)
    obj_index = _chosen_index(obj, rng, len(defn.objects), defn.object_index, "object")
    numbers = _Numbers.of(defn)
    cv = Canvas(size, numbers=numbers)
    draw_background(cv, rng, upper_surfaces=defn.upper_surfaces, lower_surfaces=defn.lower_surfaces,
                    top_surfaces=defn.top_surfaces)
    background = cv.image.copy()
    photometry = _photometry(rng, size)
    placed: list[PlacedObject] = []
    n_clutter = int(rng.integers(0, 4)) if clutter is None else int(clutter)
    main = defn.objects[obj_index]
    others = [o for o in defn.objects if o.name != main.name]
    for _ in range(n_clutter):
        o = others[int(rng.integers(len(others)))]
        h = rng.uniform(0.18, 0.32) * size
        w = h * o.aspect
        if w > 0.45 * size:
            w, h = 0.45 * size, 0.45 * size / o.aspect
        _draw(cv, defn, rng, o.name, (rng.uniform(-0.2 * w, size - 0.8 * w),
                                      rng.uniform(-0.2 * h, size - 0.8 * h), w, h), placed)
    extent = rng.uniform(0.6, 0.85) * size
    if main.aspect >= 1:
        w, h = extent, extent / main.aspect
    else:
        w, h = extent * main.aspect, extent
    cx = size / 2 + rng.uniform(-0.07, 0.07) * size
    cy = size / 2 + rng.uniform(-0.07, 0.07) * size
    _draw(cv, defn, rng, main.name, (cx - w / 2, cy - h / 2, w, h), placed)
    return _finish(cv, photometry, background, defn, placed, obj_index, None)


def render_scene(defn: WorldDefinition, rng: np.random.Generator, size: int = 128, *,
                 scene: int | str | None = None) -> tuple[np.ndarray, Annotation, int]:
    """Draw one scene-centric image.

    Returns
    -------
    image : ndarray, uint8, shape (size, size, 3)
    annotation : Annotation
    scene_index : int

    Examples
    --------
    >>> from unitscope.data.world import default_world
    >>> image, annotation, scene = render_scene(default_world(), image_rng(0, "demo", 0))
    >>> image.shape, annotation.image_labels["scene"][0] > 0
    ((128, 128, 3), True)
    """
    r = compose_scene(defn, rng, size, scene=scene)
    return r.image, r.annotation, r.label


def render_object_image(defn: WorldDefinition, rng: np.random.Generator, size: int = 128, *,
                        obj: int | str | None = None) -> tuple[np.ndarray, Annotation, int]:
    """Draw one object-centric image; returns ``(image, annotation, object_index)``."""
    r = compose_object_image(defn, rng, size, obj=obj)
    return r.image, r.annotation, r.label
