"""How an int8 (Q/DQ) ONNX runs on this CPU: the one rule the runtime, verification and benchmarks share.

ONNX Runtime's CPU provider fuses DequantizeLinear -> Conv -> QuantizeLinear into integer kernels. On x86 they
multiply u8 x s8 pairs with `vpmaddubsw`, whose int16 intermediate sums saturate, unless the CPU has an int8
dot-product instruction with a 32-bit accumulator (AVX-512 VNNI, AVX-VNNI, AMX-INT8). Saturation is silent: the
same int8 artifact scored 35 dB against fp32 on a VNNI machine and 17 dB on an AVX2-only one. "exact" execution
(`session.disable_quant_qdq`) runs the Q/DQ nodes as written (fake quantization, float convolutions), which is
what TensorRT's int8 with int32 accumulation computes, at about the fp32 model's speed. Arm CPUs accumulate
in 32 bits (sdot / widening multiplies) and do not saturate.
"""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["INT8_MODES", "cpu_flags", "int8_saturation_reason", "resolve_int8_mode"]

INT8_MODES = ("auto", "exact", "fused")
INT8_DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as the kernel lists them, or None where they cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm spelling
            return frozenset(value.split())
    return None


def int8_saturation_reason(flags: frozenset[str] | None = None, machine: str | None = None) -> str | None:
    """Why ONNX Runtime's fused int8 CPU kernels would saturate here, or None when they are exact.

    `flags` and `machine` default to this CPU's; tests pass others."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86_MACHINES:
        return None
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "the CPU's feature flags are unreadable here, so int8 dot-product support (VNNI) is unknown"
    if flags & INT8_DOT_PRODUCT_FLAGS:
        return None
    return ("this x86 CPU has no int8 dot-product instructions (no avx512_vnni, avx_vnni or amx_int8 in its "
            "flags): ONNX Runtime's fused u8s8 kernels saturate their int16 sums there")


def resolve_int8_mode(mode: str, flags: frozenset[str] | None = None,
                      machine: str | None = None) -> tuple[str, str | None]:
    """("exact" | "fused", the reason "auto" chose exact or None) for a requested mode."""
    if mode not in INT8_MODES:
        raise ValueError(f"int8_mode={mode!r}; accepted: {', '.join(repr(m) for m in INT8_MODES)}")
    if mode != "auto":
        return mode, None
    reason = int8_saturation_reason(flags, machine)
    return ("exact", reason) if reason else ("fused", None)
