"""``unitscope convert``: a pool written in the Broden layout reads back with the same concepts, pixel for pixel."""

from __future__ import annotations

import csv
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import mask_samples as S
from unitscope.cli.main import app
from unitscope.data import Annotation, BrodenPool, BrodenRecord, ConceptTable, write_broden
from unitscope.concepts import Concept
from unitscope.data.convert import MARKER, convert_to_broden, parse_size, resize_nearest
from unitscope.data.open import open_annotated_pool

CLASSES = "value,name,category\n0,void,ignore\n1,cat,object\n2,whisker,part\n3,fur,material\n4,sofa,object\n5,never,object\n"
SHAPE = (6, 8)


def index_pool(root: Path) -> Path:
    """images/{a,b}.png (random colours) + masks/ with values 0..4 (0 ignored; 5, "never", absent) + classes.csv."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, SHAPE + (3,), dtype=np.uint8)).save(root / "images" / f"{name}.png")
        S.grey_mask(root / "masks" / f"{name}.png", rng.integers(0, 5, SHAPE))
    (root / "classes.csv").write_text(CLASSES)
    return root


def nearest_by_centres(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The stated rule, written out: output pixel (r, c) takes the input pixel under its centre (exact fractions)."""
    sh, sw = values.shape
    out = np.zeros(shape, dtype=values.dtype)
    for r in range(shape[0]):
        for c in range(shape[1]):
            out[r, c] = values[int(Fraction(2 * r + 1, 2) * sh / shape[0]), int(Fraction(2 * c + 1, 2) * sw / shape[1])]
    return out


def concept_map(annotation: Annotation) -> np.ndarray:
    """Per pixel, the concept number (the categories' maps of an index-mask pool do not overlap)."""
    return sum(m.astype(np.int64) for maps in annotation.masks.values() for m in maps)


def tree_bytes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def source(tmp_path):
    return open_annotated_pool(index_pool(tmp_path / "pool"))


def test_round_trip_same_concepts_pixel_for_pixel(source, tmp_path):
    result = convert_to_broden(source, tmp_path / "broden", image_size="4,6", mask_size=(3, 4))
    broden = BrodenPool(result.out)
    assert (result.images, result.image_size, result.mask_size) == (2, (4, 6), (3, 4))
    assert broden.concepts.to_records() == source.concepts.to_records()
    assert [c.name for c in broden.concepts.in_category("object")] == ["cat", "sofa", "never"]
    assert broden.ids == ["a", "b"]
    expected_maps = []
    for i in range(2):
        expected = nearest_by_centres(concept_map(source.annotation(i)), (3, 4))
        expected_maps.append(expected)
        read = broden.annotation(i)
        assert broden.mask_shape(i) == (3, 4)
        assert concept_map(read).tolist() == expected.tolist()
        for category in ("object", "part", "material"):
            numbers = [c.number for c in source.concepts.in_category(category)]
            assert read.masks[category][0].tolist() == np.where(np.isin(expected, numbers), expected, 0).tolist()
        resized = Image.fromarray(source.raw_image(i)).resize((6, 4), Image.BILINEAR)
        assert np.array_equal(broden.raw_image(i), np.asarray(resized))
    # label.csv counts the converted masks: images holding the concept, mean share of those images' pixels
    labels = {int(r["number"]): r for r in csv_rows(result.out / "label.csv")}
    for concept in source.concepts:
        shares = [(m == concept.number).mean() for m in expected_maps if (m == concept.number).any()]
        assert int(labels[concept.number]["frequency"]) == len(shares) == result.frequency[concept.number]
        assert float(labels[concept.number]["coverage"]) == pytest.approx(np.mean(shares) if shares else 0, abs=1e-6)
    assert labels[6]["name"] == "never" and labels[6]["frequency"] == "0"
    assert result.present() == {"object": 2, "part": 1, "material": 1}
    assert {r["name"]: r["number"] for r in csv_rows(result.out / "c_part.csv")} == {"whisker": "3"}


def test_default_mask_is_half_the_image_and_images_keep_their_size(source, tmp_path):
    result = convert_to_broden(source, tmp_path / "broden")
    row = csv_rows(result.out / "index.csv")[0]
    assert (row["ih"], row["iw"], row["sh"], row["sw"]) == ("6", "8", "3", "4")
    broden = BrodenPool(result.out)
    assert np.array_equal(broden.raw_image(0), source.raw_image(0))  # PNG: lossless
    assert concept_map(broden.annotation(0)).tolist() == nearest_by_centres(concept_map(source.annotation(0)), (3, 4)).tolist()
    marker = json.loads((result.out / MARKER).read_text())
    assert (marker["format"], marker["images"], marker["mask_size"]) == ("unitscope.convert", 2, "half the image size")


def test_same_command_same_bytes_and_overwrite_replaces_only_a_conversion(source, tmp_path):
    first = convert_to_broden(source, tmp_path / "one", image_size=4).out
    second = convert_to_broden(source, tmp_path / "two", image_size=4).out
    assert tree_bytes(first) == tree_bytes(second)
    (second / "stale.txt").write_text("left by hand")
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_to_broden(source, second, image_size=4)
    convert_to_broden(source, second, image_size=4, overwrite=True)
    assert tree_bytes(second) == tree_bytes(first)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_broden_source_resized_keeps_parts_scene_labels_and_splits(tmp_path):
    concepts = ConceptTable([Concept(1, "car", "object"), Concept(2, "wheel", "part"), Concept(3, "street", "scene")])
    car = np.zeros((8, 8), np.int32)
    car[2:8, 0:6] = 1
    wheel = np.zeros((8, 8), np.int32)
    wheel[6:8, 0:4] = 2
    image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    record = BrodenRecord("x/car", image, Annotation({"object": [car], "part": [wheel]}, {"scene": [3]}), "val")
    original = BrodenPool(write_broden(tmp_path / "src", [record], concepts))
    result = convert_to_broden(original, tmp_path / "small", image_size=4)
    small = BrodenPool(result.out)
    assert small.ids == ["x/car"] and small.meta(0)["split"] == "val" and small.mask_shape(0) == (2, 2)
    read = small.annotation(0)
    # 8 -> 2 px: the output pixels' centres fall on source rows and columns 2 and 6
    assert read.masks["object"][0].tolist() == [[1, 0], [1, 0]]
    assert read.masks["part"][0].tolist() == [[0, 0], [2, 0]]
    assert read.image_labels["scene"] == [3]
    assert small.concepts == concepts


def test_file_names_a_broden_folder_cannot_hold_are_renamed_and_recorded(tmp_path):
    root = tmp_path / "pool"
    for name in ("my cat", "my_cat"):
        S.image(root / "images" / f"{name}.png", (2, 2))
        S.grey_mask(root / "masks" / f"{name}.png", [[1, 1], [0, 2]])
    (root / "classes.csv").write_text(CLASSES)
    result = convert_to_broden(open_annotated_pool(root), tmp_path / "out")
    assert BrodenPool(result.out).ids == ["my_cat", "my_cat-2"]
    assert json.loads((result.out / MARKER).read_text())["renamed_ids"] == {"my_cat": "my cat", "my_cat-2": "my_cat"}


def test_sizes_and_nearest_rule():
    assert parse_size("224", option="--image-size") == (224, 224)
    assert parse_size(" 240, 320 ") == (240, 320) and parse_size(7) == (7, 7)
    with pytest.raises(ValueError, match="--mask-size takes N or H,W"):
        parse_size("0", option="--mask-size")
    values = np.arange(35).reshape(5, 7)
    for shape in [(2, 3), (5, 7), (4, 4), (9, 11), (1, 1)]:
        assert resize_nearest(values, shape).tolist() == nearest_by_centres(values, shape).tolist()


def test_cli_converts_the_shared_camvid_pool(realdata, tmp_path):
    out = tmp_path / "camvid_broden"
    result = CliRunner().invoke(app, ["convert", "--data", str(realdata / "camvid"), "--out", str(out),
                                      "--image-size", "224", "--mask-size", "112", "--limit", "3"])
    assert result.exit_code == 0, result.stderr
    assert f"converted 3 images to {out}" in result.stdout
    original = open_annotated_pool(realdata / "camvid")
    broden = BrodenPool(out)
    assert len(broden) == 3 and broden.ids == original.ids[:3]
    assert broden.concepts.to_records() == original.concepts.to_records()
    assert {c.name for c in broden.concepts} >= {"sky", "building", "road", "car", "pedestrian"}
    assert broden.raw_image(0).shape == (224, 224, 3) and broden.mask_shape(0) == (112, 112)
    assert concept_map(broden.annotation(2)).tolist() == resize_nearest(concept_map(original.annotation(2)),
                                                                         (112, 112)).tolist()
    marker = json.loads((out / MARKER).read_text())
    assert (marker["layout"], marker["image_size"], marker["limit"]) == ("camvid", [224, 224], 3)
