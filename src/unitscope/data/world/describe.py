"""What a world holds: its counts, and how frequent and how informative each object is.

Informativeness is the census's (:mod:`unitscope.experiments.census`):
for scene ``s`` and object ``o``, ``score(o, s) = P(o | s) log(P(o | s) / P(o))``,
and an object counts once for every scene where its score is the highest
(ties to the first name).  Here the probabilities come from the world's own
rules, by drawing which objects images of each scene would hold (no
pixels: occlusion is ignored), or from a generated world's measured counts
(``world.json``: the objects visible in ``scenes/train``).

Run as ``python -m unitscope.data.world.describe --preset study`` (or
``--world DIR``) to print the summary.

Examples
--------
>>> from unitscope.data.world import default_world
>>> d = describe_world(default_world(), images_per_scene=50)
>>> d.counts["scenes"], d.counts["objects"]
(10, 24)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .definition import WorldDefinition
from .export import load_world
from .presets import preset_names, world_preset
from .render import _scene_objects, image_rng

__all__ = ["WorldDescription", "describe_world", "describe_generated_world", "format_description", "main"]

#: Upper edges of the frequency histogram's bins (share of scene images holding the object).
FREQUENCY_BINS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class WorldDescription:
    """Counts of a world and one row per object.

    Attributes
    ----------
    counts : dict of str to int
        scenes, objects, designed_objects, parts, materials, object_materials,
        colors, textures.
    objects : DataFrame
        Indexed by object: ``frequency`` (share of scene images holding it),
        ``informative_scenes`` (scenes where it is the most informative
        object), ``scenes`` (scenes whose rules name it), ``designed``.
    source : str
        Where the probabilities come from (rules sampled, or a world.json).
    """

    counts: dict[str, int]
    objects: pd.DataFrame
    source: str

    def spearman(self) -> float:
        """Spearman correlation of frequency and informative scenes over objects (NaN if either is constant)."""
        x, y = self.objects["frequency"], self.objects["informative_scenes"]
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            return float("nan")
        return float(x.corr(y, method="spearman"))


def _informative_scenes(presence: np.ndarray, per_scene: np.ndarray, names: list[str]) -> np.ndarray:
    """Per object, the scenes where its score is the highest; ``presence`` is (scenes, objects) image counts."""
    p_o = presence.sum(0) / max(per_scene.sum(), 1)
    counts = np.zeros(presence.shape[1], np.int64)
    for row, n_s in zip(presence, per_scene):
        p_os = row / max(n_s, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where((p_os > 0) & (p_o > 0), p_os * np.log(p_os / p_o), 0.0)
        best = min(range(len(names)), key=lambda o: (-score[o], names[o]))
        if score[best] > 0:
            counts[best] += 1
    return counts


def _description(defn: WorldDefinition, presence: np.ndarray, per_scene: np.ndarray, source: str):
    names = defn.object_names
    ruled = {o: sum(any(r.object == o for r in s.rules) for s in defn.scenes) for o in names}
    frame = pd.DataFrame({
        "frequency": presence.sum(0) / max(per_scene.sum(), 1),
        "informative_scenes": _informative_scenes(presence, per_scene, names),
        "scenes": [ruled[o] for o in names],
        "designed": [o.design is not None for o in defn.objects],
    }, index=pd.Index(names, name="object"))
    counts = {"scenes": len(defn.scenes), "objects": len(defn.objects),
              "designed_objects": int(frame["designed"].sum()), "parts": len(defn.part_names),
              "materials": len(defn.material_names), "object_materials": len(defn.object_materials),
              "colors": len(defn.colors), "textures": len(defn.textures)}
    return WorldDescription(counts, frame, source)


def describe_world(defn: WorldDefinition, *, images_per_scene: int = 1000, seed: int = 0) -> WorldDescription:
    """Describe a world from its rules: draw ``images_per_scene`` object lists per scene.

    Parameters
    ----------
    defn : WorldDefinition
    images_per_scene : int, keyword-only
        Object lists drawn per scene (the same draws the renderer makes).
    seed : int, keyword-only

    Raises
    ------
    ValueError
        If ``images_per_scene`` is below 1.
    """
    if images_per_scene < 1:
        raise ValueError(f"images_per_scene must be at least 1, got {images_per_scene}")
    index = {name: i for i, name in enumerate(defn.object_names)}
    presence = np.zeros((len(defn.scenes), len(index)), np.int64)
    for s in range(len(defn.scenes)):
        for i in range(images_per_scene):
            held = {index[name] for name in _scene_objects(defn, image_rng(seed, "describe", s * 10**6 + i), s)}
            presence[s, sorted(held)] += 1
    per_scene = np.full(len(defn.scenes), images_per_scene, np.int64)
    return _description(defn, presence, per_scene, f"rules ({images_per_scene} drawn object lists per scene)")


def describe_generated_world(world_dir) -> WorldDescription:
    """Describe a generated world from the objects visible in its ``scenes/train`` (``world.json``)."""
    defn, doc = load_world(world_dir)
    by_scene = doc["statistics"]["object_image_counts_by_scene"]
    presence = np.array([[by_scene[s][o] for o in defn.object_names] for s in defn.scene_names], np.int64)
    n_train = int(doc["statistics"]["scene_images"]["train"])
    per_scene = np.array([len(range(i, n_train, len(defn.scenes))) for i in range(len(defn.scenes))], np.int64)
    return _description(defn, presence, per_scene, f"{world_dir}/world.json (scenes/train, visible objects)")


def _histogram(values, edges) -> list[tuple[str, int]]:
    rows, lo = [], 0.0
    for hi in edges:
        n = int(((values > lo) & (values <= hi)).sum()) + (int((values == 0).sum()) if lo == 0.0 else 0)
        rows.append((f"{lo:.2f}-{hi:.2f}", n))
        lo = hi
    return rows


def format_description(d: WorldDescription, *, examples: int = 5) -> str:
    """The description as text: counts, both histograms, their Spearman correlation, examples."""
    f = d.objects
    lines = [f"source: {d.source}", "counts: " + ", ".join(f"{k}={v}" for k, v in d.counts.items()),
             "object frequency (share of scene images holding it): objects per bin"]
    lines += [f"  {label:>9}  {n:3d} {'#' * n}" for label, n in _histogram(f["frequency"].to_numpy(), FREQUENCY_BINS)]
    lines.append("informativeness (scenes where the object is the most informative): objects per count")
    for k, n in f["informative_scenes"].value_counts().sort_index().items():
        lines.append(f"  {k:>9}  {n:3d} {'#' * n}")
    lines.append(f"spearman(frequency, informative scenes) over objects = {d.spearman():.3f}")
    uninformative = f[f["informative_scenes"] == 0].sort_values("frequency", ascending=False)
    diagnostic = f[f["informative_scenes"] > 0].sort_values("frequency")
    for title, rows in (("frequent but uninformative", uninformative), ("rare but diagnostic", diagnostic)):
        lines.append(f"{title}: " + ", ".join(f"{o} ({r.frequency:.3f}, {r.informative_scenes})"
                                              for o, r in rows.head(examples).iterrows()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unitscope.data.world.describe", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--preset", choices=preset_names(), help="describe a named world from its rules")
    group.add_argument("--world", help="describe a generated world from its world.json")
    parser.add_argument("--images-per-scene", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.world is not None:
        d = describe_generated_world(args.world)
    else:
        d = describe_world(world_preset(args.preset), images_per_scene=args.images_per_scene)
    print(format_description(d))


if __name__ == "__main__":  # pragma: no cover
    main()
