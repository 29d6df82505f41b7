"""A tiny vision transformer with a planted detector, and pools of images it reads.

``TinyViT`` cuts a 16x16 image into 4x4-pixel patches (a 4x4 grid), adds a
class token, and runs one pre-norm attention block, as torchvision's
``VisionTransformer`` does.  Its channel 0 is *planted*: the patch embedding
makes it the mean of the image's first channel over the patch, and the
block's attention and MLP write nothing into it, so after the block it is
still exactly 1 on a patch the planted concept fills and 0 elsewhere.  The
class token's channel 0 is 100, so a class token read as a patch shows.
The other channels are random and really attend.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unitscope.concepts import Annotation, Concept, ConceptTable

SIZE, PATCH, WIDTH = 16, 4, 8
GRID = SIZE // PATCH


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Odd(nn.Module):
    """Drops the class token and one patch: 15 tokens, no grid."""

    def forward(self, x):
        return x[:, 2:]


class SequenceFirst(nn.Module):
    """``(N, T, C) -> (T, N, C)``, as a ``batch_first=False`` attention layer sees its input."""

    def forward(self, x):
        return x.transpose(0, 1)


class TinyViT(nn.Module):
    """Patch embedding, class token, one attention block, and a few layers no analysis may read.

    Layers: ``patch`` (map 4x4), ``embed_drop`` (tokens before attention),
    ``block`` (tokens after attention; unit 0 planted), ``odd`` (15 tokens),
    ``seq_first`` (``(T, N, C)``), ``pooled`` (a 1x1 map), ``head`` (``(N, 2)``).
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.patch = nn.Conv2d(3, WIDTH, PATCH, stride=PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, WIDTH))
        self.pos = nn.Parameter(0.1 * torch.randn(1, 1 + GRID * GRID, WIDTH))
        self.embed_drop = nn.Dropout(0.0)
        self.block = Block(WIDTH)
        self.odd = Odd()
        self.seq_first = SequenceFirst()
        self.pooled = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(WIDTH, 2)
        with torch.no_grad():
            self.patch.weight[0] = 0.0
            self.patch.weight[0, 0] = 1.0 / (PATCH * PATCH)
            self.patch.bias[0] = 0.0
            self.cls[0, 0, 0] = 100.0
            self.pos[..., 0] = 0.0
            self.block.attn.out_proj.weight[0] = 0.0
            self.block.attn.out_proj.bias[0] = 0.0
            self.block.mlp[2].weight[0] = 0.0
            self.block.mlp[2].bias[0] = 0.0
        self.eval()

    def forward(self, images):
        grid = self.patch(images)
        x = grid.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.block(self.embed_drop(x))
        side = self.odd(x).mean(dim=1) + self.seq_first(x).mean(dim=0) + self.pooled(grid).flatten(1)
        return self.head(x[:, 0] + 0.0 * side)


#: Where the planted concept fills one patch, per image: (image, patch row, patch column).
PLANTED = ((3, 0, 1), (17, 2, 3), (30, 3, 0))


class PlantedPool(torch.utils.data.Dataset):
    """48 images of 16x16; channel 0 is the concept's mask, channels 1-2 are noise.

    The concept fills exactly one 4x4 patch in three images (:data:`PLANTED`):
    3 of 768 patch positions, under the 0.5 % top quantile, so the planted
    unit's threshold is 0 and it is on exactly where it is positive.
    """

    def __init__(self, n: int = 48, seed: int = 0, labels=None) -> None:
        rng = np.random.default_rng(seed)
        self.labels = list(labels) if labels is not None else [-1] * n
        self.masks = np.zeros((n, SIZE, SIZE), dtype=np.int64)
        for image, row, col in (p for p in PLANTED if p[0] < n):
            self.masks[image, row * PATCH:(row + 1) * PATCH, col * PATCH:(col + 1) * PATCH] = 1
        self.noise = rng.random((n, 2, SIZE, SIZE)).astype(np.float32)
        self.concepts = ConceptTable([Concept(1, "thing", "object"), Concept(2, "ground", "material")])
        self.ids = [f"img{i}" for i in range(n)]

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        image = torch.cat([torch.from_numpy(self.masks[i]).float()[None], torch.from_numpy(self.noise[i])])
        return image, {"index": i, "id": self.ids[i], "label": self.labels[i], "source": "planted"}

    def annotation(self, i):
        thing = self.masks[i].copy()
        return Annotation(masks={"object": [thing], "material": [np.where(thing == 0, 2, 0)]}, image_labels={})

    def mask_shape(self, i):
        return self.masks[i].shape

    def shard(self, rank, world):
        raise NotImplementedError
