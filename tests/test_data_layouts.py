"""Pool layouts on hand-made samples: each decodes to exactly the class values written; guesses are refused."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

import mask_samples as S
from unitscope.data import CorruptFileError, IndexMaskPool
from unitscope.data.classlist import cityscapes_classes, read_class_file, voc_classes
from unitscope.data.layouts import detect_layout
from unitscope.data.open import open_annotated_pool, open_pool


def names(pool, values) -> list[list[str]]:
    """Concept names of an annotation's pixels ("" = none), from the class values."""
    by_number = {c.number: c.name for c in pool.concepts}
    return [[by_number.get(v + 1, "") for v in row] for row in np.asarray(values).tolist()]


def concept_numbers(annotation) -> np.ndarray:
    return sum(maps[0] for maps in annotation.masks.values())


def test_camvid_detected_by_its_file_names_and_read_as_before(tmp_path):
    root = S.camvid(tmp_path / "camvid")
    assert detect_layout(root) == "camvid"
    pool = open_annotated_pool(root)
    assert pool.ids == ["0016E5_07959", "Seq05VD_f00000"]
    assert pool.class_values(0).tolist() == S.CAMVID_MASK
    # value v is concept v + 1; 11 (unlabelled) is no concept; sky is a material
    assert concept_numbers(pool.annotation(0)).tolist() == [[1, 2, 3, 4], [9, 9, 0, 6]]
    assert pool.annotation(0).masks["material"][0].tolist() == [[1, 0, 0, 4], [0, 0, 0, 0]]
    assert names(pool, S.CAMVID_MASK)[1] == ["car", "car", "", "tree"]


def test_shared_camvid_pool_is_still_camvid(realdata):
    root = realdata / "camvid"
    if not root.is_dir():
        pytest.skip(f"CamVid assets not found at {root}")
    assert detect_layout(root) == "camvid"
    pool = open_pool(root, source="scenes")
    assert len(pool) == 101 and len(pool.concepts) == 11
    assert int((pool.class_values(0) == 0).sum()) == 15008  # sky pixels, as test_camvid_real counts them


def test_ade20k_values_are_ade_classes(tmp_path):
    root = S.ade20k(tmp_path / "ADEChallengeData2016")
    assert detect_layout(root) == "ade20k"
    pool = open_pool(root)
    assert pool.ids == ["validation/ADE_val_00000001", "validation/ADE_val_00000002"]
    assert pool.class_values(1).tolist() == S.ADE_MASK
    assert len(pool.concepts) == 150 and pool.class_list.ignored == (0,)
    assert names(pool, S.ADE_MASK) == [["", "wall", "building", "sky"], ["bed", "windowpane", "class11", "flag"]]
    assert concept_numbers(pool.annotation(0)).tolist() == [[0, 2, 3, 4], [9, 10, 12, 151]]


def test_ade_mask_with_values_0_to_11_is_not_camvid(tmp_path):
    # The same bytes CamVid uses: 8 is "bed" in ADE20K, not "car".
    values = [[0, 1, 2, 3], [8, 8, 11, 5]]
    pool = open_pool(S.ade20k(tmp_path / "ade", values))
    assert names(pool, pool.class_values(0)) == [["", "wall", "building", "sky"], ["bed", "bed", "class11", "class5"]]
    assert "car" not in pool.concepts.names()
    # ...and ADE masks copied into images/ + labels/ with no class list are refused, not read as CamVid.
    root = S.ade20k(tmp_path / "copied", values, info=False, masks="labels")
    with pytest.raises(ValueError, match=r"cannot tell the layout.*no class list.*--layout.*--classes"):
        open_pool(root)


def test_ade20k_official_txt_names_and_no_class_list(tmp_path):
    root = S.ade20k(tmp_path / "ade", info=False)
    with pytest.raises(ValueError, match=r"ade20k layout needs objectInfo150\.csv"):
        open_pool(root)
    (root / "objectInfo150.txt").write_text(
        "Idx\tRatio\tTrain\tVal\tName\n1\t0.1576\t11664\t1172\twall\n2\t0.1072\t6046\t612\tbuilding, edifice\n")
    classes = read_class_file(root / "objectInfo150.txt")
    assert [(c.value, c.name) for c in classes.entries] == [(0, "unlabelled"), (1, "wall"), (2, "building")]
    with pytest.raises(CorruptFileError, match=r"ADE_val_00000001\.png.*\[3, 8, 9, 11, 150\].*objectInfo150\.txt"):
        open_pool(root).check_masks()


def test_voc_palette_masks(tmp_path):
    root = S.voc(tmp_path / "VOC2012")
    assert detect_layout(root) == "voc"
    pool = open_pool(root)
    assert pool.ids == ["2007_000032", "2007_000039"]  # 2007_000033 has no segmentation: not in the pool
    assert pool.class_values(0).tolist() == S.VOC_MASK
    assert len(pool.concepts) == 21 and pool.class_list.ignored == (255,)
    assert names(pool, [[0, 1, 15, 20]]) == [["background", "aeroplane", "person", "tvmonitor"]]
    assert concept_numbers(pool.annotation(1)).tolist() == [[1, 2, 16, 0], [21, 21, 1, 0]]


def test_voc_colormap_is_voc_devkits():
    colors = {c.value: c.color for c in voc_classes().entries}
    # VOCdevkit's labelcolormap: aeroplane, person, tvmonitor and the boundary
    assert colors[1] == (128, 0, 0) and colors[15] == (192, 128, 128)
    assert colors[20] == (0, 64, 128) and colors[255] == (224, 224, 192)


def test_voc_palette_of_another_dataset_is_refused(tmp_path):
    root = S.voc(tmp_path / "VOC2012")
    S.palette_mask(root / "SegmentationClass" / "2007_000039.png", S.VOC_MASK, {1: (1, 2, 3)})
    with pytest.raises(CorruptFileError, match=r"2007_000039\.png.*palette colours.*#010203.*VOC class list"):
        open_pool(root).check_masks()


def test_cityscapes_label_ids(tmp_path):
    root = S.cityscapes(tmp_path / "cityscapes")
    assert detect_layout(root) == "cityscapes"
    pool = open_pool(root)
    assert pool.ids == ["val/frankfurt/frankfurt_000000_000294_leftImg8bit"]  # the _color.png is not a mask
    assert pool.class_values(0).tolist() == S.CITYSCAPES_MASK
    # official table: 0 unlabeled and 9 parking are ignored in evaluation
    assert names(pool, S.CITYSCAPES_MASK) == [["", "road", "sidewalk", "car"], ["sky", "person", "", "bicycle"]]
    assert concept_numbers(pool.annotation(0)).tolist() == [[0, 8, 9, 27], [24, 25, 0, 34]]
    assert set(cityscapes_classes().ignored) == {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30}


def test_index_layout_rgb_masks_by_colour(tmp_path):
    root = S.index_rgb(tmp_path / "cats")
    assert detect_layout(root) == "index"
    pool = open_pool(root)
    assert pool.class_values(0).tolist() == [[1, 1, 2, 0], [7, 7, 1, 2]]
    assert [(c.number, c.name, c.category) for c in pool.concepts] == [
        (2, "cat", "object"), (3, "whisker", "part"), (8, "fur", "material")]
    a = pool.annotation(0)
    assert a.masks["object"][0].tolist() == [[2, 2, 0, 0], [0, 0, 2, 0]]
    assert a.masks["part"][0].tolist() == [[0, 0, 3, 0], [0, 0, 0, 3]]
    assert a.masks["material"][0].tolist() == [[0, 0, 0, 0], [8, 8, 0, 0]]


def test_index_layout_palette_and_16_bit_masks_with_classes_option(tmp_path):
    root = tmp_path / "pool"
    S.image(root / "images" / "p.png", (1, 3))
    S.image(root / "images" / "q.png", (1, 3))
    # a palette mask decoded through its colours, whatever its indices
    S.palette_mask(root / "labels" / "p.png", [[4, 5, 4]], {4: S.RED, 5: S.FUR})
    Image.fromarray(np.array([[1, 1000, 2]], dtype=np.uint16)).save(root / "labels" / "q.png")
    classes = tmp_path / "mine.csv"
    classes.write_text(S.INDEX_CLASSES + "1000,tail,part,#123456\n")
    pool = open_pool(root, classes=classes)
    assert pool.class_values(0).tolist() == [[1, 7, 1]]
    assert pool.class_values(1).tolist() == [[1, 1000, 2]]
    # without colours a palette index is the class value
    plain = tmp_path / "plain.csv"
    plain.write_text("value,name\n4,cat\n5,dog\n1,x\n2,y\n1000,z\n")
    assert open_pool(root, classes=plain).class_values(0).tolist() == [[4, 5, 4]]


def test_out_of_list_values_refused_with_file_values_and_list(tmp_path):
    root = tmp_path / "cats"
    for name, mask in (("a", [[0, 1, 2, 2]]), ("b", [[1, 2, 3, 9]]), ("c", [[7, 7, 7, 7]])):  # 3, 7, 9: in no list
        S.image(root / "images" / f"{name}.jpg", (1, 4))
        S.grey_mask(root / "masks" / f"{name}.png", mask)
    (root / "classes.csv").write_text("value,name\n0,void\n1,cat\n2,whisker\n")
    pool = open_pool(root)
    assert pool.class_values(0).tolist() == [[0, 1, 2, 2]]
    with pytest.raises(CorruptFileError, match=r"b\.png.*pixel values \[3, 9\] are not in .*classes\.csv "
                                               r"\(3 classes, values 0\.\.2; ignored none\)"):
        pool.check_masks(threads=3)  # the first bad mask in pool order, whichever thread finished first


@pytest.mark.parametrize("make, why", [
    (lambda r: (S.voc(r), (r / "index.csv").write_text("image\n")), r"several layouts \(broden, voc\)"),
    (lambda r: (S.camvid(r), (r / "masks").mkdir()), r"several mask folders \(labels/, masks/\)"),
    (lambda r: (S.ade20k(r), (r / "classes.csv").write_text("value,name\n1,a\n")),
     r"two class lists \(classes\.csv and objectInfo150\.csv\)"),
    (lambda r: (S.image(r / "images" / "x.jpg", (2, 2)), S.grey_mask(r / "labels" / "x.png", [[0, 1], [1, 0]])),
     r"images/ \+ labels/ with no class list"),
    (lambda r: (S.image(r / "a" / "x.jpg", (2, 2)), (r / "gtFine").mkdir()), r"has gtFine but no layout"),
], ids=["broden-and-voc", "two-mask-folders", "two-class-lists", "masks-without-class-list", "half-a-layout"])
def test_ambiguous_or_unknown_layouts_refused(tmp_path, make, why):
    root = tmp_path / "pool"
    root.mkdir()
    make(root)
    with pytest.raises(ValueError, match=r"cannot tell the layout .*" + why + r".*layouts: broden.*--layout auto\|"):
        detect_layout(root)


def test_explicit_layout_and_classes(tmp_path):
    root = S.camvid(tmp_path / "camvid")
    mine = tmp_path / "mine.csv"
    mine.write_text("value," + "name\n" + "".join(f"{v},c{v}\n" for v in range(12)))
    pool = open_pool(root, kind="index", classes=mine)  # the user's list replaces CamVid's
    assert names(pool, [[8]]) == [["c8"]] and detect_layout(root, classes=mine) == "index"
    plain = S.image(tmp_path / "plain" / "x.jpg", (2, 2)).parent
    assert detect_layout(plain) == "plain"
    with pytest.raises(FileNotFoundError, match=r"is not a voc folder: JPEGImages/ and SegmentationClass/ missing"):
        open_pool(root, kind="voc")
    with pytest.raises(ValueError, match=r"--layout must be one of auto, broden"):
        open_pool(root, kind="coco")


def test_old_index_mask_api_unchanged(tmp_path):
    root = S.camvid(tmp_path / "camvid")
    pool = IndexMaskPool(root, classes=[f"k{v}" for v in range(12)], ignore=(11,))
    assert pool.class_values(0).tolist() == S.CAMVID_MASK and len(pool.concepts) == 11
    with pytest.raises(ValueError, match="a ClassList carries its own"):
        IndexMaskPool(root, classes=voc_classes(), ignore=(11,))


def test_dissection_resumed_with_another_class_list_is_refused(tmp_path):
    from unitscope.experiments.dissect import dissect
    from unitscope.models import create_model, model_info

    root = tmp_path / "pool"
    for i in range(4):
        S.image(root / "images" / f"{i}.jpg", (8, 8))
        S.grey_mask(root / "masks" / f"{i}.png", np.tile([0, 1], (8, 4)))
    net = create_model("mini_alexnet", num_classes=2, input_size=32, width=4)
    pre = model_info(net).preprocessing
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("value,name\n0,floor\n1,box\n")
    second.write_text("value,name\n0,box\n1,floor\n")  # the same ids and concept names, swapped

    def stop(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        dissect(net, ["conv5"], open_pool(root, classes=first, preprocessing=pre), batch_size=1,
                checkpoint_every=1, work_dir=work, progress=stop)
    with pytest.raises(ValueError, match="partial run with other arguments"):
        dissect(net, ["conv5"], open_pool(root, classes=second, preprocessing=pre), batch_size=1, work_dir=work)
