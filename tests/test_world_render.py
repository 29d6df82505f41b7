"""Drawing: determinism, exact masks, backgrounds independent of the scene, colour names."""

import numpy as np
import pytest

from unitscope.data.world import (
    compose_object_image,
    compose_scene,
    default_world,
    image_rng,
    render_object_image,
    render_scene,
)
from unitscope.data.world.canvas import Canvas
from unitscope.data.world.render import color_names_map

WORLD = default_world()


def _numbers():
    out = {}
    for c in WORLD.concepts():
        out.setdefault(c.category, {})[c.name] = c.number
    return out


def test_rect_covers_exactly_the_pixel_centres_inside():
    cv = Canvas(16, numbers=_numbers())
    shape = cv.rect(2.0, 3.0, 6.0, 5.0)
    cv.current_instance = 1
    cv.fill(shape, (255, 0, 0), part="wheel", material="metal")
    expected = np.zeros((16, 16), bool)
    expected[3:5, 2:6] = True
    np.testing.assert_array_equal(cv.instance == 1, expected)
    np.testing.assert_array_equal(cv.part == _numbers()["part"]["wheel"], expected)
    np.testing.assert_array_equal(cv.image[..., 0] == 255, expected)


def test_circle_is_symmetric_and_has_the_expected_area():
    cv = Canvas(64, numbers=_numbers())
    m = np.zeros((64, 64), bool)
    s = cv.ellipse(32.0, 32.0, 10.0, 10.0)
    m[s.y0:s.y1, s.x0:s.x1] = s.mask
    # Pixel centres (i + 0.5, j + 0.5) within radius 10 of (32, 32), counted by hand:
    # sum(1 for i in range(-20, 20) for j in range(-20, 20) if (i + .5)**2 + (j + .5)**2 <= 100)
    assert m.sum() == 316
    np.testing.assert_array_equal(m, m[::-1, :])
    np.testing.assert_array_equal(m, m.T)


def test_same_seed_same_bytes():
    a = compose_scene(WORLD, image_rng(5, "scene/test", 3), 128, scene=2)
    b = compose_scene(WORLD, image_rng(5, "scene/test", 3), 128, scene=2)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.background.tobytes() == b.background.tobytes()
    for cat in a.annotation.masks:
        assert a.annotation.masks[cat][0].tobytes() == b.annotation.masks[cat][0].tobytes()
    assert a.annotation.image_labels == b.annotation.image_labels


def test_different_seed_or_index_different_image():
    a = compose_scene(WORLD, image_rng(5, "scene/test", 3), 128, scene=2)
    b = compose_scene(WORLD, image_rng(6, "scene/test", 3), 128, scene=2)
    c = compose_scene(WORLD, image_rng(5, "scene/test", 4), 128, scene=2)
    assert a.image.tobytes() != b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("index", range(12))
def test_masks_are_exact(index):
    r = compose_scene(WORLD, image_rng(0, "masks", index), 128, scene=index % 10)
    objects = r.annotation.masks["object"][0]
    # Where the picture differs from its objects-removed twin, an object was drawn.
    changed = (r.image != r.background).any(-1)
    assert not (changed & (objects == 0)).any()
    # Object pixels are (almost always) visibly different from the background
    # they cover; equal only where both clip to the same colour.
    drawn = objects > 0
    assert changed[drawn].mean() > 0.97
    np.testing.assert_array_equal(drawn, r.instances > 0)
    # Each placed instance's pixels carry its class.
    table = WORLD.concepts()
    for p in r.objects:
        inst = r.instance_mask(p.instance)
        assert inst.any()
        assert set(np.unique(objects[inst])) == {table.find(p.name, "object").number}
    # Parts only on objects, materials everywhere on the background.
    assert not ((r.annotation.masks["part"][0] > 0) & ~drawn).any()
    assert (r.annotation.masks["material"][0][~drawn] > 0).all()


def test_background_does_not_depend_on_the_scene():
    # The background is drawn before the scene's objects from the same random
    # stream, so the scene class cannot influence it at all.
    for i in range(5):
        bgs = [compose_scene(WORLD, image_rng(1, "bg", i), 128, scene=s).background for s in range(10)]
        for b in bgs[1:]:
            assert b.tobytes() == bgs[0].tobytes()


def test_scene_label_is_image_level():
    image, ann, scene = render_scene(WORLD, image_rng(0, "lbl", 0), 128, scene="bookstore")
    assert scene == WORLD.scene_index("bookstore")
    assert ann.image_labels["scene"] == [WORLD.concepts().find("bookstore", "scene").number]
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8


def test_object_image_is_large_and_centred():
    for k in range(len(WORLD.objects)):
        r = compose_object_image(WORLD, image_rng(0, "obj", k), 128, obj=k)
        assert r.label == k
        main = r.objects[-1]
        assert main.name == WORLD.object_names[k]
        x, y, w, h = main.box
        assert abs(x + w / 2 - 64) <= 9.5 and abs(y + h / 2 - 64) <= 9.5
        ys, xs = np.nonzero(r.instance_mask(main.instance))
        assert ys.min() >= y - 3 and ys.max() <= y + h + 3 and xs.min() >= x - 3 and xs.max() <= x + w + 3
        # The largest object in the picture (by the longer side of its box).
        extent = max(main.box[2:])
        assert extent >= 0.6 * 128
        assert all(max(p.box[2:]) < extent for p in r.objects[:-1])
        assert "scene" not in r.annotation.image_labels
    image, ann, label = render_object_image(WORLD, image_rng(0, "obj", 0), 96, obj="car")
    assert image.shape == (96, 96, 3) and label == WORLD.object_index("car")


def test_colour_names_are_nearest_prototypes():
    r = compose_scene(WORLD, image_rng(0, "colours", 0), 64)
    got = color_names_map(r.image, WORLD)
    names = list(WORLD.colors)
    protos = np.array([WORLD.colors[n] for n in names], float)
    d = ((r.image.reshape(-1, 1, 3).astype(float) - protos[None]) ** 2).sum(-1)
    table = WORLD.concepts()
    expected = np.array([table.find(names[i], "color").number for i in d.argmin(1)]).reshape(64, 64)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(r.annotation.masks["color"][0], expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 32"):
        compose_scene(WORLD, image_rng(0, "x", 0), 16)
    with pytest.raises(ValueError, match="out of range"):
        compose_scene(WORLD, image_rng(0, "x", 0), 64, scene=10)
    with pytest.raises(LookupError, match="no object"):
        compose_object_image(WORLD, image_rng(0, "x", 0), 64, obj="dragon")
