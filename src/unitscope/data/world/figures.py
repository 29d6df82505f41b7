"""Drawing a designed object: a body silhouette with support, top and face features.

The hand-drawn objects of :mod:`.objects` are one function each; a larger
world (the ``study`` preset, :mod:`.presets`) has objects whose
:class:`~unitscope.data.world.definition.Design` is data: a body
(:data:`~unitscope.data.world.definition.BODIES`), at most one feature
below it (legs, wheels, a pole, a base), at most one above it (a lid, a
roof, an antenna) and a few on its face.  Each feature is painted with its
own part and material concept, so a designed object has exact part masks
like a hand-drawn one; colours vary per instance within the design's
colour families, so the class is told apart by its silhouette and parts.

Examples
--------
>>> from unitscope.data.world.definition import Design, Feature
>>> design = Design("box", "wood", "wood", (Feature("legs", "leg", "metal", "metal"),))
>>> body_span(design)
(0.0, 0.72)
"""

from __future__ import annotations

import numpy as np

from .canvas import Frame
from .definition import Design, Feature
from .objects import colour

__all__ = ["draw_design", "body_span"]

#: Where the body ends (top of the support feature), by support kind.
_BODY_BOTTOM = {"legs": 0.72, "wheels": 0.8, "pole": 0.5, "base": 0.84}
#: Where the body starts (bottom of the top feature), by top kind.
_BODY_TOP = {"lid": 0.12, "roof": 0.3, "antenna": 0.2}


def body_span(design: Design) -> tuple[float, float]:
    """The body's vertical extent ``(top, bottom)`` in box coordinates, after its support and top."""
    kinds = design.kinds()
    bottom = next((_BODY_BOTTOM[k] for k in kinds if k in _BODY_BOTTOM), 1.0)
    top = next((_BODY_TOP[k] for k in kinds if k in _BODY_TOP), 0.0)
    return top, bottom


def _body(f: Frame, body: str, t: float, b: float):
    h, mid = b - t, (t + b) / 2
    if body == "box":
        return f.rect(0.0, t, 1.0, b)
    if body == "round":
        return f.ellipse(0.5, mid, 0.5, h / 2)
    if body == "dome":
        return f.ellipse(0.5, b, 0.5, h, half="top")
    if body == "triangle":
        return f.poly([(0.5, t), (1.0, b), (0.0, b)])
    if body == "trapezoid":
        return f.poly([(0.22, t), (0.78, t), (1.0, b), (0.0, b)])
    if body == "barrel":
        return f.poly([(0.12, t), (0.88, t), (1.0, mid), (0.88, b), (0.12, b), (0.0, mid)])
    if body == "capsule":
        return f.poly([(0.2, t), (0.8, t), (1.0, t + 0.3 * h), (1.0, b), (0.0, b), (0.0, t + 0.3 * h)])
    if body == "diamond":
        return f.poly([(0.5, t), (1.0, mid), (0.5, b), (0.0, mid)])
    raise ValueError(f"unknown body {body!r}")


def _support(f: Frame, feat: Feature, c, b: float) -> None:
    kw = {"part": feat.part, "material": feat.material}
    if feat.kind == "legs":
        f.fill(f.rect(0.1, b, 0.2, 1.0), c, **kw)
        f.fill(f.rect(0.8, b, 0.9, 1.0), c, **kw)
    elif feat.kind == "wheels":
        for u in (0.22, 0.78):
            f.fill(f.circle(u, b + 0.02, 0.12), c, **kw)
            f.fill(f.circle(u, b + 0.02, 0.05), np.clip(c + 90, 0, 255), **kw)
    elif feat.kind == "pole":
        f.fill(f.rect(0.45, b, 0.55, 0.96), c, **kw)
        f.fill(f.rect(0.3, 0.96, 0.7, 1.0), c, **kw)
    elif feat.kind == "base":
        f.fill(f.rect(0.06, b, 0.94, 1.0), c, **kw)


def _top(f: Frame, feat: Feature, c, t: float) -> None:
    kw = {"part": feat.part, "material": feat.material}
    if feat.kind == "lid":
        f.fill(f.rect(0.0, 0.0, 1.0, t + 0.02), c, **kw)
    elif feat.kind == "roof":
        f.fill(f.poly([(0.5, 0.0), (1.0, t + 0.02), (0.0, t + 0.02)]), c, **kw)
    elif feat.kind == "antenna":
        f.fill(f.line(0.5, t + 0.02, 0.72, 0.02, 0.05), c, **kw)
        f.fill(f.circle(0.72, 0.03, 0.04), c, **kw)


def _face(f: Frame, feat: Feature, c, t: float, b: float, rng: np.random.Generator) -> None:
    kw = {"part": feat.part, "material": feat.material}
    h = b - t

    def v(x: float) -> float:  # a height inside the body
        return t + x * h

    if feat.kind == "panel":
        f.fill(f.rect(0.28, v(0.3), 0.72, v(0.75)), c, **kw)
    elif feat.kind == "knobs":
        for u in (0.35, 0.5, 0.65):
            f.fill(f.circle(u, v(0.22), 0.045), c, **kw)
    elif feat.kind == "stripes":
        for a in (0.35, 0.6):
            f.fill(f.rect(0.18, v(a), 0.82, v(a + 0.09)), c, **kw)
    elif feat.kind == "window":
        for u0 in (0.25, 0.52):
            for a in (0.25, 0.52):
                f.fill(f.rect(u0, v(a), u0 + 0.22, v(a + 0.2)), c, **kw)
    elif feat.kind == "handle":
        f.fill(f.rect(0.76, v(0.35), 0.84, v(0.65)), c, **kw)
    elif feat.kind == "spots":
        for _ in range(int(rng.integers(3, 6))):
            f.fill(f.circle(rng.uniform(0.3, 0.7), v(rng.uniform(0.35, 0.7)), 0.06), c, **kw)
    elif feat.kind == "ring":
        r = min(0.26, 0.45 * h * f.h / max(f.w, 1))  # radii are fractions of the width: fit the band
        f.fill(f.ring(0.5, v(0.5), r, 0.5 * r), c, **kw)
    elif feat.kind == "cross":
        f.fill(f.rect(0.44, v(0.3), 0.56, v(0.75)), c, **kw)
        f.fill(f.rect(0.3, v(0.46), 0.7, v(0.58)), c, **kw)


def draw_design(f: Frame, rng: np.random.Generator, design: Design) -> None:
    """Paint one instance of a designed object in its frame.

    The support and top are painted first, the body over them, the face
    features last, each in its own horizontal band of the body; every
    colour is drawn from the feature's family, once per instance.
    """
    t, b = body_span(design)
    colours = [colour(rng, feat.palette) for feat in design.features]
    for feat, c in zip(design.features, colours):
        if feat.kind in _BODY_BOTTOM:
            _support(f, feat, c, b)
        elif feat.kind in _BODY_TOP:
            _top(f, feat, c, t)
    f.fill(_body(f, design.body, t, b), colour(rng, design.palette), material=design.material, shade=0.15)
    faces = [(feat, c) for feat, c in zip(design.features, colours)
             if feat.kind not in _BODY_BOTTOM and feat.kind not in _BODY_TOP]
    for k, (feat, c) in enumerate(faces):  # one band of the body each, so none hides another
        _face(f, feat, c, t + k * (b - t) / len(faces), t + (k + 1) * (b - t) / len(faces), rng)
