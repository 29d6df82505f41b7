"""Experiment 5 (SPEC section 7): units as object localizers.

A unit that dissection labelled with object ``c`` (a *detector*: its best
concept is an object and its IoU exceeds the threshold) localises ``c`` by
its activation map: upsampled (bilinear) to the mask resolution and
thresholded at the unit's dissection threshold ``T_u``, it gives a mask, and
the mask's connected components give boxes.  Each is scored against the
ground-truth mask of ``c`` on the images that contain ``c``:

* **mask IoU** -- ``sum |M and G| / sum |M or G|`` over those images (pooled,
  as in dissection) and the mean of the per-image IoUs;
* **box IoU** -- per image, the best IoU between a component box of the
  unit's mask and a box of a ground-truth connected component (0 when the
  unit does not fire); its mean, and the share of images where it reaches
  ``box_hit_iou`` (0.5, the usual detection criterion);
* **pointing game** -- a hit when the maximum of the upsampled map lies
  within ``pointing_radius`` pixels of a pixel of ``c``;
* how often the unit fires on images *without* ``c`` (false alarms).

The detectors of ``c`` in a layer are also combined into "the layer's
detector of c": each map is normalised to ``(A_u - T_u) / (M_u - T_u)``
(0 at the threshold, 1 at the unit's maximum over the dissection pool,
``M_u``; scale 1 when ``M_u == T_u``), the combined map is their maximum, its
mask is the union of the units' masks (the combined map >= 0) and its peak
the combined map's maximum.

Pixels and the pointing radius.  Masks are compared at the annotation's
resolution ``(sh, sw)`` (optionally subsampled to ``mask_size``), which may
differ from the network's input ``(H, W)`` (Broden masks are half the image
size).  ``pointing_radius`` is in pixels of the *network's input image*: the
distance from the peak to the nearest object pixel is measured on the mask
grid with pixel spacing ``(H / sh, W / sw)``, so 15 px means 15 input pixels
whatever the mask resolution.  Connected components use 8-connectivity.

One forward pass.  The layer is traced without stopping the network, so the
same pass that localises the objects also gives the scene class (top-1 of
the model output).  For a few example images the result keeps the predicted
class, the boxes of every detected object, and the image and masks the
report draws its picture from (masks overlaid, boxes drawn).

Thresholds at ties follow the dissection's rule, with the unit's running
minimum standing in for its lowest value (see :mod:`.batch`).

The package, one idea a file: :mod:`.detectors` (which units detect which
object, from a dissection), :mod:`.masks` (ground truth on the mask grid),
:mod:`.boxes` (components, boxes, box IoU), :mod:`.scores` (the metrics'
running sums and the tables made of them), :mod:`.batch` (one forward pass,
scored), :mod:`.examples` (example records and the arrays of their pictures)
and :mod:`.run` (:func:`localize_objects`); :class:`LocalizationResult`, its
tables and files are :mod:`unitscope.results.localize`.
"""

from __future__ import annotations

from unitscope.results.localize import LocalizationResult

from .boxes import box_iou, component_boxes
from .detectors import check_dissected_network, object_detectors
# private helpers that ablate.py shares (imported from here since before the split)
from .detectors import _dissection_layer, _threshold  # noqa: F401
from .run import localize_objects
from .scores import METRICS

__all__ = ["LocalizationResult", "localize_objects", "object_detectors", "component_boxes", "box_iou"]
