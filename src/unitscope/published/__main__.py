"""Print the paper's numbers from the published files: ``python -m unitscope.published [FOLDER]``.

FOLDER is the published-data folder laid out as ``../shared/published``
(the default, from the repository root): ``iclr15_unit_annotations/`` and
``netdissect_release/``.  ``unitscope import`` writes the same numbers into a
results directory for the report (README: "The paper's own data").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ._source import MalformedFile
from .experiment3 import check_layer_average, layer_table
from unitscope.results.scene_vs_object import scene_vs_object, scene_vs_object_sentence

from .experiment4 import crowd_object_detectors
from .iclr15 import read_iclr15
from .netdissect import netdissect_categories, netdissect_census, read_netdissect
from .netdissect_summary import SUMMARY_NAMES, compare_with_summary, read_netdissect_summary

DEFAULT_FOLDER = Path("..") / "shared" / "published"
CROWD = {"places205-alexnet": "unitAnnotation_places205-alexnet.mat",
         "imagenet-alexnet": "unitAnnotation_imagenet-alexnet.mat"}
NETDISSECT = ("caffe_reference_imagenet", "caffe_reference_places205", "caffe_reference_places365",
              "ResNet-152-model_imagenet", "ResNet-152-model_places365")
#: (scene, object) pairs compared, crowd names and Network Dissection names.
PAIRS = (
    (("places205-alexnet", "imagenet-alexnet"), ("caffe_reference_places205", "caffe_reference_imagenet")),
    (None, ("caffe_reference_places365", "caffe_reference_imagenet")),
    (None, ("ResNet-152-model_places365", "ResNet-152-model_imagenet")),
)
EXPERIMENT3 = ["network", "layer", "units", "mean_precision", "units_precision_over_75", "precision_over_75",
               "annotation_share_simple", "annotation_share_texture", "annotation_share_region",
               "annotation_share_part", "annotation_share_object", "annotation_share_scene",
               "all_agree_type", "two_agree_type"]


def _show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n## {title}\n")
    print(frame.to_string(index=False, float_format=lambda value: f"{value:.4f}"))


def report(folder: Path) -> None:
    """Read every published file under ``folder`` and print the tables."""
    crowd_dir, netdissect_dir = folder / "iclr15_unit_annotations", folder / "netdissect_release"
    crowd = {network: read_iclr15(crowd_dir / name, network=network) for network, name in CROWD.items()}
    _show("Experiment 3: per layer (crowd annotations; type shares over all three annotations per unit)",
          pd.concat([layer_table(annotations)[EXPERIMENT3] for annotations in crowd.values()], ignore_index=True))
    for network, annotations in crowd.items():
        print(f"{network}: type shares equal layerAverageCount, largest difference "
              f"{check_layer_average(annotations):.1e}")
    crowd_table = pd.concat([crowd_object_detectors(annotations) for annotations in crowd.values()],
                            ignore_index=True)
    _show("Experiment 4, crowd labels: pool5 units of consensus type object with precision >= 0.75",
          crowd_table.drop(columns="objects"))

    summary = read_netdissect_summary(netdissect_dir / "semantics_cvpr_release.mat")
    layers = dict(zip(summary["network"], summary["layer"]))
    tables = pd.concat([read_netdissect(netdissect_dir / f"{name}.csv", network=name,
                                        layer=layers.get(SUMMARY_NAMES.get(name, name), "last"))
                        for name in NETDISSECT], ignore_index=True)
    census, categories = netdissect_census(tables), netdissect_categories(tables)
    _show("Network Dissection census (IoU > 0.04): best label per unit vs per category", census)
    _show("Network Dissection census per category", categories)
    compared = compare_with_summary(census, categories, summary)
    _show("Per-category rule vs Network Dissection's summary (semantics_cvpr_release.mat)", compared)
    print(f"reproduced: {int(compared['reproduced'].sum())} of {len(compared)} (network, concept) rows have "
          "their detectors and unique concepts")

    for crowd_pair, census_pair in PAIRS:
        table = scene_vs_object(crowd=crowd_table if crowd_pair else None, crowd_networks=crowd_pair,
                                census=census, census_networks=census_pair)
        _show(f"Experiment 4: {census_pair[0]} vs {census_pair[1]}", table.drop(columns=["scene_network",
                                                                                           "object_network"]))
        print("\n" + scene_vs_object_sentence(table))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m unitscope.published [FOLDER]  (default ../shared/published)", file=sys.stderr)
        return 2
    folder = Path(args[0]) if args else DEFAULT_FOLDER
    try:
        report(folder)
    except (MalformedFile, FileNotFoundError, LookupError, ValueError) as error:
        print(f"unitscope: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
