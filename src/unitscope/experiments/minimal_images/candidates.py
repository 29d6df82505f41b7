"""Candidate images: a removed segment painted with the fill, built on the model's device.

The fill is made in pixel space (``[0, 1]`` RGB, the network's normalisation
undone) and then normalised: ``"mean"`` is the normalisation mean colour (a
zero input), ``"gray"`` 0.5 gray, ``"blur"`` a Gaussian-blurred copy of the
image.
"""

from __future__ import annotations

import numpy as np
import torch


def normalised_fill(pixels: torch.Tensor, fill: str, blur_sigma: float | None, mean: torch.Tensor,
                    std: torch.Tensor) -> torch.Tensor:
    """What removed segments are painted with, ``(3, H, W)`` normalised as the network's input."""
    if fill == "mean":
        return torch.zeros_like(pixels)
    return (_fill_image(pixels, fill, blur_sigma) - mean) / std


def _fill_image(pixels: torch.Tensor, fill: str, blur_sigma: float | None) -> torch.Tensor:
    """The fill in pixel space, ``(3, H, W)`` in ``[0, 1]`` (``mean`` is handled by :func:`normalised_fill`)."""
    if fill == "gray":
        return torch.full_like(pixels, 0.5)
    from scipy import ndimage

    sigma = blur_sigma if blur_sigma is not None else max(pixels.shape[-2:]) / 20
    blurred = ndimage.gaussian_filter(pixels.cpu().numpy().astype(np.float64), sigma=(0, sigma, sigma),
                                      mode="nearest")
    return torch.from_numpy(blurred.astype(np.float32))


class _Slots:
    """Device buffers of the images being searched, one slot each, reused as searches end.

    ``current[k]`` is slot k's image with its removed segments filled,
    ``fill[k]`` the fill, ``segments[k]`` the flattened segment map.  A batch
    of candidates is then a few whole-batch operations whatever the mix of
    images in it (a gather and a ``where``), with no per-round stacking.
    """

    def __init__(self, shape: tuple[int, int, int], *, device, dtype) -> None:
        self.shape, self.device, self.dtype = shape, device, dtype
        self.current = torch.empty((0,) + shape, device=device, dtype=dtype)
        self.fill = torch.empty((0,) + shape, device=device, dtype=dtype)
        self.segments = torch.empty((0, shape[1] * shape[2]), device=device, dtype=torch.int32)
        self.free: list[int] = []

    def add(self, image: torch.Tensor, fill: torch.Tensor, segments: np.ndarray) -> int:
        if not self.free:
            grow = max(8, len(self.current))
            self.free = list(range(len(self.current), len(self.current) + grow))
            self.current = torch.cat([self.current, self.current.new_empty((grow,) + self.shape)])
            self.fill = torch.cat([self.fill, self.fill.new_empty((grow,) + self.shape)])
            self.segments = torch.cat([self.segments, self.segments.new_empty((grow,) + self.segments.shape[1:])])
        slot = self.free.pop(0)
        self.current[slot] = image.to(device=self.device, dtype=self.dtype)
        self.fill[slot] = fill.to(device=self.device, dtype=self.dtype)
        self.segments[slot] = torch.from_numpy(segments.reshape(-1).astype(np.int32)).to(self.device)
        return slot

    def remove_segments(self, slots: list[int], segments: list[int]) -> None:
        """Fill segment ``segments[i]`` of slot ``slots[i]`` for every i (slots distinct), in one go."""
        if not slots:
            return
        slots_t = torch.as_tensor(slots, dtype=torch.int64).to(self.device)
        segments_t = torch.as_tensor(segments, dtype=torch.int32).to(self.device)
        mask = (self.segments[slots_t] == segments_t.unsqueeze(1)).view(len(slots), 1, *self.shape[1:])
        self.current[slots_t] = torch.where(mask, self.fill[slots_t], self.current[slots_t])

    def candidates(self, slots: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)``: slot ``slots[i]``'s current image with segment ``segments[i]`` filled."""
        mask = self.segments[slots] == segments.unsqueeze(1)
        mask = mask.view(len(slots), 1, *self.shape[1:])
        return torch.where(mask, self.fill[slots], self.current[slots])

    def release(self, slot: int) -> None:
        self.free.append(slot)
