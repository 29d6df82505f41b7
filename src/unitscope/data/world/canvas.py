"""A tiny rasteriser with exact label maps, for drawing the synthetic world.

Every shape is tested at pixel centres inside its bounding window only, so a
primitive costs a few microseconds; there is no anti-aliasing, so each
pixel belongs to exactly one primitive and the label maps (instance, part,
material, texture) are exact: a mask is the set of pixels that was painted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Shape", "Canvas", "Frame"]


@dataclass
class Shape:
    """A boolean mask over a window ``[y0:y1, x0:x1]`` of the canvas."""

    y0: int
    y1: int
    x0: int
    x1: int
    mask: np.ndarray

    @property
    def empty(self) -> bool:
        return self.mask.size == 0 or not self.mask.any()


class Canvas:
    """An RGB image under construction, with its label maps.

    Attributes
    ----------
    image : ndarray, float32, shape (H, W, 3)
        Colours in ``[0, 255]`` (clipped when exported).
    instance : ndarray, int32, shape (H, W)
        Object instance painted last at each pixel (0 = background).
    part, material, texture : ndarray, int32, shape (H, W)
        Concept numbers (0 = none).
    """

    def __init__(self, size: int, *, numbers: dict[str, dict[str, int]]) -> None:
        self.size = int(size)
        self.image = np.zeros((size, size, 3), np.float32)
        self.instance = np.zeros((size, size), np.int32)
        self.part = np.zeros((size, size), np.int32)
        self.material = np.zeros((size, size), np.int32)
        self.texture = np.zeros((size, size), np.int32)
        self.numbers = numbers
        self.current_instance = 0
        # Pixel-centre coordinates, shared by every window.
        self._coords = np.arange(size, dtype=np.float32) + 0.5

    # -- windows -----------------------------------------------------------
    def _window(self, x0: float, y0: float, x1: float, y1: float):
        s = self.size
        ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
        ix1, iy1 = min(s, int(math.ceil(x1)) + 1), min(s, int(math.ceil(y1)) + 1)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        xs = self._coords[ix0:ix1][None, :]
        ys = self._coords[iy0:iy1][:, None]
        return iy0, iy1, ix0, ix1, xs, ys

    def _shape(self, win, mask) -> Shape:
        if win is None:
            return Shape(0, 0, 0, 0, np.zeros((0, 0), bool))
        y0, y1, x0, x1 = win[:4]
        if mask.shape != (y1 - y0, x1 - x0):
            mask = np.broadcast_to(mask, (y1 - y0, x1 - x0))
        return Shape(y0, y1, x0, x1, mask)

    # -- primitives (pixel coordinates) -----------------------------------
    def rect(self, x0: float, y0: float, x1: float, y1: float) -> Shape:
        """Axis-aligned rectangle ``[x0, x1) x [y0, y1)``."""
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        win = self._window(x0, y0, x1, y1)
        if win is None:
            return self._shape(None, None)
        xs, ys = win[4], win[5]
        return self._shape(win, ((xs >= x0) & (xs < x1)) & ((ys >= y0) & (ys < y1)))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
                *, half: str | None = None) -> Shape:
        """Ellipse with radii ``rx, ry`` rotated by ``angle`` radians; ``half='top'`` keeps y <= cy."""
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        r = max(rx, ry)
        win = self._window(cx - r, cy - r, cx + r, cy + r)
        if win is None:
            return self._shape(None, None)
        dx, dy = win[4] - cx, win[5] - cy
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        mask = (dx / rx) ** 2 + (dy / ry) ** 2 <= 1.0
        if half == "top":
            mask = mask & (win[5] <= cy)
        return self._shape(win, mask)

    def ring(self, cx: float, cy: float, r_out: float, r_in: float) -> Shape:
        win = self._window(cx - r_out, cy - r_out, cx + r_out, cy + r_out)
        if win is None:
            return self._shape(None, None)
        d2 = (win[4] - cx) ** 2 + (win[5] - cy) ** 2
        return self._shape(win, (d2 <= r_out * r_out) & (d2 >= r_in * r_in))

    def polygon(self, points) -> Shape:
        """Polygon (any simple polygon; even-odd rule) given as ``[(x, y), ...]``."""
        pts = np.asarray(points, dtype=np.float32)
        win = self._window(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        if win is None:
            return self._shape(None, None)
        xs, ys = win[4], win[5]
        inside = np.zeros((ys.shape[0], xs.shape[1]), bool)
        n = len(pts)
        for i in range(n):
            xa, ya = pts[i]
            xb, yb = pts[(i + 1) % n]
            if ya == yb:
                continue
            crosses = (ys >= min(ya, yb)) & (ys < max(ya, yb))
            x_at = xa + (ys - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (xs < x_at)
        return self._shape(win, inside)

    def segment(self, xa: float, ya: float, xb: float, yb: float, width: float) -> Shape:
        """Thick line segment: pixels within ``width / 2`` of the segment."""
        hw = max(width, 1.0) / 2.0
        win = self._window(min(xa, xb) - hw, min(ya, yb) - hw, max(xa, xb) + hw, max(ya, yb) + hw)
        if win is None:
            return self._shape(None, None)
        xs, ys = win[4], win[5]
        vx, vy = xb - xa, yb - ya
        length2 = vx * vx + vy * vy
        if length2 == 0:
            t = np.zeros_like(xs + ys)
        else:
            t = np.clip(((xs - xa) * vx + (ys - ya) * vy) / length2, 0.0, 1.0)
        px, py = xa + t * vx - xs, ya + t * vy - ys
        return self._shape(win, px * px + py * py <= hw * hw)

    # -- painting ----------------------------------------------------------
    def fill(self, shape: Shape, colour, *, part: str | None = None, material: str | None = None,
             shade: float = 0.0) -> None:
        """Paint ``shape`` with ``colour`` and stamp the current instance, part and material.

        ``shade`` darkens the bottom of the window relative to its top
        (a cheap sense of volume).
        """
        if shape.empty:
            return
        sl = (slice(shape.y0, shape.y1), slice(shape.x0, shape.x1))
        m = shape.mask
        colour = np.asarray(colour, np.float32)
        if shade:
            ramp = np.linspace(1.0 + shade / 2, 1.0 - shade / 2, shape.y1 - shape.y0, dtype=np.float32)
            block = ramp[:, None, None] * colour[None, None, :]
            self.image[sl][m] = np.broadcast_to(block, m.shape + (3,))[m]
        else:
            self.image[sl][m] = colour
        self.instance[sl][m] = self.current_instance
        self.part[sl][m] = self.numbers["part"][part] if part else 0
        self.material[sl][m] = self.numbers["material"][material] if material else 0
        self.texture[sl][m] = 0


class Frame:
    """An object's box on the canvas: draw with coordinates relative to the box.

    ``u`` runs left to right and ``v`` top to bottom, both in ``[0, 1]``;
    ``mirror`` flips ``u``.  Radii and widths are fractions of the box width
    (``r``) or of its smaller side (``t``).
    """

    def __init__(self, canvas: Canvas, x: float, y: float, w: float, h: float, *, mirror: bool = False):
        self.canvas, self.x, self.y, self.w, self.h, self.mirror = canvas, x, y, w, h, mirror

    def px(self, u: float, v: float) -> tuple[float, float]:
        if self.mirror:
            u = 1.0 - u
        return self.x + u * self.w, self.y + v * self.h

    def rect(self, u0, v0, u1, v1) -> Shape:
        xa, ya = self.px(u0, v0)
        xb, yb = self.px(u1, v1)
        return self.canvas.rect(xa, ya, xb, yb)

    def ellipse(self, u, v, ru, rv, angle: float = 0.0, *, half: str | None = None) -> Shape:
        cx, cy = self.px(u, v)
        if self.mirror:
            angle = -angle
        return self.canvas.ellipse(cx, cy, ru * self.w, rv * self.h, angle, half=half)

    def circle(self, u, v, r) -> Shape:
        cx, cy = self.px(u, v)
        return self.canvas.ellipse(cx, cy, r * self.w, r * self.w)

    def ring(self, u, v, r_out, r_in) -> Shape:
        cx, cy = self.px(u, v)
        return self.canvas.ring(cx, cy, r_out * self.w, r_in * self.w)

    def poly(self, points) -> Shape:
        return self.canvas.polygon([self.px(u, v) for u, v in points])

    def line(self, u0, v0, u1, v1, t) -> Shape:
        xa, ya = self.px(u0, v0)
        xb, yb = self.px(u1, v1)
        return self.canvas.segment(xa, ya, xb, yb, max(1.2, t * min(self.w, self.h)))

    def fill(self, shape: Shape, colour, **kwargs) -> None:
        self.canvas.fill(shape, colour, **kwargs)
