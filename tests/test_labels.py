import numpy as np
import pytest

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import (ADE20K, BUILTIN_LABEL_SETS, COCO_STUFF, DONTCARE_COLOR, bit_palette, check_label_ids,
                               generic_label_set, get_label_set, instance_edges, label_set_for, to_semantics)


def test_builtin_label_sets_fill_their_presets():
    assert len(ADE20K) == 151 and len(COCO_STUFF) == 182
    for name in BUILTIN_LABEL_SETS:
        labels = label_set_for(GeneratorConfig.preset(name))
        assert labels.name == name
        assert len(labels) == GeneratorConfig.preset(name).num_label_channels
    city = get_label_set("cityscapes")
    assert city.name_of(7) == "road" and tuple(city.palette[7]) == (128, 64, 128)
    assert tuple(city.palette[23]) == (70, 130, 180)  # sky
    assert tuple(get_label_set("coco").palette[COCO_STUFF.index("grass")]) == (29, 195, 49)


def test_bit_palette_is_the_reference_one():
    # id i takes the bits of i + 1, spread from the top bit: 1 -> red 128, 2 -> green 128, 3 -> (128,128,0) ...
    assert bit_palette(8).tolist()[:4] == [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert bit_palette(9).tolist()[8] == [192, 0, 0]  # 9 = 0b001_001: red bit in both 3-bit groups (7 and 6)
    palette = bit_palette(4096)
    assert len(np.unique(palette, axis=0)) == 4096
    assert not (palette == 0).all(axis=1).any()  # black stays free for dontcare


@pytest.mark.parametrize("name", BUILTIN_LABEL_SETS)
def test_colorize_decode_round_trip(name, rng):
    labels = get_label_set(name)
    ids = rng.integers(0, len(labels), size=(2, 16, 24))
    if labels.dontcare:
        ids[:, 0, :] = 255
    decoded = labels.decode(labels.colorize(ids))
    # A colour shared by several ids decodes to the lowest of them; dontcare (black) to the lowest id that is
    # black, else to 255. For ADE20K and COCO every id has its own colour, so this is the identity there.
    colors = {i: tuple(c) for i, c in enumerate(labels.palette)}
    if labels.dontcare:
        colors[255] = DONTCARE_COLOR
    lowest = {i: min(j for j in colors if colors[j] == c) for i, c in colors.items()}
    np.testing.assert_array_equal(decoded, np.vectorize(lowest.get)(ids))
    if name != "cityscapes":
        np.testing.assert_array_equal(decoded[ids != 255], ids[ids != 255])


def test_shared_colours_decode_to_the_lowest_id():
    city = get_label_set("cityscapes")
    rgb = city.colorize(np.array([[4, 18, 34]]))  # static (black), polegroup, license plate
    assert city.decode(rgb).tolist() == [[0, 17, 26]]  # unlabeled, pole, car


def test_decode_names_an_unknown_colour_and_where_it_is():
    city = get_label_set("cityscapes")
    rgb = city.colorize(np.full((8, 8), 7))
    rgb[5, 3] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"RGB\(1, 2, 3\) at \(5, 3\) \(1 px\)"):
        city.decode(rgb)
    with pytest.raises(TypeError, match="uint8"):
        city.decode(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        city.decode(rgb[..., :2])


def test_to_semantics_exact_one_hot_with_dontcare():
    cfg = GeneratorConfig(label_nc=3, contain_dontcare_label=True, crop_size=32)
    ids = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    sem = to_semantics(ids, None, cfg)
    assert sem.dtype == np.float32 and sem.shape == (1, 4, 2, 2)
    expected = np.zeros((1, 4, 2, 2), np.float32)
    expected[0, 0, 0, 0] = expected[0, 1, 0, 1] = expected[0, 2, 1, 0] = expected[0, 3, 1, 1] = 1
    np.testing.assert_array_equal(sem, expected)
    # id label_nc itself is the dontcare channel too (ADE20K's raw id 150 lands there in the reference)
    np.testing.assert_array_equal(to_semantics(np.array([[3]]), None, cfg)[0, :, 0, 0], [0, 0, 0, 1])


def test_instance_edges_mark_both_sides_of_a_boundary():
    inst = np.array([[1, 1, 2, 2],
                     [1, 1, 2, 2],
                     [1, 1, 1, 1],
                     [1, 1, 1, 1]])
    expected = np.array([[0, 1, 1, 0],
                         [0, 1, 1, 1],
                         [0, 0, 1, 1],
                         [0, 0, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(instance_edges(inst), expected)
    cfg = GeneratorConfig(label_nc=2, use_instance=True, crop_size=32)
    sem = to_semantics(np.zeros((4, 4), np.int32), inst, cfg)
    assert sem.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(sem[0, 2], expected)  # edges are the last channel
    np.testing.assert_array_equal(sem[0, 0], np.ones((4, 4)))


def test_to_semantics_batches_and_channel_layout_of_presets():
    for name in ("cityscapes", "ade20k", "coco"):
        cfg = GeneratorConfig.preset(name)
        ids = np.zeros((3, 8, 8), np.uint8)
        inst = np.zeros((3, 8, 8), np.int32) if cfg.use_instance else None
        sem = to_semantics(ids, inst, cfg)
        assert sem.shape == (3, cfg.semantic_nc, 8, 8)
        np.testing.assert_array_equal(sem.sum(axis=1), np.ones((3, 8, 8)))  # no edges in a constant map


@pytest.mark.parametrize("ids, error, message", [
    (np.array([[0, 35, 35], [40, 1, 2]]), ValueError, r"35 \(2 px\), 40 \(1 px\).*accepted ids: 0\.\.34$"),
    (np.array([[0, -1]]), ValueError, r"-1 \(1 px\)"),
    (np.array([[0, 255]]), ValueError, r"255 \(1 px\)"),  # cityscapes has no dontcare
    (np.zeros((4, 4), np.float32), TypeError, "integer array.*got dtype float32"),
    (np.zeros((1, 1, 4, 4), np.uint8), ValueError, r"\(H, W\) or \(N, H, W\), got \(1, 1, 4, 4\)"),
    (np.zeros((0, 4), np.uint8), ValueError, "empty"),
])
def test_bad_label_ids_are_rejected_with_the_id_count_and_range(ids, error, message):
    cfg = GeneratorConfig.preset("cityscapes")
    with pytest.raises(error, match=message):
        check_label_ids(ids, cfg)


def test_dontcare_range_and_instance_mistakes():
    ade = GeneratorConfig.preset("ade20k")
    assert check_label_ids(np.array([[150, 255]]), ade).tolist() == [[[150, 150]]]
    with pytest.raises(ValueError, match=r"151 \(1 px\).*accepted ids: 0\.\.150 and 255 \(dontcare\)"):
        check_label_ids(np.array([[151]]), ade)
    with pytest.raises(ValueError, match="does not use instance maps"):
        to_semantics(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.int32), ade)
    city = GeneratorConfig.preset("cityscapes")
    with pytest.raises(ValueError, match="uses instance edges"):
        to_semantics(np.zeros((4, 4), np.uint8), None, city)
    with pytest.raises(ValueError, match=r"instance ids have shape \(4, 5\) but the label ids have shape \(4, 4\)"):
        to_semantics(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.int32), city)


def test_generic_label_set_and_mismatched_label_set():
    labels = label_set_for(GeneratorConfig(label_nc=13, crop_size=32))
    assert labels == labels and len(labels) == 13 and labels.name_of(12) == "class 12"
    assert len(generic_label_set(5, dontcare=True)) == 6
    with pytest.raises(ValueError, match="label set 'cityscapes' has 35 ids"):
        label_set_for(GeneratorConfig(label_nc=13, crop_size=32, label_set="cityscapes"))
