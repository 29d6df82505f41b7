"""Decode any image file into 8-bit RGB pixels, or say plainly why not.

Every pool reads its images through :func:`read_image`, so that all of them
agree on what a file's pixels are.  ``PIL.Image.convert("RGB")`` alone is not
enough: it *saturates* 16-bit greyscale (``I;16``, what Pillow makes of a
16-bit PNG), so every pixel above 255 turns white, and it has no sensible
meaning for 32-bit integer or float images, whose range the file does not
state.  The rules, mode by mode:

=====================  =====================================================
``RGB``, ``L``, ``1``  as stored (``1`` is 0 or 255; grey is copied to R, G, B)
``P``                  the palette's colours (transparency dropped)
``RGBA``, ``LA``,      the colour channels; alpha is dropped, as
``PA``, ``RGBX``       ``torchvision``'s ``pil_loader`` does
``CMYK``, ``YCbCr``    Pillow's conversion to RGB
``I;16`` (and ``B``,   16-bit grey: ``round(value / 257)``, so 0 -> 0 and
``L``, ``N``)          65535 -> 255
``I``                  read as 16-bit grey when every value is in
                       ``0..65535`` (16-bit PNG/TIFF), refused otherwise
``F`` and the rest     refused (no fixed range: convert the file first)
=====================  =====================================================

16-bit RGB (48-bit PNG) arrives from Pillow already reduced to 8 bits (the
high byte of each value), which is within one level of ``round(v / 257)``.

A missing, empty, truncated or non-image file raises
:class:`~unitscope.data.errors.CorruptFileError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import CorruptFileError

__all__ = ["read_image", "check_header", "check_file", "DECODE_ERRORS"]

#: What Pillow raises on a file it cannot read (truncated data is an OSError).
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)

#: Modes that ``convert("RGB")`` maps faithfully.
_CONVERTIBLE = {"RGB", "RGBA", "RGBX", "RGBa", "L", "LA", "La", "1", "P", "PA", "CMYK", "YCbCr"}

#: Pillow's names for 16-bit greyscale.
_GREY16 = {"I;16", "I;16B", "I;16L", "I;16N"}


def _grey16_to_rgb(values: np.ndarray) -> Image.Image:
    grey = np.round(values.astype(np.float64) / 257.0).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in _CONVERTIBLE:
        return image.convert("RGB")
    if mode in _GREY16:
        return _grey16_to_rgb(np.asarray(image))
    if mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise CorruptFileError(
                path, f"32-bit integer image with values {int(values.min())}..{int(values.max())}: "
                "only 0..65535 (16-bit) is read; convert it to 8- or 16-bit RGB/grey first")
        return _grey16_to_rgb(values)
    raise CorruptFileError(
        path, f"image mode {mode!r} has no fixed pixel range; convert it to 8- or 16-bit RGB or grey first")


def check_file(path: Path) -> str | None:
    """Cheapest check (one ``stat``): the reason when the file is missing or empty, else None."""
    try:
        if not path.is_file():
            return "file is missing"
        if path.stat().st_size == 0:
            return "file is empty (0 bytes)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def read_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image as 8-bit RGB (see the module docstring for each mode).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``, detached from the file.

    Raises
    ------
    CorruptFileError
        If the file is missing, empty, truncated, not an image, or of a mode
        without a fixed range (``F``, ``I`` beyond 16 bits); the message
        names the file.

    Examples
    --------
    >>> read_image("photo_16bit.png").getpixel((0, 0))  # doctest: +SKIP
    (128, 128, 128)
    """
    path = Path(path)
    reason = check_file(path)
    if reason is not None:
        raise CorruptFileError(path, reason)
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb(image, path)
    except CorruptFileError:
        raise
    except DECODE_ERRORS as exc:
        raise CorruptFileError(path, f"not a readable image ({exc})") from exc


def check_header(path: Path) -> str | None:
    """Cheap validity check (exists, not empty, header parses); the reason when bad, else None."""
    path = Path(path)
    reason = check_file(path)
    if reason is not None:
        return reason
    try:
        with Image.open(path):
            pass
    except DECODE_ERRORS as exc:
        return f"not a readable image ({exc})"
    return None
