"""The built-in synthetic world: scenes made of objects, with exact masks (SPEC section 1).

A procedural world where the answer to "which objects make a scene?" is
known, so every experiment can be checked without downloading anything:

- :mod:`~unitscope.data.world.definition` -- the world as data
  (:class:`WorldDefinition`; the built-in one, :func:`default_world`, from
  :mod:`~unitscope.data.world.catalogue`): 10 scene classes, 24
  object classes (from a catalogue of 12 and 29), which objects each scene
  holds and which are *diagnostic* (bed -> bedroom), object parts,
  surfaces/materials, textures and the 11 basic colour names.  Saved as
  ``world.json``.
- :mod:`~unitscope.data.world.presets` -- named larger worlds
  (:func:`world_preset`): ``study``, 34 scenes and 92 objects, of which 63
  are *designed* (:class:`Design`: a body and its features as data, drawn
  by :mod:`~unitscope.data.world.figures`) from seeded rules;
  :mod:`~unitscope.data.world.describe` prints a world's counts and the
  histograms of object frequency and informativeness
  (``python -m unitscope.data.world.describe --preset study``).
- :mod:`~unitscope.data.world.render` -- drawing one image from a seeded
  generator (:func:`render_scene`, :func:`render_object_image`, or
  :func:`compose_scene` / :func:`compose_object_image` for everything: the
  objects-removed twin, instance ids, boxes).  Backgrounds are drawn before
  the objects and independently of the scene class.
- :mod:`~unitscope.data.world.export` -- :func:`generate_world` (``preset=``
  for a named world) writes the
  scene-centric and object-centric ImageFolder trees, the objects-removed
  control and an annotated Broden pool, in parallel and atomically.

Examples
--------
>>> from unitscope.data.world import default_world, image_rng, render_scene
>>> world = default_world()
>>> image, annotation, scene = render_scene(world, image_rng(0, "example", 0), 128)
>>> image.shape, sorted(annotation.masks)
((128, 128, 3), ['color', 'material', 'object', 'part', 'texture'])
"""

from .definition import BASIC_COLORS, Design, Feature, ObjectClass, ObjectRule, SceneClass, WorldDefinition
from .catalogue import catalogue_objects, catalogue_scenes, default_world
from .presets import preset_names, world_preset
from .render import (
    Rendering,
    color_names_map,
    compose_object_image,
    compose_scene,
    image_rng,
    render_object_image,
    render_scene,
)
from .export import DEFAULT_SIZES, WorldPaths, generate_world, load_world, world_fingerprint

__all__ = [
    "BASIC_COLORS",
    "DEFAULT_SIZES",
    "Design",
    "Feature",
    "ObjectClass",
    "ObjectRule",
    "Rendering",
    "SceneClass",
    "WorldDefinition",
    "WorldPaths",
    "catalogue_objects",
    "catalogue_scenes",
    "color_names_map",
    "compose_object_image",
    "compose_scene",
    "default_world",
    "generate_world",
    "image_rng",
    "load_world",
    "preset_names",
    "render_object_image",
    "render_scene",
    "world_fingerprint",
    "world_preset",
]
