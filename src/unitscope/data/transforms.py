"""Image transforms from a network's preprocessing to a normalised tensor.

A transform here is a picklable callable ``PIL.Image -> float tensor (3, H, W)``,
so pools that carry one work with ``DataLoader(num_workers > 0)``.  The
preprocessing is any object with ``input_size``, ``mean`` and ``std``
attributes and optionally ``resize``, ``channel_order`` and ``scale``
(``unitscope.models.preprocessing.Preprocessing`` is one); ``data`` does not
import ``models``.

Geometries (``resize``):

* ``"shorter-side+center-crop"`` -- torchvision's classic evaluation
  transform: resize so that the image covers ``input_size * 256 / 224`` and
  take the centre ``input_size``.  The default of plain pools
  (classification, layer preference).
* ``"stretch"`` -- resize the *whole* image to ``input_size``.  The default
  of annotated pools: every input pixel then maps to a fixed fraction of the
  image, so a mask at any resolution ``(sh, sw)`` stays aligned with the
  activations (upsample them to ``(sh, sw)``).
* ``"pad"`` -- resize the whole image to fit inside ``input_size`` keeping
  its aspect ratio, centred; the border is 0 after normalisation (the mean
  colour).

Whatever the geometry, :meth:`ImageTransform.source_box` says which region
of the original image the input shows, so annotated pools crop or pad their
masks the same way (padding is "no concept").  ``input_size="native"``
keeps every image at its own size.

Then the pixels (RGB in ``[0, 1]``) are put in ``channel_order``, multiplied
by ``scale`` (1 or 255) and normalised: ``(x - mean) / std``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = ["ImageTransform", "image_transform", "to_tensor", "denormalize", "crop_to_box"]

#: Ratio between the resized short side and the crop, as in torchvision's
#: ImageNet evaluation (resize 256, crop 224).
CLASSIC_RESIZE_RATIO = 256 / 224
CROP = "shorter-side+center-crop"
RESIZE_MODES = ("stretch", CROP, "pad")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float tensor ``(3, H, W)`` in ``[0, 1]`` (no resizing)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _size_hw(input_size: Any) -> tuple[int, int] | None:
    if input_size == "native":
        return None
    if isinstance(input_size, (tuple, list)) and len(input_size) == 2:
        h, w = (int(v) for v in input_size)
    else:
        h = w = int(input_size)
    if h < 1 or w < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    return h, w


class ImageTransform:
    """Resize (stretch, centre-crop or pad), reorder, scale, normalise; see :func:`image_transform`.

    Attributes
    ----------
    input_size : int, (int, int) or "native"
    mean, std : tuple of float
        In the units and channel order of the network's input.
    resize : str
        One of ``"stretch"``, ``"shorter-side+center-crop"``, ``"pad"``.
    channel_order : {"rgb", "bgr"}
    scale : float
    resize_ratio : float
    """

    def __init__(
        self,
        input_size: int | tuple[int, int] | str,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        *,
        crop: bool = True,
        resize_ratio: float = CLASSIC_RESIZE_RATIO,
        resize: str | None = None,
        channel_order: str = "rgb",
        scale: float = 1.0,
    ) -> None:
        self.hw = _size_hw(input_size)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (one per channel), got {mean!r} and {std!r}")
        if any(float(s) <= 0 for s in std):
            raise ValueError(f"std values must be positive, got {std!r}")
        if resize_ratio < 1:
            raise ValueError(f"resize_ratio must be >= 1 (crop inside the resized image), got {resize_ratio}")
        resize = resize or (CROP if crop else "stretch")
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be rgb or bgr, got {channel_order!r}")
        self.input_size = input_size if self.hw is None else (
            self.hw[0] if self.hw[0] == self.hw[1] else self.hw)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.resize = resize
        self.crop = resize == CROP
        self.channel_order = channel_order
        self.scale = float(scale)
        self.resize_ratio = float(resize_ratio)

    # -- geometry ---------------------------------------------------------------
    def _plan(self, w: int, h: int):
        """``(resized (w, h), paste offset (x, y) or crop box)`` for an image of ``w x h``."""
        out_h, out_w = self.hw
        if self.resize == "stretch":
            return (out_w, out_h), None
        if self.resize == "pad":
            s = min(out_w / w, out_h / h)
            rw, rh = max(1, min(out_w, round(w * s))), max(1, min(out_h, round(h * s)))
            return (rw, rh), ((out_w - rw) // 2, (out_h - rh) // 2)
        cover_w, cover_h = round(out_w * self.resize_ratio), round(out_h * self.resize_ratio)
        s = max(cover_w / w, cover_h / h)
        rw, rh = max(cover_w, round(w * s)), max(cover_h, round(h * s))
        left, top = (rw - out_w) // 2, (rh - out_h) // 2
        return (rw, rh), (left, top, left + out_w, top + out_h)

    def source_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region ``(left, top, right, bottom)`` of a ``width x height`` image that the input shows.

        In the original image's pixels; it extends beyond the image where
        the input is padding.  ``(0, 0, width, height)`` for ``stretch`` and
        ``native``.
        """
        if self.hw is None or self.resize == "stretch":
            return (0.0, 0.0, float(width), float(height))
        (rw, rh), plan = self._plan(width, height)
        fx, fy = width / rw, height / rh
        if self.resize == "pad":
            out_h, out_w = self.hw
            x, y = plan
            return (-x * fx, -y * fy, (out_w - x) * fx, (out_h - y) * fy)
        left, top, right, bottom = plan
        return (left * fx, top * fy, right * fx, bottom * fy)

    def geometry(self, image: Image.Image) -> Image.Image:
        """Resize/crop/pad only; returns a PIL image of the input size (black border when padded)."""
        image = image.convert("RGB")
        if self.hw is None:
            return image
        (rw, rh), plan = self._plan(*image.size)
        image = image.resize((rw, rh), Image.BILINEAR)
        if self.resize == "stretch":
            return image
        if self.resize == "pad":
            canvas = Image.new("RGB", (self.hw[1], self.hw[0]))
            canvas.paste(image, plan)
            return canvas
        return image.crop(plan)

    def normalise(self, tensor: torch.Tensor) -> torch.Tensor:
        """RGB pixels in ``[0, 1]`` ``(3, H, W)`` -> the network's input (order, scale, mean, std)."""
        if self.channel_order == "bgr":
            tensor = tensor.flip(0)
        if self.scale != 1.0:
            tensor = tensor * self.scale
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (tensor - mean) / std

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        x = self.normalise(to_tensor(self.geometry(image)))
        if self.resize == "pad" and self.hw is not None:
            (rw, rh), (left, top) = self._plan(*image.size)
            inside = torch.zeros(x.shape[-2:], dtype=torch.bool)
            inside[top:top + rh, left:left + rw] = True
            x = torch.where(inside, x, torch.zeros(()))  # the border is the mean colour exactly
        return x

    @property
    def pixel_mean(self) -> tuple[float, float, float]:
        """``mean`` in pixels of ``[0, 1]`` (``tensor * pixel_std + pixel_mean`` undoes the normalisation)."""
        return tuple(m / self.scale for m in self.mean)

    @property
    def pixel_std(self) -> tuple[float, float, float]:
        return tuple(s / self.scale for s in self.std)

    def describe(self) -> dict:
        """What this transform does, as plain values (results and cache keys record it)."""
        native = self.hw is None  # no resize at all: no geometry to name
        return {"input_size": "native" if native else list(self.hw), "resize": None if native else self.resize,
                "channel_order": self.channel_order, "scale": self.scale, "mean": list(self.mean),
                "std": list(self.std),
                "resize_ratio": self.resize_ratio if self.resize == CROP and not native else None}

    def __repr__(self) -> str:
        return (
            f"ImageTransform(input_size={self.input_size}, mean={self.mean}, std={self.std}, "
            f"resize={self.resize!r}, channel_order={self.channel_order!r}, scale={self.scale:g}, "
            f"resize_ratio={self.resize_ratio:.4f})"
        )


def image_transform(preprocessing: Any, *, crop: bool = True,
                    resize_ratio: float = CLASSIC_RESIZE_RATIO) -> ImageTransform:
    """Build the transform that prepares images for a network.

    Parameters
    ----------
    preprocessing : object
        Anything with ``input_size`` (int, ``(H, W)`` or ``"native"``),
        ``mean`` and ``std`` (3 floats each), and optionally ``resize``,
        ``channel_order`` and ``scale``, e.g.
        ``model.unitscope_info.preprocessing``.
    crop : bool, optional
        The geometry when ``preprocessing.resize`` is None: ``True``
        (default) ``"shorter-side+center-crop"``, ``False`` ``"stretch"``
        (annotated pools).
    resize_ratio : float, optional
        Short side over crop side for the centre crop (default 256/224).

    Returns
    -------
    ImageTransform
        A picklable callable ``PIL.Image -> float tensor (3, H, W)``.

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
        crop=crop, resize_ratio=resize_ratio, resize=getattr(preprocessing, "resize", None),
        channel_order=getattr(preprocessing, "channel_order", "rgb"),
        scale=getattr(preprocessing, "scale", 1.0),
    )


def crop_to_box(mask: np.ndarray, box: tuple[float, float, float, float], image_size: tuple[int, int]) -> np.ndarray:
    """The part of a label map that a transform's input shows, padded with 0 ("no concept").

    Parameters
    ----------
    mask : ndarray
        ``(sh, sw)`` label map of an image of ``image_size``.
    box : (left, top, right, bottom)
        :meth:`ImageTransform.source_box` of that image, in image pixels.
    image_size : (width, height)

    Returns
    -------
    ndarray
        The mask's pixels inside the box (rounded to whole mask pixels),
        zeros where the box leaves the image.
    """
    sh, sw = mask.shape
    width, height = image_size
    fx, fy = sw / width, sh / height
    x0, x1 = round(box[0] * fx), round(box[2] * fx)
    y0, y1 = round(box[1] * fy), round(box[3] * fy)
    if (x0, y0, x1, y1) == (0, 0, sw, sh):
        return mask
    out = np.zeros((max(1, y1 - y0), max(1, x1 - x0)), dtype=mask.dtype)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, sh), max(x0, 0), min(x1, sw)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = mask[sy0:sy1, sx0:sx1]
    return out


def denormalize(image: torch.Tensor, preprocessing: Any) -> np.ndarray:
    """Undo the normalisation of a transformed image, for rendering.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(N, 3, H, W)``, normalised with ``preprocessing``.
    preprocessing : object
        Anything with ``mean`` and ``std`` (and ``scale``, ``channel_order``).

    Returns
    -------
    ndarray of uint8
        ``(H, W, 3)`` or ``(N, H, W, 3)``, values clipped to ``[0, 255]``.
    """
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected an image tensor (3, H, W) or (N, 3, H, W), got shape {tuple(image.shape)}")
    x = image.detach().to("cpu", torch.float32)
    scale = float(getattr(preprocessing, "scale", 1.0))
    mean = torch.tensor([float(m) / scale for m in preprocessing.mean]).view(3, 1, 1)
    std = torch.tensor([float(s) / scale for s in preprocessing.std]).view(3, 1, 1)
    x = (x * std + mean).clamp(0, 1) * 255.0
    if getattr(preprocessing, "channel_order", "rgb") == "bgr":
        x = x.flip(-3)
    x = x.round().to(torch.uint8).numpy()
    return np.moveaxis(x, -3, -1).copy()
