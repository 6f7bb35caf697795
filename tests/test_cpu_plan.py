"""The per-CPU plan (gaugan_sdk.cpu): the class read from the CPU's flags, each class's measured choice, runtimes
that are not installed, and the choice for an artifact: a reduced precision only where the artifact met its gate.
Fake flag sets stand in for the CPUs this machine is not; no speed is asserted."""

from __future__ import annotations

import dataclasses

import pytest

from gaugan_sdk.contract import GraphVariant
from gaugan_sdk.cpu import CPU_CLASSES, PLANS, choose_execution, cpu_class, cpu_plan
from gaugan_sdk.kinds import CHECKPOINT, ONNX, OPENVINO, TENSORRT
from gaugan_sdk.metadata import ArtifactMetadata

AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
ICELAKE = frozenset({"avx2", "avx512f", "avx512_vnni"})
ALDERLAKE = frozenset({"avx2", "avx_vnni"})
HASWELL = frozenset({"avx", "avx2", "fma"})
BOTH = frozenset({"onnxruntime", "openvino"})


@pytest.mark.parametrize("flags, machine, expected", [
    (AMX, "x86_64", "amx"), (ZEN4, "x86_64", "avx512_bf16"), (ICELAKE, "x86_64", "avx512_vnni"),
    (ALDERLAKE, "x86_64", "avx_vnni"), (HASWELL, "x86_64", "avx2"), (frozenset({"asimd"}), "aarch64", "arm"),
    (frozenset(), "x86_64", "unknown"), (None, "x86_64", None),
])
def test_the_class_follows_the_flags(flags, machine, expected, monkeypatch):
    if flags is None:  # unreadable flags (not Linux)
        import gaugan_sdk.cpu as cpu

        monkeypatch.setattr(cpu, "cpu_flags", lambda *a: None)
        assert cpu_class(None, machine) == "unknown"
        return
    assert cpu_class(flags, machine) == expected


def test_every_class_has_a_plan_with_its_evidence():
    assert set(PLANS) == {name for name, _, _ in CPU_CLASSES} | {"arm", "unknown"}
    for plan in PLANS.values():
        assert plan.evidence and plan.precision in ("f32", "bf16") and plan.graph in ("fast", "sparse")
        assert {plan.dense, plan.sparse, plan.int8} <= BOTH
    # bf16 only where the CPU has bf16 units; OpenVINO's int8 kernels only where int8 dot products exist
    for name, needs, _ in CPU_CLASSES:
        plan = PLANS[name]
        assert plan.precision == "f32" or needs & {"amx_bf16", "avx512_bf16"}, name
        assert plan.int8 == "onnxruntime" or needs & {"amx_int8", "avx512_vnni", "avx512_bf16"}, name
    # never slower than the default where nothing was measured faster: ONNX Runtime, f32
    for name in ("avx2", "arm", "unknown"):
        assert (PLANS[name].dense, PLANS[name].precision) == ("onnxruntime", "f32")


def test_a_runtime_that_is_not_installed_falls_back_to_onnx_runtime_in_f32():
    plan = cpu_plan(ZEN4, "x86_64", frozenset({"onnxruntime"}))
    assert (plan.dense, plan.sparse, plan.int8, plan.precision) == ("onnxruntime",) * 3 + ("f32",)
    assert "openvino not installed here: onnxruntime" in plan.evidence
    assert cpu_plan(ZEN4, "x86_64", BOTH) == PLANS["avx512_bf16"]


def meta(precision="fp32", graph="fast", verified=None, fmt="onnx"):
    from helpers import tiny_config

    from gaugan_sdk.contract import Shapes, generator_io

    cfg = tiny_config("cityscapes")
    shapes = Shapes().resolved(cfg)
    return ArtifactMetadata.for_graph("generator", fmt, precision, cfg, generator_io(cfg, shapes), shapes,
                                      variant=GraphVariant(graph), verified=verified)


def test_a_reduced_precision_only_where_the_artifact_met_its_gate():
    plan = cpu_plan(AMX, "x86_64", BOTH)
    unverified = choose_execution(ONNX, meta(), plan)
    assert (unverified.backend, unverified.precision) == ("openvino", "f32")
    assert "bf16 was not verified for this artifact" in unverified.why
    verified = choose_execution(ONNX, meta(verified={"openvino:bf16": 54.6}), plan)
    assert (verified.backend, verified.precision) == ("openvino", "bf16") and "54.6 dB" in verified.why
    assert choose_execution(ONNX, meta(verified={"openvino:bf16": 54.6}), plan, precision="f32").precision == "f32"
    int8 = choose_execution(ONNX, meta("int8", verified={"onnxruntime:int8": 36.0}), plan)
    assert (int8.backend, int8.precision) == ("openvino", "f32")  # its int8 kernels; no float hint beyond f32


def test_the_choice_per_class_graph_device_and_request():
    both = {name: cpu_plan(flags, "x86_64", BOTH) for name, flags in (("avx2", HASWELL), ("zen4", ZEN4),
                                                                       ("icelake", ICELAKE))}
    sparse = meta(graph="sparse", verified={"openvino:bf16": 48.5})
    assert choose_execution(ONNX, sparse, both["avx2"]).label == "onnxruntime"
    assert choose_execution(ONNX, sparse, both["zen4"]).label == "openvino bf16"
    assert choose_execution(ONNX, sparse, both["icelake"]).label == "onnxruntime"  # sparse: ORT there
    assert choose_execution(ONNX, meta(), both["icelake"]).label == "openvino f32"
    assert choose_execution(ONNX, meta("int8"), both["avx2"]).label == "onnxruntime"  # int8 kernels saturate there
    assert choose_execution(ONNX, meta(), both["zen4"], device="cuda").label == "onnxruntime"  # GPUs: the providers
    assert choose_execution(TENSORRT, None, both["zen4"]).label == "tensorrt"
    assert choose_execution(CHECKPOINT, None, both["zen4"]).label == "torch"
    assert choose_execution(OPENVINO, meta(fmt="openvino"), both["avx2"]).label == "openvino f32"
    asked = choose_execution(ONNX, meta(), both["zen4"], backend="onnxruntime")
    assert asked.label == "onnxruntime" and asked.why == "asked"
    with pytest.raises(ValueError, match="precision='bf16' with backend 'onnxruntime', which runs the file's own"):
        choose_execution(ONNX, meta(), both["zen4"], backend="onnxruntime", precision="bf16")
    assert choose_execution(ONNX, None, both["zen4"]).label == "openvino f32"  # metadata not read yet: f32


def test_metadata_verified_round_trips_and_is_type_checked():
    m = meta(verified={"openvino:bf16": 48.9, "onnxruntime:fp32": 131.5})
    assert ArtifactMetadata.from_dict(m.to_dict()) == m
    with pytest.raises(ValueError, match="metadata verified=.*accepted: an object of"):
        dataclasses.replace(m, verified={"openvino:bf16": "high"})
    with pytest.raises(ValueError, match="metadata weights_sha256=12; accepted: 64 hex digits or null"):
        dataclasses.replace(m, weights_sha256=12)
