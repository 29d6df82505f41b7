"""Experiment 2a (SPEC section 4): empirical receptive fields by occlusion.

For a unit (a channel of a layer): take its top-K images (highest max
activation); slide a patch of random pixels over each image (11x11 on a
grid of stride 3 at 224 px, both scaled with the resolution); the
discrepancy at each occluder position is the absolute change of the unit's
activation at the location of its maximum in the original image.  The
discrepancy maps, re-centred on that location, are averaged over the K
images: the unit's empirical receptive field.

How the work is shared and cut
------------------------------
* One pass over the data finds every unit's top-K images (a streaming top-k,
  memory ``units x K``).
* Each distinct image in the union of the top-K sets gets one set of
  occluded forward passes that serves every unit having it in its top-K.
* A unit's activation at a location depends only on the input pixels inside
  its theoretical receptive field (the *window*), so (``crop=True``)

  - occluder positions that do not touch the window are skipped (their
    discrepancy is exactly zero), and
  - each occluded copy is only the window's crop, not the whole image.

  The crop starts on a multiple of the layer's total stride, so the crop's
  output grid is the full output grid shifted; and where the window reaches
  past the image border, the crop is taken up to that border, so the
  network pads there exactly as in the full pass.  Inside the crop no
  position on the path to the unit reads padding that the full pass would
  not, hence the numbers are those of the full forward (up to the rounding
  of convolution algorithms on different input sizes).  Each crop group
  also runs its unoccluded crop and (``check=True``) compares it with the
  full forward: a wrong theoretical RF raises instead of giving wrong maps.
  Units of an image whose maxima lie at the same location share a crop;
  nearby locations are clustered into one crop of their windows' bounding
  box when that costs less than separate sweeps (see ``crops._plan_groups``).
  The gain is largest for early layers (small windows): for a layer whose
  window covers most of the image, the sweep is the full-image one.

Re-centring and size
--------------------
The averaged map is indexed by pixel offset from the centre of the unit's
theoretical window at its max location (the activation-map location mapped
into the image by the RF stride and start); each occluder position paints
its discrepancy on the ``stride x stride`` cell around the occluder's centre.
Offsets farther than ``size // 2 + occluder + stride`` cannot be touched by
an occluder that reaches the window, so the map stops there.  The map is the
sum over the unit's top images divided by their number.

The RF size of a unit is the side of the square with the same area as the
region of its averaged map above half the map's peak (``sqrt(#pixels >
peak / 2)``), in input pixels; NaN for a unit whose map is all zero (a dead
unit).  As in the paper, the map is seen through the occluder: a pixel
counts when an occluder *centred* on it changes the unit, so the region
grows by up to the occluder's side (a 7-px window read with a 6-px
occluder measures about 8-9 px).

Transformers and global layers
------------------------------
A token layer is read as the map of its patches
(:func:`unitscope.hooks.spatial_map`), and its images are always occluded
whole: a transformer takes no input but one of its own size.  A layer whose
units see the whole image (after self-attention, or a squeeze-and-excitation
gate) has no theoretical window; its maps are centred on the centre of the
unit's cell of the grid (a patch) and reach across the whole image, and its
theoretical size is reported as the image's side with the note (``"global:
attention"``) in ``rf.json`` and ``layer.csv``.

Cost: one pass over the data, one forward per distinct top image (its units'
maxima), then per distinct top image one sweep of (at most)
``((H - occluder) / stride + 1)^2`` occluded copies plus one unoccluded
reference per crop; memory ``units x (2R+1)^2`` floats for the maps.  The
sweep's forward passes are counted before the first one runs (``log``), and
``progress`` counts them.

Exact and adaptive
------------------
``mode="exact"`` (the default) occludes at every grid position: the numbers
above.  ``mode="adaptive"`` is Krypton's drill-down (:mod:`.adaptive`): a
coarse grid first, the paper's stride only where the coarse map is not
negligible and cannot be trusted to interpolate (its second differences
above ``tolerance`` of the unit's peak), the rest interpolated -- fewer
passes where a unit's map is compact or smooth, an approximation measured by
``benchmarks/rf_deep.py``.  The result records the mode and its parameters.

Incremental inference
---------------------
In both modes, where the network up to the layer is a chain of layers whose
effect on a small patch can be followed (convolutions, max and average
pooling, elementwise activations, batch norm in eval, local response norm,
dropout, identity: :mod:`unitscope.models.incremental`), each occluded copy
recomputes only the rectangle of each layer its occluder reaches and its
targets read, from the clean image's activations, and the last convolution
only for the units read: Krypton's incremental inference.  The numbers are
those of the full forward up to float rounding (about 1e-6 of the
activations); any other network (a branch such as a residual add or a
concatenation, adaptive pooling, attention) runs every copy through the
whole network, and the log says why.  ``incremental=False`` asks for the
full forward (the demo does, so its maps keep their bytes).

Where each step lives
---------------------
* :mod:`.top_images` -- the data pass: each unit's top-K images;
* :mod:`.layers` -- a layer read as maps, its theoretical window, its units;
* :mod:`.crops` -- which crop and grid positions serve which units of an image;
* :mod:`.sweep` -- each top image's unit maxima, the passes counted, the crop groups handed to the engine;
* :mod:`.occluder` -- the occluder patches and the engine that sweeps them;
* :mod:`.adaptive` -- the drill-down: coarse groups, the cells to refine, the interpolated rest;
* :mod:`unitscope.models.incremental` -- the copies' forward, recomputing only what each occluder reaches;
* :mod:`unitscope.results.receptive_fields` -- :class:`EmpiricalRFResult`, its tables and files, :func:`rf_size`;
* :mod:`.run` -- :func:`empirical_receptive_fields`, which runs the steps in turn.
"""

from .crops import COPY_OVERHEAD_PIXELS
from .layers import _layer_output, check_rf_layers
from .occluder import PAPER_OCCLUDER, PAPER_RESOLUTION, PAPER_STRIDE, default_occluder
from unitscope.results.receptive_fields import TIMING_STATS, EmpiricalRFResult, rf_size, summarise_receptive_fields
from .run import empirical_receptive_fields
from .top_images import top_activations

__all__ = [
    "EmpiricalRFResult",
    "empirical_receptive_fields",
    "summarise_receptive_fields",
    "rf_size",
    "default_occluder",
    "top_activations",
    "check_rf_layers",
]
