"""The paper's taxonomy of what a unit means: six types, from colours to scenes.

Shared by the dissection (automatic types), the labeling app (human
types) and the report, so every table uses the same keys.
"""

__all__ = ["TYPES", "TYPE_NAMES"]

#: The six unit types, in the paper's order (simple -> scene).
TYPES: tuple[str, ...] = ("simple", "texture", "region", "part", "object", "scene")

#: Display names, as in the paper's Figure 9 legend.
TYPE_NAMES: dict[str, str] = {
    "simple": "simple elements & colours",
    "texture": "texture / material",
    "region": "region / surface",
    "part": "object part",
    "object": "object",
    "scene": "scene",
}
