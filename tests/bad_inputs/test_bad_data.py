"""Bad data: broken images, broken Broden directories, empty folders, a full disk, bad world sizes.

Each row builds a tiny pool in ``tmp_path`` (8 images of 32 px, a 4-channel
mini_alexnet), breaks one thing, and checks that the command refuses it in
one line naming the file (and the index.csv row) or the option at fault.
Errors raised while decoding masks in DataLoader worker processes must reach
the user as themselves, not as torch's "Caught ... in DataLoader worker".
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unitscope.data import Annotation, BrodenRecord, ConceptTable, write_broden
from unitscope.models import create_model, save_checkpoint

SIZE = 32
N_IMAGES = 8


def _write_pool(root: Path) -> Path:
    """Images with an object square, a floor and a scene label; concepts 1 box, 2 floor, 3 room, 4 yard."""
    concepts = ConceptTable.from_names({"object": ["box"], "material": ["floor"], "scene": ["room", "yard"]})
    rng = np.random.default_rng(0)

    def records():
        for i in range(N_IMAGES):
            image = rng.integers(0, 255, size=(SIZE, SIZE, 3), dtype=np.uint8)
            box = np.zeros((SIZE, SIZE), np.int32)
            box[4:14, 4 + i:14 + i] = 1
            floor = np.where(box == 0, 2, 0).astype(np.int32)
            yield BrodenRecord(f"im{i}", image, Annotation(masks={"object": [box], "material": [floor]},
                                                             image_labels={"scene": [3 + i % 2]}))

    return write_broden(root, records(), concepts)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bad_data")
    torch.manual_seed(0)
    weights = root / "tiny.pt"
    save_checkpoint(create_model("mini_alexnet", num_classes=2, input_size=SIZE, width=4), weights)
    return _write_pool(root / "broden"), weights


# -- how each row breaks a copy of the pool ---------------------------------------------------------
def _index(pool: Path) -> list[list[str]]:
    return [line.split(",") for line in (pool / "index.csv").read_text().splitlines()]


def _write_index(pool: Path, rows: list[list[str]]) -> None:
    (pool / "index.csv").write_text("".join(",".join(row) + "\n" for row in rows))


def _edit_cell(pool: Path, line: int, column: str, value: str) -> None:
    rows = _index(pool)
    rows[line - 1][rows[0].index(column)] = value
    _write_index(pool, rows)


def corrupt_image(pool):
    (pool / "images" / "im5.png").write_text("this is not a PNG")


def empty_image(pool):
    (pool / "images" / "im6.png").write_bytes(b"")


def truncated_image(pool):
    data = (pool / "images" / "im6.png").read_bytes()
    (pool / "images" / "im6.png").write_bytes(data[: len(data) // 2])


def float_image(pool):
    Image.fromarray(np.full((SIZE, SIZE), 0.5, np.float32)).save(pool / "images" / "im6.tif")
    _edit_cell(pool, 8, "image", "im6.tif")


def image_size_disagrees(pool):
    Image.fromarray(np.zeros((SIZE, SIZE + 8, 3), np.uint8)).save(pool / "images" / "im7.png")


def missing_column(pool):
    rows = _index(pool)
    rows[0].remove("split")  # the header lost a column, the rows did not
    _write_index(pool, rows)


def missing_cell(pool):
    rows = _index(pool)
    del rows[3][1]
    _write_index(pool, rows)


def no_category_column(pool):
    _write_index(pool, [row[:6] for row in _index(pool)])


def bad_size_cell(pool):
    _edit_cell(pool, 4, "sh", "-3")


def mask_out_of_vocabulary(pool):
    mask = np.zeros((SIZE, SIZE, 3), np.uint8)
    mask[0, 0] = (231, 3, 0)  # concept 999 = 231 + 256 * 3
    Image.fromarray(mask).save(pool / "images" / "im7_object.png")


def scene_out_of_range(pool):
    _edit_cell(pool, 3, "scene", "99")


def scene_label_of_an_object(pool):
    _edit_cell(pool, 6, "scene", "1")


def non_integer_label(pool):
    _edit_cell(pool, 5, "scene", "room")


def missing_mask(pool):
    (pool / "images" / "im4_material.png").unlink()


def mask_size_disagrees(pool):
    Image.fromarray(np.zeros((SIZE // 2, SIZE // 2, 3), np.uint8)).save(pool / "images" / "im7_object.png")


def empty_folder(pool):
    shutil.rmtree(pool)
    pool.mkdir()


DISSECT_ROWS = [
    # (breakage, fragments the one line must name)
    pytest.param(corrupt_image, ["im5.png", "not a readable image"], id="dissect-corrupt-image"),
    pytest.param(empty_image, ["im6.png", "empty (0 bytes)", "line 8"], id="dissect-zero-byte-image"),
    pytest.param(truncated_image, ["im6.png", "not a readable image"], id="dissect-truncated-image"),
    pytest.param(float_image, ["im6.tif", "mode 'F'", "8- or 16-bit"], id="dissect-float-image"),
    pytest.param(image_size_disagrees, ["im7.png", "32x40", "line 9", "ih x iw = 32x32"],
                 id="dissect-image-size-vs-ih-iw"),
    pytest.param(missing_column, ["index.csv", "line 2", "12 cells", "11 columns"], id="broden-missing-column"),
    pytest.param(missing_cell, ["index.csv", "line 4", "11 cells", "12 columns"], id="broden-missing-cell"),
    pytest.param(no_category_column, ["index.csv", "no category column"], id="broden-no-category-column"),
    pytest.param(bad_size_cell, ["index.csv", "line 4", "sh must be a positive integer", "'-3'"],
                 id="broden-negative-mask-size"),
    pytest.param(mask_out_of_vocabulary, ["im7_object.png", "line 9", "[999]", "numbered 1..4"],
                 id="broden-mask-value-out-of-vocabulary"),
    pytest.param(scene_out_of_range, ["index.csv", "line 3", "scene label 99", "numbered 1..4"],
                 id="broden-scene-label-out-of-range"),
    pytest.param(scene_label_of_an_object, ["index.csv", "line 6", "scene label 1 (box)", "under object, not scene"],
                 id="broden-scene-label-of-another-category"),
    pytest.param(non_integer_label, ["index.csv", "line 5", "'room'", "neither a concept number"],
                 id="broden-non-integer-label"),
    pytest.param(missing_mask, ["im4_material.png", "missing", "line 6"], id="broden-missing-mask-file"),
    pytest.param(mask_size_disagrees, ["im7_object.png", "16x16", "line 9", "sh x sw = 32x32"],
                 id="broden-mask-size-vs-sh-sw"),
    pytest.param(empty_folder, ["holds no concept masks"], id="dissect-empty-folder"),
]


@pytest.mark.parametrize("breakage, mentions", DISSECT_ROWS)
def test_dissect_refuses_bad_data(refuse, assets, tmp_path, breakage, mentions):
    broden, weights = assets
    pool = tmp_path / "pool"
    shutil.copytree(broden, pool)
    breakage(pool)
    # Batches of 2: the masks of batches 2.. are decoded by a worker process.
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--data", pool, "--out", tmp_path / "out",
            "--layers", "conv5", "--batch-size", "2", "--label-cache", "none"],
           mentions=mentions, unchanged=[pool])


def _write_index_mask_pool(root: Path) -> Path:
    """CamVid's layout: images/NAME.png and labels/NAME.png (mode L, pixel = class 0..11)."""
    rng = np.random.default_rng(1)
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)
    for i in range(N_IMAGES):
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / "images" / f"f{i}.png")
        Image.fromarray(rng.integers(0, 12, (SIZE, SIZE), dtype=np.uint8)).save(root / "labels" / f"f{i}.png")
    return root


def index_mask_value_out_of_range(pool):
    labels = np.zeros((SIZE, SIZE), np.uint8)
    labels[3, 3] = 42
    Image.fromarray(labels).save(pool / "labels" / "f7.png")


def index_mask_missing(pool):
    (pool / "labels" / "f2.png").unlink()


def index_mask_size_disagrees(pool):
    Image.fromarray(np.zeros((SIZE, SIZE // 2), np.uint8)).save(pool / "labels" / "f6.png")


@pytest.mark.parametrize(
    "breakage, mentions",
    [
        pytest.param(index_mask_value_out_of_range, ["labels/f7.png", "[42]", "values 0..10", "ignored 11"],
                     id="indexmask-value-out-of-range"),
        pytest.param(index_mask_missing, ["labels/f2.png", "mask file is missing"], id="indexmask-missing-mask"),
        pytest.param(index_mask_size_disagrees, ["labels/f6.png", "32x16", "images/f6.png", "32x32"],
                     id="indexmask-mask-size-vs-image"),
    ],
)
def test_dissect_refuses_bad_index_mask_pools(refuse, assets, tmp_path, breakage, mentions):
    _, weights = assets
    pool = _write_index_mask_pool(tmp_path / "camvid")
    breakage(pool)
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--data", pool, "--out", tmp_path / "out",
            "--layers", "conv5", "--batch-size", "2", "--label-cache", "none", "--layout", "camvid"],
           mentions=mentions, unchanged=[pool])


def test_dissect_with_image_workers_names_the_corrupt_image(refuse, assets, tmp_path):
    broden, weights = assets
    pool = tmp_path / "pool"
    shutil.copytree(broden, pool)
    truncated_image(pool)
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--data", pool, "--out", tmp_path / "out",
            "--layers", "conv5", "--batch-size", "2", "--workers", "2", "--label-cache", "none"],
           mentions=["im6.png", "image file is truncated"], unchanged=[pool])


def test_dissect_label_cache_on_a_full_disk(refuse, assets, tmp_path, monkeypatch):
    from unitscope import _files

    def full_disk(path, data, *args, **kwargs):
        if "cache" in Path(path).parts:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *args, **kwargs)

    real = _files.atomic_write_bytes
    monkeypatch.setattr(_files, "atomic_write_bytes", full_disk)  # inherited by the forked workers
    broden, weights = assets
    cache = tmp_path / "cache"
    refuse(["dissect", "--model", "mini_alexnet", "--weights", weights, "--data", broden, "--out", tmp_path / "out",
            "--layers", "conv5", "--batch-size", "2", "--label-cache", cache],
           mentions=[f"decoded-label cache in {cache}", "No space left on device", "--label-cache none"],
           unchanged=[broden])


@pytest.mark.parametrize(
    "breakage, mentions",
    [
        pytest.param(empty_image, ["im6.png", "empty (0 bytes)"], id="minimal-zero-byte-image"),
        pytest.param(empty_folder, ["no images", "pool"], id="minimal-empty-folder"),
    ],
)
def test_minimal_refuses_bad_plain_pools(refuse, assets, tmp_path, breakage, mentions):
    broden, weights = assets
    pool = tmp_path / "pool"
    shutil.copytree(broden / "images", pool / "images")
    breakage(pool)
    data = pool / "images" if (pool / "images").is_dir() else pool  # a plain pool: the images folder alone
    refuse(["minimal", "--model", "mini_alexnet", "--weights", weights, "--data", data, "--out", tmp_path / "out",
            "--label-pattern", r"^im(\d)", "--segments", "4", "--max-images", "2"],
           mentions=mentions, unchanged=[pool])


def test_preference_refuses_a_zero_byte_image(refuse, assets, tmp_path):
    broden, weights = assets
    pool = tmp_path / "objects"
    shutil.copytree(broden / "images", pool / "images")
    empty_image(pool)
    refuse(["preference", "--net", f"tiny=mini_alexnet:{weights}", "--pool", f"objects={pool / 'images'}",
            "--out", tmp_path / "out", "--layers", "conv5", "--batch-size", "4"],
           mentions=["im6.png", "empty (0 bytes)"], unchanged=[pool])


@pytest.mark.parametrize(
    "options, mentions",
    [
        pytest.param(["--size", "20"], ["size", "multiple of 16", "32 to 1024"], id="world-size-not-multiple-of-16"),
        pytest.param(["--size", "16"], ["size", "32 to 1024", "got 16"], id="world-size-too-small"),
        pytest.param(["--size", "0"], ["size", "32 to 1024", "got 0"], id="world-size-zero"),
        pytest.param(["--n-scenes", "0"], ["--n-scenes", "greater than or equal to 2"], id="world-no-scenes"),
        pytest.param(["--n-objects", "-2"], ["--n-objects", "greater than or equal to 1"], id="world-negative-objects"),
    ],
)
def test_world_refuses_bad_sizes_and_counts(refuse, tmp_path, options, mentions):
    out = tmp_path / "world"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refuse(["world", "--out", out, *options], mentions=mentions, unchanged=[tmp_path])
