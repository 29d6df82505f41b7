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

The built-in scenes and objects (:func:`default_world`) are in
:mod:`unitscope.data.world.catalogue`.

Examples
--------
>>> from unitscope.data.world.catalogue import default_world
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
    "BODIES",
    "FEATURES",
    "REGIONS",
    "Design",
    "Feature",
    "ObjectClass",
    "ObjectRule",
    "SceneClass",
    "WorldDefinition",
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

#: Silhouettes of a :class:`Design`'s body (drawn by :mod:`.figures`).
BODIES = ("box", "round", "dome", "triangle", "trapezoid", "barrel", "capsule", "diamond")
#: What a :class:`Feature` can be, by where it goes: below the body (``support``),
#: above it (``top``) or on its face (``face``).
FEATURES = {
    "support": ("legs", "wheels", "pole", "base"),
    "top": ("lid", "roof", "antenna"),
    "face": ("panel", "knobs", "stripes", "window", "handle", "spots", "ring", "cross"),
}


@dataclass(frozen=True)
class Feature:
    """One part of a designed object: what it is, its part concept, material and colour family."""

    kind: str
    part: str
    material: str
    palette: str


@dataclass(frozen=True)
class Design:
    """How an object without a hand-written drawer is drawn: a body and its features.

    Attributes
    ----------
    body : str
        One of :data:`BODIES`.
    material, palette : str
        The body's material concept and colour family (``objects._FAMILIES``).
    features : tuple of Feature
        At most one ``support`` and one ``top`` feature, then face features.
    """

    body: str
    material: str
    palette: str
    features: tuple[Feature, ...] = ()

    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.features)


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
    design : Design, optional
        How to draw it when it has no hand-written drawer
        (:data:`~unitscope.data.world.objects.DRAWERS`); its parts are in ``parts``.
    """

    name: str
    region: str
    parts: tuple[str, ...] = ()
    height: float = 0.3
    aspect: float = 1.0
    design: Design | None = None


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
            if o.design is not None:
                self._check_design(o)
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

    def _check_design(self, o: ObjectClass) -> None:
        d = o.design
        where = {kind: place for place, kinds in FEATURES.items() for kind in kinds}
        problems = []
        if d.body not in BODIES:
            problems.append(f"body {d.body!r} is not one of {BODIES}")
        materials = set(self.object_materials)
        for f in d.features:
            if f.kind not in where:
                problems.append(f"feature {f.kind!r} is not one of {sorted(where)}")
            if f.part not in o.parts:
                problems.append(f"feature part {f.part!r} is not in its parts {o.parts}")
        for m in [d.material] + [f.material for f in d.features]:
            if m not in materials:
                problems.append(f"material {m!r} is not one of {self.object_materials}")
        places = [where.get(f.kind) for f in d.features]
        if places.count("support") > 1 or places.count("top") > 1:
            problems.append("at most one support and one top feature")
        if problems:
            raise ValueError(f"object {o.name!r}: bad design: {'; '.join(problems)}")

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
        for o in d["objects"]:
            if o["design"] is None:  # hand-drawn: world.json as before designs existed
                del o["design"]
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
                    design=_design_from_dict(o["design"]) if o.get("design") is not None else None,
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


def _design_from_dict(d: dict[str, Any]) -> Design:
    return Design(body=d["body"], material=d["material"], palette=d["palette"],
                  features=tuple(Feature(**f) for f in d["features"]))
