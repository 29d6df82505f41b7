"""How each object class is drawn: a recognisable shape, its parts and materials.

Each drawer takes a :class:`~unitscope.data.world.canvas.Frame` (the
object's box) and a random generator, and paints primitives with part and
material names.  Colours vary per instance (from families such as wood,
metal or any bright colour), so a class is told apart by its *shape*.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .canvas import Frame
from .surfaces import jitter

__all__ = ["DRAWERS", "colour"]

_FAMILIES: dict[str, list[tuple[int, int, int]]] = {
    "wood": [(140, 90, 50), (170, 120, 70), (105, 65, 35), (200, 160, 110), (80, 50, 30)],
    "metal": [(150, 150, 155), (110, 110, 118), (190, 190, 195), (70, 70, 75)],
    "bright": [(210, 40, 40), (40, 90, 210), (240, 200, 40), (40, 160, 70), (240, 130, 30),
               (150, 60, 170), (240, 140, 180), (30, 170, 190), (235, 235, 235), (40, 40, 45)],
    "fabric": [(180, 50, 60), (60, 80, 150), (200, 190, 160), (90, 130, 90), (140, 90, 150),
               (230, 230, 225), (100, 100, 110), (220, 150, 60)],
    "pale": [(245, 245, 240), (230, 230, 220), (250, 240, 225), (215, 225, 235)],
    "dark": [(30, 30, 35), (50, 45, 40), (45, 50, 60)],
    "skin": [(240, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45)],
    "foliage": [(50, 130, 50), (70, 150, 60), (40, 100, 40), (100, 150, 50)],
    "glass": [(170, 210, 235), (150, 190, 220), (200, 225, 240)],
    "appliance": [(235, 235, 235), (200, 200, 205), (40, 40, 45), (170, 170, 175)],
    "stone": [(150, 145, 135), (120, 115, 110), (175, 165, 150), (95, 95, 100)],
}


def colour(rng: np.random.Generator, family: str, amount: float = 15.0) -> np.ndarray:
    """A random colour of a family (see ``_FAMILIES``), jittered."""
    options = _FAMILIES[family]
    return jitter(rng, options[int(rng.integers(len(options)))], amount)


def _darker(c, k=0.7):
    return np.clip(np.asarray(c, np.float32) * k, 0, 255)


# ---------------------------------------------------------------------------
# furniture and indoor objects

def draw_bed(f: Frame, rng) -> None:
    wood, sheet, blanket = colour(rng, "wood"), colour(rng, "pale"), colour(rng, "fabric")
    f.fill(f.rect(0.0, 0.0, 0.1, 1.0), wood, part="headboard", material="wood")
    f.fill(f.rect(0.05, 0.5, 1.0, 0.82), sheet, material="fabric")
    f.fill(f.rect(0.38, 0.45, 0.99, 0.8), blanket, material="fabric", shade=0.2)
    f.fill(f.rect(0.05, 0.78, 1.0, 0.9), wood, material="wood")
    f.fill(f.rect(0.94, 0.4, 1.0, 0.9), wood, material="wood")
    f.fill(f.rect(0.06, 0.9, 0.11, 1.0), _darker(wood), material="wood")
    f.fill(f.rect(0.93, 0.9, 0.98, 1.0), _darker(wood), material="wood")
    f.fill(f.ellipse(0.22, 0.44, 0.1, 0.1), colour(rng, "pale", 8), part="pillow", material="fabric")


def draw_painting(f: Frame, rng) -> None:
    frame = colour(rng, "wood") if rng.random() < 0.6 else jitter(rng, (200, 170, 60))
    f.fill(f.rect(0, 0, 1, 1), frame, part="frame", material="wood")
    f.fill(f.rect(0.1, 0.12, 0.9, 0.88), colour(rng, "bright", 30))
    if rng.random() < 0.5:  # landscape: sky, hill, sun
        f.fill(f.rect(0.1, 0.12, 0.9, 0.55), colour(rng, "glass", 25))
        f.fill(f.ellipse(0.5, 0.88, 0.4, 0.3, half="top"), colour(rng, "foliage"))
        f.fill(f.circle(0.7, 0.3, 0.07), jitter(rng, (240, 210, 60)))
    else:  # abstract: a few blobs
        for _ in range(int(rng.integers(2, 4))):
            f.fill(f.ellipse(rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.2),
                             rng.uniform(0.1, 0.25)), colour(rng, "bright", 30))


def draw_bookcase(f: Frame, rng) -> None:
    wood = colour(rng, "wood")
    f.fill(f.rect(0, 0, 1, 1), wood, material="wood")
    f.fill(f.rect(0.07, 0.04, 0.93, 0.97), _darker(wood, 0.5), material="wood")
    n = 4
    for k in range(n):
        top = 0.04 + k * 0.93 / n
        bottom = top + 0.93 / n
        u = 0.08
        while u < 0.9:
            bw = rng.uniform(0.04, 0.09)
            bh = rng.uniform(0.6, 0.85) * (bottom - top - 0.04)
            f.fill(f.rect(u, bottom - 0.04 - bh, min(u + bw, 0.92), bottom - 0.04),
                   colour(rng, "bright", 25), part="book", material="paper")
            u += bw + rng.uniform(0.0, 0.02)
        f.fill(f.rect(0.07, bottom - 0.04, 0.93, bottom), wood, part="shelf", material="wood")


def draw_sofa(f: Frame, rng) -> None:
    c = colour(rng, "fabric")
    f.fill(f.rect(0.06, 0.0, 0.94, 0.55), c, material="fabric", shade=0.15)
    f.fill(f.rect(0.06, 0.5, 0.94, 0.85), _darker(c, 0.85), material="fabric")
    light = np.clip(c * 1.12, 0, 255)
    f.fill(f.rect(0.15, 0.45, 0.495, 0.62), light, part="cushion", material="fabric")
    f.fill(f.rect(0.505, 0.45, 0.85, 0.62), light, part="cushion", material="fabric")
    f.fill(f.rect(0.0, 0.25, 0.15, 0.85), _darker(c, 0.9), part="armrest", material="fabric")
    f.fill(f.rect(0.85, 0.25, 1.0, 0.85), _darker(c, 0.9), part="armrest", material="fabric")
    dark = colour(rng, "dark")
    f.fill(f.rect(0.05, 0.85, 0.1, 1.0), dark, material="wood")
    f.fill(f.rect(0.9, 0.85, 0.95, 1.0), dark, material="wood")


def draw_stove(f: Frame, rng) -> None:
    body = colour(rng, "appliance", 8)
    f.fill(f.rect(0, 0.12, 1, 1), body, material="metal")
    f.fill(f.rect(0, 0.0, 1, 0.12), _darker(body, 0.85), material="metal")
    for u in (0.2, 0.4, 0.6, 0.8):
        f.fill(f.circle(u, 0.06, 0.035), colour(rng, "dark"), material="metal")
    f.fill(f.rect(0, 0.12, 1, 0.19), colour(rng, "dark"), material="metal")
    for u in (0.28, 0.72):
        f.fill(f.ellipse(u, 0.155, 0.15, 0.03), jitter(rng, (200, 60, 30), 20), part="burner",
               material="metal")
    door = _darker(body, 0.8)
    f.fill(f.rect(0.1, 0.3, 0.9, 0.92), door, part="oven_door", material="metal")
    f.fill(f.rect(0.2, 0.45, 0.8, 0.8), colour(rng, "dark"), part="oven_door", material="glass")
    f.fill(f.rect(0.15, 0.33, 0.85, 0.38), colour(rng, "metal"), part="oven_door", material="metal")


def draw_refrigerator(f: Frame, rng) -> None:
    body = colour(rng, "appliance", 8)
    f.fill(f.rect(0, 0, 1, 1), _darker(body, 0.7), material="metal")
    f.fill(f.rect(0.04, 0.01, 0.96, 0.34), body, part="door", material="metal", shade=0.1)
    f.fill(f.rect(0.04, 0.36, 0.96, 0.99), body, part="door", material="metal", shade=0.1)
    handle = colour(rng, "metal") if body.mean() > 100 else jitter(rng, (200, 200, 200))
    f.fill(f.rect(0.78, 0.18, 0.88, 0.31), handle, part="handle", material="metal")
    f.fill(f.rect(0.78, 0.40, 0.88, 0.58), handle, part="handle", material="metal")


def draw_computer(f: Frame, rng) -> None:
    case = colour(rng, "appliance", 8)
    f.fill(f.rect(0.05, 0.0, 0.95, 0.62), case, material="plastic")
    f.fill(f.rect(0.1, 0.05, 0.9, 0.55), jitter(rng, [(60, 120, 220), (230, 235, 240), (40, 160, 200),
                                                      (70, 70, 160)][int(rng.integers(4))], 20),
           part="screen", material="glass")
    f.fill(f.rect(0.45, 0.62, 0.55, 0.74), case, material="plastic")
    f.fill(f.rect(0.3, 0.72, 0.7, 0.78), case, material="plastic")
    kb = colour(rng, "appliance", 8)
    f.fill(f.rect(0.08, 0.84, 0.92, 1.0), kb, part="keyboard", material="plastic")
    keys = _darker(kb, 0.6) if kb.mean() > 100 else np.clip(kb + 90, 0, 255)
    for v in (0.88, 0.94):
        f.fill(f.rect(0.12, v - 0.01, 0.88, v + 0.015), keys, part="keyboard", material="plastic")


def draw_lamp(f: Frame, rng) -> None:
    metal = colour(rng, "metal")
    f.fill(f.ellipse(0.5, 0.97, 0.3, 0.03), metal, material="metal")
    f.fill(f.line(0.5, 0.3, 0.5, 0.96, 0.08), metal, material="metal")
    f.fill(f.poly([(0.25, 0.0), (0.75, 0.0), (0.98, 0.34), (0.02, 0.34)]), colour(rng, "fabric"),
           part="shade", material="fabric", shade=0.2)


def draw_table(f: Frame, rng) -> None:
    wood = colour(rng, "wood")
    dark = _darker(wood, 0.75)
    f.fill(f.rect(0.17, 0.12, 0.23, 0.85), dark, part="leg", material="wood")
    f.fill(f.rect(0.77, 0.12, 0.83, 0.85), dark, part="leg", material="wood")
    f.fill(f.rect(0.06, 0.12, 0.13, 1.0), wood, part="leg", material="wood")
    f.fill(f.rect(0.87, 0.12, 0.94, 1.0), wood, part="leg", material="wood")
    f.fill(f.rect(0.0, 0.0, 1.0, 0.14), wood, part="tabletop", material="wood")


def draw_chair(f: Frame, rng) -> None:
    c = colour(rng, "wood") if rng.random() < 0.6 else colour(rng, "bright")
    mat = "wood"
    f.fill(f.rect(0.12, 0.0, 0.22, 0.5), c, part="backrest", material=mat)
    f.fill(f.rect(0.78, 0.0, 0.88, 0.5), c, part="backrest", material=mat)
    f.fill(f.rect(0.12, 0.02, 0.88, 0.14), c, part="backrest", material=mat)
    f.fill(f.rect(0.12, 0.22, 0.88, 0.3), c, part="backrest", material=mat)
    f.fill(f.rect(0.05, 0.5, 0.95, 0.6), _darker(c, 0.85), part="seat", material=mat)
    f.fill(f.rect(0.08, 0.6, 0.17, 1.0), c, part="leg", material=mat)
    f.fill(f.rect(0.83, 0.6, 0.92, 1.0), c, part="leg", material=mat)


def draw_plant(f: Frame, rng) -> None:
    leaf = colour(rng, "foliage")
    n = int(rng.integers(5, 8))
    for k in range(n):
        angle = -math.pi / 2 + (k - (n - 1) / 2) * 0.28 + rng.uniform(-0.08, 0.08)
        r = rng.uniform(0.22, 0.3)
        cu = 0.5 + r * math.cos(angle) * 1.1
        cv = 0.6 + r * math.sin(angle) * 1.2
        f.fill(f.ellipse(cu, cv, 0.09, 0.22, angle + math.pi / 2), jitter(rng, leaf, 12),
               material="foliage")
    pot = jitter(rng, [(180, 90, 50), (220, 220, 215), (60, 90, 150), (40, 40, 45)][int(rng.integers(4))])
    f.fill(f.poly([(0.22, 0.62), (0.78, 0.62), (0.68, 1.0), (0.32, 1.0)]), pot, part="pot")


def draw_cabinet(f: Frame, rng) -> None:
    c = colour(rng, "wood") if rng.random() < 0.6 else colour(rng, "pale")
    f.fill(f.rect(0, 0, 1, 1), _darker(c, 0.7), material="wood")
    for v0, v1 in ((0.04, 0.18), (0.21, 0.35)):
        f.fill(f.rect(0.05, v0, 0.95, v1), c, part="drawer", material="wood")
        f.fill(f.circle(0.5, (v0 + v1) / 2, 0.035), colour(rng, "metal"), part="drawer", material="metal")
    f.fill(f.rect(0.05, 0.38, 0.48, 0.96), c, part="door", material="wood")
    f.fill(f.rect(0.52, 0.38, 0.95, 0.96), c, part="door", material="wood")
    f.fill(f.circle(0.42, 0.6, 0.03), colour(rng, "metal"), part="door", material="metal")
    f.fill(f.circle(0.58, 0.6, 0.03), colour(rng, "metal"), part="door", material="metal")


def draw_window(f: Frame, rng) -> None:
    frame = colour(rng, "pale") if rng.random() < 0.6 else colour(rng, "wood")
    f.fill(f.rect(0, 0, 1, 1), frame, material="wood")
    sky = colour(rng, "glass", 15)
    for u0, u1 in ((0.08, 0.46), (0.54, 0.92)):
        for v0, v1 in ((0.07, 0.46), (0.54, 0.93)):
            f.fill(f.rect(u0, v0, u1, v1), sky, part="pane", material="glass", shade=-0.25)


def draw_clock(f: Frame, rng) -> None:
    f.fill(f.circle(0.5, 0.5, 0.5), colour(rng, "dark") if rng.random() < 0.5 else colour(rng, "wood"))
    f.fill(f.circle(0.5, 0.5, 0.42), colour(rng, "pale", 8), part="dial")
    hand = colour(rng, "dark")
    for k in range(4):
        a = k * math.pi / 2
        f.fill(f.circle(0.5 + 0.34 * math.cos(a), 0.5 + 0.34 * math.sin(a), 0.035), hand, part="dial")
    a1, a2 = rng.uniform(0, 2 * math.pi, 2)
    f.fill(f.line(0.5, 0.5, 0.5 + 0.3 * math.cos(a1), 0.5 + 0.3 * math.sin(a1), 0.07), hand, part="dial")
    f.fill(f.line(0.5, 0.5, 0.5 + 0.2 * math.cos(a2), 0.5 + 0.2 * math.sin(a2), 0.09), hand, part="dial")


def draw_blackboard(f: Frame, rng) -> None:
    f.fill(f.rect(0, 0, 1, 1), colour(rng, "wood"), part="frame", material="wood")
    board = jitter(rng, [(40, 70, 50), (35, 35, 40), (30, 60, 45)][int(rng.integers(3))], 8)
    f.fill(f.rect(0.05, 0.07, 0.95, 0.87), board)
    chalk = jitter(rng, (230, 230, 225), 10)
    for _ in range(int(rng.integers(2, 5))):
        v = rng.uniform(0.2, 0.75)
        u0 = rng.uniform(0.12, 0.4)
        f.fill(f.line(u0, v, u0 + rng.uniform(0.2, 0.45), v + rng.uniform(-0.05, 0.05), 0.025), chalk)
    f.fill(f.rect(0.1, 0.87, 0.9, 0.95), _darker(colour(rng, "wood")), part="frame", material="wood")


# ---------------------------------------------------------------------------
# people and outdoor objects

def draw_person(f: Frame, rng) -> None:
    shirt, pants, skin = colour(rng, "bright"), colour(rng, "fabric"), colour(rng, "skin", 10)
    f.fill(f.rect(0.27, 0.55, 0.48, 1.0), pants, part="leg", material="fabric")
    f.fill(f.rect(0.52, 0.55, 0.73, 1.0), pants, part="leg", material="fabric")
    swing = rng.uniform(-0.08, 0.08)
    f.fill(f.line(0.26, 0.24, 0.1 + swing, 0.55, 0.13), shirt, material="fabric")
    f.fill(f.line(0.74, 0.24, 0.9 - swing, 0.55, 0.13), shirt, material="fabric")
    f.fill(f.poly([(0.22, 0.2), (0.78, 0.2), (0.75, 0.6), (0.25, 0.6)]), shirt, material="fabric")
    f.fill(f.ellipse(0.5, 0.105, 0.2, 0.085), skin, part="head")
    f.fill(f.ellipse(0.5, 0.08, 0.21, 0.065, half="top"), colour(rng, "dark", 20), part="head")


def draw_cloud(f: Frame, rng) -> None:
    c = jitter(rng, (245, 245, 245) if rng.random() < 0.7 else (205, 210, 215), 6)
    n = int(rng.integers(3, 6))
    for k in range(n):
        u = 0.2 + 0.6 * k / max(n - 1, 1)
        f.fill(f.ellipse(u, rng.uniform(0.45, 0.6), rng.uniform(0.15, 0.22), rng.uniform(0.3, 0.45)), c)
    f.fill(f.ellipse(0.5, 0.65, 0.45, 0.3), c)


def draw_tree(f: Frame, rng) -> None:
    f.fill(f.rect(0.42, 0.5, 0.58, 1.0), colour(rng, "wood"), part="trunk", material="wood")
    green = colour(rng, "foliage")
    if rng.random() < 0.35:  # conifer: stacked triangles
        for k, v in enumerate((0.0, 0.18, 0.36)):
            f.fill(f.poly([(0.5, v), (0.95 - 0.1 * (2 - k), v + 0.32), (0.05 + 0.1 * (2 - k), v + 0.32)][::1]),
                   jitter(rng, green, 8), part="crown", material="foliage")
        f.fill(f.poly([(0.5, 0.3), (1.0, 0.72), (0.0, 0.72)]), jitter(rng, green, 8), part="crown",
               material="foliage")
    else:
        for u, v, r in ((0.5, 0.3, 0.34), (0.3, 0.42, 0.26), (0.7, 0.42, 0.26), (0.5, 0.5, 0.28)):
            f.fill(f.ellipse(u, v, r, r * 0.9 * f.w / max(f.h, 1)), jitter(rng, green, 10), part="crown",
                   material="foliage")


def draw_sign(f: Frame, rng) -> None:
    f.fill(f.rect(0.44, 0.4, 0.56, 1.0), colour(rng, "metal"), material="metal")
    board = jitter(rng, [(30, 90, 180), (30, 130, 60), (200, 40, 40), (240, 200, 30), (240, 240, 235)]
                   [int(rng.integers(5))], 15)
    f.fill(f.rect(0.0, 0.0, 1.0, 0.45), jitter(rng, (240, 240, 240), 10), part="board", material="metal")
    f.fill(f.rect(0.05, 0.04, 0.95, 0.41), board, part="board", material="metal")
    text = (250, 250, 250) if board.mean() < 170 else (30, 30, 30)
    for v in (0.13, 0.25):
        f.fill(f.rect(0.15, v, rng.uniform(0.6, 0.85), v + 0.06), np.asarray(text, np.float32), part="board")


def draw_streetlight(f: Frame, rng) -> None:
    metal = colour(rng, "metal") if rng.random() < 0.5 else colour(rng, "dark")
    f.fill(f.rect(0.12, 0.94, 0.5, 1.0), metal, part="pole", material="metal")
    f.fill(f.line(0.3, 0.08, 0.3, 0.9, 0.35), metal, part="pole", material="metal")
    f.fill(f.line(0.3, 0.08, 0.82, 0.1, 0.2), metal, material="metal")
    f.fill(f.ellipse(0.8, 0.135, 0.22, 0.035), metal, material="metal")
    f.fill(f.ellipse(0.8, 0.14, 0.17, 0.025, half=None), jitter(rng, (250, 235, 160), 8), part="light",
           material="glass")


def draw_car(f: Frame, rng) -> None:
    body = colour(rng, "bright")
    f.fill(f.poly([(0.22, 0.47), (0.33, 0.1), (0.7, 0.1), (0.84, 0.47)]), body, material="metal")
    glass = colour(rng, "glass", 15)
    f.fill(f.poly([(0.29, 0.45), (0.37, 0.17), (0.51, 0.17), (0.51, 0.45)]), glass, part="windshield",
           material="glass")
    f.fill(f.poly([(0.55, 0.45), (0.55, 0.17), (0.67, 0.17), (0.77, 0.45)]), glass, part="windshield",
           material="glass")
    f.fill(f.rect(0.0, 0.44, 1.0, 0.85), body, material="metal", shade=0.25)
    f.fill(f.rect(0.93, 0.52, 1.0, 0.6), jitter(rng, (250, 230, 120), 5), material="glass")
    for u in (0.22, 0.78):
        f.fill(f.circle(u, 0.82, 0.1), colour(rng, "dark", 8), part="wheel")
        f.fill(f.circle(u, 0.82, 0.045), colour(rng, "metal"), part="wheel", material="metal")


def draw_umbrella(f: Frame, rng) -> None:
    f.fill(f.line(0.5, 0.3, 0.5, 1.0, 0.04), colour(rng, "metal"), part="pole", material="metal")
    c1, c2 = colour(rng, "bright"), colour(rng, "bright")
    f.fill(f.ellipse(0.5, 0.36, 0.5, 0.34, half="top"), c1, part="canopy", material="fabric")
    for k in (1, 3):  # stripes: two wedges of the second colour
        a0, a1 = math.pi + k * math.pi / 5, math.pi + (k + 1) * math.pi / 5
        f.fill(f.poly([(0.5, 0.36), (0.5 + 0.5 * math.cos(a0), 0.36 + 0.34 * math.sin(a0)),
                       (0.5 + 0.5 * math.cos(a1), 0.36 + 0.34 * math.sin(a1))]), c2, part="canopy",
               material="fabric")
    f.fill(f.circle(0.5, 0.02, 0.03), c1, part="canopy")


def draw_carousel(f: Frame, rng) -> None:
    roof, trim = colour(rng, "bright"), colour(rng, "bright")
    f.fill(f.rect(0.47, 0.3, 0.53, 0.88), colour(rng, "metal"), material="metal")
    for u in (0.1, 0.9):
        f.fill(f.rect(u - 0.015, 0.3, u + 0.015, 0.88), jitter(rng, (220, 190, 60)), material="metal")
    for u, v in ((0.28, 0.6), (0.72, 0.66)):
        horse = colour(rng, "pale") if rng.random() < 0.6 else colour(rng, "wood")
        f.fill(f.line(u, 0.35, u, 0.85, 0.02), jitter(rng, (220, 190, 60)), material="metal")
        f.fill(f.ellipse(u, v, 0.1, 0.06), horse, part="horse")
        f.fill(f.line(u + 0.08, v - 0.02, u + 0.13, v - 0.12, 0.05), horse, part="horse")
        f.fill(f.line(u - 0.06, v + 0.03, u - 0.08, v + 0.13, 0.025), horse, part="horse")
        f.fill(f.line(u + 0.06, v + 0.03, u + 0.08, v + 0.13, 0.025), horse, part="horse")
    f.fill(f.rect(0.0, 0.86, 1.0, 0.95), colour(rng, "wood"), material="wood")
    f.fill(f.rect(0.03, 0.95, 0.97, 1.0), _darker(roof, 0.6))
    f.fill(f.poly([(0.5, 0.0), (1.0, 0.27), (0.0, 0.27)]), roof, part="roof")
    f.fill(f.poly([(0.5, 0.0), (0.62, 0.27), (0.38, 0.27)]), trim, part="roof")
    f.fill(f.rect(0.0, 0.26, 1.0, 0.32), trim, part="roof")
    for k in range(6):
        f.fill(f.ellipse(0.083 + k / 6, 0.32, 0.083, 0.03, half=None), roof, part="roof")


def draw_ferris_wheel(f: Frame, rng) -> None:
    metal = colour(rng, "metal") if rng.random() < 0.5 else colour(rng, "bright")
    cu, cv, r = 0.5, 0.45 * f.w / max(f.h, 1) + 0.02, 0.45
    cv = min(cv, 0.5)
    cx, cy = f.px(cu, cv)
    rpx = r * f.w
    f.fill(f.line(cu, cv, 0.15, 1.0, 0.05), _darker(metal), material="metal")
    f.fill(f.line(cu, cv, 0.85, 1.0, 0.05), _darker(metal), material="metal")
    f.fill(f.ring(cu, cv, r, r - 0.035), metal, material="metal")
    n = 8
    offset = rng.uniform(0, math.pi / n)
    ends = []
    for k in range(n):
        a = offset + k * 2 * math.pi / n
        ex, ey = cx + rpx * math.cos(a), cy + rpx * math.sin(a)
        f.canvas.fill(f.canvas.segment(cx, cy, ex, ey, max(1.2, 0.02 * f.w)), metal, part="spoke",
                      material="metal")
        ends.append((ex, ey))
    f.fill(f.circle(cu, cv, 0.05), _darker(metal), material="metal")
    g = 0.07 * f.w
    for ex, ey in ends:
        f.canvas.fill(f.canvas.rect(ex - g / 2, ey, ex + g / 2, ey + g * 0.9), colour(rng, "bright"),
                      part="gondola")


def draw_bench(f: Frame, rng) -> None:
    wood = colour(rng, "wood") if rng.random() < 0.7 else colour(rng, "bright")
    metal = colour(rng, "dark", 20)
    f.fill(f.rect(0.1, 0.0, 0.14, 0.55), metal, part="backrest", material="metal")
    f.fill(f.rect(0.86, 0.0, 0.9, 0.55), metal, part="backrest", material="metal")
    f.fill(f.rect(0.04, 0.05, 0.96, 0.2), wood, part="backrest", material="wood")
    f.fill(f.rect(0.04, 0.27, 0.96, 0.4), wood, part="backrest", material="wood")
    f.fill(f.rect(0.0, 0.5, 1.0, 0.62), wood, material="wood")
    f.fill(f.rect(0.06, 0.62, 0.11, 1.0), metal, part="leg", material="metal")
    f.fill(f.rect(0.89, 0.62, 0.94, 1.0), metal, part="leg", material="metal")


def draw_boat(f: Frame, rng) -> None:
    f.fill(f.line(0.5, 0.04, 0.5, 0.72, 0.03), colour(rng, "wood"), material="wood")
    sail = colour(rng, "pale") if rng.random() < 0.6 else colour(rng, "bright")
    f.fill(f.poly([(0.53, 0.05), (0.53, 0.66), (0.92, 0.66)]), sail, part="sail", material="fabric")
    f.fill(f.poly([(0.47, 0.15), (0.47, 0.66), (0.18, 0.66)]), sail, part="sail", material="fabric")
    hull = colour(rng, "bright") if rng.random() < 0.5 else colour(rng, "wood")
    f.fill(f.poly([(0.0, 0.7), (1.0, 0.7), (0.82, 1.0), (0.18, 1.0)]), hull, part="hull", material="wood")
    f.fill(f.rect(0.0, 0.7, 1.0, 0.76), _darker(hull, 0.7), part="hull", material="wood")


def draw_bird(f: Frame, rng) -> None:
    c = colour(rng, "dark", 20) if rng.random() < 0.7 else colour(rng, "pale")
    flap = rng.uniform(0.0, 0.3)
    f.fill(f.line(0.0, 0.15 + flap, 0.5, 0.6, 0.3), c, part="wing")
    f.fill(f.line(1.0, 0.15 + flap, 0.5, 0.6, 0.3), c, part="wing")
    f.fill(f.ellipse(0.5, 0.65, 0.12, 0.25), c)


def draw_flower(f: Frame, rng) -> None:
    green = colour(rng, "foliage")
    f.fill(f.line(0.5, 0.4, 0.5, 1.0, 0.09), green, part="stem", material="foliage")
    f.fill(f.ellipse(0.66, 0.75, 0.18, 0.06, -0.5), green, part="stem", material="foliage")
    petal = colour(rng, "bright")
    for k in range(6):
        a = k * math.pi / 3
        f.fill(f.circle(0.5 + 0.26 * math.cos(a), 0.26 + 0.16 * math.sin(a), 0.17), petal, part="petal")
    f.fill(f.circle(0.5, 0.26, 0.15), jitter(rng, (240, 200, 40)), part="petal")


def draw_balloon(f: Frame, rng) -> None:
    c = colour(rng, "bright")
    f.fill(f.line(0.5, 0.68, 0.52, 1.0, 0.03), colour(rng, "dark"))
    f.fill(f.poly([(0.5, 0.64), (0.58, 0.74), (0.42, 0.74)]), c)
    f.fill(f.ellipse(0.5, 0.36, 0.5, 0.34), c, shade=0.25)
    f.fill(f.ellipse(0.36, 0.22, 0.09, 0.06), np.clip(c + 60, 0, 255))


#: Drawer per object class name.
DRAWERS: dict[str, Callable[[Frame, np.random.Generator], None]] = {
    name[len("draw_"):]: fn for name, fn in list(globals().items()) if name.startswith("draw_")
}
