"""Experiment 1 (SPEC section 3): minimal image representations.

For each correctly classified image: cut it into segments, then repeatedly
remove the segment whose removal lowers the correct class's score least,
until the image is no longer classified correctly.  The minimal image is the
last correctly classified one.  1a uses SLIC superpixels; 1b uses the
ground-truth object masks of an annotated pool, so one can ask which objects
survive (the paper: bedroom -> bed 87%, wall 28%, window 21%).

Speed.  Every candidate removal of a step is scored, and the candidates of
*several images* share each forward batch: images are searched side by side,
each round gathers the candidates of every active image, and rounds are
refilled with new images so batches stay full (a lone image with 12 segments
would otherwise waste most of a 64-image batch).  Candidate images are built
on the model's device with one ``torch.where`` per batch.

Filling removed segments.  Work is done in pixel space (``[0, 1]`` RGB, the
network's normalisation undone), then normalised: ``fill="mean"`` paints the
normalisation mean colour (the training set's average colour: a zero input),
``"gray"`` paints 0.5 gray, ``"blur"`` shows a Gaussian-blurred copy of the
image (colour and layout kept, detail gone).

The package, a file per idea: ``run`` (the :func:`minimal_images` entry
point and its option checks), ``segments`` (cutting an image into segments),
``candidates`` (the fill and the device buffers candidate images are built
in) and ``search`` (the greedy search, several images side by side); the
records, their tables, save and load are :mod:`unitscope.results.minimal`.
"""

from __future__ import annotations

from unitscope.results.minimal import MinimalImageRecord, MinimalImagesResult
from .run import FILLS, SCORES, minimal_images

__all__ = ["MinimalImageRecord", "MinimalImagesResult", "minimal_images"]
