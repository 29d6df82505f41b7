"""Network dissection: what each unit of a layer detects (SPEC section 5).

For every unit (channel) of a studied layer, over an annotated pool:

1. the threshold ``T_u`` is the top ``quantile`` (default 0.005) of the
   unit's activations over all images and positions (a mergeable streaming
   quantile sketch, never all activations in memory; ``threshold_rule``
   picks the convention, :mod:`~unitscope.experiments._thresholds`);
2. each activation map is upsampled (bilinear) to the mask size and
   thresholded, ``A_u > T_u`` (a unit whose threshold is its maximum is
   *saturated*: its mask is empty, never inflated by ties);
3. ``IoU(u, c) = sum |A_u > T_u  and  c| / sum |A_u > T_u  or  c|`` over
   the pool (images where ``c``'s category is not annotated do not count);
4. the unit's label is its concept of highest IoU, per category too; it is a
   *detector* when that IoU exceeds ``iou_threshold`` (default 0.04);
5. its *type* follows the paper's taxonomy from the label's category
   (simple elements & colours, texture/material, region/surface, object
   part, object, scene);
6. its *precision* is the fraction of its top ``top_k`` (default 60) images
   (by maximum activation) whose thresholded map overlaps the label's mask.

How many passes: the network runs **once**, the masks are decoded
**once**.  Pass 1 feeds the quantile and top-k statistics and writes the
layer's activations to a disk cache (float32, one file per layer under the
run's partial folder, deleted at the end), while a worker process decodes
the masks into per-batch label files (kept in ``label_cache`` for later
dissections of the same pool).  Pass 2 reads both back and counts
intersections and unions: only the (image, unit) pairs whose peak reaches
the threshold are upsampled (two small matrix products), and each image's
overlaps with its concepts are one matrix product with its one-hot labels.
The cache is kept within a disk budget (``activation_cache="auto"``,
``cache_budget_gb=20``): above it pass 2 runs the network again instead
(``"recompute"``: no disk, twice the forward cost, the same tables);
``"float16"`` halves the disk at a small cost in IoU (:mod:`.cache`).
Statistics are checkpointed every ``checkpoint_every`` batches; a killed
run started again with the same arguments resumes and ends with the same
results.  Under ``torchrun`` each rank takes a contiguous shard and the
statistics are merged exactly (top-k and counts) or within the sketch's
bound (quantiles).

A file per idea: :mod:`.run` (:func:`dissect`: options, resume, the two
passes in order), :mod:`.activations` (pass 1), :mod:`.cache` (the activation cache and its policy),
:mod:`.labels` (the masks decoded into label files, and their cache),
:mod:`.counting` (pass 2: upsampling and overlaps).  What it returns,
:class:`DissectionResult` (tables, files, warnings), is defined with every
other saved result in :mod:`unitscope.results.dissection`.
"""

from unitscope.experiments.dissect.run import dissect
from unitscope.results.dissection import CATEGORY_TYPES, UNIT_TYPES, DissectionResult, LayerDissection
from unitscope.results.dissection_warnings import flag_null

# (tests reach these internals through the package, where they lived before it was split)
from unitscope.experiments.dissect.counting import _Upsampler  # noqa: F401
from unitscope.experiments.dissect.labels import _AnnotationView  # noqa: F401

__all__ = [
    "UNIT_TYPES",
    "CATEGORY_TYPES",
    "DissectionResult",
    "LayerDissection",
    "dissect",
    "flag_null",
]
