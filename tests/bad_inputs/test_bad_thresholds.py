"""Bad threshold options of `unitscope dissect`: a tie rule that does not exist, a support that cannot be.

Each row is refused before the model is loaded or the pool is read: one
line naming ``--threshold-rule`` / ``--min-support`` and what is accepted,
and neither the pool nor the results folder touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden
from unitscope.models import create_model, save_checkpoint

SIZE = 32

RULES = "unitscope, netdissect, inclusive"

#: (id, extra arguments, fragments the error line must name)
CASES = [
    ("unknown-rule", ["--threshold-rule", "median"], ["--threshold-rule", RULES, "median"]),
    ("empty-rule", ["--threshold-rule", ""], ["--threshold-rule", RULES]),
    ("rule-wrong-case", ["--threshold-rule", "NetDissect"], ["--threshold-rule", RULES, "NetDissect"]),
    ("convention-alias-typo", ["--convention", "net-dissect"], ["--convention", RULES]),
    ("unknown-rule-with-null", ["--threshold-rule", "strict", "--null"], ["--threshold-rule", RULES]),
    ("negative-min-support", ["--min-support", "-1"], ["--min-support", ">= 0", "-1"]),
    ("min-support-not-a-number", ["--min-support", "ten"], ["--min-support", "integer"]),
    ("min-support-fraction", ["--min-support", "2.5"], ["--min-support", "integer"]),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-image Broden pool (a box on a floor) and a 4-channel mini_alexnet checkpoint."""
    root = tmp_path_factory.mktemp("bad_thresholds")
    concepts = ConceptTable.from_names({"object": ["box"], "material": ["floor"]})
    rng = np.random.default_rng(0)

    def records():
        for i in range(4):
            box = np.zeros((SIZE, SIZE), np.int32)
            box[4:14, 4 + i:14 + i] = 1
            yield BrodenRecord(f"im{i}", rng.integers(0, 255, size=(SIZE, SIZE, 3), dtype=np.uint8),
                               Annotation(masks={"object": [box], "material": [np.where(box == 0, 2, 0)]}))

    torch.manual_seed(0)
    weights = root / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=SIZE, width=4), weights)
    return write_broden(root / "broden", records(), concepts), weights


@pytest.mark.parametrize("extra,mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_threshold_option_is_refused(refuse, assets, tmp_path, extra, mentions):
    pool, weights = assets
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("a user's file\n")
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--layers", "conv5", "--data", pool,
            "--out", out, "--name", "tiny", *extra], mentions=mentions, unchanged=[pool, out])
