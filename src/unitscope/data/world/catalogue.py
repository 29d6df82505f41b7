"""The catalogue of the synthetic world: every scene and object it knows, in priority order.

:func:`default_world` makes a :class:`~unitscope.data.world.definition.WorldDefinition`
from it (all of it, or a subset chosen by a seed); the paper's three
examples (bedroom, art gallery, bookstore) come first.

Examples
--------
>>> world = default_world(n_scenes=3, n_objects=8)
>>> [s.name for s in world.scenes]
['art_gallery', 'bedroom', 'bookstore']
"""

from __future__ import annotations

import numpy as np

from .definition import ObjectClass, ObjectRule, SceneClass, WorldDefinition

__all__ = ["default_world", "catalogue_scenes", "catalogue_objects"]


def _o(name, region, parts=(), height=0.3, aspect=1.0) -> ObjectClass:
    return ObjectClass(name, region, tuple(parts), height, aspect)


#: Objects in priority order: when fewer objects are asked, the diagnostic
#: objects of the chosen scenes are kept first, then this order.
_OBJECTS = (
    _o("person", "ground", ("head", "leg"), 0.34, 0.4),
    _o("window", "wall", ("pane",), 0.28, 0.8),
    _o("cloud", "sky", (), 0.12, 2.2),
    _o("tree", "ground", ("trunk", "crown"), 0.5, 0.65),
    _o("lamp", "ground", ("shade",), 0.34, 0.4),
    _o("table", "ground", ("tabletop", "leg"), 0.2, 1.5),
    _o("chair", "ground", ("seat", "backrest", "leg"), 0.28, 0.6),
    _o("plant", "ground", ("pot",), 0.24, 0.7),
    _o("sign", "ground", ("board",), 0.3, 0.7),
    _o("clock", "wall", ("dial",), 0.16, 1.0),
    _o("streetlight", "ground", ("pole", "light"), 0.55, 0.35),
    _o("boat", "ground", ("hull", "sail"), 0.3, 1.0),
    _o("cabinet", "ground", ("door", "drawer"), 0.3, 0.8),
    _o("bird", "sky", ("wing",), 0.07, 1.6),
    _o("flower", "ground", ("petal", "stem"), 0.14, 0.6),
    _o("balloon", "sky", (), 0.16, 0.6),
    # diagnostic objects of the catalogue's scenes
    _o("bed", "ground", ("pillow", "headboard"), 0.3, 1.8),
    _o("painting", "wall", ("frame",), 0.22, 1.25),
    _o("bookcase", "ground", ("shelf", "book"), 0.5, 0.75),
    _o("sofa", "ground", ("cushion", "armrest"), 0.28, 1.9),
    _o("stove", "ground", ("burner", "oven_door"), 0.3, 0.9),
    _o("refrigerator", "ground", ("door", "handle"), 0.5, 0.5),
    _o("computer", "ground", ("screen", "keyboard"), 0.3, 1.0),
    _o("car", "ground", ("wheel", "windshield"), 0.22, 1.9),
    _o("umbrella", "ground", ("canopy", "pole"), 0.38, 1.0),
    _o("carousel", "ground", ("roof", "horse"), 0.48, 1.1),
    _o("ferris_wheel", "ground", ("gondola", "spoke"), 0.62, 0.85),
    _o("bench", "ground", ("backrest", "leg"), 0.2, 1.8),
    _o("blackboard", "wall", ("frame",), 0.26, 1.6),
)

_PRIORITY = (
    "person", "window", "cloud", "tree", "lamp", "table", "chair", "plant", "sign", "clock",
    "streetlight", "boat", "cabinet", "bird", "flower", "balloon", "bench", "blackboard",
)


def _r(obj, p, lo=1, hi=1) -> ObjectRule:
    return ObjectRule(obj, p, lo, hi)


#: Scenes in priority order; the first three are the paper's examples and
#: always kept when a subset is drawn.
_SCENES = (
    SceneClass("bedroom", (
        _r("bed", 0.92), _r("lamp", 0.5), _r("window", 0.5), _r("painting", 0.2), _r("plant", 0.2),
        _r("clock", 0.1), _r("cabinet", 0.3), _r("person", 0.3),
    ), ("bed",)),
    SceneClass("art_gallery", (
        _r("painting", 0.95, 2, 4), _r("person", 0.8, 1, 2), _r("sign", 0.1), _r("plant", 0.15),
        _r("lamp", 0.15),
    ), ("painting",)),
    SceneClass("bookstore", (
        _r("bookcase", 0.92, 1, 2), _r("person", 0.7, 1, 2), _r("table", 0.3), _r("sign", 0.15),
        _r("lamp", 0.3), _r("chair", 0.15), _r("window", 0.2),
    ), ("bookcase",)),
    SceneClass("living_room", (
        _r("sofa", 0.92), _r("table", 0.5), _r("lamp", 0.5), _r("window", 0.5), _r("painting", 0.25),
        _r("plant", 0.3), _r("clock", 0.05), _r("person", 0.4),
    ), ("sofa",)),
    SceneClass("kitchen", (
        _r("stove", 0.75), _r("refrigerator", 0.65), _r("cabinet", 0.5), _r("table", 0.4),
        _r("chair", 0.3), _r("window", 0.5), _r("clock", 0.2), _r("plant", 0.15), _r("person", 0.4),
    ), ("stove", "refrigerator")),
    SceneClass("office", (
        _r("computer", 0.92, 1, 2), _r("table", 0.6), _r("chair", 0.5), _r("cabinet", 0.3),
        _r("plant", 0.2), _r("window", 0.5), _r("lamp", 0.3), _r("clock", 0.1), _r("person", 0.5),
    ), ("computer",)),
    SceneClass("street", (
        _r("car", 0.92, 1, 3), _r("streetlight", 0.5), _r("person", 0.8, 1, 3), _r("sign", 0.4),
        _r("tree", 0.4), _r("cloud", 0.4, 1, 2), _r("window", 0.3),
    ), ("car",)),
    SceneClass("beach", (
        _r("umbrella", 0.92, 1, 2), _r("person", 0.8, 1, 3), _r("cloud", 0.7, 1, 3), _r("boat", 0.3),
        _r("bird", 0.3, 1, 3), _r("tree", 0.1), _r("sign", 0.05),
    ), ("umbrella",)),
    SceneClass("amusement_park", (
        _r("carousel", 0.65), _r("ferris_wheel", 0.65), _r("person", 0.9, 1, 3),
        _r("balloon", 0.4, 1, 3), _r("tree", 0.4), _r("cloud", 0.5, 1, 2), _r("sign", 0.15),
    ), ("carousel", "ferris_wheel")),
    SceneClass("park", (
        _r("bench", 0.9), _r("tree", 0.95, 2, 4), _r("person", 0.6, 1, 2), _r("cloud", 0.6, 1, 2),
        _r("bird", 0.3, 1, 3), _r("flower", 0.4, 2, 4), _r("streetlight", 0.15),
    ), ("bench",)),
    SceneClass("harbour", (
        _r("boat", 0.92, 1, 3), _r("bird", 0.5, 1, 3), _r("cloud", 0.7, 1, 3), _r("streetlight", 0.3),
        _r("sign", 0.3), _r("person", 0.4),
    ), ("boat",)),
    SceneClass("classroom", (
        _r("blackboard", 0.92), _r("chair", 0.9, 1, 3), _r("table", 0.6), _r("clock", 0.5),
        _r("window", 0.4), _r("person", 0.5, 1, 2),
    ), ("blackboard",)),
)

_CORE_SCENES = 3


def catalogue_scenes() -> list[str]:
    """Every scene the world can have, in priority order."""
    return [s.name for s in _SCENES]


def catalogue_objects() -> list[str]:
    """Every object the world can have."""
    return [o.name for o in _OBJECTS]


def default_world(n_scenes: int = 10, n_objects: int = 24, seed: int = 0) -> WorldDefinition:
    """The built-in world, or a subset of it.

    Parameters
    ----------
    n_scenes : int, optional
        Scene classes, 2 to 12 (default 10); a larger world is a preset
        (:func:`~unitscope.data.world.presets.world_preset`).
    n_objects : int, optional
        Object classes (default 24); at least the diagnostic objects of the
        chosen scenes, at most 29.
    seed : int, optional
        Chooses the subset.  ``0`` takes the catalogue in priority order
        (bedroom, art gallery, bookstore, living room, kitchen, office,
        street, beach, amusement park, park, harbour, classroom); another
        seed keeps the first three (the paper's examples) and draws the
        others at random.

    Returns
    -------
    WorldDefinition
        Scenes and objects sorted by name; rules that mention objects left
        out are dropped.

    Raises
    ------
    ValueError
        If the counts are out of range.
    """
    if not 2 <= n_scenes <= len(_SCENES):
        from .presets import preset_limits  # the presets build on this catalogue

        raise ValueError(f"n_scenes must be between 2 and {len(_SCENES)} for the default world, got {n_scenes} "
                         f"(for a larger world: {preset_limits()})")
    if seed == 0:
        chosen = list(_SCENES[:n_scenes])
    else:
        rng = np.random.default_rng([int(seed), 7])
        core = list(_SCENES[: min(_CORE_SCENES, n_scenes)])
        rest = list(_SCENES[_CORE_SCENES:])
        picks = rng.choice(len(rest), size=n_scenes - len(core), replace=False)
        chosen = core + [rest[i] for i in sorted(picks)]
    diagnostic = list(dict.fromkeys(d for s in chosen for d in s.diagnostic))
    if n_objects < len(diagnostic):
        raise ValueError(
            f"n_objects={n_objects} is fewer than the {len(diagnostic)} diagnostic objects of the "
            f"chosen scenes ({', '.join(diagnostic)})"
        )
    if n_objects > len(_OBJECTS):
        from .presets import preset_limits

        raise ValueError(f"n_objects must be at most {len(_OBJECTS)} for the default world, got {n_objects} "
                         f"(for a larger world: {preset_limits()})")
    objects = list(diagnostic)
    used = [r.object for s in chosen for r in s.rules]
    # Objects the chosen scenes use come before ones they do not.
    order = [o for o in _PRIORITY if o in used] + [o for o in _PRIORITY if o not in used]
    order += [o.name for o in _OBJECTS if o.name not in order]
    for name in order:
        if len(objects) >= n_objects:
            break
        if name not in objects:
            objects.append(name)
    keep = set(objects)
    by_name = {o.name: o for o in _OBJECTS}
    scenes = tuple(
        sorted(
            (
                SceneClass(s.name, tuple(r for r in s.rules if r.object in keep), s.diagnostic)
                for s in chosen
            ),
            key=lambda s: s.name,
        )
    )
    return WorldDefinition(scenes=scenes, objects=tuple(by_name[n] for n in sorted(keep)))
