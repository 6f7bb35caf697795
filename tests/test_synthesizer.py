"""The runtime: every backend available here (ONNX Runtime CPU, .pt2 CPU, checkpoint) on the same tiny models,
against eager PyTorch, plus the input errors a user can make."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import random_labels, realistic_generator, tiny_config
from gaugan_sdk.models import GeneratorGraph
from export.to_onnx import export_generator
from export.to_pt2 import export_generator_pt2
from gaugan_sdk.contract import Shapes
from gaugan_sdk import Synthesizer
from gaugan_sdk.imaging import image_to_uint8, uint8_to_image
from gaugan_sdk.inputs import resize_bilinear_uint8
from gaugan_sdk.metadata import TensorSpec, write_sidecar

BACKENDS = ["onnx", "pt2", "checkpoint"]


@pytest.fixture(scope="module")
def models(tiny_models, tmp_path_factory):
    """The session's tiny models (conftest.tiny_models), the cityscapes one also as a .pt2 package."""
    folder = tmp_path_factory.mktemp("pt2")
    meta = export_generator_pt2(tiny_models["city"]["generator"], folder / "city.pt2", Shapes(batch=(1, 2, 4)))
    write_sidecar(folder / "city.pt2", meta)
    return {**tiny_models, "city": {**tiny_models["city"], "pt2": folder / "city.pt2"}}


def eager_uint8(model, labels, instance=None, z=None):
    graph = GeneratorGraph(model["generator"]).eval()
    args = [torch.from_numpy(labels.astype(np.int32))[:, None]]
    args.append(torch.from_numpy(instance.astype(np.int32))[:, None] if instance is not None else None)
    with torch.no_grad():
        return image_to_uint8(graph(*args, None if z is None else torch.from_numpy(z)).numpy())


def open_backend(models, name, kind):
    if kind not in models[name]:
        pytest.skip(f"no {kind} artifact of {name} in this suite (pt2 compiles take ~30 s each on 2 cores)")
    return Synthesizer(models[name][kind])


def assert_close_uint8(actual, expected):
    levels = np.abs(actual.astype(int) - expected.astype(int))
    within = (levels <= 1).mean()
    print(f"within 1 level: {100 * within:.3f}% (worst {levels.max()})")
    assert actual.shape == expected.shape and actual.dtype == np.uint8 and within >= 0.999


@pytest.mark.parametrize("kind", BACKENDS)
def test_backends_agree_with_eager(models, kind):
    syn = open_backend(models, "city", kind)
    labels, instance = random_labels(models["city"]["cfg"], batch=3)
    assert_close_uint8(syn.run(labels, instance), eager_uint8(models["city"], labels, instance))


@pytest.mark.parametrize("kind", BACKENDS)
def test_single_and_batch_calls_agree_and_palette_masks_equal_ids(models, kind):
    syn = open_backend(models, "city", kind)
    labels, instance = random_labels(models["city"]["cfg"], batch=3)
    batch = syn.run(labels, instance)
    single = syn.run(labels[1], instance[1])
    assert single.shape == labels.shape[1:] + (3,)
    assert np.abs(single.astype(int) - batch[1].astype(int)).max() <= 1
    palette = syn.labels.colorize(labels[1])
    canonical = syn.labels.decode(palette)  # Cityscapes colours are shared by some ids: compare the decoded ids
    assert np.array_equal(syn.run(palette, instance[1]), syn.run(canonical.astype(np.uint8), instance[1]))


@pytest.mark.parametrize("kind", ["onnx", "checkpoint"])
def test_seeds_and_style_guidance(models, kind):
    syn = open_backend(models, "coco", kind)
    model = models["coco"]
    labels, instance = random_labels(model["cfg"], batch=2)
    first = syn.run(labels, instance, seed=[3, 4])
    assert np.array_equal(first, syn.run(labels, instance, seed=[3, 4]))  # reproducible
    assert not np.array_equal(first[0], syn.run(labels, instance, seed=[5, 4])[0])
    z = np.stack([np.random.default_rng(s).standard_normal(model["cfg"].z_dim) for s in (3, 4)]).astype(np.float32)
    assert_close_uint8(first, eager_uint8(model, labels, instance, z))
    # style-guided: z = mu of the encoder, then the generator, as in PyTorch
    photo = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    with torch.no_grad():
        mu, logvar = model["encoder"](torch.from_numpy(uint8_to_image(photo[None])))
    guided = syn.run(labels, instance, style=photo)
    assert_close_uint8(guided, eager_uint8(model, labels, instance, mu.expand(2, -1).numpy().copy()))
    seeded = syn.run(labels, instance, style=photo, seed=7)
    assert np.array_equal(seeded, syn.run(labels, instance, style=photo, seed=7))
    assert not np.array_equal(seeded, guided)


def test_other_sizes_are_resized_or_refused(models):
    syn = Synthesizer(models["city"]["onnx"])
    labels, instance = random_labels(tiny_config("cityscapes", crop_size=256), batch=1)  # 128x256, not 64x128
    image = syn.run(labels[0], instance[0])
    assert image.shape == (128, 256, 3)
    strict = Synthesizer(models["city"]["onnx"], resize=False)
    with pytest.raises(ValueError, match=r"label map of 128x256 but city.onnx takes 64x128 \(resize=False\)"):
        strict.run(labels[0], instance[0])


@pytest.mark.parametrize("call, error, message", [
    (lambda s, l, i: s.run(np.full_like(l, 40), i), ValueError, r"40 \(8192 px\).*accepted ids: 0..34"),
    (lambda s, l, i: s.run(l.astype(np.float32), i), TypeError, "integer array.*got dtype float32"),
    (lambda s, l, i: s.run(l[None, None], i), ValueError, r"\(H, W\) or \(N, H, W\)"),
    (lambda s, l, i: s.run(l[:0], i[:0]), ValueError, "empty"),
    (lambda s, l, i: s.run(l, i[:, :32]), ValueError, "instance map has shape .* must match"),
    (lambda s, l, i: s.run(l, i, style=np.zeros((8, 8, 3), np.uint8)), ValueError, "no style path"),
    (lambda s, l, i: s.run(l, i, seed=3), ValueError, "no style path.*seeds do not apply"),
    (lambda s, l, i: s.run(l, i.astype(np.int64) + 2**40), None, None),  # past int32: renumbered, not wrapped
])
def test_bad_input_is_named(models, call, error, message):
    syn = Synthesizer(models["city"]["onnx"])
    labels, instance = random_labels(models["city"]["cfg"], batch=1)
    if error is None:  # accepted, and the same image as the plain call
        np.testing.assert_array_equal(call(syn, labels[0], instance[0]), syn.run(labels[0], instance[0]))
        return
    with pytest.raises(error, match=message):
        call(syn, labels[0], instance[0])


def test_bad_style_images(models):
    syn = Synthesizer(models["coco"]["onnx"])
    labels, instance = random_labels(models["coco"]["cfg"], batch=1)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) or \(N, H, W, 3\) RGB, got shape \(32, 32, 4\)"):
        syn.run(labels[0], instance[0], style=np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(TypeError, match="style image must be uint8"):
        syn.run(labels[0], instance[0], style=np.zeros((32, 32, 3), np.float32))
    two, instances = random_labels(models["coco"]["cfg"], batch=2)
    for seed in ([1, 2, 3], 3.5, -1, [1, -2], "7", True):
        with pytest.raises(ValueError, match=r"seed=.*; accepted: an int >= 0, or a list of 2 such ints"):
            syn.run(two, instances, seed=seed)
    assert syn.run(labels[0], instance[0], seed=[1, 2]).shape[0] == 2  # one map, two styles
    for seed in (3.5, "7", [1, -2], {1: 2}):  # one map: the seeds say how many images, once they are seeds
        with pytest.raises(ValueError, match=r"seed=.*; accepted: an int >= 0, or a list of N such ints"):
            syn.run(labels[0], instance[0], seed=seed)


def test_bad_artifacts(models, tmp_path):
    with pytest.raises(ValueError, match=r"unknown artifact suffix '.bin'"):
        Synthesizer(tmp_path / "model.bin")
    with pytest.raises(FileNotFoundError, match=r"artifact not found: nowhere.onnx \(looked for nowhere.onnx, "
                                                r"engines/nowhere.onnx\)"):
        Synthesizer("nowhere.onnx")
    truncated = tmp_path / "city.onnx"
    truncated.write_bytes(models["city"]["onnx"].read_bytes()[:5000])
    shutil.copy(f"{models['city']['onnx']}.json", f"{truncated}.json")
    with pytest.raises(ValueError, match="city.onnx is not the file its metadata describes: its sha256 is"):
        Synthesizer(truncated)
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        Synthesizer(truncated, check_hash=False)
    other = tmp_path / "other.onnx"  # a sidecar copied from another export
    shutil.copy(models["city"]["onnx"], other)
    shutil.copy(f"{models['coco']['onnx']}.json", f"{other}.json")
    with pytest.raises(ValueError, match="is not the file its metadata describes"):
        Synthesizer(other)
    with pytest.raises(ValueError, match=r"does not match the artifact \(metadata vs artifact\): inputs"):
        Synthesizer(other, check_hash=False)
    alone = tmp_path / "alone.onnx"  # no sidecar: the metadata inside the ONNX is used
    shutil.copy(models["city"]["onnx"], alone)
    assert Synthesizer(alone).config == models["city"]["cfg"]
    assert Synthesizer(f"{models['city']['onnx']}.json").path == models["city"]["onnx"]  # the sidecar path works


def test_stream_and_context_manager(models):
    labels, instance = random_labels(models["city"]["cfg"], batch=3)
    with Synthesizer(models["city"]["onnx"], backend="onnxruntime") as syn:
        frames = list(syn.stream(iter(labels), instance=None))
        assert len(frames) == 3 and frames[0].shape == labels.shape[1:] + (3,)
    assert syn.generator.session is None  # closed


def test_running_an_onnx_artifact_does_not_import_torch(models):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from gaugan_sdk import Synthesizer
        syn = Synthesizer({str(models['city']['onnx'])!r})
        image = syn.run(np.zeros((64, 128), np.uint8), np.zeros((64, 128), np.int32))
        assert image.shape == (64, 128, 3)
        print("torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_benchmark_sample_runs_side_by_side(models, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "samples"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    benchmark.main([str(models["city"]["onnx"]), str(models["city"]["checkpoint"]), "--batch", "1", "2",
                    "--iters", "2", "--warmup", "0"])
    printed = capsys.readouterr().out
    assert printed.count("city.onnx ") == 2 and printed.count("city.pt ") == 2  # a row per batch
    assert "PSNR of uint8 images against eager PyTorch fp32 of city.pt" in printed  # the checkpoint given
    assert "host->device bytes per frame at 64x128: ids in 65,536" in printed and "36x less" not in printed
    assert "18x less" in printed  # int32 label + instance (8 B/px) vs 36 float32 channels (144 B/px)


def test_fixed_batch_artifacts_and_warmup(models, tmp_path):
    """An artifact exported for exactly batch 2 still serves one map (padded), and warm-up keeps quiet."""
    model = models["city"]
    meta = export_generator(model["generator"], tmp_path / "b2.onnx", Shapes(batch=(2, 2, 2)))
    write_sidecar(tmp_path / "b2.onnx", meta)
    labels, instance = random_labels(model["cfg"], batch=3)
    syn = Synthesizer(tmp_path / "b2.onnx", warmup=1)
    assert_close_uint8(syn.run(labels, instance), eager_uint8(model, labels, instance))
    with pytest.warns(UserWarning, match="class boundaries as instance edges"):
        syn.run(labels[0])


def test_stream_memory_does_not_grow(models):
    """Frames are processed one by one and nothing accumulates: Python-side memory (numpy buffers included) is
    flat over many frames once warm."""
    import itertools
    import tracemalloc

    labels, instance = random_labels(models["city"]["cfg"], batch=2)
    syn = Synthesizer(models["city"]["onnx"])
    frames = itertools.cycle(list(labels))
    stream = syn.stream(frames, instance=None)
    with pytest.warns(UserWarning):
        for _ in range(3):
            next(stream)  # warm
    tracemalloc.start()
    try:
        for _ in range(5):
            next(stream)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(25):
            next(stream)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"traced memory growth over 25 frames: {growth} bytes")
    assert growth < 256 * 1024


def test_device_and_provider_choices(models):
    assert Synthesizer(models["city"]["onnx"], device="cpu", backend="onnxruntime").generator.providers == [
        "CPUExecutionProvider"]
    given = Synthesizer(models["city"]["onnx"], providers=["CPUExecutionProvider"])  # providers: ONNX Runtime's
    assert given.backend == "onnxruntime" and given.chosen.why == "asked"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match="device='cuda' but this onnxruntime build has no GPU provider"):
            Synthesizer(models["city"]["onnx"], device="cuda")
        with pytest.raises(ValueError, match="device='cuda' but this torch .* no CUDA"):  # before "a cpu package"
            Synthesizer(models["city"]["pt2"], device="cuda")
    with pytest.raises(ValueError, match=r"execution provider\(s\) \['NoSuchProvider'\] are not available"):
        Synthesizer(models["city"]["onnx"], providers=["NoSuchProvider"])
    for kind in ("onnx", "checkpoint"):  # checked before any backend opens
        with pytest.raises(ValueError, match="device='tpu'; accepted"):
            Synthesizer(models["city"][kind], device="tpu")


def strip_metadata(source: Path, target: Path) -> Path:
    """A copy of an ONNX artifact without its sidecar and without our metadata_props (IO alone)."""
    import onnx

    model = onnx.load(str(source))
    del model.metadata_props[:]
    onnx.save(model, str(target))
    return target


def test_artifacts_without_metadata_run_from_their_io(models, tmp_path):
    model = models["city"]
    bare = strip_metadata(model["onnx"], tmp_path / "bare.onnx")
    with pytest.warns(UserWarning, match=r"bare.onnx carries no metadata .* running it from its IO \(generator: "
                                         r"label int32 \('batch', 1, 64, 128\), instance"):
        syn = Synthesizer(bare)
    assert syn.config is None and syn.labels is None and syn.meta.precision == "unknown" and syn.size == (64, 128)
    labels, instance = random_labels(model["cfg"], batch=2)
    assert_close_uint8(syn.run(labels, instance), eager_uint8(model, labels, instance))
    with pytest.raises(ValueError, match="does not record its label set: pass label ids, or Synthesizer"):
        syn.run(np.zeros((64, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="-3 .* accepted ids: 0..2147483646"):
        syn.run(np.full((64, 128), -3))
    with pytest.warns(UserWarning, match="carries no metadata"):
        named = Synthesizer(bare, labels="cityscapes")  # the label set restores palette masks and range checks
    colours = named.labels.colorize(labels[0])  # shared Cityscapes colours: compare with the decoded ids
    np.testing.assert_array_equal(named.run(colours, instance[0]),
                                  named.run(named.labels.decode(colours), instance[0]))
    with pytest.raises(ValueError, match=r"out of range for label set 'cityscapes': 35 \(8192 px\)"):
        named.run(np.full((64, 128), 35), instance[0])
    # a style model: the encoder is found by gaugan-export's naming, and style guidance still works
    coco = models["coco"]
    strip_metadata(coco["onnx"].with_name("coco_encoder.onnx"), tmp_path / "cocobare_encoder.onnx")
    with pytest.warns(UserWarning, match="carries no metadata"):
        styled = Synthesizer(strip_metadata(coco["onnx"], tmp_path / "cocobare.onnx"))
    reference = Synthesizer(coco["onnx"])
    photo = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    ids = random_labels(coco["cfg"], batch=1)[0][0]
    np.testing.assert_array_equal(styled.run(ids, style=photo, seed=4), reference.run(ids, style=photo, seed=4))


def test_a_label_set_wider_than_a_model_without_metadata_is_refused(tmp_path):
    """Was: an 8-class ONNX without metadata opened with labels="cityscapes" ran ids 20 and 30 as an empty
    one-hot, silently. The artifact tells: its image for the set's highest id is the one it makes for an id
    past every class."""
    cfg = tiny_config("cityscapes").replace(label_set="procedural", label_nc=8)
    path = tmp_path / "procedural.onnx"
    export_generator(realistic_generator(cfg), path, Shapes(batch=(1, 1, 2)))
    bare = strip_metadata(path, tmp_path / "bare.onnx")
    with pytest.warns(UserWarning, match="carries no metadata"):
        with pytest.raises(ValueError, match=r"labels 'cityscapes' has 35 ids but bare.onnx has fewer classes: its "
                                             r"image for id 34 \(license plate\) is the one it makes for an id past "
                                             r"every class"):
            Synthesizer(bare, labels="cityscapes")
    with pytest.warns(UserWarning, match="carries no metadata"):
        fits = Synthesizer(bare, labels="procedural")
    with pytest.raises(ValueError, match=r"out of range for label set 'procedural': 20 \(8192 px\)"):
        fits.run(np.full((64, 128), 20, np.uint8))


def test_metadata_from_tensorrt_style_io():
    """What a plan without sidecar reports (-1 dims, profile 0 ranges), turned into metadata; and the IO that
    is not enough."""
    from gaugan_sdk.contract import Range, spec_from_runtime
    from gaugan_sdk.metadata import metadata_from_io

    inputs = [spec_from_runtime("label", "int32", (-1, 1, -1, -1)),
              spec_from_runtime("instance", "int32", (-1, 1, -1, -1)), spec_from_runtime("z", "float32", (-1, 256))]
    outputs = [spec_from_runtime("image", "uint8", (-1, -1, -1, 3))]
    ranges = {"batch": Range(1, 4, 8), "height": Range(128, 256, 512), "width": Range(256, 512, 1024)}
    meta = metadata_from_io("city.plan", "tensorrt", inputs, outputs, ranges)
    assert (meta.role, meta.config, meta.precision, meta.uint8_output) == ("generator", None, "unknown", True)
    assert (meta.batch, meta.height, meta.width, meta.z_dim) == (*ranges.values(), 256)
    assert meta.size_step == 128 and meta.inputs[0].shape == ("batch", 1, "height", "width")
    with pytest.raises(ValueError, match="dynamic height with no recorded range"):
        metadata_from_io("city.onnx", "onnx", inputs, outputs, {"batch": Range(1, 1, 8)})
    with pytest.raises(ValueError, match=r"inputs \['mask'\] do not tell what this artifact is"):
        metadata_from_io("x.plan", "tensorrt", [TensorSpec("mask", "float32", (1, 36, 64, 64))], outputs)
    with pytest.raises(ValueError, match=r"IO tensor 'label' int32 \(1, 64, 64\) has rank 3; the contract's label"):
        spec_from_runtime("label", "int32", (1, 64, 64))
    with pytest.raises(ValueError, match=r"IO tensor 'mask' float32 is not part of the gaugan-sdk contract"):
        spec_from_runtime("mask", "float32", (1, 36, 64, 64))
    with pytest.raises(ValueError, match="is not written out"):
        meta.to_json()


def test_io_binding_and_device_output(models):
    """IO binding (the GPU providers' path, forced here on the CPU) equals a plain run; device_output hands out
    the engine's raw output."""
    from gaugan_sdk.backends.base import DeviceArray
    from gaugan_sdk.backends.onnxruntime import OnnxRuntimeBackend

    model = models["city"]
    labels, instance = random_labels(model["cfg"], batch=2)
    feeds = {"label": labels[:, None].astype(np.int32), "instance": instance[:, None].astype(np.int32)}
    plain = OnnxRuntimeBackend(model["onnx"]).run(feeds)[0]
    bound = OnnxRuntimeBackend(model["onnx"], io_binding=True)
    np.testing.assert_array_equal(bound.run(feeds)[0], plain)
    np.testing.assert_array_equal(bound.run(feeds, device_output=True)[0], plain)

    for kind, expected_type in (("onnx", np.ndarray), ("checkpoint", torch.Tensor)):
        syn = Synthesizer(model[kind])
        raw = syn.run(labels, instance, device_output=True)
        assert isinstance(raw, expected_type) and tuple(raw.shape) == (2, 3, 64, 128)
        np.testing.assert_array_equal(image_to_uint8(np.asarray(raw)), syn.run(labels, instance))
        with pytest.raises(ValueError, match=r"device_output hands out one engine call as is: 1 map\(s\) of 32x64"):
            syn.run(labels[0, :32, :64], instance[0, :32, :64], device_output=True)
    view = DeviceArray(0x7F0000000000, (2, 64, 128, 3), np.dtype(np.uint8)).__cuda_array_interface__
    assert view["typestr"] == "|u1" and view["shape"] == (2, 64, 128, 3) and view["data"] == (0x7F0000000000, False)


def test_label_set_option_is_checked_against_the_model(models):
    with pytest.raises(ValueError, match=r"labels 'ade20k' has 151 ids \(dontcare=True\) but city.onnx was trained "
                                         r"with 35"):
        Synthesizer(models["city"]["onnx"], labels="ade20k")
    with pytest.raises(ValueError, match="unknown label set 'mars'"):
        Synthesizer(models["city"]["onnx"], labels="mars")
    with pytest.raises(TypeError, match="labels=3; accepted"):
        Synthesizer(models["city"]["onnx"], labels=3)


def test_closed_synthesizer_and_bad_options_are_named(models):
    syn = Synthesizer(models["city"]["onnx"])
    syn.close()
    labels, instance = random_labels(models["city"]["cfg"], batch=1)
    with pytest.raises(RuntimeError, match="this Synthesizer of city.onnx is closed; open a new one"):
        syn.run(labels[0], instance[0])
    with pytest.raises(TypeError, match="path=None; accepted: an artifact's path"):
        Synthesizer(None)
    with pytest.raises(ValueError, match="resize='no'; accepted: True"):
        Synthesizer(models["city"]["onnx"], resize="no")
    for option, value, accepted in (("warmup", "3", ">= 0"), ("warmup", -1, ">= 0"), ("threads", 0, ">= 1"),
                                    ("max_pixels", 2.5, ">= 1")):
        with pytest.raises(ValueError, match=rf"{option}={value!r}; accepted: an int {accepted}"):
            Synthesizer(models["city"]["onnx"], **{option: value})


def test_ambiguous_inputs_and_options_are_named(models):
    """Each was misread or a raw library error: the style encoder opened as a generator, RGBA masks (read as
    (N, H, W) ids), (N, H, 3) uint8 ids (read as a colour mask), providers as a string (its letters), device="cuda"
    on a CPU-only torch build (torch's assertion), style lists of several sizes (numpy's inhomogeneous shape)."""
    coco = models["coco"]
    with pytest.raises(ValueError, match=r"coco_encoder.onnx is the style encoder .* open the generator coco.onnx"):
        Synthesizer(coco["onnx"].with_name("coco_encoder.onnx"))
    syn = Synthesizer(coco["onnx"])
    for rgba in (np.zeros((64, 64, 4), np.uint8), np.zeros((2, 64, 64, 4), np.uint8)):
        with pytest.raises(ValueError, match=r"label of shape \(.*64, 64, 4\) uint8 looks like an RGBA image: "
                                             r"palette masks are RGB \(mask\[\.\.\., :3\]\)"):
            syn.run(rgba)
    with pytest.raises(ValueError, match=r"read as one \(H, W, 3\) colour mask.*N label maps 3 pixels wide: pass "
                                         r"them as int32"):
        syn.run(np.full((5, 64, 3), 7, np.uint8))
    assert syn.run(np.full((5, 64, 3), 7, np.int32), seed=[1] * 5).shape == (5, 64, 3, 3)  # ids, said as ids
    with pytest.raises(TypeError, match=r"providers='CPUExecutionProvider'; accepted: a list of ONNX Runtime "
                                        r"execution provider names"):
        Synthesizer(coco["onnx"], providers="CPUExecutionProvider")
    if not torch.cuda.is_available():
        for kind in ("checkpoint", "pt2"):
            path = models["city"][kind]
            with pytest.raises(ValueError, match=r"device='cuda' but this torch .* has no CUDA.*accepted here: "
                                                 r"device='cpu' or None"):
                Synthesizer(path, device="cuda")
    label = np.zeros((64, 64), np.uint8)
    ragged = [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"style is a list of 2 images of different shapes \(64, 64, 3\), "
                                         r"\(32, 48, 3\); accepted: one \(H, W, 3\) uint8 image, or N of one size"):
        syn.run(label, style=ragged)
    with pytest.raises(ValueError, match="images of different shapes"):
        syn.encode(ragged)
    assert syn.run(label, style=[ragged[0], ragged[0]]).shape == (2, 64, 64, 3)  # a list of one size works


def test_huge_maps_are_refused_from_their_shape_and_large_ones_cost_little_beyond_the_image(models):
    """A map over `max_pixels` is refused before anything is allocated (a broadcast view of 20000x20000 costs no
    memory, so any allocation would show); a map under it is resized in its own dtype and the image upsized in
    blocks: peak memory stays near the uint8 result (was ~12x)."""
    import tracemalloc

    syn = Synthesizer(models["city"]["onnx"])
    huge = np.broadcast_to(np.uint8(7), (20000, 20000))
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"20000x20000 hold 400,000,000 pixels, over this Synthesizer's limit of "
                                         r"67,108,864 per call .*max_pixels=N"):
        syn.run(huge, huge)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    large = np.broadcast_to(np.uint8(7), (3000, 4000))
    tracemalloc.reset_peak()
    image = syn.run(large, large)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    small_map = np.full((64, 128), 7, np.uint8)
    np.testing.assert_array_equal(image, resize_bilinear_uint8(syn.run(small_map, small_map)[None], (3000, 4000))[0])
    print(f"3000x4000 map: result {image.nbytes / 2**20:.0f} MiB, peak traced {peak / 2**20:.0f} MiB")
    assert peak < 1.6 * image.nbytes
    small = Synthesizer(models["city"]["onnx"], max_pixels=64 * 128)
    with pytest.raises(ValueError, match="over this Synthesizer's limit of 8,192"):
        small.run(np.zeros((2, 64, 128), np.uint8), np.zeros((2, 64, 128), np.uint8))


def test_max_pixels_counts_the_images_made_not_the_maps_given(models):
    """Was: one map with N seeds (or N style images) made N full images past the limit (10 seeds under 8192
    pixels, 10,000 seeds, all accepted); so did maps smaller than the artifact, made at its size."""
    small = Synthesizer(models["coco"]["onnx"], max_pixels=2 * 64 * 64)
    label = np.zeros((64, 64), np.uint8)
    assert small.run(label, seed=[1, 2]).shape == (2, 64, 64, 3)  # at the limit
    for extra in (dict(seed=list(range(10))), dict(seed=list(range(10_000))),
                  dict(style=np.zeros((10, 32, 32, 3), np.uint8))):
        with pytest.raises(ValueError, match=r"the images this call makes \(1 label map\(s\) x 10(000)? seeds or "
                                             r"style images\) of 10(000)?x64x64 hold .* over this Synthesizer's "
                                             r"limit of 8,192"):
            small.run(label, **extra)
    with pytest.raises(ValueError, match=r"the images this call makes \(3 label map\(s\) of 8x8, made at the "
                                         r"artifact's 64x64\) of 3x64x64 hold 12,288 pixels"):
        small.run(np.zeros((3, 8, 8), np.uint8), seed=[1, 2, 3])


def test_blocked_bilinear_resize_equals_one_block(monkeypatch):
    import gaugan_sdk.inputs as inputs

    images = np.random.default_rng(0).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    whole = resize_bilinear_uint8(images, (101, 77))
    monkeypatch.setattr(inputs, "_BLOCK_PIXELS", 77 * 2 * 3)  # blocks of 3 rows
    np.testing.assert_array_equal(resize_bilinear_uint8(images, (101, 77)), whole)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()  # and it is PyTorch's bilinear, rounded
    expected = torch.nn.functional.interpolate(x, (101, 77), mode="bilinear", align_corners=False)
    assert np.abs(whole.astype(int) - expected.round().clamp(0, 255).permute(0, 2, 3, 1).numpy()).max() <= 1


def test_damaged_artifacts_and_lying_sidecars_are_refused(models, tmp_path):
    """2000 flipped bytes in the weights: the sha256 the sidecar recorded no longer matches. A sidecar edited to
    claim another label count or a uint8 output: the file's own metadata and IO contradict it."""
    import json

    source = models["city"]["onnx"]
    data = bytearray(source.read_bytes())
    damaged = tmp_path / "damaged.onnx"
    positions = np.random.default_rng(0).choice(np.arange(len(data) // 2, len(data) - 100), 2000, replace=False)
    for p in positions:
        data[p] ^= 0xFF
    damaged.write_bytes(bytes(data))
    shutil.copy(f"{source}.json", f"{damaged}.json")
    with pytest.raises(ValueError, match="damaged.onnx is not the file its metadata describes.*check_hash=False"):
        Synthesizer(damaged)
    sidecar = json.loads(Path(f"{source}.json").read_text())
    for edit, message in ((lambda d: d["config"].update(label_nc=20), r"model config label_nc=20 vs 35"),
                          (lambda d: d.update(uint8_output=True), "uint8_output=True but the output image is float32"),
                          (lambda d: d["outputs"][0].update(dtype="uint8", shape=["batch", "height", "width", 3])
                           or d.update(uint8_output=True), r"image uint8 \['batch', 'height', 'width', 3\] vs "
                                                           r"float32")):
        lying = tmp_path / "lying.onnx"
        shutil.copy(source, lying)
        edited = json.loads(json.dumps(sidecar))
        edit(edited)
        Path(f"{lying}.json").write_text(json.dumps(edited))
        with pytest.raises(ValueError, match=message):
            Synthesizer(lying)


def test_an_onnx_file_checks_its_own_weights_and_a_sidecar_cannot_turn_the_check_off(models, tmp_path):
    """Issue 26, 6 and 7: an ONNX copied without its sidecar ran flipped weights (up to 149 levels off); a sidecar
    without its hash, or downgraded to schema 2, turned the check off."""
    import json

    import onnx
    from onnx import numpy_helper

    source = models["city"]["onnx"]
    model = onnx.load(source)
    weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weight).copy()
    values.flat[::97] *= -1  # flipped weights, the file's own metadata kept as it was
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    alone = tmp_path / "alone.onnx"
    onnx.save(model, alone)
    with pytest.raises(ValueError, match="alone.onnx: its weights are not those it was exported with"):
        Synthesizer(alone)
    assert Synthesizer(alone, check_hash=False).run(np.zeros((64, 128), np.uint8)).shape == (64, 128, 3)
    sidecar = json.loads(Path(f"{source}.json").read_text())
    for name, edit in (("nohash", lambda d: d.pop("artifact_sha256")), ("schema2", lambda d: d.update(
            schema_version=2, artifact_sha256=None)), ("inthash", lambda d: d.update(artifact_sha256=12))):
        copy = tmp_path / f"{name}.onnx"
        shutil.copy(source, copy)
        edited = json.loads(json.dumps(sidecar))
        edit(edited)
        Path(f"{copy}.json").write_text(json.dumps(edited))
        with pytest.raises(ValueError, match=rf"{name}.onnx.json records no valid sha256 of {name}.onnx"):
            Synthesizer(copy)
    shutil.copy(source, tmp_path / "bare.onnx")  # no sidecar, the file's own hash intact: runs
    assert Synthesizer(tmp_path / "bare.onnx").meta.weights_sha256 == models["city"]["meta"].weights_sha256


def test_tensorrt_ep_caches_its_engines_beside_the_artifact_or_in_the_user_cache(tmp_path, monkeypatch):
    from gaugan_sdk.backends.onnxruntime import provider_options

    artifact = tmp_path / "city.onnx"
    assert provider_options("CPUExecutionProvider", artifact) == {}
    options = provider_options("TensorrtExecutionProvider", artifact)
    assert options["trt_engine_cache_enable"] == "True" and options["trt_timing_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(tmp_path / "city.onnx.trt_cache")
    monkeypatch.setattr("os.access", lambda path, mode: False)  # a read-only artifact folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cache = Path(provider_options("TensorrtExecutionProvider", artifact)["trt_engine_cache_path"])
    assert cache.parent == tmp_path / "home" / ".cache" / "gaugan-sdk" / "ort-trt" and cache.name.startswith("city")


def test_gaugan_benchmark_prints_the_table_and_writes_json(models, tmp_path):
    """The installed entry point, in a subprocess as a user runs it: every artifact kind here, against eager
    PyTorch fp32 of the checkpoint."""
    import json

    out = tmp_path / "bench.json"
    proc = subprocess.run(["gaugan-benchmark", str(models["city"]["onnx"]), str(models["city"]["pt2"]),
                           "--reference", str(models["city"]["checkpoint"]), "--batch", "1", "2", "--iters", "2",
                           "--warmup", "0", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    title, header, *_ = proc.stdout.splitlines()
    assert header.split() == ["artifact", "format", "precision", "runtime", "plan", "size", "MB", "batch", "PSNR",
                              "dB", "median", "ms", "p90", "ms", "img/s"]
    assert "PSNR of uint8 images against eager PyTorch fp32 of city.pt, on 64x128" in proc.stdout
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["artifact"], r["batch"]) for r in rows] == [("city.onnx", 1), ("city.onnx", 2), ("city.pt2", 1),
                                                           ("city.pt2", 2)]
    assert all(r["psnr_db"] is None or r["psnr_db"] > 40 for r in rows)  # fp32 artifacts: within a level
    assert rows[0]["size_mb"] > 0 and rows[0]["format"] == "onnx" and rows[2]["runtime"] == "aoti"
    assert data["machine"]["cpu"] and isinstance(data["machine"]["flags"], list)  # the numbers' machine
    taken = tmp_path / "taken"
    taken.mkdir()
    early = subprocess.run(["gaugan-benchmark", str(models["city"]["onnx"]), "--json", str(taken)],
                           capture_output=True, text=True, timeout=600)  # refused before the run, one line
    assert early.returncode == 2 and early.stderr.strip().endswith("is a folder; give a file path in a writable "
                                                                   f"folder, e.g. {taken / 'results.json'}")
    bad = subprocess.run(["gaugan-benchmark", str(models["city"]["onnx"]), "--reference",
                          str(models["city"]["onnx"])], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--reference" in bad.stderr and "a checkpoint (.pt / .pth)" in bad.stderr


def test_gaugan_benchmark_checks_its_json_path_before_the_run(models, tmp_path, monkeypatch, capsys):
    """Was: a --json path in a missing or read-only folder failed only after the whole benchmark had run."""
    import gaugan_sdk.benchmark as bench

    monkeypatch.setattr(bench, "benchmark", lambda *a, **k: pytest.fail("the benchmark ran before --json was checked"))
    (tmp_path / "folder.json").mkdir()
    for target, said in ((tmp_path / "missing" / "b.json", "the folder .*missing does not exist"),
                         (tmp_path / "folder.json", "is a folder")):
        assert bench.main([str(models["city"]["onnx"]), "--json", str(target)]) == 2
        assert re.search(rf"gaugan-benchmark: error: --json .*: {said}; give a file path in a writable folder",
                         capsys.readouterr().err)
