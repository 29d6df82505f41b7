"""A real network: the SqueezeNet 1.0 ImageNet checkpoint in ``../shared/realdata``.

The README of the real-data folder reports 63.5% top-1 on its 200
``imagenet_samples`` (one image per fifth ImageNet class; the class index is
the first four digits of the file name) with resize 256 / centre-crop 224 /
ImageNet normalisation.
"""

from __future__ import annotations


import pytest
import torch
from PIL import Image
from torchvision import transforms

from unitscope.models import create_model, describe_layers, model_info


@pytest.fixture(scope="module")
def squeezenet(request):
    realdata = request.getfixturevalue("realdata")
    path = realdata / "models" / "squeezenet1_0_imagenet.pth"
    if not path.is_file():
        pytest.skip(f"real checkpoint not found: {path}")
    return create_model("squeezenet1_0", weights=path, class_names="imagenet")


def test_real_squeezenet_classifies_imagenet_samples(squeezenet, realdata):
    folder = realdata / "imagenet_samples"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        pytest.skip(f"no images in {folder}")
    pre = model_info(squeezenet).preprocessing
    transform = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(pre.input_size), transforms.ToTensor(),
        transforms.Normalize(pre.mean, pre.std),
    ])
    images = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    labels = torch.tensor([int(f.name[:4]) for f in files])
    # channels-last memory layout: the same numbers, about 1.7x faster on a CPU
    net = squeezenet.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        predicted = torch.cat([net(batch).argmax(1) for batch in images.split(50)])
    accuracy = (predicted == labels).float().mean().item()
    assert len(files) == 200
    assert accuracy >= 0.55, f"top-1 {accuracy:.3f} on {len(files)} images"
    assert accuracy == pytest.approx(0.635, abs=0.006)  # as measured in the folder's README
    names = model_info(squeezenet).class_names
    assert names[int(labels[0])] == "tench"


def test_real_squeezenet_layers(squeezenet):
    info = {i.name: i for i in describe_layers(squeezenet, layers=["features.7", "features.10", "features.12"])}
    assert (info["features.12"].channels, info["features.12"].spatial) == (512, (13, 13))
    assert (info["features.12"].rf_size, info["features.12"].stride) == (155, 16)
    assert (info["features.7"].channels, info["features.7"].rf_size) == (256, 59)
