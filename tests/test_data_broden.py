"""Broden write -> read round trip, the CSV tables, atomic export, real-Broden quirks, bad masks."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from unitscope.data import (
    Annotation,
    BrodenPool,
    BrodenRecord,
    Concept,
    ConceptTable,
    CorruptFileError,
    collate,
    write_broden,
)

# Numbers above 255 exercise the G channel of the mask PNGs.
CONCEPTS = ConceptTable([
    Concept(1, "black", "color"), Concept(2, "white", "color"), Concept(3, "green", "color"),
    Concept(5, "wood", "material"),
    Concept(300, "car", "object"), Concept(301, "bed", "object"),
    Concept(600, "wheel", "part"),
    Concept(700, "kitchen", "scene"), Concept(701, "street", "scene"),
])


def _records():
    """Three images 8x10 with masks 4x5 (20 pixels); see the expected tables below."""
    rng = np.random.default_rng(0)
    a_object = np.zeros((4, 5), np.int32)
    a_object[0:2] = 300  # car, 10 px
    a_object[2] = 301  # bed, 5 px
    a_part1 = np.zeros((4, 5), np.int32)
    a_part1[0, 0:2] = 600  # wheel, 2 px
    a_part2 = np.zeros((4, 5), np.int32)
    a_part2[0, 1:4] = 600  # wheel, 3 px (1 shared with part1): union 4 px
    a_part2[1, 0] = 300  # car also labelled in the part layer, inside the object's car
    a_color = np.full((4, 5), 1, np.int32)
    b_object = np.zeros((4, 5), np.int32)
    b_object[3] = 300  # car, 5 px
    b_color = np.zeros((4, 5), np.int32)
    b_color[0:2, 0:2] = 2  # white, 4 px
    b_material = np.full((4, 5), 5, np.int32)
    image = lambda: rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)  # noqa: E731
    return [
        BrodenRecord("a", image(), Annotation(
            masks={"object": [a_object], "part": [a_part1, a_part2], "color": [a_color]},
            image_labels={"scene": [700]})),
        BrodenRecord("b", image(), Annotation(
            masks={"object": [b_object], "color": [b_color], "material": [b_material]},
            image_labels={"scene": [701]}), split="val"),
        BrodenRecord("c", image(), Annotation(image_labels={"scene": [700]})),
    ]


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[BrodenRecord]]:
    records = _records()
    out = tmp_path_factory.mktemp("export") / "broden"
    calls = []
    result = write_broden(out, iter(records), CONCEPTS, progress=calls.append)
    assert result == out.resolve() and calls == [1, 2, 3]
    return out, records


def test_round_trip_identical(written):
    out, records = written
    pool = BrodenPool(out)
    assert pool.ids == ["a", "b", "c"]
    assert pool.categories == ["color", "object", "material", "part", "scene"]
    assert pool.concepts == CONCEPTS
    assert [pool.meta(i)["split"] for i in range(3)] == ["train", "val", "train"]
    for i, record in enumerate(records):
        assert np.array_equal(pool.raw_image(i), record.image)
        got = pool.annotation(i)
        for cat in pool.categories:
            want = record.annotation.masks.get(cat, [])
            assert len(got.masks[cat]) == len(want)
            for g, w in zip(got.masks[cat], want):
                assert g.shape == w.shape and np.array_equal(g, w)
            assert got.image_labels[cat] == record.annotation.image_labels.get(cat, [])
    assert pool.mask_shape(0) == (4, 5)
    assert pool.mask_shape(2) == (8, 10)  # no masks: sh, sw = ih, iw
    assert pool.annotation(0).concepts() == {1, 300, 301, 600, 700}


def test_index_and_mask_files(written):
    out, _ = written
    rows = _rows(out / "index.csv")
    assert rows[0] == ["image", "split", "ih", "iw", "sh", "sw",
                       "color", "object", "material", "part", "scene", "texture"]
    assert rows[1] == ["a.png", "train", "8", "10", "4", "5", "a_color.png", "a_object.png", "",
                       "a_part_1.png;a_part_2.png", "700", ""]
    assert rows[3] == ["c.png", "train", "8", "10", "8", "10", "", "", "", "", "700", ""]
    rgb = np.asarray(Image.open(out / "images" / "a_object.png"))
    assert rgb.shape == (4, 5, 3)
    assert rgb[0, 0].tolist() == [300 % 256, 300 // 256, 0]


def test_label_category_and_c_tables(written):
    out, _ = written
    assert _rows(out / "label.csv") == [
        ["number", "name", "category", "frequency", "coverage", "syns"],
        ["1", "black", "color(1)", "1", "1.000000", ""],
        ["2", "white", "color(1)", "1", "0.200000", ""],
        ["3", "green", "color(0)", "0", "0.000000", ""],
        ["5", "wood", "material(1)", "1", "1.000000", ""],
        ["300", "car", "object(2);part(1)", "2", "0.375000", ""],
        ["301", "bed", "object(1)", "1", "0.250000", ""],
        ["600", "wheel", "part(1)", "1", "0.200000", ""],
        ["700", "kitchen", "scene(2)", "2", "1.000000", ""],
        ["701", "street", "scene(1)", "1", "1.000000", ""],
    ]
    assert _rows(out / "category.csv") == [
        ["name", "first", "last", "count", "frequency"],
        ["color", "1", "3", "3", "2"],
        ["object", "300", "301", "2", "2"],
        ["material", "5", "5", "1", "1"],
        ["part", "600", "600", "1", "1"],
        ["scene", "700", "701", "2", "3"],
    ]
    assert _rows(out / "c_part.csv") == [
        ["code", "number", "name", "frequency", "coverage"],
        ["1", "300", "car", "1", "0.050000"],
        ["2", "600", "wheel", "1", "0.200000"],
    ]
    assert _rows(out / "c_object.csv")[1:] == [["1", "300", "car", "2", "0.375000"],
                                               ["2", "301", "bed", "1", "0.250000"]]
    assert not (out / "c_texture.csv").exists()


def test_frequency_split_categories_and_labels(written):
    out, _ = written
    whole = {1: 1, 2: 1, 3: 0, 5: 1, 300: 2, 301: 1, 600: 1, 700: 2, 701: 1}
    pool = BrodenPool(out)
    assert pool.concept_frequency() == whole
    # The decoded count agrees with label.csv.
    assert pool.subset(range(3)).concept_frequency() == whole
    train = BrodenPool(out, split="train")
    assert train.ids == ["a", "c"]
    assert train.concept_frequency() == {1: 1, 2: 0, 3: 0, 5: 0, 300: 1, 301: 1, 600: 1, 700: 2, 701: 0}
    parts = BrodenPool(out, categories=["part"])
    assert parts.categories == ["part"]
    assert [c.number for c in parts.concepts] == [300, 600]  # car is listed under part too
    assert list(parts.annotation(0).masks) == ["part"]
    scenes = BrodenPool(out, label_category="scene")
    assert scenes.class_names == ["kitchen", "street"] and scenes.labels == [0, 1, 0]
    texture = BrodenPool(out, categories=["texture"])  # a column without concepts is still a column
    assert len(texture.concepts) == 0 and texture.annotation(0).masks == {"texture": []}
    with pytest.raises(LookupError, match=r"scenery.*available.*'texture'"):
        BrodenPool(out, categories=["scenery"])
    with pytest.raises(ValueError, match="split"):
        BrodenPool(out, split="test")


def test_dataloader_with_annotations(written):
    out, _ = written
    pre = SimpleNamespace(input_size=6, mean=(0, 0, 0), std=(1, 1, 1))
    pool = BrodenPool(out, preprocessing=pre).with_annotation()
    loader = DataLoader(pool, batch_size=2, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert [tuple(images.shape) for images, _ in batches] == [(2, 3, 6, 6), (1, 3, 6, 6)]
    metas = [m for _, ms in batches for m in ms]
    assert [m["id"] for m in metas] == ["a", "b", "c"]
    assert np.array_equal(metas[1]["annotation"].masks["material"][0], np.full((4, 5), 5))


def test_atomic_write_on_failure(tmp_path: Path):
    def failing():
        records = _records()
        yield records[0]
        yield records[1]
        raise RuntimeError("renderer crashed")

    out = tmp_path / "broden"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_broden(out, failing(), CONCEPTS)
    assert list(tmp_path.iterdir()) == []  # neither out_dir nor the temporary sibling


def test_existing_dir_overwrite_and_bad_records(tmp_path: Path, written):
    out = tmp_path / "broden"
    write_broden(out, _records()[:1], CONCEPTS)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_broden(out, _records(), CONCEPTS)
    assert BrodenPool(out).ids == ["a"]
    write_broden(out, _records(), CONCEPTS, overwrite=True)
    assert BrodenPool(out).ids == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broden"]

    bad = _records()[:1]
    bad[0].annotation.masks["object"][0][0, 0] = 999
    with pytest.raises(ValueError, match=r"'a'.*\[999\]"):
        write_broden(tmp_path / "x", bad, CONCEPTS)
    with pytest.raises(ValueError, match="duplicate record id"):
        write_broden(tmp_path / "x", _records()[:1] * 2, CONCEPTS)
    with pytest.raises(ValueError, match="file name"):
        write_broden(tmp_path / "x", [BrodenRecord("../up", _records()[0].image)], CONCEPTS)
    with pytest.raises(ValueError, match="no records"):
        write_broden(tmp_path / "x", [], CONCEPTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broden"]


def test_bad_masks_and_missing_index(tmp_path: Path, written):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(written[0], out)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(out / "images" / "a_object.png")
    pool = BrodenPool(out)
    with pytest.raises(ValueError, match=r"a_object\.png.*3x3.*4x5"):
        pool.annotation(0)
    (out / "images" / "b_color.png").unlink()
    with pytest.raises(CorruptFileError, match="b_color.png"):
        pool.annotation(1)
    skipping = BrodenPool(out, skip_bad=True).with_annotation()
    assert skipping.ids == ["a", "c"]  # b's mask is missing: dropped when built
    assert [Path(p).name for p, _ in skipping.skipped] == ["b_color.png"]
    images, metas = collate([skipping[i] for i in range(2)])  # a's mask has the wrong size: read-time skip
    assert [m["id"] for m in metas] == ["c"] and Path(metas.skipped[0][0]).name == "a_object.png"
    (out / "index.csv").unlink()
    with pytest.raises(FileNotFoundError, match="index.csv"):
        BrodenPool(out)


def test_reads_real_broden_quirks(tmp_path: Path):
    """A hand-made directory in the real Broden's style (NetDissect's broden1_224)."""
    root = tmp_path / "broden1_mini"
    (root / "images" / "ade20k").mkdir(parents=True)
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(root / "images" / "ade20k" / "ADE_1.jpg")
    mask = np.zeros((3, 3, 3), np.uint8)
    mask[0, 0] = (4, 0, 0)      # wall = 4
    mask[1, 1] = (44, 1, 0)     # 300 = 44 + 256
    Image.fromarray(mask).save(root / "images" / "ade20k" / "ADE_1_object.png")
    (root / "index.csv").write_text(
        "image,split,ih,iw,sh,sw,color,object,material,part,scene,texture,extra\n"
        "ade20k/ADE_1.jpg,train,6,6,3,3,,ade20k/ADE_1_object.png,,,12;13,,whatever\n"
    )
    (root / "label.csv").write_text(
        "number,name,category,frequency,coverage,syns\n"
        "0,-,-,0,0.0,\n"
        "4,wall,object(10);part(30),40,0.2,wall;walls\n"
        "12,street,scene(5),5,1.0,\n"
        "13,road-s,scene(2),2,1.0,\n"
        '300,"car, auto",object(7),7,0.1,"car;auto"\n'
    )
    pool = BrodenPool(root)
    assert pool.ids == ["ade20k/ADE_1"]
    assert pool.categories == ["object", "part", "scene"]
    assert pool.concepts.find("wall").category == "part"  # largest count wins
    assert pool.concepts[300].name == "car, auto"
    annotation = pool.annotation(0)
    assert annotation.masks["object"][0].tolist() == [[4, 0, 0], [0, 300, 0], [0, 0, 0]]
    assert annotation.masks["part"] == [] and annotation.image_labels["scene"] == [12, 13]
    assert pool.concept_frequency() == {4: 40, 12: 5, 13: 2, 300: 7}
    assert pool[0][0].shape == (3, 6, 6)


def test_mask_numbers_outside_the_vocabulary_name_file_row_and_range(tmp_path: Path, written):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(written[0], out)
    # 32-bit integer masks are read as the numbers themselves: beyond 16 bits and negative too.
    mask = np.zeros((4, 5), np.int32)
    mask[0, :3] = (70000, -1, 300)
    Image.fromarray(mask).save(out / "images" / "b_object.png".replace(".png", ".tif"))
    rows = _rows(out / "index.csv")
    rows[2][rows[0].index("object")] = "b_object.tif"
    with open(out / "index.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    pool = BrodenPool(out)
    pool.annotation(0)
    with pytest.raises(CorruptFileError, match=r"b_object\.tif.*line 3 of index\.csv.*\[-1, 70000\].*"
                                               r"9 concepts numbered 1\.\.701"):
        pool.annotation(1)
