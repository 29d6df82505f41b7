"""A small AlexNet-like network for the synthetic world, trainable on a CPU in minutes.

Same shape of computation as AlexNet (five convolutions, three max-pools,
two fully-connected layers and a classifier), scaled down for 128 px
inputs.  Every stage is a named module so layers read like the paper's:
``conv1`` ... ``conv5`` (each convolution followed by its ReLU, so the
traced output is the rectified response), ``pool1``, ``pool2``, ``pool5``,
``fc6``, ``fc7`` and ``classifier``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["MiniAlexNet", "MiniAlexNetDense", "MINI_ALEXNET_LAYERS"]

MINI_ALEXNET_LAYERS = [
    "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7",
]


def _conv(cin: int, cout: int, kernel: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2),
            relu=nn.ReLU(inplace=True),
        )
    )


def _fc(cin: int, cout: int, *, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(drop=nn.Dropout(dropout), fc=nn.Linear(cin, cout), relu=nn.ReLU(inplace=True))
    )


class MiniAlexNet(nn.Module):
    """AlexNet in miniature.

    Parameters
    ----------
    num_classes : int
    width : int, keyword-only
        Channels of ``conv1``; later layers use 2x, 3x, 3x and 2x this.
    input_size : int, keyword-only
        Side of the square input (default 128); must be a multiple of 16.
    dropout : float, keyword-only

    Notes
    -----
    Spatial sizes for a 128 px input: conv1 64, pool1 32, conv2 32,
    pool2 16, conv3..conv5 16, pool5 8.  Theoretical receptive fields:
    conv1 7, pool1 11, conv2 27, pool2 35, conv3 51, conv4 67, conv5 83,
    pool5 99 px.
    """

    def __init__(
        self, num_classes: int, *, width: int = 32, input_size: int = 128, dropout: float = 0.3
    ) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        w = width
        self.conv1 = _conv(3, w, 7, stride=2)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _conv(w, 2 * w, 5)
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv3 = _conv(2 * w, 3 * w, 3)
        self.conv4 = _conv(3 * w, 3 * w, 3)
        self.conv5 = _conv(3 * w, 2 * w, 3)
        self.pool5 = nn.MaxPool2d(3, stride=2, padding=1)
        side = input_size // 16
        self.fc6 = _fc(2 * w * side * side, 8 * w, dropout=dropout)
        self.fc7 = _fc(8 * w, 8 * w, dropout=dropout)
        self.classifier = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool5(self.conv5(self.conv4(self.conv3(x))))
        x = torch.flatten(x, 1)
        return self.classifier(self.fc7(self.fc6(x)))


class MiniAlexNetDense(MiniAlexNet):
    """MiniAlexNet with a per-position head: a 1x1 convolution on ``conv5``.

    For dense pretext tasks (colourisation: a class per cell of the
    ``conv5`` grid).  The modules, their names and their initialisation
    are MiniAlexNet's, so ``conv1`` .. ``conv5`` start from the same
    weights as any other objective's with the same seed and are dissected
    the same way; ``classifier`` is the 1x1 convolution (``pool5``,
    ``fc6`` and ``fc7`` are kept but unused).  The output is
    ``(N, num_classes, S/8, S/8)``.
    """

    def __init__(self, num_classes: int, *, width: int = 32, input_size: int = 128, dropout: float = 0.3) -> None:
        super().__init__(num_classes, width=width, input_size=input_size, dropout=dropout)
        self.classifier = nn.Conv2d(2 * width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2(self.conv2(self.pool1(self.conv1(x))))
        return self.classifier(self.conv5(self.conv4(self.conv3(x))))
