"""The one nearest-neighbour rule for label maps (unitscope.data.resample): pixel centres, ties down.

Reference: Pillow's ``Image.NEAREST`` resize, which samples each output
pixel's centre (and takes the upper pixel where a centre falls on an edge,
where this rule takes the lower); the old localisation subsampler floored
``i * m / n``, and this file pins down where the rules part.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unitscope.data.resample import nearest_indices, nearest_picks, resize_nearest, subsampled_shape


def floor_rule(size_in: int, size_out: int) -> np.ndarray:
    """``floor(i * m / n)``: F.interpolate(mode="nearest"), the rule localisation and dissection used to floor by."""
    return np.arange(size_out) * size_in // size_out


@pytest.mark.parametrize("shape_in,shape_out", [((5, 7), (2, 3)), ((5, 7), (9, 11)), ((129, 96), (43, 32)),
                                                ((97, 150), (37, 50)), ((3, 3), (1, 1)), ((1, 9), (6, 3))])
def test_resize_nearest_is_what_pil_nearest_picks_away_from_edges(shape_in, shape_out):
    # (sizes where no output centre falls exactly on an input pixel edge; on edges see the next test)
    values = np.arange(np.prod(shape_in), dtype=np.int32).reshape(shape_in)
    pil = np.asarray(Image.fromarray(values, mode="I").resize(shape_out[::-1], Image.NEAREST))
    assert resize_nearest(values, shape_out).tolist() == pil.tolist()


def test_on_an_edge_the_lower_pixel_where_pil_takes_the_upper():
    values = np.arange(8, dtype=np.int32).reshape(1, 8)
    pil = np.asarray(Image.fromarray(values, mode="I").resize((4, 1), Image.NEAREST))
    assert pil.tolist() == [[1, 3, 5, 7]]
    assert resize_nearest(values, (1, 4)).tolist() == [[0, 2, 4, 6]] == [floor_rule(8, 4).tolist()]
    # shrinking by 4: every centre on an edge between pixels 4i+1 and 4i+2; flooring kept 4i
    assert nearest_indices(16, 4).tolist() == [1, 5, 9, 13]
    assert floor_rule(16, 4).tolist() == [0, 4, 8, 12]


def test_resize_nearest_copies_and_keeps_the_dtype():
    mask = np.array([[True, False], [False, True]])
    same = resize_nearest(mask, (2, 2))
    same[0, 0] = False
    assert mask[0, 0] and resize_nearest(mask, (4, 4)).dtype == bool


def test_the_two_rules_agree_on_whole_enlargements_and_part_elsewhere():
    for m in range(1, 20):
        for k in range(1, 6):
            assert nearest_indices(m, m * k).tolist() == floor_rule(m, m * k).tolist()
    # halving (the demo's 128-pixel masks dissected at 64): the even rows, as flooring kept them
    assert nearest_indices(128, 64).tolist() == floor_rule(128, 64).tolist() == list(range(0, 128, 2))
    # the same size: both the identity
    assert nearest_indices(37, 37).tolist() == floor_rule(37, 37).tolist() == list(range(37))
    differ = {(m, n) for m in range(1, 17) for n in range(1, 17)
              if nearest_indices(m, n).tolist() != floor_rule(m, n).tolist()}
    assert (3, 1) in differ and (7, 5) in differ and (16, 4) in differ and (4, 2) not in differ
    assert not any(n % m == 0 for m, n in differ)  # never when n is a whole multiple of m


def test_nearest_picks_is_a_view_for_whole_reductions_and_the_same_numbers_otherwise():
    values = np.arange(12 * 10).reshape(12, 10)
    for shape in [(6, 5), (4, 5), (5, 3), (12, 10), (1, 1), (7, 10)]:
        picks = nearest_picks(values.shape, shape)
        assert values[picks].tolist() == resize_nearest(values, shape).tolist()
    assert all(isinstance(p, slice) for p in nearest_picks((12, 10), (6, 5)))
    stack = np.stack([values, -values])
    assert stack[(Ellipsis, *nearest_picks((12, 10), (6, 5)))].shape == (2, 6, 5)


def test_subsampled_shape_fits_the_longest_side():
    assert subsampled_shape((128, 128), 64) == (64, 64)
    assert subsampled_shape((100, 150), 50) == (33, 50)
    assert subsampled_shape((40, 30), 64) == (40, 30) and subsampled_shape((40, 30), None) == (40, 30)
    assert subsampled_shape((1, 500), 10) == (1, 10)


def test_a_size_below_one_is_refused():
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        nearest_indices(0, 3)
