"""Every picture of the report, drawn from the arrays the experiments saved.

Experiments save what a picture is made of (an averaged occlusion map, an
image and the masks and boxes found on it, an original and its minimal
version, a thumbnail, a unit's top images and its masks) in ``.npz`` files
beside their tables; this module turns those arrays into images.  Nothing here reads a result folder or
knows a network: each function takes arrays and returns an ``(H, W, 3)``
uint8 image, or encodes one (:func:`png_bytes`, :func:`jpeg_bytes`).

Drawing in one place keeps the choices of colour map, palette, tint and
outline consistent between the report's pages and the labeling app's
tiles (:func:`segmentation_tile`), and lets them change without running
an experiment again.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "PALETTE",
    "colour_map",
    "segmentation_tile",
    "unit_strip",
    "localization_picture",
    "png_bytes",
    "jpeg_bytes",
]

#: Colours of the objects in localisation pictures, in the order the objects are listed.
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
           (0, 128, 128), (170, 110, 40)]


def colour_map(values: np.ndarray, *, cmap: str = "viridis") -> np.ndarray:
    """A 2-D float array as an ``(H, W, 3)`` uint8 image, scaled to its own finite range.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        E.g. a unit's averaged occlusion map.  NaN and infinities are drawn
        as the colour of the minimum; a constant map is drawn all minimum.
    cmap : str, keyword-only
        A matplotlib colour map name.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    lo = values[finite].min() if finite.any() else 0.0
    hi = values[finite].max() if finite.any() else 1.0
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    scaled = np.where(finite, scaled, 0.0)
    rgba = colormaps[cmap](scaled)
    return np.round(rgba[..., :3] * 255).astype(np.uint8)


def segmentation_tile(image: np.ndarray, mask: np.ndarray, *, dim: float = 0.3) -> np.ndarray:
    """A unit's segmentation of one image: ``image`` dimmed outside ``mask``, the mask outlined in yellow.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
        Where the unit fires (its thresholded, upsampled activation).
    dim : float, keyword-only
        Brightness kept outside the mask.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new array; ``image`` is not modified.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    out = np.asarray(image).astype(np.float32)
    out[~mask] *= dim
    edge = mask & ~ndimage.binary_erosion(mask, iterations=1)
    out[edge] = (255, 220, 0)
    return out.clip(0, 255).astype(np.uint8)


def unit_strip(pictures: Sequence[tuple[np.ndarray, np.ndarray]], *, dim: float = 0.15,
               gap: int = 2) -> np.ndarray:
    """A unit's strip (experiment 2b): its top images side by side, each dimmed outside the unit's mask.

    Parameters
    ----------
    pictures : sequence of (ndarray, ndarray)
        ``(image (H, W, 3) uint8, mask (H, W) bool)`` per top image, in rank order.
    dim : float, keyword-only
        Brightness kept outside the mask (0 = black).
    gap : int, keyword-only
        White columns between two images.

    Returns
    -------
    ndarray of uint8, shape (max H, sum of W + gaps, 3)
        Images top-aligned on white.
    """
    shaded = [np.round(np.asarray(image).astype(np.float64) * np.where(np.asarray(mask)[..., None], 1.0, dim))
              .astype(np.uint8) for image, mask in pictures]
    height = max(im.shape[0] for im in shaded)
    strip = np.full((height, sum(im.shape[1] for im in shaded) + gap * (len(shaded) - 1), 3), 255, dtype=np.uint8)
    x = 0
    for im in shaded:
        strip[: im.shape[0], x: x + im.shape[1]] = im
        x += im.shape[1] + gap
    return strip


def localization_picture(image: np.ndarray, record: Mapping, detections: Sequence[Mapping],
                         masks: Mapping[int, np.ndarray], objects: Sequence[str]) -> np.ndarray:
    """One example of localisation: the image enlarged, detected objects' masks tinted, boxes drawn.

    The image is enlarged by a whole factor to at least 256 px (nearest
    neighbour); a white band on top gives the scene class predicted in the
    same forward pass (and the true one).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        The image as the network saw it.
    record : mapping
        ``predicted_name``, ``probability`` (or None) and ``label_name`` of the example.
    detections : sequence of mapping
        The detections of one layer: ``object``, ``detected`` and ``boxes``
        (``[x0, y0, x1, y1]`` in input pixels, ends exclusive).
    masks : mapping of int to ndarray of bool
        Position in ``detections`` -> the combined detector's mask on the mask grid.
    objects : sequence of str
        Every object studied, in order: an object's colour is
        ``PALETTE[position % len(PALETTE)]``, the same in every picture.

    Returns
    -------
    ndarray of uint8, shape (zoom * H + 14, zoom * W, 3)
    """
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    zoom = max(1, 256 // max(h, w))
    size = (w * zoom, h * zoom)
    picture = Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.NEAREST).convert("RGBA")
    colours = {obj: PALETTE[k % len(PALETTE)] for k, obj in enumerate(objects)}
    for k, det in enumerate(detections):
        mask = masks.get(k)
        if mask is None or not det["detected"]:
            continue
        alpha = Image.fromarray((np.asarray(mask) * 110).astype(np.uint8)).resize(size, Image.NEAREST)
        tint = Image.new("RGBA", size, colours[det["object"]] + (255,))
        tint.putalpha(alpha)
        picture = Image.alpha_composite(picture, tint)
    draw = ImageDraw.Draw(picture)
    for det in detections:
        colour = colours[det["object"]] + (255,)
        for x0, y0, x1, y1 in det["boxes"]:
            box = [x0 * zoom, y0 * zoom, max(x0 * zoom, x1 * zoom - 1), max(y0 * zoom, y1 * zoom - 1)]
            draw.rectangle(box, outline=colour, width=2)
            draw.text((box[0] + 3, box[1] + 2), det["object"], fill=colour)
    title = record.get("predicted_name") or "?"
    if record.get("probability") is not None:
        title += f" ({record['probability']:.2f})"
    if record.get("label_name"):
        title += f"  true: {record['label_name']}"
    canvas = Image.new("RGBA", (picture.width, picture.height + 14), (255, 255, 255, 255))
    canvas.paste(picture, (0, 14))
    ImageDraw.Draw(canvas).text((2, 1), title, fill=(0, 0, 0, 255))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8).copy()


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` or ``(H, W)`` uint8 array encoded as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray, *, quality: int = 85) -> bytes:
    """An ``(H, W, 3)`` uint8 array encoded as JPEG (the segmentation tiles' format)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
