"""Example images: the scene class predicted in the same pass, each object's boxes and masks.

What a picture is made of is kept, not the picture: the image as the
network saw it and each detected object's combined mask (on the mask grid),
beside the boxes (in input-image pixels) of the example's record.  The
report draws them (:func:`unitscope.report.pictures.localization_picture`).
"""

from __future__ import annotations

import numpy as np

from .._common import to_uint8
from .boxes import _to_image_boxes, component_boxes


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


def _keep_examples(picked: list[int], records: dict[int, dict], masks: dict[int, dict], images, *,
                   numbers: dict[str, int], kept: list[dict],
                   pictures: dict[str, np.ndarray], mean, std, channel_order) -> None:
    """Keep the record of each picked image of the batch, and the arrays its pictures are drawn from.

    ``kept`` and ``pictures`` grow in place; an example's rank is its place in
    ``kept``.  ``pictures`` gets ``image_<rank>`` (``(H, W, 3)`` uint8),
    ``mask_<rank>_<k>`` (the combined mask of detection ``k``, when detected)
    and ``objects`` (the objects studied, in the order that gives their colours);
    the record's ``picture`` names them.
    """
    for j in picked:
        record = records[j]
        rank = len(kept)
        image = f"image_{rank:03d}"
        pictures[image] = to_uint8(images[j].cpu(), mean, std, channel_order=channel_order)
        names = []
        for k, det in enumerate(record["detections"]):
            mask = masks.get(j, {}).get((det["layer"], det["object"]))
            if mask is None or not det["detected"]:
                names.append(None)
                continue
            names.append(f"mask_{rank:03d}_{k}")
            pictures[names[-1]] = np.asarray(mask, dtype=bool)
        record["picture"] = {"image": image, "masks": names}
        pictures.setdefault("objects", np.array(list(numbers), dtype=str))
        kept.append(record)
