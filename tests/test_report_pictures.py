"""The report draws every picture from the arrays the results saved (report/pictures.py).

Known answers for each drawing on tiny arrays, then the report built from
the hand-made results (tests/fake_results.py): each picture lies in
``REPORT/pictures`` with the pixels drawn from the saved arrays, and a
results folder of an older unitscope (pictures saved as PNG files) is
refused with one line naming the array file that is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from fake_results import make_fake_results
from unitscope.report import build_report
from unitscope.report.pictures import (
    PALETTE,
    colour_map,
    jpeg_bytes,
    localization_picture,
    png_bytes,
    segmentation_tile,
    unit_strip,
)
from unitscope.results.localize import LocalizationResult
from unitscope.results.minimal import MinimalImagesResult
from unitscope.results.preference import LayerPreferenceResult
from unitscope.results.receptive_fields import EmpiricalRFResult
from unitscope.results.segmentations import UnitSegmentationsResult


def viridis(x: float) -> list[int]:
    return np.round(np.asarray(colormaps["viridis"](x)[:3]) * 255).astype(int).tolist()


# ---------------------------------------------------------------------------- drawings, known answers
def test_colour_map_scales_a_map_to_its_own_range():
    picture = colour_map(np.array([[0.0, 0.5], [1.0, np.nan]]) * 7 + 3)
    assert picture.dtype == np.uint8 and picture.shape == (2, 2, 3)
    assert picture[0, 0].tolist() == viridis(0.0) and picture[1, 0].tolist() == viridis(1.0)
    assert picture[0, 1].tolist() == viridis(0.5)
    assert picture[1, 1].tolist() == viridis(0.0), "NaN is drawn as the minimum"
    assert (colour_map(np.full((3, 3), 2.0)) == viridis(0.0)).all(), "a constant map is all minimum"


def test_segmentation_tile_dims_outside_the_mask_and_outlines_it():
    image = np.full((5, 5, 3), 100, dtype=np.uint8)
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:4, 1:4] = True
    tile = segmentation_tile(image, mask)
    assert (tile[0, 0] == 30).all(), "0.3 of the brightness outside"
    assert tile[2, 2].tolist() == [100, 100, 100], "the inside keeps its colours"
    assert tile[1, 1].tolist() == [255, 220, 0], "the mask's edge is yellow"
    assert (image == 100).all(), "the input is not modified"


def _strip_as_experiment_2b_drew_it(pictures, dim, gap=2):
    """The reference: how ``unit_segmentations`` drew a strip before the report did (main at 6c5ff2f,
    ``src/unitscope/experiments/unit_segmentations.py``: each picture shaded, then ``_strip``)."""
    shaded = [np.round(image.astype(np.float64) * np.where(mask[..., None], 1.0, dim)).astype(np.uint8)
              for image, mask in pictures]
    h = max(im.shape[0] for im in shaded)
    strip = np.full((h, sum(im.shape[1] for im in shaded) + gap * (len(shaded) - 1), 3), 255, dtype=np.uint8)
    x = 0
    for im in shaded:
        strip[: im.shape[0], x: x + im.shape[1]] = im
        x += im.shape[1] + gap
    return strip


def test_unit_strip_dims_outside_each_mask_and_sets_the_images_side_by_side():
    rng = np.random.default_rng(3)
    pictures = [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.random((h, w)) > 0.5)
                for h, w in ((6, 5), (4, 7), (6, 3))]
    for dim in (0.0, 0.15, 0.37, 1.0):
        strip = unit_strip(pictures, dim=dim)
        assert strip.shape == (6, 5 + 7 + 3 + 2 * 2, 3)
        assert (strip == _strip_as_experiment_2b_drew_it(pictures, dim)).all(), dim
    image, mask = pictures[0]
    strip = unit_strip(pictures, dim=0.0)
    assert (strip[:6, :5][mask] == image[mask]).all() and strip[:6, :5][~mask].sum() == 0
    assert (strip[:, 5:7] == 255).all() and (strip[4:, 7:14] == 255).all(), "white gaps and padding"


def test_localization_picture_enlarges_tints_and_boxes():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), dtype=bool)
    mask[0:8, 0:8] = True  # the top-left quarter (the mask grid is half the image)
    record = {"predicted_name": "bedroom", "probability": 0.5, "label_name": "bedroom"}
    detections = [{"layer": "conv", "object": "bed", "detected": True, "boxes": [[0, 0, 16, 16]]}]
    picture = localization_picture(image, record, detections, {0: mask}, ["bed"])
    assert picture.shape == (8 * 32 + 14, 8 * 32, 3)
    assert (picture[:14] > 200).mean() > 0.8, "a white title band (with black text)"
    tinted, plain = picture[14 + 64, 64], picture[14 + 200, 200]
    assert plain.tolist() == [0, 0, 0] and tinted.tolist() != [0, 0, 0]
    assert picture[14 + 64, 0].tolist() == list(PALETTE[0]), "the box is drawn in the object's colour"


def test_encodings_keep_the_pixels():
    image = np.random.default_rng(0).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    with Image.open(__import__("io").BytesIO(png_bytes(image))) as png:
        assert (np.asarray(png) == image).all()
    assert jpeg_bytes(image)[:3] == b"\xff\xd8\xff"


# ---------------------------------------------------------------------------- the report draws them
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    results = make_fake_results(tmp_path_factory.mktemp("pictures"))
    index = build_report(results)
    return results, index.parent


def png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_the_report_draws_each_kind_from_the_saved_arrays(built):
    results, report = built
    pictures = report / "pictures"
    preference = LayerPreferenceResult.load(results / "preference")
    rank, image_id, thumbnail = preference.thumbnails[("scenenet", "conv5")][0]
    assert (png(pictures / f"preference/top/scenenet/conv5/{rank:03d}_{image_id}.png") == thumbnail).all()

    minimal = MinimalImagesResult.load(results / "scenenet" / "minimal" / "masks")
    original, reduced = minimal.examples["bed1"]
    assert (png(pictures / "scenenet/minimal/masks/examples/000_bed1_original.png") == original).all()
    assert (png(pictures / "scenenet/minimal/masks/examples/000_bed1_minimal.png") == reduced).all()

    rf = EmpiricalRFResult.load(results / "scenenet" / "rf" / "conv5")
    assert (png(pictures / "scenenet/rf/conv5/maps/unit_0001.png") == colour_map(rf.maps[1])).all()

    localization = LocalizationResult.load(results / "scenenet" / "localize")
    example = localization.examples[0]
    expected = localization_picture(localization.pictures["image_000"], example, example["detections"],
                                    {0: localization.pictures["mask_000_0"]}, ["bed"])
    assert (png(pictures / "scenenet/localize/examples/conv5/000_bed1.png") == expected).all()

    html = (report / "index.html").read_text(encoding="utf-8")
    for rel in ("pictures/preference/top/scenenet/conv5/000_s0.png", "pictures/scenenet/rf/conv5/maps/unit_0000.png",
                "pictures/scenenet/minimal/masks/examples/001_bed2_minimal.png",
                "pictures/scenenet/localize/examples/conv5/000_bed1.png"):
        assert f'src="{rel}"' in html, rel
    manifest = json.loads((report / ".unitscope-report").read_text())
    assert "pictures/scenenet/rf/conv5/maps/unit_0000.png" in manifest["files"]
    assert not list((results / "scenenet").rglob("*/maps/*.png")), "the results hold arrays, not pictures"


def test_the_report_draws_the_unit_strips_from_the_saved_arrays(built):
    results, report = built
    folder = results / "scenenet" / "rf" / "segmentations"
    strips = UnitSegmentationsResult.load(folder)
    picture = report / "pictures" / "scenenet/rf/segmentations/conv5/unit_0000.png"
    expected = unit_strip(strips.strip(0), dim=strips.dim)
    assert expected.shape == (30, 3 * 30 + 2 * 2, 3)
    assert (png(picture) == expected).all()
    assert (png(picture) == _strip_as_experiment_2b_drew_it(strips.strip(0), 0.15)).all()
    unit = (report / "units" / "scenenet" / "conv5" / "0.html").read_text(encoding="utf-8")
    assert 'src="../../../pictures/scenenet/rf/segmentations/conv5/unit_0000.png"' in unit
    assert 'src="pictures/scenenet/rf/segmentations/conv5/unit_0000.png"' in (report / "index.html").read_text(
        encoding="utf-8")
    assert not list(folder.rglob("*.png")), "the results hold arrays, not pictures"


# ---------------------------------------------------------------------------- results of an older unitscope
def _png_era_preference(results: Path) -> None:
    folder = results / "preference"
    (folder / "thumbnails.npz").unlink()
    meta = json.loads((folder / "preference.json").read_text())
    for t in meta["thumbnails"]:
        t["file"] = f"top/{t['network']}/{t['layer']}/{t['rank']:03d}_{t['id']}.png"
        del t["array"]
    (folder / "preference.json").write_text(json.dumps(meta))


def _png_era_minimal(results: Path) -> None:
    folder = results / "scenenet" / "minimal" / "masks"
    (folder / "examples.npz").unlink()
    meta = json.loads((folder / "minimal.json").read_text())
    meta["examples"] = [{"id": e["id"], "original": f"examples/{e['id']}_original.png",
                         "minimal": f"examples/{e['id']}_minimal.png"} for e in meta["examples"]]
    (folder / "minimal.json").write_text(json.dumps(meta))


def _png_era_localize(results: Path) -> None:
    folder = results / "scenenet" / "localize"
    (folder / "examples.npz").unlink()
    examples = json.loads((folder / "examples.json").read_text())
    for e in examples:
        e["picture"] = {"conv5": f"examples/conv5/000_{e['id']}.png"}
    (folder / "examples.json").write_text(json.dumps(examples))


def _png_era_strips(results: Path) -> None:
    folder = results / "scenenet" / "rf" / "segmentations"
    (folder / "segmentations.npz").unlink()
    meta = json.loads((folder / "segmentations.json").read_text())
    meta["tiles"] = {"0": "conv5/unit_0000.png"}
    (folder / "segmentations.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("make_old, missing", [
    (_png_era_preference, "preference/thumbnails.npz is missing: it holds the thumbnails"),
    (_png_era_minimal, "masks/examples.npz is missing: it holds the example images"),
    (_png_era_localize, "localize/examples.npz is missing: it holds the example images and masks"),
    (_png_era_strips, "segmentations/segmentations.npz is missing: it holds the images and masks"),
], ids=["preference", "minimal", "localize", "strips"])
def test_a_png_era_folder_is_refused_naming_the_missing_arrays(tmp_path, make_old, missing):
    results = make_fake_results(tmp_path)
    make_old(results)
    with pytest.raises(FileNotFoundError, match=missing) as caught:
        build_report(results, out=tmp_path / "report")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "report").exists()


def test_a_png_era_rf_folder_still_loads(tmp_path):
    results = make_fake_results(tmp_path)
    folder = results / "scenenet" / "rf" / "conv5"
    meta = json.loads((folder / "rf.json").read_text())
    meta["pictures"] = ["maps/unit_0000.png", "maps/unit_0001.png"]  # as older versions wrote it
    (folder / "rf.json").write_text(json.dumps(meta))
    loaded = EmpiricalRFResult.load(folder)
    assert loaded.drawn is None and loaded.units.tolist() == [0, 1]
    shutil.rmtree(results / "preference")
    index = build_report(results, out=tmp_path / "report")
    assert (index.parent / "pictures/scenenet/rf/conv5/maps/unit_0001.png").is_file()
