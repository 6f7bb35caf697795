"""The exported-graph contract (`gaugan_sdk.contract`) and the artifact kinds (`gaugan_sdk.kinds`): the one
source that traced graphs, ONNX Runtime's view of the files, sidecars, `metadata_from_io`, TensorRT profiles,
Triton configs and the checkpoint runtime all agree with, for every preset layout."""

from __future__ import annotations

import sys
import types

import pytest

from helpers import LAYOUTS, tiny_config
from export.tensorrt import build_plan, trtexec_command
from export.to_onnx import export_encoder
from export.triton import model_config
from gaugan_sdk.contract import (STYLE_SIZE, Range, Shapes, TensorSpec, dim_ranges, encoder_io, generator_io,
                                 role_of, spec_from_runtime)
from gaugan_sdk.kinds import EXPORT_FORMATS, FORMATS, KINDS, SUFFIXES, kind_of, kind_named
from gaugan_sdk.metadata import ArtifactMetadata, metadata_from_io, read_sidecar
from helpers import realistic_generator


# ------------------------------------------------------------------------------ ranges and shapes
def test_range_and_its_errors():
    assert Range.of(4) == Range(4, 4, 4) and not Range.of(4).dynamic
    assert Range.of([1, 2, 8]) == Range(1, 2, 8) and 8 in Range(1, 2, 8) and 9 not in Range(1, 2, 8)
    assert str(Range(1, 2, 8)) == "1..8 (opt 2)" and str(Range.fixed(3)) == "3"
    with pytest.raises(ValueError, match=r"range \(4, 1, 8\) must satisfy 1 <= min <= opt <= max"):
        Range(4, 1, 8)
    with pytest.raises(ValueError, match=r"batch range \(1, 2\): expected \(min, opt, max\)"):
        Range.of((1, 2), "batch range")
    with pytest.raises(TypeError, match="must be ints"):
        Range(1, 2.5, 4)


def test_shapes_resolve_against_the_model():
    cfg = tiny_config("ade20k")  # 64x64, stride 32
    fixed = Shapes(batch=(1, 2, 4)).resolved(cfg)
    assert (fixed.height, fixed.width) == (Range.fixed(64), Range.fixed(64))
    assert not fixed.dynamic_size and not fixed.follows_input(cfg)
    grown = Shapes(height=(64, 128, 256), width=(64, 64, 128)).resolved(cfg)
    assert grown.dynamic_size and grown.follows_input(cfg)
    assert Shapes(height=128, width=128).resolved(cfg).follows_input(cfg)  # fixed, but not the trained size
    with pytest.raises(ValueError, match=r"height \[100\] not accepted: .* multiples of its stride 32"):
        Shapes(height=(100, 128, 256)).resolved(cfg)
    with pytest.raises(ValueError, match="fixed latent grid"):
        Shapes(height=(64, 64, 128)).resolved(tiny_config("ade20k", use_vae=True))


# ------------------------------------------------------------------------------ the IO specs
@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_generator_io_is_the_documented_contract(preset, overrides):
    cfg = tiny_config(preset, **overrides)
    h, w = cfg.image_size
    inputs, outputs = generator_io(cfg, Shapes(batch=(1, 2, 4)).resolved(cfg))
    expected = [TensorSpec("label", "int32", ("batch", 1, h, w))]
    if cfg.use_instance:
        expected.append(TensorSpec("instance", "int32", ("batch", 1, h, w)))
    if cfg.use_vae:
        expected.append(TensorSpec("z", "float32", ("batch", cfg.z_dim)))
    assert list(inputs) == expected and outputs == (TensorSpec("image", "float32", ("batch", 3, h, w)),)
    assert [t.layout for t in inputs] == ["NCHW"] * (1 + cfg.use_instance) + ["NC"] * cfg.use_vae
    (uint8,) = generator_io(cfg, Shapes(batch=2).resolved(cfg), uint8_output=True)[1]
    assert uint8 == TensorSpec("image", "uint8", (2, h, w, 3)) and uint8.layout == "NHWC"  # batch fixed at 2


def test_dynamic_dimensions_named_and_shaped_by_their_ranges():
    cfg = tiny_config("ade20k")
    shapes = Shapes(Range(1, 4, 8), Range(64, 128, 256), Range(64, 64, 128)).resolved(cfg)
    (label,), (image,) = generator_io(cfg, shapes)
    assert label.shape == ("batch", 1, "height", "width") and label.axes == {"batch": 0, "height": 2, "width": 3}
    ranges = dim_ranges("generator", shapes.batch, shapes.height, shapes.width)
    assert label.profile(ranges) == ((1, 1, 64, 64), (4, 1, 128, 64), (8, 1, 256, 128))
    assert image.shape_at(ranges, "max") == (8, 3, 256, 128)
    (style,), (mu, logvar) = encoder_io(cfg.z_dim, Range(1, 1, 8))
    assert style == TensorSpec("style", "uint8", ("batch", "style_height", "style_width", 3))
    assert style.profile(dim_ranges("encoder", Range(1, 1, 8), STYLE_SIZE, STYLE_SIZE))[2] == (8, 2048, 2048, 3)
    assert mu == TensorSpec("mu", "float32", ("batch", cfg.z_dim)) and logvar.name == "logvar"


def test_runtime_reports_become_contract_specs():
    assert spec_from_runtime("label", "int32", (-1, 1, "h", None)) == TensorSpec("label", "int32",
                                                                                  ("batch", 1, "height", "width"))
    with pytest.raises(ValueError, match="dynamic dimension where the contract fixes one"):
        spec_from_runtime("z", "float32", (1, -1))
    with pytest.raises(ValueError, match=r"'image' float16 is not part of the gaugan-sdk contract"):
        spec_from_runtime("image", "float16", (1, 3, 8, 8))
    assert role_of(["label", "instance", "z"]) == "generator" and role_of(["style"]) == "encoder"
    with pytest.raises(ValueError, match="do not tell what this artifact is"):
        role_of(["instance", "label"])


# ------------------------------------------------------------------------------ everything derives from it
@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_sidecar_ort_io_trt_profile_and_triton_all_come_from_the_contract(exported, preset, overrides):
    from gaugan_sdk.backends.onnxruntime import OnnxRuntimeBackend

    generator, path, meta = exported[(preset, bool(overrides))]
    cfg = generator.cfg
    shapes = Shapes(Range(1, 2, 4)).resolved(cfg)
    inputs, outputs = generator_io(cfg, shapes)
    sidecar = read_sidecar(path)
    assert (sidecar.inputs, sidecar.outputs, sidecar.shapes) == (inputs, outputs, shapes)  # sidecar
    backend = OnnxRuntimeBackend(path, ["CPUExecutionProvider"])
    ort_in, ort_out, _ = backend.io()
    assert (tuple(ort_in), tuple(ort_out)) == (inputs, outputs)  # what the traced file says of itself
    described = metadata_from_io(path.name, "onnx", ort_in, ort_out, {"batch": shapes.batch})
    assert (described.inputs, described.outputs, described.shapes) == (inputs, outputs, shapes)
    ranges = dim_ranges("generator", shapes.batch, shapes.height, shapes.width)
    command = trtexec_command(path, path.with_suffix(".plan"), meta)  # the same profile the builder sets
    for which, flag in (("min", "--minShapes"), ("opt", "--optShapes"), ("max", "--maxShapes")):
        expected = ",".join(f"{t.name}:{'x'.join(map(str, t.shape_at(ranges, which)))}" for t in inputs)
        assert f"{flag}={expected}" in command
    triton = model_config("m", meta)
    for spec in (*inputs, *outputs):  # Triton owns the batch axis; the rest are the contract's dims
        dims = ", ".join("-1" if isinstance(d, str) else str(d) for d in spec.shape[1:])
        assert f'name: "{spec.name}"' in triton and f"dims: [ {dims} ]" in triton


def test_tensorrt_builder_sets_the_contracts_profile(exported, tmp_path, monkeypatch):
    """build_plan against a recording stand-in for the tensorrt and cuda.bindings modules: the optimization
    profile it sets is the contract's min/opt/max of every input (the engine calls themselves are not run)."""
    _, path, meta = exported[("cityscapes", True)]
    calls = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            pass

        def __getattr__(self, name):
            def method(*args, **kwargs):
                calls.append((name, args))
                return {"build_serialized_network": b"plan", "parse_from_file": True, "serialize": b"cache"}.get(
                    name, Recorder())
            return method

    class Network(Recorder):
        num_inputs = len(meta.inputs)

        def get_input(self, i):
            return types.SimpleNamespace(name=meta.inputs[i].name)

    class Builder(Recorder):
        def create_network(self, flags):
            return Network()

    trt = types.SimpleNamespace(__version__="10.99", Logger=Recorder, Builder=Builder, OnnxParser=Recorder,
                                NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=0),
                                MemoryPoolType=types.SimpleNamespace(WORKSPACE=0))
    trt.Logger.WARNING = 0
    runtime = types.SimpleNamespace(cudaGetDevice=lambda: (0, 0), cudaGetDeviceProperties=lambda d: (
        0, types.SimpleNamespace(name=b"Stand-in GPU", major=9, minor=0)), cudaError_t=types.SimpleNamespace(
        cudaSuccess=0))  # statuses are checked (gaugan_sdk.backends.tensorrt.cuda_call)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", types.SimpleNamespace(runtime=runtime))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    plan_meta = build_plan(path, tmp_path / "g.plan", meta)
    ranges = dim_ranges("generator", meta.batch, meta.height, meta.width)
    profile = [args for name, args in calls if name == "set_shape"]
    assert profile == [(t.name, *t.profile(ranges)) for t in meta.inputs]
    assert (tmp_path / "g.plan").read_bytes() == b"plan" and plan_meta.tensorrt["compute_capability"] == "9.0"


def test_encoder_metadata_comes_from_the_contract(tmp_path):
    import torch

    from gaugan_sdk.models import ConvEncoder

    cfg = tiny_config("coco", use_vae=True)
    torch.manual_seed(0)
    meta = export_encoder(ConvEncoder(cfg), tmp_path / "e.onnx", Range(1, 1, 8))
    assert (meta.inputs, meta.outputs) == encoder_io(cfg.z_dim, Range(1, 1, 8))
    assert (meta.height, meta.width) == (STYLE_SIZE, STYLE_SIZE) and meta.ranges["style_height"] == STYLE_SIZE


def test_a_checkpoint_runs_the_exported_graph_with_contract_metadata(tmp_path):
    from gaugan_sdk import Synthesizer
    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.models import ConvEncoder, EncoderGraph, GeneratorGraph

    cfg = tiny_config("coco", use_vae=True)
    save_checkpoint(tmp_path / "m.pt", cfg, realistic_generator(cfg), ConvEncoder(cfg).eval())
    with Synthesizer(tmp_path / "m.pt") as syn:
        assert isinstance(syn.generator.module, GeneratorGraph) and isinstance(syn.encoder.module, EncoderGraph)
        shapes = Shapes(Range(1, 1, 64)).resolved(cfg)
        assert (syn.meta.inputs, syn.meta.outputs, syn.meta.shapes) == (*generator_io(cfg, shapes), shapes)
        assert (syn.encoder_meta.inputs, syn.encoder_meta.outputs) == encoder_io(cfg.z_dim, Range(1, 1, 64))
        assert syn.backend == "torch" and syn.meta.format == "checkpoint"


# ------------------------------------------------------------------------------ the artifact kinds
def test_one_vocabulary_for_artifact_kinds():
    import importlib

    from export.cli import parse_args
    from export.job import writer_of

    assert FORMATS == ("onnx", "tensorrt", "pt2", "openvino", "checkpoint")
    assert {s: k.name for s, k in SUFFIXES.items()} == {".onnx": "onnx", ".plan": "tensorrt", ".engine": "tensorrt",
                                                         ".pt2": "pt2", ".xml": "openvino", ".pt": "checkpoint",
                                                         ".pth": "checkpoint"}
    assert sorted(EXPORT_FORMATS) == ["engine", "onnx", "openvino", "pt2", "trt"]  # "engine": Ultralytics' plan
    for fmt in EXPORT_FORMATS:
        assert parse_args(["--checkpoint", "x", "--format", fmt]).format == fmt
    for kind in KINDS:  # every row names modules that exist and provide what the rows promise
        for name in kind.backends:
            module = importlib.import_module(f"gaugan_sdk.backends.{name}")
            assert hasattr(module, "open_model" if kind.whole_model else "open_artifact"), (kind.name, name)
        if kind.records_hash:  # a file that records its own weights' hash: its default backend computes it
            assert hasattr(importlib.import_module(f"gaugan_sdk.backends.{kind.backend}"), "weights_sha256"), kind
        if kind.export_format:
            assert hasattr(writer_of(kind), "write"), kind.name
    assert [k.backends for k in KINDS] == [("onnxruntime", "openvino"), ("tensorrt",), ("aoti",), ("openvino",),
                                           ("torch",)]
    assert kind_of("engines/city.engine") is kind_named("tensorrt")
    with pytest.raises(ValueError, match=r"unknown artifact suffix '.trt'; accepted: .engine, .onnx"):
        kind_of("city.trt")
    cfg = tiny_config("ade20k")
    shapes = Shapes().resolved(cfg)
    with pytest.raises(ValueError, match="metadata format='trt'; accepted: onnx, tensorrt, pt2, openvino, checkpoint"):
        ArtifactMetadata.for_graph("generator", "trt", "fp32", cfg, generator_io(cfg, shapes), shapes)
