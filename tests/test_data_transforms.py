"""Transforms: geometry of the classic eval crop vs the whole-image resize, normalisation, denormalize."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from unitscope.data import denormalize, image_transform, to_tensor


def _pre(size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
    return SimpleNamespace(input_size=size, mean=mean, std=std)


def test_to_tensor_values_and_shape():
    image = Image.fromarray(np.array([[[255, 0, 51]]], dtype=np.uint8))
    t = to_tensor(image)
    assert t.shape == (3, 1, 1)
    assert t.flatten().tolist() == pytest.approx([1.0, 0.0, 0.2])


def test_crop_resizes_short_side_then_centre_crops():
    # 32 x 16 (w x h): short side 16 -> round(8 * 256/224) = 9, long side 18; crop 8 from the centre.
    t = image_transform(_pre(8), crop=True)
    assert t.geometry(Image.new("RGB", (32, 16))).size == (8, 8)
    # Left half black, right half white: the centre crop straddles the edge symmetrically.
    array = np.zeros((16, 32, 3), dtype=np.uint8)
    array[:, 16:] = 255
    out = np.asarray(t.geometry(Image.fromarray(array)))
    assert out[:, :3].max() == 0 and out[:, 5:].min() == 255


def test_no_crop_keeps_whole_image():
    # A white border column on the far right survives the resize without cropping only.
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, -10:] = 255
    image = Image.fromarray(array)
    whole = np.asarray(image_transform(_pre(8), crop=False).geometry(image))
    cropped = np.asarray(image_transform(_pre(8), crop=True).geometry(image))
    assert whole.shape == (8, 8, 3)
    assert whole[:, -1].min() == 255 and whole[:, 0].max() == 0
    assert cropped.max() == 0  # the crop cuts the border away


def test_normalisation_and_denormalize_round_trip():
    pre = _pre(4)
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    t = image_transform(pre, crop=False)(Image.fromarray(array))
    expected = (torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32)) / 255 - 0.5) / 0.25
    assert torch.allclose(t, expected, atol=1e-6)
    assert np.array_equal(denormalize(t, pre), array)
    assert denormalize(t[None], pre).shape == (1, 4, 4, 3)


def test_transform_is_picklable_and_validates():
    t = image_transform(_pre(8))
    assert pickle.loads(pickle.dumps(t)).input_size == 8
    with pytest.raises(ValueError, match="lacks attribute"):
        image_transform(SimpleNamespace(input_size=8))
    with pytest.raises(ValueError, match="std"):
        image_transform(_pre(8, std=(0, 1, 1)))
    with pytest.raises(ValueError, match="image tensor"):
        denormalize(torch.zeros(2, 4, 4), _pre())
