"""read_image: every Pillow mode decoded to the exact 8-bit RGB it means, or refused by name."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unitscope.data import CorruptFileError, PlainPool, read_image


def png_bytes(array: np.ndarray, color_type: int, bit_depth: int = 16) -> bytes:
    """A PNG written by hand (PNG spec, filter 0), for bit depths Pillow does not write."""
    array = np.asarray(array)
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + array[y].astype(dtype).tobytes() for y in range(array.shape[0]))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", array.shape[1], array.shape[0], bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _save(tmp_path: Path, name: str, image: Image.Image, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def _pixels(path: Path) -> list:
    image = read_image(path)
    assert image.mode == "RGB"
    return np.asarray(image).tolist()


def test_16bit_grey_png_is_scaled_not_saturated(tmp_path):
    path = tmp_path / "grey16.png"
    path.write_bytes(png_bytes(np.array([[0, 257, 32896, 51400, 65535]]), color_type=0))
    with Image.open(path) as image:
        assert image.mode == "I;16"  # what convert("RGB") turned into 0/255 only
    assert _pixels(path) == [[[0] * 3, [1] * 3, [128] * 3, [200] * 3, [255] * 3]]


def test_16bit_rgb_and_rgba_png_keep_the_high_byte(tmp_path):
    rgb = tmp_path / "rgb48.png"
    rgb.write_bytes(png_bytes(np.array([[[0, 51455, 65535], [1000, 2000, 3000]]]), color_type=2))
    assert _pixels(rgb) == [[[0, 200, 255], [3, 7, 11]]]
    rgba = tmp_path / "rgba64.png"
    rgba.write_bytes(png_bytes(np.array([[[0, 51400, 65535, 0]]]), color_type=6))
    assert _pixels(rgba) == [[[0, 200, 255]]]  # alpha dropped, colour kept
    grey_alpha = tmp_path / "la32.png"
    grey_alpha.write_bytes(png_bytes(np.array([[[51400, 0]]]), color_type=4))
    assert _pixels(grey_alpha) == [[[200, 200, 200]]]


def test_8bit_modes(tmp_path):
    grey = _save(tmp_path, "l.png", Image.fromarray(np.array([[0, 7, 255]], np.uint8)))
    assert _pixels(grey) == [[[0] * 3, [7] * 3, [255] * 3]]
    bilevel = _save(tmp_path, "one.png", Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1"))
    assert _pixels(bilevel) == [[[0] * 3, [255] * 3]]
    grey_alpha = _save(tmp_path, "la.png", Image.fromarray(np.array([[[9, 0], [200, 255]]], np.uint8), "LA"))
    assert _pixels(grey_alpha) == [[[9] * 3, [200] * 3]]
    rgba = _save(tmp_path, "rgba.png", Image.fromarray(np.array([[[1, 2, 3, 0], [4, 5, 6, 255]]], np.uint8)))
    assert _pixels(rgba) == [[[1, 2, 3], [4, 5, 6]]]
    cmyk = _save(tmp_path, "cmyk.tif", Image.fromarray(np.array([[[0, 0, 0, 0], [255, 0, 0, 0]]], np.uint8),
                                                        "CMYK"))
    assert _pixels(cmyk) == [[[255, 255, 255], [0, 255, 255]]]


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putdata([0, 1, 1])
    plain = _save(tmp_path, "p.png", palette)
    assert _pixels(plain) == [[[10, 20, 30], [200, 100, 50], [200, 100, 50]]]
    transparent = _save(tmp_path, "pt.png", palette, transparency=0)
    with Image.open(transparent) as image:
        assert image.mode == "P" and "transparency" in image.info
    assert _pixels(transparent) == [[[10, 20, 30], [200, 100, 50], [200, 100, 50]]]
    gif = _save(tmp_path, "p.gif", palette, transparency=1)
    assert _pixels(gif) == [[[10, 20, 30], [200, 100, 50], [200, 100, 50]]]


def test_32bit_integer_image_in_16bit_range_is_read_as_16bit(tmp_path):
    path = _save(tmp_path, "i.tif", Image.fromarray(np.array([[0, 32896, 65535]], np.int32)))
    with Image.open(path) as image:
        assert image.mode == "I"
    assert _pixels(path) == [[[0] * 3, [128] * 3, [255] * 3]]


@pytest.mark.parametrize(
    "name, array, message",
    [
        ("wide.tif", np.array([[0, 100000, -5]], np.int32), r"values -5\.\.100000.*0\.\.65535"),
        ("float.tif", np.array([[0.0, 0.5, 1.0]], np.float32), r"mode 'F' has no fixed pixel range"),
    ],
    ids=["int32-beyond-16bit", "float32"],
)
def test_images_without_a_fixed_range_are_refused(tmp_path, name, array, message):
    path = _save(tmp_path, name, Image.fromarray(array))
    with pytest.raises(CorruptFileError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_empty_truncated_and_foreign_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"empty\.png.*empty \(0 bytes\)"):
        read_image(empty)
    whole = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(whole, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(CorruptFileError, match=r"truncated\.png.*not a readable image"):
        read_image(truncated)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(CorruptFileError, match=r"notes\.jpg.*not a readable image"):
        read_image(text)
    with pytest.raises(CorruptFileError, match=r"gone\.png.*missing"):
        read_image(tmp_path / "gone.png")


def test_pools_read_through_the_same_decoder(tmp_path):
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "grey16.png").write_bytes(png_bytes(np.array([[0, 32896], [51400, 65535]]), 0))
    pool = PlainPool(tmp_path / "pool")
    assert pool.raw_image(0)[:, :, 0].tolist() == [[0, 128], [200, 255]]
    image, _ = pool[0]
    assert (image[:, 1, 0] * 255).round().tolist() == [200.0, 200.0, 200.0]
    (tmp_path / "pool" / "empty.png").write_bytes(b"")
    skipping = PlainPool(tmp_path / "pool", skip_bad=True)
    assert [Path(p).name for p, _ in skipping.skipped] == ["empty.png"]


def test_float_masks_are_refused(tmp_path):
    from unitscope.data import decode_broden_mask, read_index_mask

    path = _save(tmp_path, "mask.tif", Image.fromarray(np.array([[0.0, 3.7]], np.float32)))
    for reader in (decode_broden_mask, read_index_mask):
        with pytest.raises(CorruptFileError, match=r"mask\.tif.*floating-point image \(mode 'F'\)"):
            reader(path)
