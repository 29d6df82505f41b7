"""Bad option values, layers and mismatched inputs: refused up front, in one line, nothing written.

One row per distinct bad input (issue 10, items 5-7 and 9).  Each row is a
command line with placeholders for the module's tiny assets, and the
fragments its error line must contain: the option (or layer, or file) at
fault and what is accepted.  ``--out`` holds a user's file, and must be
byte-identical afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden
from unitscope.experiments.dissect import dissect
from unitscope.models import create_model, model_info, save_checkpoint

SIZE = 32


def _broden(root: Path) -> Path:
    """Eight images, a bright "box" object on a dark "floor", two scenes."""
    concepts = ConceptTable.from_names({"object": ["box"], "material": ["floor"], "scene": ["room", "yard"]})
    rng = np.random.default_rng(0)

    def records():
        for i in range(8):
            image = rng.integers(0, 60, size=(SIZE, SIZE, 3), dtype=np.uint8)
            box = np.zeros((SIZE, SIZE), dtype=np.int32)
            box[8:20, 6 + i:18 + i] = 1
            image[box == 1] = 220
            yield BrodenRecord(id=f"im{i}", image=image,
                               annotation=Annotation(masks={"object": [box], "material": [np.where(box, 0, 2)]},
                                                     image_labels={"scene": [3 + i % 2]}))

    return write_broden(root, records(), concepts)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, str]:
    """A Broden pool, two tiny networks (the dissected one and another), a plain pool, a dissection."""
    root = tmp_path_factory.mktemp("bad_options")
    broden = _broden(root / "broden")
    tiny = create_model("mini_alexnet", num_classes=2, input_size=SIZE, width=4, seed=0)
    save_checkpoint(tiny, root / "tiny.pt")
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=SIZE, width=4, seed=1),
                    root / "other.pt")
    plain = root / "plain"
    plain.mkdir()
    for index in (0, 1, 7):  # class 7 does not exist for a two-class network
        Image.fromarray(np.full((SIZE, SIZE, 3), 30 * index, dtype=np.uint8)).save(plain / f"{index:04d}_x.png")
    from unitscope.data import BrodenPool

    pool = BrodenPool(broden, preprocessing=model_info(tiny).preprocessing)
    dissect(tiny, ["conv2", "conv5"], pool, network="tiny", batch_size=8).save(root / "dissect")
    return {"broden": str(broden), "weights": str(root / "tiny.pt"), "other": str(root / "other.pt"),
            "plain": str(plain), "dissection": str(root / "dissect")}


@pytest.fixture
def out(tmp_path) -> Path:
    """A results folder that already holds a user's file."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "thesis.txt").write_text("mine\n")
    return folder


TINY = "--model mini_alexnet --weights {weights}"
DISSECT = f"dissect {TINY} --data {{broden}} --out {{out}} --layers conv2"
PREFERENCE = "preference --net tiny=mini_alexnet:{weights} --pool scenes={plain} --out {out}"
MINIMAL = f"minimal {TINY} --data {{plain}} --out {{out}}"
RF = f"rf {TINY} --data {{broden}} --out {{out}} --layers conv2"
LOCALIZE = "localize --model mini_alexnet --data {broden} --dissection {dissection} --out {out}"
ABLATE = "ablate --model mini_alexnet --data {broden} --dissection {dissection} --out {out}"

#: (id, command line, fragments of the error line)
ROWS = [
    # dissect: numbers out of range
    ("dissect-iou-threshold-negative", DISSECT + " --iou-threshold -1", ["--iou-threshold", "[0, 1)"]),
    ("dissect-iou-threshold-inf", DISSECT + " --iou-threshold inf", ["--iou-threshold", "[0, 1)"]),
    ("dissect-iou-threshold-nan", DISSECT + " --iou-threshold nan", ["--iou-threshold", "[0, 1)"]),
    ("dissect-quantile-zero", DISSECT + " --quantile 0", ["--quantile", "(0, 1)"]),
    ("dissect-quantile-above-one", DISSECT + " --quantile 1.5", ["--quantile", "(0, 1)"]),
    ("dissect-top-k-zero", DISSECT + " --top-k 0", ["--top-k", "greater than or equal to 1"]),
    ("dissect-batch-size-zero", DISSECT + " --batch-size 0", ["--batch-size", "greater than or equal to 1"]),
    ("dissect-checkpoint-every-zero", DISSECT + " --checkpoint-every 0",
     ["--checkpoint-every", "greater than or equal to 1"]),
    ("dissect-workers-negative", DISSECT + " --workers -1", ["--workers", "greater than or equal to 0"]),
    ("dissect-mask-size-negative", DISSECT + " --mask-size -5", ["--mask-size", "greater than or equal to 0"]),
    ("dissect-segmentations-negative", DISSECT + " --segmentations -3",
     ["--segmentations", "greater than or equal to 0"]),
    ("dissect-seed-negative", DISSECT + " --seed -1", ["--seed", "greater than or equal to 0"]),
    ("dissect-device-nonsense", DISSECT + " --device nonsense", ["--device", "cpu, cuda or cuda:N"]),
    # dissect: names and layers
    ("dissect-layers-empty", f"dissect {TINY} --data {{broden}} --out {{out}} --layers ''",
     ["--layers", "comma-separated list"]),
    ("dissect-layers-repeated", f"dissect {TINY} --data {{broden}} --out {{out}} --layers conv5,conv5",
     ["--layers", "conv5 named more than once"]),
    ("dissect-name-escapes-out", DISSECT + " --name ../../x", ["--name", "no '/' or '..'"]),
    ("dissect-name-hidden", DISSECT + " --name .partial", ["--name", "not starting with '.'"]),
    ("dissect-layer-fully-connected", f"dissect {TINY} --data {{broden}} --out {{out}} --layers fc6",
     ["'fc6'", "(1, 32)", "not a spatial map", "spatial layers of this network: pool5"]),
    ("dissect-layer-one-by-one", "dissect --model squeezenet1_1 --data {broden} --out {out} --layers classifier.3",
     ["'classifier.3'", "(1, 1000, 1, 1)", "H*W > 1", "features.12"]),
    ("dissect-null-without-weights", "dissect --model squeezenet1_1 --data {broden} --out {out} --null",
     ["--null", "--weights"]),
    # layers, world
    ("layers-num-classes-zero", "layers mini_alexnet --num-classes 0", ["--num-classes", "greater than or equal to 1"]),
    ("layers-seed-negative", "layers squeezenet1_1 --seed -2", ["--seed", "greater than or equal to 0"]),
    ("world-size-too-small", "world --out {out}/world --size 8", ["size", "32 to 1024", "got 8"]),
    ("world-one-scene", "world --out {out}/world --n-scenes 1", ["--n-scenes", "greater than or equal to 2"]),
    # preference
    ("preference-same-net-name-twice", PREFERENCE + " --net tiny=mini_alexnet:{other}",
     ["--net", "'tiny' given more than once"]),
    ("preference-same-pool-source-twice", PREFERENCE + " --pool scenes={broden}",
     ["--pool", "'scenes' given more than once"]),
    ("preference-net-name-escapes-out", "preference --net ../x=mini_alexnet:{weights} --pool scenes={plain} --out {out}",
     ["--net", "no '/' or '..'"]),
    ("preference-net-without-name", "preference --net mini_alexnet --pool scenes={plain} --out {out}",
     ["--net", "NAME=ARCH[:WEIGHTS]"]),
    ("preference-top-zero", PREFERENCE + " --top 0", ["--top", "greater than or equal to 1"]),
    ("preference-layers-repeated", PREFERENCE + " --layers conv1,conv1", ["--layers", "more than once"]),
    # minimal
    ("minimal-max-images-zero", MINIMAL + " --max-images 0", ["--max-images", "greater than or equal to 1"]),
    ("minimal-label-pattern-not-a-regex", MINIMAL + " --label-pattern '('",
     ["--label-pattern", "not a regular expression"]),
    ("minimal-label-pattern-without-group", MINIMAL + " --label-pattern x_", ["--label-pattern", "no group"]),
    ("minimal-chunk-zero", MINIMAL + " --chunk 0", ["--chunk", "greater than or equal to 1"]),
    ("minimal-segments-zero", MINIMAL + " --segments 0", ["--segments", "greater than or equal to 1"]),
    ("minimal-segmentation-unknown", MINIMAL + " --segmentation blobs", ["--segmentation", "slic, masks"]),
    ("minimal-fill-unknown", MINIMAL + " --fill noise", ["--fill", "mean, blur, gray"]),
    ("minimal-class-index-out-of-range", MINIMAL + r" --label-pattern '^(\d+)_'",
     ["class index 7", "2 classes (0 to 1)", "--label-pattern"]),
    # rf
    ("rf-units-not-integers", RF + " --units abc", ["--units", "integers >= 0"]),
    ("rf-units-out-of-range", RF + " --units 0,99", ["--units 99", "(0 to 7)"]),
    ("rf-units-negative", RF + " --units -1", ["--units", "integers >= 0"]),
    ("rf-max-images-zero", RF + " --max-images 0", ["--max-images", "greater than or equal to 1"]),
    ("rf-top-k-zero", RF + " --top-k 0", ["--top-k", "greater than or equal to 1"]),
    ("rf-layer-fully-connected", f"rf {TINY} --data {{broden}} --out {{out}} --layers conv2,fc7",
     ["'fc7'", "not a spatial map"]),
    # localize / ablate: the dissection of another network, a layer it did not cover
    ("localize-dissection-of-other-weights", LOCALIZE + " --weights {other} --layer conv5",
     ["dissection of 'tiny'", "other weights", "other.pt", "fingerprint"]),
    ("localize-layer-not-dissected", LOCALIZE + " --weights {weights} --layer conv3",
     ["'conv3' is not in the dissection", "conv2, conv5"]),
    ("localize-checkpoint-every-zero", LOCALIZE + " --weights {weights} --layer conv5 --checkpoint-every 0",
     ["--checkpoint-every", "greater than or equal to 1"]),
    ("ablate-dissection-of-other-weights", ABLATE + " --weights {other} --layer conv5",
     ["dissection of 'tiny'", "other weights", "other.pt", "fingerprint"]),
    ("ablate-layer-not-dissected", ABLATE + " --weights {weights} --layer pool5", ["'pool5' is not in the dissection"]),
    ("ablate-random-negative", ABLATE + " --weights {weights} --layer conv5 --random -1",
     ["--random", "greater than or equal to 0"]),
    ("ablate-name-escapes-out", ABLATE + " --weights {weights} --layer conv5 --name a/b", ["--name", "no '/'"]),
]


@pytest.mark.parametrize("command, mentions", [pytest.param(c, m, id=i) for i, c, m in ROWS])
def test_bad_option_is_refused_up_front(refuse, assets, out, command, mentions):
    import shlex

    args = [a.format(out=out, **assets) for a in shlex.split(command)]
    refuse(args, mentions=mentions, unchanged=[out, Path(assets["dissection"])])


def test_the_table_has_distinct_rows():
    ids = [row[0] for row in ROWS]
    commands = [row[1] for row in ROWS]
    assert len(set(ids)) == len(ids) and len(set(commands)) == len(commands) and len(ROWS) >= 25
