"""A real network that needs mean/std 0.5: the command-line options and the checkpoint route agree.

The shared SqueezeNet 1.0 expects torchvision's ImageNet normalisation.  Folding
a change of normalisation into its first convolution (which has no padding, so
the fold is exact) makes a network that expects ``(x - 0.5) / 0.5`` instead,
saved as a plain state_dict.  Read with unitscope's ImageNet default it is fed
the wrong inputs; with ``--mean .5 --std .5`` (or ``--preprocess inception``),
or from a checkpoint carrying that preprocessing, it is the original network
again.  Top-1 is measured on the 200 ``imagenet_samples`` through a plain pool,
as every command reads images.
"""

from __future__ import annotations

import pytest
import torch

from unitscope.models.opening import open_network, preprocessing_options
from unitscope.data import PlainPool
from unitscope.experiments._common import iter_batches
from unitscope.models import model_info
from unitscope.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def fold_half_normalisation(state_dict: dict) -> dict:
    """Weights that take ``(x - 0.5) / 0.5`` inputs and compute what the originals did on ImageNet inputs.

    ``(x - m) / s = a * z + b`` with ``z = (x - 0.5) / 0.5``, ``a = 0.5 / s``, ``b = (0.5 - m) / s``,
    so ``W * (a z + b) + c = (W a) * z + (c + sum W b)`` for a convolution without padding.
    """
    folded = dict(state_dict)
    weight, bias = state_dict["features.0.weight"], state_dict["features.0.bias"]
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    folded["features.0.weight"] = weight * (0.5 / std)
    folded["features.0.bias"] = bias + (weight * ((0.5 - mean) / std)).sum(dim=(1, 2, 3))
    return folded


def logits_and_labels(net, folder) -> tuple[torch.Tensor, torch.Tensor]:
    pool = PlainPool(folder, preprocessing=model_info(net).preprocessing, label_pattern=r"^(\d+)_")
    outputs, labels = [], []
    with torch.inference_mode():
        for _, images, metas, _ in iter_batches(pool, 50):
            outputs.append(net(images))
            labels += [m["label"] for m in metas]
    return torch.cat(outputs), torch.tensor(labels)


@pytest.mark.slow
def test_mean_std_options_equal_the_checkpoint_route(realdata, tmp_path):
    original = realdata / "models" / "squeezenet1_0_imagenet.pth"
    samples = realdata / "imagenet_samples"
    if not original.is_file() or not samples.is_dir():
        pytest.skip("the shared SqueezeNet or its ImageNet samples are missing")
    folded = fold_half_normalisation(torch.load(original, map_location="cpu", weights_only=True))
    plain = tmp_path / "squeezenet_half.pth"
    torch.save(folded, plain)
    carrying = tmp_path / "squeezenet_half_with_preprocessing.pth"
    torch.save({"state_dict": folded, "unitscope": {"preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3}}},
               carrying)

    default = open_network("squeezenet1_0", plain, preprocessing_options())
    by_options = open_network("squeezenet1_0", plain, preprocessing_options(mean=".5", std=".5"))
    by_preset = open_network("squeezenet1_0", plain, preprocessing_options(preprocess="inception"))
    by_checkpoint = open_network("squeezenet1_0", carrying, preprocessing_options())
    assert model_info(by_options).preprocessing == model_info(by_checkpoint).preprocessing
    assert model_info(by_options).preprocessing.sources["mean"] == "option"
    assert model_info(by_checkpoint).preprocessing.sources["mean"] == "checkpoint"

    reference = open_network("squeezenet1_0", original, preprocessing_options())
    logits = {name: logits_and_labels(net, samples) for name, net in
              [("original", reference), ("default", default), ("options", by_options),
               ("preset", by_preset), ("checkpoint", by_checkpoint)]}
    accuracy = {name: float((out.argmax(1) == labels).float().mean()) for name, (out, labels) in logits.items()}
    print("top-1 on imagenet_samples:", accuracy)
    assert torch.equal(logits["options"][0], logits["checkpoint"][0])
    assert torch.equal(logits["options"][0], logits["preset"][0])
    # the folded network read the right way is the original network again (float rounding aside) ...
    torch.testing.assert_close(logits["options"][0], logits["original"][0], atol=2e-3, rtol=1e-4)
    assert accuracy["options"] == accuracy["original"] == pytest.approx(0.635, abs=0.006)
    # ... and read with the ImageNet default it is not
    assert (logits["default"][0] - logits["original"][0]).abs().max() > 1.0
    assert accuracy["default"] < accuracy["options"]
