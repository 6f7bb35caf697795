"""INT8: the CPU rule, exact Q/DQ execution in verification and the runtime, Q/DQ placement, the graph surgery
that keeps convs in float, and the per-layer sensitivity search. Real quantized ONNX files of tiny models, run by
real ONNX Runtime sessions; the full-size check is `slow`."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import onnx
import pytest

from helpers import LAYOUTS
import gaugan_sdk.cpu as cpu
import gaugan_sdk.synthesizer as synthesizer_module
from export.calibration import INT8_MASKS
from export.int8 import convert_int8
from export.qdq import conv_labels, float_conv_weights, keep_in_float, quantized_convs
from export.to_onnx import save_onnx, unsupported_ops
from export.verify import PsnrProbe, generator_feeds, onnx_runner, verify_generator
from gaugan_sdk import Synthesizer
from gaugan_sdk.imaging import image_to_uint8, psnr
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.precisions import PRECISIONS
from gaugan_sdk.procedural import scene_batch

TARGET = PRECISIONS["int8"].min_psnr
AVX2_ONLY = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma", "f16c"})
VNNI = AVX2_ONLY | {"avx512f", "avx512bw", "avx512_vnni"}


# ------------------------------------------------------------------------------ the CPU rule
@pytest.mark.parametrize("flags, machine, saturates", [
    (AVX2_ONLY, "x86_64", True),  # the CI machine class that got 17 dB
    (AVX2_ONLY | {"avx512f", "avx512bw"}, "x86_64", True),  # AVX-512 without VNNI: vpmaddubsw too
    (VNNI, "x86_64", False),
    (AVX2_ONLY | {"avx_vnni"}, "AMD64", False),  # Alder Lake-style AVX-VNNI; Windows' machine name
    (AVX2_ONLY | {"amx_int8"}, "x86_64", False),
    (None, "x86_64", True),  # flags unreadable: exact, the safe side
    (frozenset({"fp", "asimd"}), "aarch64", False),  # Arm accumulates in 32 bits
])
def test_cpu_rule_names_the_machines_whose_fused_int8_saturates(flags, machine, saturates, monkeypatch):
    monkeypatch.setattr(cpu, "cpu_flags", lambda *a: flags)
    reason = cpu.int8_saturation_reason(machine=machine)
    assert (reason is not None) == saturates
    assert cpu.resolve_int8_mode("auto", machine=machine) == (("exact", reason) if saturates else ("fused", None))
    assert cpu.resolve_int8_mode("fused", machine=machine) == ("fused", None)  # forcing always wins
    assert cpu.resolve_int8_mode("exact", machine=machine) == ("exact", None)


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    (tmp_path / "x86").write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\n")
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert cpu.cpu_flags(tmp_path / "x86") == {"fpu", "avx2", "avx512_vnni"}
    assert cpu.cpu_flags(tmp_path / "arm") == {"fp", "asimd", "asimddp"}
    assert cpu.cpu_flags(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="int8_mode='fast'; accepted: 'auto', 'exact', 'fused'"):
        cpu.resolve_int8_mode("fast")


# ------------------------------------------------------------------------------ quantization
def calibration_feeds(meta, count=8, seed=0):
    labels, instances = scene_batch(seed, count, *meta.config.image_size, label_set_for(meta.config))
    return generator_feeds(meta, labels, instances)


@pytest.mark.parametrize("preset, overrides", [  # coco + VAE covers the style path by default
    *LAYOUTS[:3], pytest.param(*LAYOUTS[3], marks=pytest.mark.slow), LAYOUTS[4]])
def test_int8_qdq_is_tensorrt_placed_and_reaches_the_target(exported, preset, overrides, tmp_path):
    generator, path, meta = exported[(preset, bool(overrides))]
    feeds = calibration_feeds(meta)
    measure = PsnrProbe(path, feeds, tmp_path)

    cache = tmp_path / "calib.json"
    model, report = convert_int8(path, feeds, measure, TARGET, cache_path=cache)
    onnx.save(model, tmp_path / "int8.onnx")
    int8 = dataclasses.replace(meta, precision="int8")
    check = verify_generator(onnx_runner(tmp_path / "int8.onnx"), "int8.onnx", int8, generator, feeds)
    print(f"{preset} {overrides}: {'; '.join(report.notes)}; vs eager: {check.summary()}")
    assert check.passed and check.psnr_db >= TARGET and "disable_quant_qdq" in check.execution
    nodes = list(model.graph.node)
    assert sum(n.op_type == "QuantizeLinear" for n in nodes) > 10 and not unsupported_ops(model)
    init = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [init[n.input[2]] for n in nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                   and len(n.input) > 2]
    assert zero_points and all(not zp.any() for zp in zero_points)  # symmetric: TensorRT accepts only 0
    weight_scales = [init[n.input[1]] for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in init
                     and init[n.input[0]].ndim == 4]
    assert weight_scales and all(s.ndim == 1 and s.size > 1 for s in weight_scales)  # per output channel
    # TensorRT's placement: every conv's input quantized, no conv output (the epilogue and residual adds fuse)
    producers = {o: n.op_type for n in nodes for o in n.output}
    readers = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n.op_type)
    int8_convs = set(quantized_convs(model))
    convs = [n for n in nodes if n.name in int8_convs]
    assert len(convs) == sum(n.op_type == "Conv" for n in nodes) - len(report.kept_fp16_nodes)
    assert all(producers.get(c.input[0]) == "DequantizeLinear" for c in convs)
    assert not any("QuantizeLinear" in readers.get(c.output[0], []) for c in convs)
    assert "computed" in report.notes[0]
    _, again = convert_int8(path, feeds, measure, TARGET, cache_path=cache)
    assert "ranges from the cache" in again.notes[0] and again.psnr_db == pytest.approx(report.psnr_db)


def test_keep_in_float_is_exact_surgery(exported, tmp_path):
    """All convs taken back out of int8 in fp32 = the float model (no Q/DQ node left); in fp16 = fp16 quality."""
    _, path, meta = exported[("coco", True)]
    feeds = calibration_feeds(meta, count=4)
    model, _ = convert_int8(path, feeds, PsnrProbe(path, feeds, tmp_path), target_psnr_db=0.0)
    float_model = onnx.load(path)
    weights = float_conv_weights(float_model)
    convs = quantized_convs(model)
    assert len(convs) == sum(n.op_type == "Conv" for n in float_model.graph.node)
    expected = onnx_runner(path)(feeds)[0]
    for dtype, check in (("fp32", lambda out: np.abs(out - expected).max() <= 1e-5),
                         ("fp16", lambda out: psnr(out, expected) >= 45)):
        restored = keep_in_float(model, weights, convs, dtype)
        ops = [n.op_type for n in restored.graph.node]
        assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops and not unsupported_ops(restored)
        onnx.save(restored, tmp_path / f"{dtype}.onnx")
        out = onnx_runner(tmp_path / f"{dtype}.onnx")(feeds)[0]
        assert check(out), (dtype, np.abs(out - expected).max(), psnr(out, expected))
    with pytest.raises(ValueError, match="no float weights for the convs"):
        keep_in_float(model, weights, ["not_a_conv"])


def test_sensitivity_search_keeps_the_worst_convs_in_fp16(exported, tmp_path):
    _, path, meta = exported[("cityscapes", False)]
    feeds = calibration_feeds(meta)
    measure = PsnrProbe(path, feeds, tmp_path)
    _, plain = convert_int8(path, feeds, measure, target_psnr_db=0.0)  # every conv in int8
    assert plain.kept_fp16_nodes == []

    target = plain.psnr_db + 4.0  # reachable by taking a few convs out
    model, report = convert_int8(path, feeds, measure, target)
    print("; ".join(report.notes))
    assert report.psnr_db >= target and 0 < len(report.kept_fp16_nodes) <= 18  # 25% of 74 convs
    worst_first = report.notes[2].split("worst: ")[1].split(",")[0].split(" ")[0]
    assert report.kept_fp16_nodes[0] == worst_first  # the most sensitive conv goes first
    labels = {v: k for k, v in conv_labels(onnx.load(path)).items()}
    casts = {n.name for n in model.graph.node if n.op_type == "Cast"}
    init = {i.name: i.data_type for i in model.graph.initializer}
    for label in report.kept_fp16_nodes:  # Cast -> Conv(fp16 weights) -> Cast, as TensorRT runs it
        conv = next(n for n in model.graph.node if n.name == labels[label])
        assert {f"{conv.name}.cast_in", f"{conv.name}.cast_out"} <= casts
        assert init[conv.input[1]] == onnx.TensorProto.FLOAT16
    assert not unsupported_ops(model)

    _, capped = convert_int8(path, feeds, measure, target_psnr_db=99.0, max_fp16_fraction=0.1)  # unreachable
    assert len(capped.kept_fp16_nodes) == 7 and "below the 99.0 dB target with 7 convs" in capped.notes[-1]


# ------------------------------------------------------------------------------ the runtime
@pytest.fixture(scope="module")
def int8_artifact(exported, tmp_path_factory):
    generator, path, meta = exported[("cityscapes", False)]
    folder = tmp_path_factory.mktemp("int8")
    feeds = calibration_feeds(meta)
    model, _ = convert_int8(path, feeds, PsnrProbe(path, feeds, folder), TARGET)
    save_onnx(model, folder / "city_int8.onnx", dataclasses.replace(meta, precision="int8"))
    return generator, folder / "city_int8.onnx", meta


def test_runtime_int8_modes_exact_meets_the_target_and_fused_differs(int8_artifact):
    generator, path, meta = int8_artifact
    labels, _ = scene_batch(77, 4, *meta.config.image_size, label_set_for(meta.config))
    import torch

    from gaugan_sdk.models import GeneratorGraph

    with torch.no_grad():
        ids = torch.from_numpy(labels[:, None].astype(np.int32))
        eager = image_to_uint8(GeneratorGraph(generator)(ids, ids).numpy())  # no instance map: class boundaries
    with Synthesizer(path, int8_mode="exact") as exact, \
            Synthesizer(path, int8_mode="fused", backend="onnxruntime") as fused:
        assert exact.generator.int8_execution == "exact" and fused.generator.int8_execution == "fused"
        a, b = exact.run(labels), fused.run(labels)
    print(f"vs eager: exact {psnr(a, eager, 255):.2f} dB, fused {psnr(b, eager, 255):.2f} dB (this CPU: "
          f"{cpu.int8_saturation_reason() or 'VNNI'})")
    assert psnr(a, eager, 255) >= TARGET
    assert not np.array_equal(a, b)  # the fused integer kernels compute something else, on every CPU


@pytest.mark.parametrize("flags, chosen", [(AVX2_ONLY, "exact"), (VNNI, "fused")])
def test_runtime_auto_mode_follows_the_cpu_and_warns_once(int8_artifact, flags, chosen, monkeypatch):
    _, path, _ = int8_artifact
    monkeypatch.setattr(cpu, "cpu_flags", lambda *a: flags)
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(synthesizer_module, "_warned_exact_int8", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = Synthesizer(path, backend="onnxruntime"), Synthesizer(path, backend="onnxruntime")
    assert first.generator.int8_execution == second.generator.int8_execution == chosen
    said = [str(w.message) for w in caught if "int8" in str(w.message)]
    if chosen == "exact":
        assert len(said) == 1 and "no int8 dot-product instructions" in said[0] and "fp32 model's speed" in said[0]
    else:
        assert said == []
    with pytest.raises(ValueError, match="int8_mode='int4'; accepted"):
        Synthesizer(path, int8_mode="int4")


# ------------------------------------------------------------------------------ full size
@pytest.mark.slow
def test_real_size_cityscapes_int8_default_reaches_the_target(tmp_path):
    """The default int8 export (32 procedural calibration masks, exact Q/DQ) of the full cityscapes generator,
    random weights with recalibrated batch norm, meets the target on held-out masks."""
    from export.to_onnx import apply_precision
    from export.to_onnx import export_generator
    from gaugan_sdk.contract import Shapes
    from gaugan_sdk.config import GeneratorConfig
    from helpers import realistic_generator

    cfg = GeneratorConfig.preset("cityscapes")
    generator = realistic_generator(cfg)
    meta = export_generator(generator, tmp_path / "city.onnx", Shapes(batch=(1, 1, 2)))
    calib = calibration_feeds(meta, count=INT8_MASKS)
    int8, report = apply_precision(tmp_path / "city.onnx", tmp_path / "city8.onnx", meta, "int8", calib)
    print("; ".join(report.notes))
    held_out = calibration_feeds(meta, count=2, seed=4000)
    check = verify_generator(onnx_runner(tmp_path / "city8.onnx"), "city8.onnx", int8, generator, held_out)
    print(check.summary())
    assert report.psnr_db >= TARGET and check.passed
