"""The OpenVINO backend on real OpenVINO: tiny exported generators and a style encoder, written as IRs with their
metadata in rt_info (`write_ir`) and read back, against ONNX Runtime on the same ONNX files; int8, the model
cache, the oneDNN ISA cap, and the errors for damaged files. Skipped where openvino is not installed."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import realistic_generator, tiny_config
from gaugan_sdk import Synthesizer
from gaugan_sdk.contract import Range, Shapes
from gaugan_sdk.cpu import cpu_flags, int8_saturation_reason
from gaugan_sdk.imaging import psnr
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.procedural import scene_batch

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'gaugan-sdk[openvino]')")
ovb = pytest.importorskip("gaugan_sdk.backends.openvino")
OpenVINOBackend, write_ir = ovb.OpenVINOBackend, ovb.write_ir

BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
NO_BF16 = not (cpu_flags() or frozenset()) & BF16_FLAGS
NO_BF16_REASON = "this CPU has no bf16 arithmetic (avx512_bf16 / amx_bf16): OpenVINO would run f32"
CITY_SHAPES = Shapes(batch=(1, 2, 4), height=(128, 128, 192), width=(128, 128, 256))  # stride 64


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """cityscapes (instances, dynamic batch and size) and coco + VAE (style encoder, z) as ONNX files (metadata in
    metadata_props, no sidecars), and as IRs written from them (metadata in rt_info, format "openvino")."""
    import torch

    from export.to_onnx import export_encoder, export_generator
    from gaugan_sdk.models import ConvEncoder

    folder = tmp_path_factory.mktemp("openvino")
    cfg = tiny_config("cityscapes")
    city = export_generator(realistic_generator(cfg), folder / "city.onnx", CITY_SHAPES)
    write_ir(folder / "city.onnx", folder / "city.xml", dataclasses.replace(city, format="openvino"))
    coco_cfg = tiny_config("coco", use_vae=True)
    torch.manual_seed(1)
    encoder = ConvEncoder(coco_cfg).eval()
    coco = export_generator(realistic_generator(coco_cfg), folder / "coco.onnx", Shapes(batch=(1, 2, 4)),
                            encoder_file="coco_encoder.onnx")
    style = export_encoder(encoder, folder / "coco_encoder.onnx")
    write_ir(folder / "coco.onnx", folder / "coco.xml",
             dataclasses.replace(coco, format="openvino", encoder="coco_encoder.xml"))
    write_ir(folder / "coco_encoder.onnx", folder / "coco_encoder.xml", dataclasses.replace(style, format="openvino"))
    return dict(folder=folder, city=city, coco=coco, style=style, cfg=cfg, coco_cfg=coco_cfg)


def scenes(cfg, count, size=None, seed=5):
    labels, instances = scene_batch(seed, count, *(size or cfg.image_size), label_set_for(cfg))
    return labels, instances


def city_feeds(labels, instances):
    return {"label": labels[:, None].astype(np.int32), "instance": instances[:, None].astype(np.int32)}


def onnxruntime(path, feeds):
    from gaugan_sdk.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(path, ["CPUExecutionProvider"])
    try:
        return backend.run(feeds)
    finally:
        backend.close()


# ------------------------------------------------------------------------------ metadata in the IR
def test_ir_carries_the_metadata_in_rt_info_and_bounded_ranges(models):
    folder, city = models["folder"], models["city"]
    model = ov.Core().read_model(str(folder / "city.xml"))
    assert json.loads(model.get_rt_info(["gaugan_sdk", "config"]).astype(str)) == city.config.to_dict()
    assert "framework" not in list(model.get_rt_info().keys())  # the ONNX's copy (format "onnx") is dropped
    assert str(model.inputs[0].get_partial_shape()) == "[1..4,1,128..192,128..256]"
    backend = OpenVINOBackend(folder / "city.xml", cache_dir=None)
    meta = ArtifactMetadata.from_props(backend.metadata_props())
    assert meta == dataclasses.replace(city, format="openvino", weights_sha256=ovb.weights_sha256(folder / "city.xml"))
    inputs, outputs, ranges = backend.io()
    assert [t.name for t in inputs] == ["label", "instance"] and outputs[0].shape == ("batch", 3, "height", "width")
    assert ranges == {"batch": Range(1, 1, 4), "height": Range(128, 128, 192), "width": Range(128, 128, 256)}


def test_onnx_metadata_props_reach_the_backend_through_openvino(models):
    """An .onnx read by OpenVINO, and an IR saved straight from it, carry metadata_props in rt_info["framework"]
    under the same keys: the backend returns exactly what ONNX Runtime reads."""
    import onnx

    folder = models["folder"]
    props = {p.key: p.value for p in onnx.load(folder / "city.onnx", load_external_data=False).metadata_props}
    ov.save_model(ov.Core().read_model(str(folder / "city.onnx")), str(folder / "plain.xml"), compress_to_fp16=False)
    for path in ("city.onnx", "plain.xml"):
        backend = OpenVINOBackend(folder / path, cache_dir=None)
        assert backend.metadata_props() == props, path
        assert backend.io()[2] == {}  # unbounded dimensions: no ranges recorded
    assert OpenVINOBackend(folder / "city.onnx", cache_dir=None).kind.name == "onnx"


# ------------------------------------------------------------------------------ numbers
@pytest.mark.parametrize("artifact", ["city.xml", "city.onnx"])
def test_f32_matches_onnxruntime(models, artifact):
    folder, cfg = models["folder"], models["cfg"]
    feeds = city_feeds(*scenes(cfg, 3, (128, 192)))
    backend = OpenVINOBackend(folder / artifact, cache_dir=None)
    assert backend.precision == "f32" and "inference precision f32;" in backend.execution
    (ours,), (reference,) = backend.run(feeds), onnxruntime(folder / "city.onnx", feeds)
    print(f"max |OpenVINO f32 - ONNX Runtime| = {np.abs(ours - reference).max():.2e}")
    assert ours.shape == (3, 3, 128, 192) and np.allclose(ours, reference, atol=5e-4)  # 7.6e-5 measured


@pytest.mark.skipif(NO_BF16, reason=NO_BF16_REASON)
def test_bf16_and_openvinos_default_within_a_psnr_bound(models):
    folder, cfg = models["folder"], models["cfg"]
    feeds = city_feeds(*scenes(cfg, 2, (128, 128)))
    (reference,) = onnxruntime(folder / "city.onnx", feeds)
    bf16 = OpenVINOBackend(folder / "city.xml", precision="bf16", cache_dir=None)
    default = OpenVINOBackend(folder / "city.xml", precision=None, cache_dir=None)
    assert bf16.precision == default.precision == "bf16"  # OpenVINO's choice on a bf16 CPU
    assert "bf16 (OpenVINO's default here)" in default.execution
    quality = psnr(bf16.run(feeds)[0], reference)
    print(f"bf16 vs ONNX Runtime fp32: {quality:.1f} dB")
    assert 36 <= quality < 80  # 42 dB measured; not f32 in disguise
    f16 = OpenVINOBackend(folder / "city.xml", precision="f16", cache_dir=None)
    if not (cpu_flags() or frozenset()) & {"avx512_fp16", "amx_fp16"}:  # no f16 arithmetic: bf16, and said so
        assert f16.precision == "bf16" and "bf16 (f16 asked)" in f16.execution


def test_synthesizer_runs_ir_batches_and_dynamic_sizes(models):
    folder, cfg = models["folder"], models["cfg"]
    with Synthesizer(folder / "city.xml") as ir, Synthesizer(folder / "city.onnx", backend="onnxruntime") as ort:
        assert ir.backend == "openvino" and ir.meta.format == "openvino" and ir.labels.name == "cityscapes"
        for count, size in ((6, (128, 128)), (1, (192, 256)), (3, (128, 256))):  # 6 maps: two calls (batch max 4)
            labels, instances = scenes(cfg, count, size)
            a, b = ir.run(labels, instances), ort.run(labels, instances)
            assert a.shape == (count, *size, 3) and np.abs(a.astype(int) - b).max() <= 1
    backend = OpenVINOBackend(folder / "city.xml", cache_dir=None)
    for shape, what in (((5, 1, 128, 128), "batch past 4"), ((1, 1, 256, 128), "height past 192"),
                        ((1, 1, 130, 128), "not a multiple of the stride")):
        ids = np.zeros(shape, np.int32)
        with pytest.raises(ValueError, match=r"OpenVINO refused inputs \{'label': \(" + str(shape[0])):
            backend.run({"label": ids, "instance": ids})
    with Synthesizer(folder / "city.onnx", backend="openvino") as through:
        assert through.backend == "openvino" and through.generator.kind.name == "onnx"
    with pytest.raises(ValueError, match="backend='tensorrt' does not run openvino artifacts; accepted: openvino"):
        Synthesizer(folder / "city.xml", backend="tensorrt")
    with pytest.raises(ValueError, match="device='cuda': OpenVINO runs city.xml on the CPU here"):
        Synthesizer(folder / "city.xml", device="cuda")


def test_style_model_with_z_and_encoder_as_irs(models):
    folder, cfg = models["folder"], models["coco_cfg"]
    labels, instances = scenes(cfg, 1)
    photo = np.random.default_rng(3).integers(0, 256, (2, 80, 96, 3), dtype=np.uint8)
    with Synthesizer(folder / "coco.xml") as ir, Synthesizer(folder / "coco.onnx", backend="onnxruntime") as ort:
        assert ir.encoder.name == "openvino" and ir.meta.z_dim == ort.meta.z_dim
        a, b = ir.run(labels[0], instances[0], seed=[1, 2, 3]), ort.run(labels[0], instances[0], seed=[1, 2, 3])
        assert a.shape == (3, *cfg.image_size, 3) and np.abs(a.astype(int) - b).max() <= 1
        (mu, logvar), (mu_ort, logvar_ort) = ir.encode(photo), ort.encode(photo)
        assert np.allclose(mu, mu_ort, atol=5e-4) and np.allclose(logvar, logvar_ort, atol=5e-4)
        styled = ir.run(labels[0], instances[0], style=photo[:1], seed=4)
        assert np.abs(styled.astype(int) - ort.run(labels[0], instances[0], style=photo[:1], seed=4)).max() <= 1


def test_run_many_streams_and_threads(models):
    folder, cfg = models["folder"], models["cfg"]
    batches = [city_feeds(*scenes(cfg, 2, (128, 128), seed=s)) for s in range(5)]
    backend = OpenVINOBackend(folder / "city.xml", hint="throughput", streams=2, cache_dir=None)
    assert backend.streams == 2 and backend.requests == 2 and "THROUGHPUT, 2 stream(s)" in backend.execution
    many = backend.run_many(batches)
    assert len(many) == 5 and all(np.array_equal(m[0], backend.run(f)[0]) for m, f in zip(many, batches))
    single = OpenVINOBackend(folder / "city.xml", threads=1, cache_dir=None)
    assert single.threads == 1 and "LATENCY, 1 stream(s), 1 thread(s)" in single.execution
    with pytest.raises(ValueError, match="hint='fast'; accepted: 'latency', 'throughput'"):
        OpenVINOBackend(folder / "city.xml", hint="fast")
    with pytest.raises(ValueError, match="precision='fp32'; accepted: f32, bf16, f16 or None"):
        OpenVINOBackend(folder / "city.xml", precision="fp32")


def test_close_frees_and_refuses_further_runs(models):
    folder, cfg = models["folder"], models["cfg"]
    feeds = city_feeds(*scenes(cfg, 1, (128, 128)))
    backend = OpenVINOBackend(folder / "city.xml", cache_dir=None)
    backend.run(feeds)
    backend.close()
    assert backend.compiled is None
    for call in (lambda: backend.run(feeds), lambda: backend.run_many([feeds])):
        with pytest.raises(RuntimeError, match="the OpenVINO backend of city.xml is closed"):
            call()
    syn = Synthesizer(folder / "city.xml")
    syn.close()
    with pytest.raises(RuntimeError, match="is closed"):
        syn.run(np.zeros((128, 128), np.uint8))


def test_ir_without_metadata_runs_from_its_bounded_io(models, tmp_path):
    folder = models["folder"]
    model = ov.Core().read_model(str(folder / "city.xml"))
    del model.get_rt_info()["gaugan_sdk"]
    ov.save_model(model, str(tmp_path / "bare.xml"), compress_to_fp16=False)
    with pytest.warns(UserWarning, match="bare.xml carries no metadata"):
        syn = Synthesizer(tmp_path / "bare.xml", labels="cityscapes")
    assert syn.meta.height == Range(128, 128, 192) and syn.meta.precision == "unknown"
    assert syn.run(np.zeros((128, 256), np.uint8), np.zeros((128, 256), np.int32)).shape == (128, 256, 3)


# ------------------------------------------------------------------------------ errors
def test_damaged_files_are_value_errors_naming_the_file(models, tmp_path):
    folder = models["folder"]
    xml, weights = (folder / "city.xml").read_bytes(), (folder / "city.bin").read_bytes()
    cases = {
        "truncated_xml": (xml[: len(xml) // 2], weights, r"is not a loadable OpenVINO IR \(\.xml\) \(truncated"),
        "truncated_bin": (xml, weights[: len(weights) // 2], "is not a loadable OpenVINO IR .*Incorrect weights"),
        "missing_bin": (xml, None, r"its weights missing_bin.bin are missing"),
        "html": (b"<?xml version='1.0'?><html><body>no</body></html>", b"", "is not an OpenVINO IR"),
        "onnx_inside": ((folder / "city.onnx").read_bytes(), b"", "is not an OpenVINO IR"),
    }
    for name, (text, data, message) in cases.items():
        (tmp_path / f"{name}.xml").write_bytes(text)
        if data is not None:
            (tmp_path / f"{name}.bin").write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}.xml {message}" if "its weights" not in message else message):
            OpenVINOBackend(tmp_path / f"{name}.xml", cache_dir=None)
    (tmp_path / "cut.onnx").write_bytes((folder / "city.onnx").read_bytes()[:100_000])
    with pytest.raises(ValueError, match="cut.onnx is not a loadable ONNX model .*can't be parsed"):
        OpenVINOBackend(tmp_path / "cut.onnx", cache_dir=None)
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ValueError, match="noise.onnx is not an ONNX model"):
        OpenVINOBackend(tmp_path / "noise.onnx", cache_dir=None)
    with pytest.raises(FileNotFoundError, match="artifact not found: .*gone.xml"):
        Synthesizer(tmp_path / "gone.xml")
    (tmp_path / "alone").mkdir()  # the .xml copied without its .bin: named before any hash or parse reads it
    (tmp_path / "alone" / "city.xml").write_bytes(xml)
    with pytest.raises(FileNotFoundError, match=r"city.xml needs city.bin beside it.*city.xml \+ city.bin"):
        Synthesizer(tmp_path / "alone" / "city.xml")


# ------------------------------------------------------------------------------ the model cache
def test_cache_folder_beside_the_artifact_is_reused_by_a_second_process(models, tmp_path):
    folder = models["folder"]
    for suffix in (".xml", ".bin"):
        (tmp_path / f"city{suffix}").write_bytes((folder / f"city{suffix}").read_bytes())
    script = textwrap.dedent(f"""
        from gaugan_sdk.backends.openvino import OpenVINOBackend
        print(OpenVINOBackend({str(tmp_path / 'city.xml')!r}).loaded_from_cache)
    """)
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["False", "True"], [r.stderr[-500:] for r in runs]
    assert [p.suffix for p in (tmp_path / "city.xml.ov_cache").iterdir()] == [".blob"]


def test_cache_is_keyed_by_the_weights_not_the_path(models, tmp_path):
    """Replacing the .bin alone (the .xml unchanged) must not serve the old compiled weights."""
    folder, cfg = models["folder"], models["cfg"]
    xml = (folder / "city.xml").read_text()
    (tmp_path / "city.xml").write_text(xml)
    weights = bytearray((folder / "city.bin").read_bytes())
    (tmp_path / "city.bin").write_bytes(weights)
    feeds = city_feeds(*scenes(cfg, 1, (128, 128)))
    before = OpenVINOBackend(tmp_path / "city.xml").run(feeds)[0]
    convs = [(int(o), int(s)) for o, s in re.findall(r'element_type="f32" shape="\d+, \d+, 3, 3" offset="(\d+)" '
                                                      r'size="(\d+)"', xml)]
    offset, size = max(convs, key=lambda c: c[1])
    block = np.frombuffer(weights, np.float32, size // 4, offset) * 2
    weights[offset:offset + size] = block.tobytes()
    (tmp_path / "city.bin").write_bytes(weights)
    cached = OpenVINOBackend(tmp_path / "city.xml")
    fresh = OpenVINOBackend(tmp_path / "city.xml", cache_dir=None)
    after = cached.run(feeds)[0]
    assert not cached.loaded_from_cache and np.array_equal(after, fresh.run(feeds)[0])
    assert not np.allclose(after, before, atol=1e-3)


def test_cache_falls_back_to_the_home_folder_where_the_artifact_folder_is_read_only(models, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(ovb.os, "access", lambda path, mode: False)
    artifact = models["folder"] / "city.xml"
    expected = ovb.cache_folder(artifact)
    assert expected.parent == tmp_path / "home" / ".cache" / "gaugan-sdk" / "ov"
    assert re.fullmatch(r"city\.xml-[0-9a-f]{12}", expected.name)
    backend = OpenVINOBackend(artifact)
    assert backend.cache == expected and any(expected.iterdir()) and str(expected) in backend.execution


# ------------------------------------------------------------------------------ int8
@pytest.fixture(scope="module")
def int8_ir(models):
    from export.int8 import convert_int8
    from export.to_onnx import save_onnx
    from export.verify import PsnrProbe, generator_feeds

    folder, meta, cfg = models["folder"], models["city"], models["cfg"]
    feeds = generator_feeds(meta, *scenes(cfg, 4, (128, 128), seed=0))
    model, _ = convert_int8(folder / "city.onnx", feeds, PsnrProbe(folder / "city.onnx", feeds, folder), 0.0)
    int8 = dataclasses.replace(meta, precision="int8")
    save_onnx(model, folder / "city_int8.onnx", int8)
    write_ir(folder / "city_int8.onnx", folder / "city_int8.xml", dataclasses.replace(int8, format="openvino"))
    return folder / "city_int8.xml"


def test_int8_ir_keeps_int8_weights_and_runs_on_integer_kernels(models, int8_ir):
    import collections

    ir = ov.Core().read_model(str(int8_ir))
    ops = collections.Counter(op.get_type_name() for op in ir.get_ops())
    int8_constants = sum(op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i8
                         for op in ir.get_ops())
    assert ops["FakeQuantize"] > 0 and int8_constants > 0  # activations: FakeQuantize; weights stay int8
    feeds = city_feeds(*scenes(models["cfg"], 2, (128, 128), seed=9))
    backend = OpenVINOBackend(int8_ir, cache_dir=None, int8_mode="fused")
    assert backend.int8 and "int8 FakeQuantize on OpenVINO's integer kernels" in backend.execution
    from gaugan_sdk.backends.onnxruntime import OnnxRuntimeBackend

    (fp32,) = onnxruntime(models["folder"] / "city.onnx", feeds)
    (exact,) = OnnxRuntimeBackend(int8_ir.with_suffix(".onnx"), ["CPUExecutionProvider"], int8_mode="exact").run(feeds)
    (ours,) = backend.run(feeds)
    print(f"int8 vs ONNX Runtime fp32: OpenVINO {psnr(ours, fp32):.1f} dB, ONNX Runtime exact Q/DQ "
          f"{psnr(exact, fp32):.1f} dB; OpenVINO vs exact {psnr(ours, exact):.1f} dB")
    assert ours.shape == exact.shape and np.isfinite(ours).all()
    if (saturation := int8_saturation_reason()) is not None:  # measured on an AVX2-only EPYC: 13.7 dB
        pytest.skip(f"the quality check needs exact integer kernels; {saturation} (OpenVINO's as well)")
    assert psnr(ours, exact) >= 35 and psnr(ours, fp32) >= psnr(exact, fp32) - 1


def test_int8_auto_refuses_where_the_integer_kernels_saturate(models, int8_ir, monkeypatch):
    import gaugan_sdk.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda *a: frozenset({"avx", "avx2", "fma"}))
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    with pytest.raises(ValueError, match="city_int8.xml is int8, and OpenVINO's integer kernels saturate"):
        OpenVINOBackend(int8_ir, cache_dir=None)
    assert OpenVINOBackend(int8_ir, cache_dir=None, int8_mode="fused").int8_saturation
    with pytest.raises(ValueError, match="int8_mode='exact' for city_int8.xml: OpenVINO runs int8"):
        OpenVINOBackend(int8_ir, cache_dir=None, int8_mode="exact")
    assert not OpenVINOBackend(models["folder"] / "city.xml", cache_dir=None, int8_mode="exact").int8


# ------------------------------------------------------------------------------ the oneDNN ISA cap
@pytest.mark.skipif(NO_BF16, reason=NO_BF16_REASON)
def test_isa_capped_to_avx2_refuses_bf16_instead_of_crashing_and_runs_f32(models, tmp_path):
    """ONEDNN_MAX_CPU_ISA=AVX2 (the AVX2-only path on an AVX-512 machine): OpenVINO still picks bf16 kernels
    that do not exist there and crashes at the first inference; the backend refuses, and f32 runs the AVX2
    kernels with the same numbers."""
    folder, cfg = models["folder"], models["cfg"]
    feeds = city_feeds(*scenes(cfg, 1, (128, 128)))
    np.save(tmp_path / "label.npy", feeds["label"])
    script = textwrap.dedent(f"""
        import numpy as np
        from gaugan_sdk.backends.openvino import OpenVINOBackend
        path = {str(folder / 'city.xml')!r}
        try:
            OpenVINOBackend(path, precision=None, cache_dir=None)
        except ValueError as e:
            print("refused:", e)
        label = np.load({str(tmp_path / 'label.npy')!r})
        backend = OpenVINOBackend(path, cache_dir=None)
        np.save({str(tmp_path / 'avx2.npy')!r}, backend.run({{"label": label, "instance": label}})[0])
    """)
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-800:]
    assert "refused: city.xml: OpenVINO has no bf16 convolution kernel here" in run.stdout
    assert "capped to AVX2 by ONEDNN_MAX_CPU_ISA" in run.stdout
    native = OpenVINOBackend(folder / "city.xml", cache_dir=None).run(feeds)[0]
    assert np.allclose(np.load(tmp_path / "avx2.npy"), native, atol=1e-5)


def test_no_torch_import_for_an_ir(models):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from gaugan_sdk import Synthesizer
        syn = Synthesizer({str(models['folder'] / 'city.xml')!r})
        assert syn.run(np.zeros((128, 128), np.uint8), np.zeros((128, 128), np.int32)).shape == (128, 128, 3)
        print("torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-800:]
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------ export and the runtime's plan
@pytest.fixture(scope="module")
def exported_irs(checkpoints, tmp_path_factory):
    """gaugan-export's --format openvino of the tiny cityscapes (fp32, fp16) and coco + VAE (fp32) checkpoints,
    and the default ONNX export of the cityscapes one, each verified (int8: a slow test of its own)."""
    from export import export_checkpoint

    folder = tmp_path_factory.mktemp("irs")
    common = dict(calib_count=2, verbose=False)
    out = {p: export_checkpoint(checkpoints / "city.pt", format="openvino", precision=p,
                                output=folder / f"city_{p}.xml", **common) for p in ("fp32", "fp16")}
    out["coco"] = export_checkpoint(checkpoints / "coco.pt", format="openvino", output=folder / "coco.xml", **common)
    out["onnx"] = export_checkpoint(checkpoints / "city.pt", format="onnx", output=folder / "city.onnx", **common)
    return out


def _check_ir_export(result, precision):
    meta = result.metadata[0]
    assert (meta.format, meta.precision) == ("openvino", precision) and result.verification[0].passed
    assert meta.weights_sha256 == ovb.weights_sha256(result.output)  # the IR checks its own .bin
    return result.output.with_suffix(".bin").stat().st_size


def test_export_writes_verified_irs_in_each_precision(exported_irs):
    fp32, fp16 = exported_irs["fp32"], exported_irs["fp16"]
    assert sorted(p.name for p in fp32.artifacts) == ["city_fp32.bin", "city_fp32.xml", "city_fp32.xml.json",
                                                      "city_fp32.xml.verify.json"]
    assert _check_ir_export(fp16, "fp16") < 0.6 * _check_ir_export(fp32, "fp32")  # weights stored in fp16
    assert fp16.verification[0].psnr_db >= 40
    assert sorted(p.name for p in exported_irs["coco"].artifacts) == [
        "coco.bin", "coco.xml", "coco.xml.json", "coco.xml.verify.json", "coco_encoder.bin", "coco_encoder.xml",
        "coco_encoder.xml.json"]


@pytest.mark.skipif(NO_BF16, reason=NO_BF16_REASON)
def test_bf16_is_verified_at_export_and_recorded_for_the_plan(exported_irs):
    for name in ("fp32", "fp16", "onnx"):
        result = exported_irs[name]
        verified = result.metadata[0].verified
        assert verified["openvino:bf16"] >= 40, (name, verified)  # the gate of bf16, as fp16's
        bf16 = [r for r in result.verification if "inference precision bf16" in r.execution]
        assert bf16 and bf16[0].min_psnr == 40.0 and bf16[0].passed


@pytest.mark.slow
def test_export_writes_a_verified_int8_ir(exported_irs, checkpoints, tmp_path):
    """int8 from the same Q/DQ file as ONNX: int8 weights in the .bin, verified at the int8 gate, no bf16 record
    (int8 runs OpenVINO's integer kernels)."""
    from export import export_checkpoint

    int8 = export_checkpoint(checkpoints / "city.pt", format="openvino", precision="int8", calib_count=4,
                             output=tmp_path / "city_int8.xml", verbose=False)
    assert _check_ir_export(int8, "int8") < exported_irs["fp32"].output.with_suffix(".bin").stat().st_size
    assert int8.verification[0].psnr_db >= 35
    assert "openvino:bf16" not in (int8.metadata[0].verified or {})


def test_the_runtime_follows_the_cpu_plan_and_says_so(exported_irs, monkeypatch):
    import gaugan_sdk.synthesizer as synthesizer
    from gaugan_sdk.cpu import PLANS

    onnx = exported_irs["onnx"].output
    monkeypatch.setattr(synthesizer, "cpu_plan", lambda: PLANS["avx2"])
    with Synthesizer(onnx) as plain:
        assert plain.chosen.label == "onnxruntime" and "the avx2 CPU plan" in repr(plain)
    monkeypatch.setattr(synthesizer, "cpu_plan", lambda: PLANS["amx"])
    with Synthesizer(onnx) as fast:
        verified = "openvino:bf16" in (exported_irs["onnx"].metadata[0].verified or {})
        assert fast.chosen.label == ("openvino bf16" if verified else "openvino f32"), fast.chosen
        assert "the amx CPU plan" in repr(fast) and fast.backend == "openvino"
        labels = np.zeros((2, 64, 128), np.uint8)
        with Synthesizer(onnx, backend="onnxruntime") as reference:  # asked: overrides the plan
            assert reference.chosen.label == "onnxruntime"
            quality = psnr(fast.run(labels).astype(np.float64), reference.run(labels).astype(np.float64), 255.0)
        assert quality >= 40  # the gate the plan relies on


def test_throughput_runs_a_batch_and_a_stream_in_flight_with_the_same_images(exported_irs):
    path = exported_irs["fp32"].output
    labels = scene_batch(11, 5, 64, 128, label_set_for(tiny_config("cityscapes")))[0]
    with Synthesizer(path) as latency, Synthesizer(path, hint="throughput") as throughput:
        assert throughput.generator.requests >= 2 and "THROUGHPUT" in throughput.execution
        one_by_one = latency.run(labels)
        assert np.array_equal(throughput.run(labels), one_by_one)
        assert np.array_equal(np.stack(list(throughput.stream(list(labels)))), one_by_one)


def test_an_ultralytics_style_folder_opens_its_ir(exported_irs, tmp_path):
    folder = tmp_path / "city_openvino_model"
    folder.mkdir()
    for path in exported_irs["fp32"].artifacts:
        if path.suffix in (".xml", ".bin") or path.name.endswith(".xml.json"):
            (folder / path.name.replace("city_fp32", "city")).write_bytes(path.read_bytes())
    assert Synthesizer(folder, check_hash=False).path == folder / "city.xml"
    (folder / "other.xml").write_text("<x/>")
    assert Synthesizer(folder, check_hash=False).path == folder / "city.xml"  # the one named after the folder
    (tmp_path / "two").mkdir()
    for name in ("a.xml", "b.xml"):
        (tmp_path / "two" / name).write_text("<x/>")
    with pytest.raises(ValueError, match="is a folder; accepted: an artifact file .* holding one .xml IR"):
        Synthesizer(tmp_path / "two")


def test_a_changed_bin_is_refused_even_without_the_sidecar(exported_irs, tmp_path):
    for path in exported_irs["fp32"].artifacts:
        if path.suffix in (".xml", ".bin"):
            (tmp_path / path.name).write_bytes(path.read_bytes())
    xml = tmp_path / "city_fp32.xml"
    Synthesizer(xml).close()  # no sidecar: the IR's own record of its weights is checked
    weights = bytearray(xml.with_suffix(".bin").read_bytes())
    weights[len(weights) // 2] ^= 0x40
    xml.with_suffix(".bin").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="city_fp32.xml: its weights are not those it was exported with"):
        Synthesizer(xml)
    Synthesizer(xml, check_hash=False).close()
