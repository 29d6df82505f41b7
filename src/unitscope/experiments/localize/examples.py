"""Example images: the scene class predicted in the same pass, each object's boxes, and a picture.

The pictures are drawn here (the image enlarged, masks tinted, boxes drawn);
the result keeps them as arrays beside the boxes, in input-image pixels.
"""

from __future__ import annotations

import numpy as np

from .._common import to_uint8
from .._io import safe_name
from .boxes import _to_image_boxes, component_boxes

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
            (0, 128, 128), (170, 110, 40)]


def _example_record(position, meta, predicted, probability, j, names, image_size, mask_size) -> dict:
    label = int(meta.get("label", -1))

    def name(k):
        if k is None or k < 0:
            return ""
        return names[k] if names and k < len(names) else str(k)

    pred = None if predicted is None else int(predicted[j])
    return {"index": int(position), "id": str(meta.get("id", position)), "label": label,
            "label_name": name(label), "predicted": pred, "predicted_name": name(pred),
            "probability": None if probability is None else float(probability[j]),
            "image_size": list(image_size), "mask_size": list(mask_size), "detections": []}


def _detection(layer: str, obj: str, mask: np.ndarray, truth: np.ndarray, spacing) -> dict:
    return {"layer": layer, "object": obj, "present": bool(truth.any()), "detected": bool(mask.any()),
            "boxes": _to_image_boxes(component_boxes(mask), spacing),
            "gt_boxes": _to_image_boxes(component_boxes(truth), spacing),
            "mask_fraction": float(mask.mean())}


def _draw_example(image: np.ndarray, detections: list[dict], masks: dict, record: dict,
                  numbers: dict[str, int]) -> np.ndarray:
    """The image (enlarged to at least 256 px) with each detected object's mask tinted and boxes drawn.

    A white band on top gives the scene class predicted in the same forward pass.
    """
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    zoom = max(1, 256 // max(h, w))
    size = (w * zoom, h * zoom)
    picture = Image.fromarray(image).resize(size, Image.NEAREST).convert("RGBA")
    colours = {obj: _PALETTE[k % len(_PALETTE)] for k, obj in enumerate(numbers)}
    for det in detections:
        mask = masks.get((det["layer"], det["object"]))
        if mask is None or not det["detected"]:
            continue
        alpha = Image.fromarray((mask * 110).astype(np.uint8)).resize(size, Image.NEAREST)
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
    title = record["predicted_name"] or "?"
    if record["probability"] is not None:
        title += f" ({record['probability']:.2f})"
    if record["label_name"]:
        title += f"  true: {record['label_name']}"
    canvas = Image.new("RGBA", (picture.width, picture.height + 14), (255, 255, 255, 255))
    canvas.paste(picture, (0, 14))
    ImageDraw.Draw(canvas).text((2, 1), title, fill=(0, 0, 0, 255))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8).copy()


def _keep_examples(picked: list[int], records: dict[int, dict], masks: dict[int, dict], images, *,
                   layers: list[str], numbers: dict[str, int], kept: list[dict],
                   pictures: dict[str, np.ndarray], mean, std, channel_order) -> None:
    """Draw a picture per layer for each picked image of the batch and keep its record.

    ``kept`` and ``pictures`` grow in place; an example's rank is its place in ``kept``.
    """
    for j in picked:
        record = records[j]
        rank = len(kept)
        record["picture"] = {}
        image = to_uint8(images[j].cpu(), mean, std, channel_order=channel_order)
        for name in layers:
            path = f"examples/{safe_name(name)}/{rank:03d}_{safe_name(record['id'])}.png"
            dets = [d for d in record["detections"] if d["layer"] == name]
            pictures[path] = _draw_example(image, dets, masks.get(j, {}), record, numbers)
            record["picture"][name] = path
        kept.append(record)
