"""Image transforms from a network's preprocessing to a normalised tensor.

A transform here is a picklable callable ``PIL.Image -> float tensor (3, H, W)``,
so pools that carry one work with ``DataLoader(num_workers > 0)``.  The
preprocessing is any object with ``input_size``, ``mean`` and ``std``
attributes (``unitscope.models.info.Preprocessing`` is one); ``data`` does not
import ``models``.

Two geometries:

* ``crop=True`` -- torchvision's classic evaluation transform: resize the
  short side to ``round(input_size * 256 / 224)`` and take the centre
  ``input_size`` square.  Used for plain pools (classification, layer
  preference).
* ``crop=False`` -- resize the *whole* image to ``(input_size, input_size)``.
  Used for annotated pools: every input pixel then maps to a fixed fraction
  of the image, so a mask at any resolution ``(sh, sw)`` stays aligned with
  the activations (upsample them to ``(sh, sw)``).  A centre crop would cut
  away a border that the masks still cover.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = ["ImageTransform", "image_transform", "to_tensor", "denormalize"]

#: Ratio between the resized short side and the crop, as in torchvision's
#: ImageNet evaluation (resize 256, crop 224).
CLASSIC_RESIZE_RATIO = 256 / 224


def to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float tensor ``(3, H, W)`` in ``[0, 1]`` (no resizing)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class ImageTransform:
    """Resize (and optionally centre-crop) then normalise; see :func:`image_transform`.

    Attributes
    ----------
    input_size : int
    mean, std : tuple of float
    crop : bool
    resize_ratio : float
    """

    def __init__(
        self,
        input_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        *,
        crop: bool = True,
        resize_ratio: float = CLASSIC_RESIZE_RATIO,
    ) -> None:
        if int(input_size) < 1:
            raise ValueError(f"input_size must be a positive integer, got {input_size!r}")
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got {mean!r} and {std!r}")
        if any(float(s) <= 0 for s in std):
            raise ValueError(f"std values must be positive, got {std!r}")
        if resize_ratio < 1:
            raise ValueError(f"resize_ratio must be >= 1 (crop inside the resized image), got {resize_ratio}")
        self.input_size = int(input_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.crop = bool(crop)
        self.resize_ratio = float(resize_ratio)

    def geometry(self, image: Image.Image) -> Image.Image:
        """Resize/crop only; returns a PIL image of ``input_size`` square."""
        image = image.convert("RGB")
        size = self.input_size
        if not self.crop:
            return image.resize((size, size), Image.BILINEAR)
        short = round(size * self.resize_ratio)
        w, h = image.size
        if w <= h:
            new_w, new_h = short, max(short, round(h * short / w))
        else:
            new_w, new_h = max(short, round(w * short / h)), short
        image = image.resize((new_w, new_h), Image.BILINEAR)
        left = (new_w - size) // 2
        top = (new_h - size) // 2
        return image.crop((left, top, left + size, top + size))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        tensor = to_tensor(self.geometry(image))
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (tensor - mean) / std

    def __repr__(self) -> str:
        return (
            f"ImageTransform(input_size={self.input_size}, mean={self.mean}, std={self.std}, "
            f"crop={self.crop}, resize_ratio={self.resize_ratio:.4f})"
        )


def image_transform(preprocessing: Any, *, crop: bool = True, resize_ratio: float = CLASSIC_RESIZE_RATIO) -> ImageTransform:
    """Build the transform that prepares images for a network.

    Parameters
    ----------
    preprocessing : object
        Anything with ``input_size`` (int), ``mean`` and ``std`` (3 floats
        each, for RGB in ``[0, 1]``), e.g. ``model.unitscope_info.preprocessing``.
    crop : bool, optional
        ``True`` (default): resize the short side to
        ``round(input_size * resize_ratio)`` then centre-crop ``input_size``.
        ``False``: resize the whole image to ``(input_size, input_size)``,
        keeping pixel masks aligned with the image (annotated pools).
    resize_ratio : float, optional
        Short side over crop side when ``crop`` is true (default 256/224).

    Returns
    -------
    ImageTransform
        A picklable callable ``PIL.Image -> float tensor (3, input_size, input_size)``.

    Raises
    ------
    ValueError
        If the preprocessing lacks an attribute or has invalid values.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> t = image_transform(SimpleNamespace(input_size=8, mean=(0, 0, 0), std=(1, 1, 1)))
    >>> t(Image.new("RGB", (20, 10))).shape
    torch.Size([3, 8, 8])
    """
    missing = [a for a in ("input_size", "mean", "std") if not hasattr(preprocessing, a)]
    if missing:
        raise ValueError(f"preprocessing {preprocessing!r} lacks attribute(s) {', '.join(missing)}")
    return ImageTransform(
        preprocessing.input_size, tuple(preprocessing.mean), tuple(preprocessing.std),
        crop=crop, resize_ratio=resize_ratio,
    )


def denormalize(image: torch.Tensor, preprocessing: Any) -> np.ndarray:
    """Undo the normalisation of a transformed image, for rendering.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(N, 3, H, W)``, normalised with ``preprocessing``.
    preprocessing : object
        Anything with ``mean`` and ``std``.

    Returns
    -------
    ndarray of uint8
        ``(H, W, 3)`` or ``(N, H, W, 3)``, values clipped to ``[0, 255]``.
    """
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected an image tensor (3, H, W) or (N, 3, H, W), got shape {tuple(image.shape)}")
    x = image.detach().to("cpu", torch.float32)
    mean = torch.tensor([float(m) for m in preprocessing.mean]).view(3, 1, 1)
    std = torch.tensor([float(s) for s in preprocessing.std]).view(3, 1, 1)
    x = (x * std + mean).clamp(0, 1) * 255.0
    x = x.round().to(torch.uint8).numpy()
    return np.moveaxis(x, -3, -1).copy()
