"""The synthetic world as data: scenes, objects, parts, surfaces and colours.

A :class:`WorldDefinition` says which scene classes exist, which objects
each scene contains (with what probability and how many), which objects are
*diagnostic* of a scene (a bed says "bedroom"), where objects go (on the
ground, on the upper surface, in the sky) and which parts and surfaces can be
seen.  It is the ground truth that tests and reports compare experiments
against, and it is saved as ``world.json`` beside the generated images.

The background of an image (the surfaces behind the objects, their colours
and textures) is drawn from pools shared by *every* scene, independently of
the scene class: only the objects tell the scenes apart.

Examples
--------
>>> world = default_world()
>>> len(world.scenes), len(world.objects)
(10, 24)
>>> world.diagnostic_objects("bedroom")
['bed']
>>> WorldDefinition.from_json(world.to_json()) == world
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from unitscope.concepts import ConceptTable

__all__ = [
    "BASIC_COLORS",
    "REGIONS",
    "ObjectClass",
    "ObjectRule",
    "SceneClass",
    "WorldDefinition",
    "default_world",
    "catalogue_scenes",
    "catalogue_objects",
]

#: Where an object can be placed: standing on the lower surface, hanging on
#: the upper surface, or floating high in the upper surface.
REGIONS = ("ground", "wall", "sky")

#: The 11 basic colour terms (Berlin & Kay) with the RGB prototype each
#: pixel is matched to (nearest prototype in RGB).
BASIC_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 25),
    "blue": (40, 80, 200),
    "brown": (120, 72, 35),
    "green": (50, 150, 50),
    "grey": (128, 128, 128),
    "orange": (240, 140, 30),
    "pink": (240, 150, 190),
    "purple": (125, 50, 160),
    "red": (200, 35, 35),
    "white": (240, 240, 240),
    "yellow": (235, 215, 50),
}

#: Background surfaces of the upper part of an image (behind wall/sky objects).
UPPER_SURFACES = ("wall", "sky")
#: Background surfaces of the lower part of an image (what ground objects stand on).
LOWER_SURFACES = ("floor", "carpet", "grass", "sand", "water", "road")
#: Optional band at the top of the image above a wall.
TOP_SURFACES = ("ceiling",)
#: Materials that object parts are made of.
OBJECT_MATERIALS = ("wood", "metal", "glass", "fabric", "foliage", "paper", "plastic")
#: Pixel textures of background surfaces.
TEXTURES = ("striped", "checkered", "dotted")


@dataclass(frozen=True)
class ObjectClass:
    """One object class of the world.

    Attributes
    ----------
    name : str
        Snake-case name, also the ImageFolder class folder.
    region : {'ground', 'wall', 'sky'}
        Where instances are placed.
    parts : tuple of str
        Names of the part concepts drawn with the object.
    height : float
        Nominal height as a fraction of the image side (ground objects are
        scaled by perspective around this).
    aspect : float
        Width over height.
    """

    name: str
    region: str
    parts: tuple[str, ...] = ()
    height: float = 0.3
    aspect: float = 1.0


@dataclass(frozen=True)
class ObjectRule:
    """How an object appears in a scene: probability of being present and count range."""

    object: str
    probability: float
    min_count: int = 1
    max_count: int = 1


@dataclass(frozen=True)
class SceneClass:
    """One scene class: the objects it contains and which of them are diagnostic.

    Attributes
    ----------
    name : str
    rules : tuple of ObjectRule
        Each object of the scene with its probability and count range.
    diagnostic : tuple of str
        Objects that identify the scene; at least one of them is present in
        an image of the scene with probability
        :attr:`WorldDefinition.diagnostic_rate`, and they appear elsewhere
        only as rare distractors.
    """

    name: str
    rules: tuple[ObjectRule, ...]
    diagnostic: tuple[str, ...]


@dataclass(frozen=True)
class WorldDefinition:
    """The whole world: scene and object classes, surfaces, parts, colours.

    Scene and object classes are sorted by name, so a class index is the
    same as the sorted-folder index of an ImageFolder tree.

    Attributes
    ----------
    scenes : tuple of SceneClass
    objects : tuple of ObjectClass
    upper_surfaces, lower_surfaces, top_surfaces : tuple of str
        Background surface pools, shared by every scene.
    object_materials : tuple of str
    textures : tuple of str
    colors : dict of str to (int, int, int)
        Basic colour names and their RGB prototypes.
    diagnostic_rate : float
        Probability that an image of a scene shows at least one of its
        diagnostic objects.
    distractor_rate : float
        Expected number of distractor objects per scene image (drawn from
        all objects except the scene's diagnostic ones).
    foreign_diagnostic_weight : float
        Relative weight of other scenes' diagnostic objects among the
        distractors (the rest weigh 1).
    """

    scenes: tuple[SceneClass, ...]
    objects: tuple[ObjectClass, ...]
    upper_surfaces: tuple[str, ...] = UPPER_SURFACES
    lower_surfaces: tuple[str, ...] = LOWER_SURFACES
    top_surfaces: tuple[str, ...] = TOP_SURFACES
    object_materials: tuple[str, ...] = OBJECT_MATERIALS
    textures: tuple[str, ...] = TEXTURES
    colors: dict[str, tuple[int, int, int]] = field(default_factory=lambda: dict(BASIC_COLORS))
    diagnostic_rate: float = 0.95
    distractor_rate: float = 0.3
    foreign_diagnostic_weight: float = 0.25

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate object names in {names}")
        if [s.name for s in self.scenes] != sorted(s.name for s in self.scenes):
            raise ValueError("scenes must be sorted by name (class index = sorted folder index)")
        if names != sorted(names):
            raise ValueError("objects must be sorted by name (class index = sorted folder index)")
        known = set(names)
        for o in self.objects:
            if o.region not in REGIONS:
                raise ValueError(f"object {o.name!r}: region must be one of {REGIONS}, got {o.region!r}")
        for s in self.scenes:
            for r in s.rules:
                if r.object not in known:
                    raise ValueError(f"scene {s.name!r} uses unknown object {r.object!r}")
                if not 0.0 <= r.probability <= 1.0 or not 1 <= r.min_count <= r.max_count:
                    raise ValueError(f"scene {s.name!r}: bad rule {r}")
            if not s.diagnostic:
                raise ValueError(f"scene {s.name!r} has no diagnostic object")
            ruled = {r.object for r in s.rules}
            for d in s.diagnostic:
                if d not in ruled:
                    raise ValueError(f"scene {s.name!r}: diagnostic object {d!r} has no rule")

    # -- names -------------------------------------------------------------
    @property
    def scene_names(self) -> list[str]:
        return [s.name for s in self.scenes]

    @property
    def object_names(self) -> list[str]:
        return [o.name for o in self.objects]

    @property
    def part_names(self) -> list[str]:
        """Every part of every object, in order of first appearance (objects sorted)."""
        return list(dict.fromkeys(p for o in self.objects for p in o.parts))

    @property
    def surface_names(self) -> list[str]:
        return list(dict.fromkeys(self.upper_surfaces + self.top_surfaces + self.lower_surfaces))

    @property
    def material_names(self) -> list[str]:
        """Background surfaces then object materials: the ``material`` category."""
        return self.surface_names + [m for m in self.object_materials if m not in self.surface_names]

    def scene(self, name: str) -> SceneClass:
        for s in self.scenes:
            if s.name == name:
                return s
        raise LookupError(f"no scene {name!r}; the world has {', '.join(self.scene_names)}")

    def object(self, name: str) -> ObjectClass:
        for o in self.objects:
            if o.name == name:
                return o
        raise LookupError(f"no object {name!r}; the world has {', '.join(self.object_names)}")

    def scene_index(self, name: str) -> int:
        return self.scene_names.index(self.scene(name).name)

    def object_index(self, name: str) -> int:
        return self.object_names.index(self.object(name).name)

    def diagnostic_objects(self, scene: str) -> list[str]:
        """The objects that identify ``scene``."""
        return list(self.scene(scene).diagnostic)

    def diagnostic_scenes(self, obj: str) -> list[str]:
        """The scenes for which ``obj`` is diagnostic (usually one or none)."""
        self.object(obj)
        return [s.name for s in self.scenes if obj in s.diagnostic]

    # -- concepts ----------------------------------------------------------
    def concepts(self) -> ConceptTable:
        """The Broden concept table: colours, objects, parts, materials, scenes, textures.

        Numbered from 1 in that category order; names are unique across
        categories.
        """
        return ConceptTable.from_names(
            {
                "color": list(self.colors),
                "object": self.object_names,
                "part": self.part_names,
                "material": self.material_names,
                "scene": self.scene_names,
                "texture": list(self.textures),
            }
        )

    def expected_object_frequencies(self) -> dict[str, float]:
        """Expected share of scene images (scenes balanced) in which each object is placed.

        Counts rules and distractors; ignores occlusion and the
        diagnostic-rate adjustment.  For a measured table, count the
        generated annotations (``world.json`` holds one).
        """
        anywhere = {d for s in self.scenes for d in s.diagnostic}
        out = {o: 0.0 for o in self.object_names}
        for s in self.scenes:
            for r in s.rules:
                out[r.object] += r.probability / len(self.scenes)
            others = [o for o in self.object_names if o not in s.diagnostic]
            w = np.array([self.foreign_diagnostic_weight if o in anywhere else 1.0 for o in others])
            for o, p in zip(others, w / w.sum()):
                out[o] += self.distractor_rate * p / len(self.scenes)
        return out

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["colors"] = {k: list(v) for k, v in self.colors.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldDefinition":
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            If ``d`` is not a valid world definition.
        """
        try:
            scenes = tuple(
                SceneClass(
                    name=s["name"],
                    rules=tuple(ObjectRule(**r) for r in s["rules"]),
                    diagnostic=tuple(s["diagnostic"]),
                )
                for s in d["scenes"]
            )
            objects = tuple(
                ObjectClass(
                    name=o["name"], region=o["region"], parts=tuple(o["parts"]),
                    height=float(o["height"]), aspect=float(o["aspect"]),
                )
                for o in d["objects"]
            )
            rest = {
                k: tuple(d[k])
                for k in ("upper_surfaces", "lower_surfaces", "top_surfaces", "object_materials", "textures")
                if k in d
            }
            colors = {k: tuple(int(c) for c in v) for k, v in d.get("colors", BASIC_COLORS).items()}
            return cls(
                scenes=scenes, objects=objects, colors=colors,
                diagnostic_rate=float(d.get("diagnostic_rate", 0.95)),
                distractor_rate=float(d.get("distractor_rate", 0.3)),
                foreign_diagnostic_weight=float(d.get("foreign_diagnostic_weight", 0.25)), **rest,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid world definition: {exc!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WorldDefinition":
        return cls.from_dict(json.loads(text))


# --------------------------------------------------------------------------
# The catalogue: every scene and object the world knows, in priority order.

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
        Scene classes, 2 to 12 (default 10).
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
        raise ValueError(f"n_scenes must be between 2 and {len(_SCENES)}, got {n_scenes}")
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
        raise ValueError(f"n_objects must be at most {len(_OBJECTS)}, got {n_objects}")
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
