"""Layers that are not spatial maps — token counts with no patch grid, (N, C), 1x1, sequence-first,
tuples — refused up front, in one line, by the commands that read maps."""

from __future__ import annotations

from pathlib import Path

import pytest

import mask_samples as S
from token_nets import TinyViT
from unitscope.models import ModelSpec, register_model
from unitscope.models import registry as _registry

MODEL = "tiny_vit_bad_tokens"
#: what every refusal says is accepted
ACCEPTED = ["(N, C, H, W) with H*W > 1", "(N, T, C)"]


@pytest.fixture
def tiny_vit():
    """The tiny transformer of ``token_nets`` in the registry for the length of one test."""
    register_model(ModelSpec(name=MODEL, builder=lambda num_classes, **_: TinyViT(), default_layers=("block",),
                             input_size=16, num_classes=2), overwrite=True)
    yield MODEL
    _registry._REGISTRY.pop(MODEL, None)


def _pool(root: Path) -> Path:
    S.image(root / "images" / "a.jpg", (16, 16))
    S.grey_mask(root / "masks" / "a.png", [[0, 1] * 8] * 16)
    (root / "classes.csv").write_text("value,name\n0,void\n1,cat\n")
    return root


CASES = [
    ("non-square-token-count", ["dissect", "--layers", "odd"],
     ["'odd'", "(1, 15, 8)", "15 tokens minus k extra leading tokens is not a perfect square"]),
    ("two-d-output", ["dissect", "--layers", "head"], ["'head'", "(1, 2)", "a 2-D output is not a spatial map"]),
    ("one-by-one-map", ["dissect", "--layers", "pooled"], ["'pooled'", "(1, 8, 1, 1)", "1x1 map"]),
    ("sequence-first", ["dissect", "--layers", "seq_first"],
     ["'seq_first'", "(17, 1, 8)", "not the batch of 1 images (sequence-first"]),
    ("attention-tuple", ["dissect", "--layers", "block.attn"], ["'block.attn'", "a tuple, not a tensor"]),
    ("good-and-bad-layer", ["dissect", "--layers", "block,odd"], ["'odd'", "(1, 15, 8)"]),
    ("rf-two-d-output", ["rf", "--layers", "head"], ["'head'", "a 2-D output is not a spatial map"]),
    ("rf-sequence-first", ["rf", "--layers", "block,seq_first"], ["'seq_first'", "sequence-first"]),
]


@pytest.mark.parametrize("args, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layers_that_are_not_maps_are_refused(refuse, tiny_vit, tmp_path, args, mentions):
    data, out = _pool(tmp_path / "pool"), tmp_path / "out"
    refuse([*args, "--model", tiny_vit, "--data", data, "--out", out, *(
        ["--label-cache", "none"] if args[0] == "dissect" else [])],
        mentions=[*mentions, *ACCEPTED], unchanged=[data, out])
