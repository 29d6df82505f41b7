"""Backgrounds: the surfaces behind the objects, drawn independently of the scene.

An image is split at a horizon into an upper surface (wall or sky, with an
optional ceiling band above a wall) and a lower surface (floor, carpet,
grass, sand, water, road).  Which surfaces, their colours, textures and the
horizon height are drawn from pools shared by every scene class, so the
background alone says nothing about the scene.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas

__all__ = ["draw_background", "jitter", "PALETTES"]

#: Base colours per surface or object colour family (RGB), jittered per image.
PALETTES: dict[str, list[tuple[int, int, int]]] = {
    "wall": [(225, 215, 190), (200, 200, 205), (180, 200, 220), (205, 225, 195), (235, 200, 190),
             (150, 160, 175), (240, 235, 225), (200, 170, 130), (170, 150, 190), (120, 110, 100)],
    "sky": [(110, 165, 235), (150, 195, 240), (185, 200, 215), (235, 175, 120), (80, 120, 200),
            (170, 170, 180)],
    "ceiling": [(240, 240, 235), (220, 220, 215), (200, 195, 185)],
    "floor": [(150, 100, 60), (185, 140, 90), (110, 75, 45), (200, 195, 185), (120, 120, 125),
              (90, 60, 40)],
    "carpet": [(160, 40, 45), (60, 80, 140), (190, 170, 130), (100, 100, 105), (70, 110, 70),
               (150, 90, 140)],
    "grass": [(70, 140, 50), (95, 160, 60), (55, 115, 45), (130, 160, 70)],
    "sand": [(225, 200, 150), (210, 185, 135), (235, 215, 175)],
    "water": [(50, 110, 170), (40, 140, 160), (70, 130, 190), (30, 80, 130)],
    "road": [(80, 80, 85), (100, 100, 100), (65, 65, 70)],
}


def jitter(rng: np.random.Generator, colour, amount: float = 18.0) -> np.ndarray:
    """A colour moved by a random offset (per channel, +-``amount``), clipped to [0, 255]."""
    c = np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)
    return np.clip(c, 0, 255)


def _pick(rng: np.random.Generator, family: str, amount: float = 18.0) -> np.ndarray:
    base = PALETTES[family][int(rng.integers(len(PALETTES[family])))]
    return jitter(rng, base, amount)


def _speckle(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    return rng.normal(0.0, sigma, shape + (1,)).astype(np.float32)


def _fill_band(cv: Canvas, rng: np.random.Generator, surface: str, y0: int, y1: int) -> None:
    """Paint rows ``[y0, y1)`` with ``surface`` (colour, texture, labels)."""
    if y1 <= y0:
        return
    w = cv.size
    rows = y1 - y0
    base = _pick(rng, surface)
    ys = np.arange(rows, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    block = np.broadcast_to(base, (rows, w, 3)).copy()
    texture = None
    if surface == "wall":
        kind = rng.choice(["plain", "striped", "dotted", "checkered"], p=[0.4, 0.3, 0.15, 0.15])
        period = float(rng.uniform(0.05, 0.11) * w)
        alt = jitter(rng, base * rng.choice([0.8, 1.15]), 8)
        if kind == "striped":
            pattern = (np.floor(xs / (period / 2)) % 2 == 1) & np.ones_like(ys, bool)
        elif kind == "dotted":
            pattern = ((xs % period - period / 2) ** 2 + (ys % period - period / 2) ** 2) <= (period / 5) ** 2
        elif kind == "checkered":
            pattern = (np.floor(xs / period) + np.floor(ys / period)) % 2 == 1
        else:
            pattern = None
        if pattern is not None:
            block[pattern] = alt
            texture = str(kind)
        block += _speckle(rng, (rows, w), 3.0)
    elif surface == "sky":
        top = base * 0.8
        t = (ys / max(rows - 1, 1))[..., None]
        block = (top[None, None, :] * (1 - t) + np.minimum(base * 1.1, 255)[None, None, :] * t).astype(np.float32)
        block = np.broadcast_to(block, (rows, w, 3)).copy()
    elif surface == "ceiling":
        block[-max(1, rows // 8):] *= 0.8
    elif surface == "floor":
        if rng.random() < 0.5:
            # Planks: horizontal boards that widen towards the viewer.
            depth = (ys + 1) / rows
            board = np.floor(np.sqrt(depth) * rng.uniform(5, 9))
            shade = 1.0 + 0.12 * ((board % 2) * 2 - 1)
            block *= shade[..., None]
            edges = np.abs(np.diff(board, axis=0, prepend=board[:1] - 1)) > 0
            block[np.broadcast_to(edges, (rows, w))] *= 0.7
            texture = "striped"
        else:
            period = float(rng.uniform(0.07, 0.13) * w)
            pattern = (np.floor(xs / period) + np.floor(ys / (period * 0.6))) % 2 == 1
            block[pattern] = jitter(rng, base * rng.choice([0.7, 1.25]), 6)
            texture = "checkered"
        block += _speckle(rng, (rows, w), 4.0)
    elif surface == "carpet":
        if rng.random() < 0.3:
            period = float(rng.uniform(0.05, 0.09) * w)
            pattern = ((xs % period - period / 2) ** 2 + (ys % period - period / 2) ** 2) <= (period / 4) ** 2
            block[pattern] = jitter(rng, base * 1.3, 10)
            texture = "dotted"
        block += _speckle(rng, (rows, w), 10.0)
    elif surface == "grass":
        block += _speckle(rng, (rows, w), 16.0)
        blades = rng.random((rows, w)) < 0.08
        block[blades] *= 0.7
    elif surface == "sand":
        block += _speckle(rng, (rows, w), 9.0)
        grains = rng.random((rows, w)) < 0.03
        block[grains] *= 0.8
    elif surface == "water":
        phase = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.25, 0.5)
        wave = np.sin(xs * 0.15 + ys * freq * (1 + ys / rows) + phase)
        block *= (1.0 + 0.12 * wave)[..., None]
        block += _speckle(rng, (rows, w), 4.0)
    elif surface == "road":
        block += _speckle(rng, (rows, w), 7.0)
        if rng.random() < 0.7:
            mid = rows * rng.uniform(0.35, 0.65)
            thick = max(1.0, rows * 0.04)
            dash = float(rng.uniform(0.08, 0.15) * w)
            line = (np.abs(ys - mid) < thick) & ((xs % (2 * dash)) < dash)
            block[line] = jitter(rng, (230, 230, 220), 10)
    else:  # pragma: no cover - guarded by the definition
        raise ValueError(f"unknown surface {surface!r}")
    cv.image[y0:y1] = block
    cv.material[y0:y1] = cv.numbers["material"][surface]
    cv.texture[y0:y1] = cv.numbers["texture"][texture] if texture else 0


def draw_background(cv: Canvas, rng: np.random.Generator, *, upper_surfaces, lower_surfaces,
                    top_surfaces) -> int:
    """Fill the whole canvas with a random background; return the horizon row.

    Every random choice here is independent of the scene class.
    """
    size = cv.size
    horizon = int(round(rng.uniform(0.32, 0.6) * size))
    upper = str(rng.choice(list(upper_surfaces)))
    lower = str(rng.choice(list(lower_surfaces)))
    top = 0
    if upper == "wall" and top_surfaces and rng.random() < 0.35:
        top = int(round(rng.uniform(0.06, 0.14) * size))
        _fill_band(cv, rng, str(rng.choice(list(top_surfaces))), 0, top)
    _fill_band(cv, rng, upper, top, horizon)
    _fill_band(cv, rng, lower, horizon, size)
    return horizon
