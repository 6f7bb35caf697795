"""Property-based tests (Hypothesis): whatever a caller passes to `Synthesizer.run`, and whatever bytes reach the
paint server's request parsing, the answer is an image of the promised shape or a clear ValueError / TypeError
(a RequestError with a 4xx status for the server), never another exception; and inputs that mean the same
thing (any integer dtype, any strides, a palette mask) give the same image."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gaugan_sdk import Synthesizer
from gaugan_sdk.labels import get_label_set

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def models(tiny_models):
    """The session's tiny models (conftest.tiny_models), opened once with a pixel limit the search can reach."""
    opened = {name: Synthesizer(model["onnx"], max_pixels=1 << 18) for name, model in tiny_models.items()}
    yield opened
    for syn in opened.values():
        syn.close()


# what Python or numpy say when a value reaches code that never checked it (the messages our checks replace)
RAW = re.compile(r"has no len|not iterable|object of type|unsupported operand|invalid literal|cannot be interpreted|"
                 r"could not broadcast|index \d+ is out of bounds|unhashable")


def assert_ours(error: Exception) -> None:
    assert not RAW.search(str(error)), f"an unchecked value reached {type(error).__name__}: {error}"


ANY_DTYPE = st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64,
                             np.float32, np.float64, np.bool_])
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=40)
SEEDS = st.one_of(st.none(), st.integers(-5, 2**40), st.floats(allow_nan=True), st.text(max_size=3),
                  st.lists(st.one_of(st.integers(-3, 50), st.floats()), max_size=4), st.booleans())


@SETTINGS
@given(dtype=ANY_DTYPE, shape=ANY_SHAPE, fill=st.integers(-300, 300), seed=SEEDS, instance=st.booleans())
def test_any_label_input_is_an_image_or_a_clear_error(models, dtype, shape, fill, seed, instance):
    syn = models["city"]
    label = np.full(shape, fill).astype(dtype) if np.dtype(dtype) != np.bool_ else np.zeros(shape, bool)
    try:
        image = syn.run(label, label if instance else None, seed=seed)
    except (ValueError, TypeError) as e:
        assert_ours(e)
        return
    colour = label.ndim in (3, 4) and label.shape[-1] == 3 and label.dtype == np.uint8  # a palette mask
    assert image.dtype == np.uint8 and image.shape == (*(label.shape[:-1] if colour else label.shape), 3)


CITY = get_label_set("cityscapes")
# ids whose colour no other id shares (Cityscapes' ids 0..6 are all black), so a palette mask means the same ids
DISTINCT = [i for i in range(len(CITY)) if (CITY.palette == CITY.palette[i]).all(1).sum() == 1]


@SETTINGS
@given(labels=hnp.arrays(np.int64, st.tuples(st.integers(1, 2), st.integers(8, 90), st.integers(8, 90)),
                         elements=st.sampled_from(DISTINCT)),
       dtype=st.sampled_from([np.uint8, np.int16, np.int32, np.uint32, np.int64]),
       step=st.sampled_from([1, 2]), order=st.sampled_from(["C", "F"]))
def test_the_same_ids_in_any_dtype_and_layout_give_the_same_image(models, labels, dtype, step, order):
    syn = models["city"]
    expected = syn.run(labels[:, ::step, ::step].copy())
    wide = np.zeros((labels.shape[0], labels.shape[1], labels.shape[2] * 2), dtype)
    wide[:, :, ::2] = labels  # a strided view of the same ids
    view = np.asarray(wide[:, ::step, ::2 * step], order=order)
    np.testing.assert_array_equal(syn.run(view), expected)
    assert np.array_equal(syn.run(syn.labels.colorize(labels[:, ::step, ::step])), expected)  # palette mask


@SETTINGS
@given(count=st.integers(0, 3), side=st.integers(0, 70), channels=st.sampled_from([1, 3, 4]),
       dtype=st.sampled_from([np.uint8, np.float32, np.int32]), seed=SEEDS, maps=st.integers(1, 3))
def test_any_style_input_is_images_or_a_clear_error(models, count, side, channels, dtype, seed, maps):
    syn = models["coco"]
    labels = np.zeros((maps, 64, 128), np.uint8)
    style = np.zeros((count, side, side, channels), dtype) if count else np.zeros((side, side, channels), dtype)
    try:
        images = syn.run(labels if maps > 1 else labels[0], style=style, seed=seed)
    except (ValueError, TypeError) as e:
        assert_ours(e)
        return
    assert images.dtype == np.uint8 and images.shape[-3:] == (64, 128, 3)


# ---------------------------------------------------------------------------------------------- paint server
def _paint():
    spec = importlib.util.spec_from_file_location("paint_server_props", ROOT / "samples" / "paint" / "server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paint = _paint()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(max_size=25))
def test_decimal_parameters_accept_exactly_ascii_digits(text):
    number = paint._decimal(text)
    if number is None:
        assert not (text.isascii() and text.isdigit()) or len(text) > 18
    else:
        assert str(number) == text.lstrip("0") or (number == 0 and set(text) == {"0"})
    try:
        value = paint._int_param({"seed": [text]}, "seed", 0, 2**32 - 1)
    except paint.RequestError as e:
        assert e.status == 400 and "seed=" in str(e)
    else:
        assert value is None if text == "" else 0 <= value < 2**32


@settings(max_examples=300, deadline=None, derandomize=True)
@given(host=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(
    ["localhost", "127.0.0.1:8000", "[::1]:8000", "127.9.9.9", "evil.example", "localhost.evil.example",
     "127.0.0.1.nip.io", "[::1", "0.0.0.0", "[::ffff:127.0.0.1]:1"])))
def test_host_check_admits_only_loopback_names(host):
    allowed = paint._host_allowed(host, "127.0.0.1")
    if allowed:
        name = host.strip().lower()
        name = name[1:name.index("]")] if name.startswith("[") else name.rsplit(":", 1)[0]
        assert name == "localhost" or paint._is_loopback(name)
    assert paint._host_allowed(host, "0.0.0.0")  # bound to all interfaces: any Host (with a warning at start)


@pytest.fixture(scope="module")
def app(models):
    return paint.PaintApp(models["coco"], max_upload=1 << 16)


@SETTINGS
@given(body=st.one_of(st.binary(max_size=300), st.builds(lambda b: paint.PNG_SIGNATURE + b, st.binary(max_size=200))),
       content_type=st.sampled_from(["image/png", "image/jpeg", "", "text/plain"]),
       query=st.dictionaries(st.sampled_from(["seed", "style", "x"]), st.lists(st.text(max_size=8), min_size=1,
                                                                               max_size=2), max_size=3))
def test_any_request_body_and_query_is_an_image_or_a_4xx(app, body, content_type, query):
    try:
        out = app.synthesize(body, content_type, query)
    except paint.RequestError as e:
        assert 400 <= e.status < 500 and str(e)
    else:
        assert out.startswith(paint.PNG_SIGNATURE)
    try:
        app.add_style(body)
    except paint.RequestError as e:
        assert 400 <= e.status < 500


@SETTINGS
@given(mask=hnp.arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80)), elements=st.integers(0, 255)),
       mode=st.sampled_from(["L", "P", "RGB", "I;16", "1", "LA"]))
def test_any_label_png_is_an_image_or_a_4xx(app, mask, mode):
    import io

    from PIL import Image

    image = Image.fromarray(mask).convert(mode) if mode != "P" else Image.fromarray(mask, "P")
    out = io.BytesIO()
    image.save(out, format="PNG")
    try:
        answer = app.synthesize(out.getvalue(), "image/png", {"seed": ["1"]})
    except paint.RequestError as e:
        assert e.status in (415, 422)
    else:
        assert Image.open(io.BytesIO(answer)).size == mask.shape[::-1]
