"""Named worlds: ``study``, a richer world for the training study (issue 14).

The default world (:func:`~unitscope.data.world.catalogue.default_world`)
is small so that the demo is quick: 10 scenes, 24 objects.  With so few
objects a census of detectors cannot show which objects networks learn and
why.  The ``study`` preset has 34 scene classes and 92 object classes:

- the 12 catalogue scenes and 29 hand-drawn catalogue objects, as they are;
- 22 more scenes, each with hand-written diagnostic objects (a bathtub
  says "bathroom"; a few are shared by two scenes, as a bed is by bedroom
  and hotel room, so some objects are the most informative object of two
  scenes), and some rare second diagnostics (a windsock at an airfield);
- 63 designed objects (:class:`~unitscope.data.world.definition.Design`),
  whose silhouettes and parts are drawn from seeded rules, with no two
  sharing a body and feature set;
- every scene also holds objects of its *family* (home, public indoor,
  urban, outdoor), drawn by seeded rules with Zipf-like weights: a few are
  in almost every scene of the family (frequent but uninformative), most
  in a handful, and a pool object no scene drew gets a rare rule in one.

The rules' seed is fixed (:data:`RULES_SEED`): the preset is one world,
and a generation seed only changes the images.

Examples
--------
>>> world = world_preset("study")
>>> len(world.scenes), len(world.objects)
(34, 92)
>>> world.diagnostic_scenes("bed")
['bedroom', 'hotel_room']
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .catalogue import _OBJECTS, _SCENES
from .definition import BODIES, FEATURES, OBJECT_MATERIALS, Design, Feature, ObjectClass, ObjectRule, SceneClass, \
    WorldDefinition

__all__ = ["PRESETS", "RULES_SEED", "preset_names", "preset_limits", "world_preset"]

#: Seed of the rules that design objects and fill scenes (the preset is one world, whatever the image seed).
RULES_SEED = 14

#: Object materials of the study world: the default ones and three more for designed objects.
STUDY_MATERIALS = OBJECT_MATERIALS + ("stone", "ceramic", "rubber")

#: Colour family of each material (``objects._FAMILIES``).
_PALETTE = {"wood": "wood", "metal": "metal", "glass": "glass", "fabric": "fabric", "foliage": "foliage",
            "paper": "pale", "plastic": "bright", "stone": "stone", "ceramic": "pale", "rubber": "dark"}

#: Part concept of each feature kind (shared across objects, as "leg" is by table, chair and person).
_PART = {"legs": "leg", "wheels": "wheel", "pole": "pole", "base": "base", "lid": "lid", "roof": "roof",
         "antenna": "antenna", "panel": "panel", "knobs": "knob", "stripes": "stripe", "window": "pane",
         "handle": "handle", "spots": "spot", "ring": "rim", "cross": "emblem"}

#: Materials a feature may be made of.
_FEATURE_MATERIALS = {"legs": ("wood", "metal"), "wheels": ("rubber",), "pole": ("metal", "wood"),
                      "base": ("stone", "wood", "metal"), "lid": ("metal", "plastic", "wood"),
                      "roof": ("wood", "metal", "fabric"), "antenna": ("metal",),
                      "panel": ("glass", "metal", "plastic"), "knobs": ("metal", "plastic"),
                      "stripes": ("plastic", "fabric", "paper"), "window": ("glass",), "handle": ("metal",),
                      "spots": ("plastic", "paper", "ceramic"), "ring": ("metal", "rubber"),
                      "cross": ("plastic", "paper")}

# Designed objects: (name, region, height, aspect, body materials).  Bodies, features and
# palettes come from the seeded rules in `_designs`.
_DESIGNED = (
    # diagnostic objects of the new scenes
    ("bathtub", "ground", 0.22, 1.9, ("ceramic",)), ("toilet", "ground", 0.26, 0.7, ("ceramic",)),
    ("chandelier", "wall", 0.2, 1.2, ("glass", "metal")), ("washing_machine", "ground", 0.32, 0.85, ("plastic",)),
    ("suitcase", "ground", 0.22, 0.75, ("fabric", "plastic")), ("crib", "ground", 0.3, 1.3, ("wood",)),
    ("globe", "ground", 0.24, 0.8, ("plastic", "paper")), ("bar_stool", "ground", 0.3, 0.5, ("metal", "wood")),
    ("treadmill", "ground", 0.3, 1.5, ("metal", "rubber")), ("dumbbell", "ground", 0.1, 2.0, ("metal",)),
    ("piano", "ground", 0.32, 1.4, ("wood",)), ("drum", "ground", 0.22, 1.0, ("wood", "metal")),
    ("shopping_cart", "ground", 0.26, 1.1, ("metal",)), ("checkout", "ground", 0.28, 1.6, ("plastic", "metal")),
    ("iv_stand", "ground", 0.5, 0.4, ("metal",)), ("microscope", "ground", 0.26, 0.7, ("metal",)),
    ("parking_meter", "ground", 0.36, 0.35, ("metal",)), ("fuel_pump", "ground", 0.4, 0.55, ("metal", "plastic")),
    ("slide", "ground", 0.36, 1.4, ("plastic",)), ("swing_set", "ground", 0.42, 1.3, ("metal", "wood")),
    ("crane", "ground", 0.6, 0.7, ("metal",)), ("excavator", "ground", 0.32, 1.4, ("metal",)),
    ("train", "ground", 0.3, 2.4, ("metal",)), ("mushroom", "ground", 0.12, 0.9, ("foliage", "paper")),
    ("tractor", "ground", 0.3, 1.3, ("metal",)), ("barn", "ground", 0.5, 1.2, ("wood",)),
    ("tent", "ground", 0.3, 1.4, ("fabric",)), ("campfire", "ground", 0.14, 1.2, ("wood",)),
    ("fountain", "ground", 0.34, 1.2, ("stone",)), ("airplane", "sky", 0.12, 2.4, ("metal",)),
    ("windsock", "ground", 0.45, 0.6, ("fabric",)),
    # shared by the scenes of a family
    ("rug", "ground", 0.08, 2.5, ("fabric",)), ("vase", "ground", 0.16, 0.6, ("ceramic", "glass")),
    ("mirror", "wall", 0.24, 0.7, ("glass",)), ("curtain", "wall", 0.32, 0.6, ("fabric",)),
    ("wall_shelf", "wall", 0.14, 1.6, ("wood",)), ("television", "ground", 0.26, 1.3, ("plastic",)),
    ("trash_can", "ground", 0.2, 0.7, ("plastic", "metal")), ("basket", "ground", 0.14, 1.2, ("wood", "fabric")),
    ("fan", "ground", 0.3, 0.6, ("plastic", "metal")), ("radiator", "wall", 0.16, 1.5, ("metal",)),
    ("poster", "wall", 0.26, 0.75, ("paper",)), ("water_cooler", "ground", 0.34, 0.45, ("plastic",)),
    ("notice_board", "wall", 0.22, 1.4, ("wood", "paper")), ("coat_rack", "ground", 0.42, 0.4, ("wood", "metal")),
    ("printer", "ground", 0.16, 1.3, ("plastic",)), ("exit_sign", "wall", 0.1, 1.8, ("plastic",)),
    ("speaker", "ground", 0.26, 0.6, ("wood", "plastic")), ("box", "ground", 0.16, 1.1, ("paper",)),
    ("traffic_cone", "ground", 0.16, 0.6, ("plastic",)), ("fire_hydrant", "ground", 0.18, 0.55, ("metal",)),
    ("mailbox", "ground", 0.3, 0.5, ("metal",)), ("bicycle", "ground", 0.22, 1.5, ("metal",)),
    ("traffic_light", "ground", 0.5, 0.3, ("metal",)), ("bus", "ground", 0.34, 2.2, ("metal",)),
    ("barrier", "ground", 0.14, 2.2, ("plastic", "metal")), ("bollard", "ground", 0.14, 0.4, ("stone", "metal")),
    ("bush", "ground", 0.2, 1.4, ("foliage",)), ("rock", "ground", 0.14, 1.4, ("stone",)),
    ("fence", "ground", 0.18, 2.5, ("wood",)), ("dog", "ground", 0.14, 1.4, ("fabric",)),
    ("kite", "sky", 0.14, 0.8, ("fabric", "paper")), ("log", "ground", 0.1, 2.4, ("wood",)),
)


def _r(obj: str, p: float, lo: int = 1, hi: int = 1) -> ObjectRule:
    return ObjectRule(obj, p, lo, hi)


# New scenes: (name, family, diagnostic rules).  The first rule is the main diagnostic
# object; a second one is rarer.  bed, bookcase and car are shared with catalogue scenes.
_NEW_SCENES = (
    ("bathroom", "home", (_r("bathtub", 0.85), _r("toilet", 0.6))),
    ("dining_room", "home", (_r("chandelier", 0.9),)),
    ("laundry_room", "home", (_r("washing_machine", 0.92, 1, 2),)),
    ("hotel_room", "home", (_r("bed", 0.9), _r("suitcase", 0.35))),
    ("nursery", "home", (_r("crib", 0.92),)),
    ("library", "public", (_r("bookcase", 0.92, 1, 3), _r("globe", 0.3))),
    ("restaurant", "public", (_r("bar_stool", 0.9, 1, 3),)),
    ("gym", "public", (_r("treadmill", 0.85), _r("dumbbell", 0.4, 1, 3))),
    ("music_room", "public", (_r("piano", 0.85), _r("drum", 0.45))),
    ("supermarket", "public", (_r("shopping_cart", 0.9, 1, 2), _r("checkout", 0.35))),
    ("hospital_room", "public", (_r("iv_stand", 0.9),)),
    ("laboratory", "public", (_r("microscope", 0.9, 1, 2),)),
    ("parking_lot", "urban", (_r("car", 0.95, 2, 4), _r("parking_meter", 0.4))),
    ("gas_station", "urban", (_r("fuel_pump", 0.92, 1, 2),)),
    ("construction_site", "urban", (_r("crane", 0.8), _r("excavator", 0.55))),
    ("train_station", "urban", (_r("train", 0.92),)),
    ("playground", "outdoor", (_r("slide", 0.8), _r("swing_set", 0.65))),
    ("forest", "outdoor", (_r("mushroom", 0.85, 1, 3),)),
    ("farm", "outdoor", (_r("tractor", 0.7), _r("barn", 0.7))),
    ("campsite", "outdoor", (_r("tent", 0.92, 1, 2), _r("campfire", 0.45))),
    ("garden", "outdoor", (_r("fountain", 0.85),)),
    ("airfield", "outdoor", (_r("airplane", 0.9, 1, 2), _r("windsock", 0.3))),
)

#: Family of each catalogue scene.
_CATALOGUE_FAMILY = {"bedroom": "home", "living_room": "home", "kitchen": "home", "art_gallery": "public",
                     "bookstore": "public", "office": "public", "classroom": "public", "street": "urban",
                     "beach": "outdoor", "amusement_park": "outdoor", "park": "outdoor", "harbour": "outdoor"}

#: Objects shared by the scenes of a family, most common first (Zipf-like weights by position).
_FAMILY_POOLS = {
    "home": ("person", "window", "lamp", "plant", "rug", "curtain", "table", "trash_can", "mirror", "clock",
             "vase", "television", "basket", "wall_shelf", "fan", "radiator", "speaker", "cabinet", "box"),
    "public": ("person", "window", "chair", "sign", "poster", "trash_can", "table", "exit_sign", "clock",
               "plant", "notice_board", "water_cooler", "lamp", "coat_rack", "printer", "box",
               "speaker", "fan"),
    "urban": ("person", "cloud", "streetlight", "sign", "tree", "traffic_cone", "trash_can", "window",
              "bicycle", "bollard", "traffic_light", "fire_hydrant", "bus", "mailbox", "barrier", "bird",
              "fence", "dog", "box"),
    "outdoor": ("cloud", "person", "tree", "bird", "bush", "rock", "flower", "fence", "dog", "sign", "kite",
                "log", "bicycle", "trash_can", "balloon", "streetlight"),
}


def _designs(rng: np.random.Generator) -> list[ObjectClass]:
    """Designed objects: each gets a body, features and palettes no other object has.

    Ground objects may stand on a support; wall and sky objects do not.
    Two designs never share their (body, feature kinds): the silhouette
    and parts are the class, colours only vary within a family.
    """
    taken: set[tuple] = set()
    out = []
    for name, region, height, aspect, materials in _DESIGNED:
        for _ in range(1000):
            body = BODIES[int(rng.integers(len(BODIES)))]
            supports = ((None,) + FEATURES["support"]) if region == "ground" else (None,)
            support = supports[int(rng.integers(len(supports)))]
            tops = (None,) + FEATURES["top"]
            top = tops[int(rng.integers(len(tops)))]
            faces = rng.choice(FEATURES["face"], size=int(rng.integers(1, 3)), replace=False)
            kinds = tuple(k for k in (support, top) if k is not None) + tuple(sorted(str(f) for f in faces))
            key = (body, kinds)
            if key not in taken:
                taken.add(key)
                break
        else:  # pragma: no cover - 8 bodies x 5 supports x 4 tops x 36 face sets is plenty
            raise RuntimeError(f"no free design for {name!r}")
        material = materials[int(rng.integers(len(materials)))]
        features = []
        for kind in kinds:
            allowed = _FEATURE_MATERIALS[kind]
            feat_material = allowed[int(rng.integers(len(allowed)))]
            palette = _PALETTE[feat_material]
            if palette == _PALETTE[material]:  # a feature must show against its body
                palette = "dark" if palette != "dark" else "pale"
            features.append(Feature(kind, _PART[kind], feat_material, palette))
        design = Design(body, material, _PALETTE[material], tuple(features))
        parts = tuple(dict.fromkeys(f.part for f in features))
        out.append(ObjectClass(name, region, parts, height, aspect, design))
    return out


def _family_rules(rng: np.random.Generator, family: str, exclude: set[str], k: int) -> list[ObjectRule]:
    """``k`` objects of a family pool (weights 1 / position), each with a probability and count range."""
    pool = [o for o in _FAMILY_POOLS[family] if o not in exclude]
    weights = 1.0 / np.arange(1, len(pool) + 1)
    picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False, p=weights / weights.sum())
    rules = []
    for i in sorted(int(p) for p in picks):
        p = float(np.round(rng.uniform(0.15, 0.8), 2))
        hi = int(rng.integers(1, 3))
        rules.append(_r(pool[i], p, 1, hi))
    return rules


def _place_leftovers(rng: np.random.Generator, scenes: list[SceneClass], family_of: dict[str, str]) -> None:
    """Give every pool object no scene drew a rare rule (p 0.1 to 0.3) in one scene of its family."""
    used = {r.object for s in scenes for r in s.rules}
    for family, pool in _FAMILY_POOLS.items():
        members = [i for i, s in enumerate(scenes) if family_of[s.name] == family]
        for obj in pool:
            if obj in used:
                continue
            i = members[int(rng.integers(len(members)))]
            rule = _r(obj, float(np.round(rng.uniform(0.1, 0.3), 2)))
            scenes[i] = SceneClass(scenes[i].name, scenes[i].rules + (rule,), scenes[i].diagnostic)
            used.add(obj)


def study_world() -> WorldDefinition:
    """The ``study`` preset: 34 scenes and 92 objects (see the module docstring)."""
    rng = np.random.default_rng(RULES_SEED)
    objects = list(_OBJECTS) + _designs(rng)
    scenes = []
    for s in _SCENES:  # catalogue scenes keep their rules and gain a few family objects
        ruled = {r.object for r in s.rules}
        extra = _family_rules(rng, _CATALOGUE_FAMILY[s.name], ruled, int(rng.integers(2, 4)))
        scenes.append(SceneClass(s.name, s.rules + tuple(extra), s.diagnostic))
    for name, family, diagnostic in _NEW_SCENES:
        ruled = {r.object for r in diagnostic}
        extra = _family_rules(rng, family, ruled, int(rng.integers(4, 8)))
        scenes.append(SceneClass(name, diagnostic + tuple(extra), tuple(r.object for r in diagnostic)))
    _place_leftovers(rng, scenes, _CATALOGUE_FAMILY | {name: family for name, family, _ in _NEW_SCENES})
    return WorldDefinition(scenes=tuple(sorted(scenes, key=lambda s: s.name)),
                           objects=tuple(sorted(objects, key=lambda o: o.name)),
                           object_materials=STUDY_MATERIALS)


#: Named worlds, by the name ``--preset`` takes.
PRESETS: dict[str, Callable[[], WorldDefinition]] = {"study": study_world}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def world_preset(name: str) -> WorldDefinition:
    """The named world.

    Raises
    ------
    LookupError
        If there is no preset of that name (the message lists them).
    """
    try:
        return PRESETS[name]()
    except KeyError:
        raise LookupError(f"no world preset {name!r}; the presets are {', '.join(preset_names())}") from None


def preset_limits() -> str:
    """One phrase per preset, its scene and object counts, for refusals that point to a larger world."""
    worlds = {name: world_preset(name) for name in preset_names()}
    return "; ".join(f"--preset {name} has {len(w.scenes)} scenes and {len(w.objects)} objects"
                     for name, w in worlds.items())
