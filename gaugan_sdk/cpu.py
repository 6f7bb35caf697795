"""What this CPU can do, and the one per-CPU plan: which runtime, execution precision and graph the SDK uses on it.

The plan (`cpu_plan`, `choose_execution`): CPUs differ by 6x in which runtime is fastest for the same file, by
their matrix units (AMX: bf16 and int8 tiles; AVX512_BF16; AVX-512 VNNI / AVX-VNNI: int8 dot products; AVX2
only: none). `CPU_CLASSES` reads the class from the CPU's flags; `PLANS` holds, per class, what measurement chose
(`docs/performance.md`, one table per class, commands included): the backend for dense float, sparse and int8
artifacts, the execution precision a float artifact may run in, and the graph a CPU export writes when asked for
its target's choice (`gaugan-export --graph auto`). A reduced execution precision is chosen only for an artifact
whose metadata records that it met that precision's gate at export (`ArtifactMetadata.verified`); a runtime that
is not installed is replaced by ONNX Runtime in f32; everything is overridable (`Synthesizer(backend=,
precision=)`).


Int8: ONNX Runtime's CPU provider fuses DequantizeLinear -> Conv -> QuantizeLinear into integer kernels. On x86 they
multiply u8 x s8 pairs with `vpmaddubsw`, whose int16 intermediate sums saturate, unless the CPU has an int8
dot-product instruction with a 32-bit accumulator (AVX-512 VNNI, AVX-VNNI, AMX-INT8). Saturation is silent: the
same int8 artifact scored 35 dB against fp32 on a VNNI machine and 17 dB on an AVX2-only one. "exact" execution
(`session.disable_quant_qdq`) runs the Q/DQ nodes as written (fake quantization, float convolutions), which is
what TensorRT's int8 with int32 accumulation computes, at about the fp32 model's speed. Arm CPUs accumulate
in 32 bits (sdot / widening multiplies) and do not saturate.
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INT8_MODES", "cpu_flags", "cpu_has_bf16", "int8_saturation_reason", "resolve_int8_mode", "CPU_CLASSES",
           "cpu_class", "CpuPlan", "PLANS", "cpu_plan", "Execution", "choose_execution"]

INT8_MODES = ("auto", "exact", "fused")
INT8_DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bf16 dot products in hardware (x86)
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


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether this x86 CPU computes bf16 dot products in hardware (AVX512_BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags and flags & BF16_FLAGS)


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


# ---------------------------------------------------------------------------------------------- the plan
# CPU classes, most capable first: the first whose flags the CPU has (all of them) is its class.
CPU_CLASSES = (
    ("amx", frozenset({"amx_bf16", "amx_int8"}), "Intel Xeon 4th gen and later: AMX bf16 / int8 tiles"),
    ("avx512_bf16", frozenset({"avx512_bf16"}), "AVX-512 with BF16 dot products (AMD Zen 4 and later, Cooper Lake)"),
    ("avx512_vnni", frozenset({"avx512_vnni"}), "AVX-512 with VNNI int8 dot products (Cascade Lake, Ice Lake)"),
    ("avx_vnni", frozenset({"avx_vnni"}), "AVX2 with AVX-VNNI int8 dot products (Alder Lake and later clients)"),
    ("avx2", frozenset({"avx2"}), "AVX2 only: no matrix units, no int8 dot products"),
)


def cpu_class(flags: frozenset[str] | None = None, machine: str | None = None) -> str:
    """This CPU's class: a name of CPU_CLASSES, "arm" (64-bit Arm), or "unknown" (flags unreadable, or older)."""
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64"):
        return "arm"
    flags = cpu_flags() if flags is None else flags
    for name, needs, _ in CPU_CLASSES:
        if flags and needs <= flags:
            return name
    return "unknown"


@dataclass(frozen=True)
class CpuPlan:
    """What the SDK uses on one class of CPU, and the measurement behind it."""

    cpu: str  # the class
    dense: str  # the backend of dense float artifacts (fast / reference graph, fp32 / fp16 file)
    sparse: str  # the backend of sparse-graph artifacts
    int8: str  # the backend of int8 (Q/DQ) artifacts
    precision: str  # the execution precision asked of OpenVINO for float artifacts whose gate it met: bf16 / f32
    graph: str  # what a CPU export writes for `--graph auto`: "fast" or "sparse"
    evidence: str  # the measurement, in words

    def backend_for(self, graph: str, precision: str) -> str:
        if precision == "int8":
            return self.int8
        return self.sparse if graph == "sparse" else self.dense


_ORT, _OV = "onnxruntime", "openvino"
PLANS = {p.cpu: p for p in (
    CpuPlan("amx", _OV, _OV, _OV, "bf16", "fast",
            "issue 24's AMX Xeon (not re-measured here): OpenVINO bf16 6.6x ONNX Runtime fp32 at 54.6 dB, its int8 "
            "kernels 8.8x at 45 dB; the sparse graph slower than dense bf16 there"),
    CpuPlan("avx512_bf16", _OV, _OV, _OV, "bf16", "sparse",
            "AMD EPYC Zen 4, 2 cores (docs/performance.md): OpenVINO bf16 2.2x ONNX Runtime fp32 on the fast graph, "
            "3.3x on the sparse graph (48.5-48.9 dB)"),
    CpuPlan("avx512_vnni", _OV, _ORT, _OV, "f32", "sparse",
            "AVX-512 f32 kernels (measured on Zen 4 without bf16): OpenVINO f32 1.07x ONNX Runtime on the fast graph, "
            "ONNX Runtime 1.2x OpenVINO on the sparse graph; int8 dot products (VNNI)"),
    CpuPlan("avx_vnni", _ORT, _ORT, _ORT, "f32", "sparse",
            "not measured on this class: no bf16 units; ONNX Runtime (today's default) and its exact sparse graph; "
            "int8 on its VNNI-fused kernels"),
    CpuPlan("avx2", _ORT, _ORT, _ORT, "f32", "sparse",
            "AVX2-only AMD EPYC (docs/performance.md): ONNX Runtime's sparse graph 2.2x its dense one, OpenVINO f32 "
            "1.01x on the dense graph and slower on the sparse one; int8 kernels saturate in both runtimes"),
    CpuPlan("arm", _ORT, _ORT, _ORT, "f32", "sparse", "not measured on Arm: ONNX Runtime, the exact sparse graph"),
    CpuPlan("unknown", _ORT, _ORT, _ORT, "f32", "fast", "CPU flags unreadable: ONNX Runtime fp32, the default"),
)}


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def openvino_bf16_here(file_precision: str) -> bool:
    """Whether OpenVINO can run a file of this precision in bf16 on this machine: a float file, openvino installed,
    and bf16 arithmetic in the CPU (elsewhere OpenVINO runs f32, or crashes under an ISA cap)."""
    return file_precision in ("fp32", "fp16") and cpu_has_bf16() and installed(_OV)


def cpu_plan(flags: frozenset[str] | None = None, machine: str | None = None,
             runtimes: frozenset[str] | None = None) -> CpuPlan:
    """The plan of this CPU's class (`flags`, `machine`: another CPU's, for tests), with a runtime that is not
    installed (`runtimes`: the installed ones, default this machine's) replaced by ONNX Runtime in f32."""
    plan = PLANS[cpu_class(flags, machine)]
    runtimes = frozenset(r for r in (_ORT, _OV) if installed(r)) if runtimes is None else runtimes
    missing = {b for b in (plan.dense, plan.sparse, plan.int8) if b not in runtimes}
    if not missing:
        return plan
    fallback = _ORT if _ORT in runtimes else next(iter(sorted(runtimes)), _ORT)
    swap = (lambda b: fallback if b in missing else b)  # noqa: E731
    return CpuPlan(plan.cpu, swap(plan.dense), swap(plan.sparse), swap(plan.int8),
                   plan.precision if _OV not in missing else "f32", plan.graph,
                   f"{plan.evidence}; {', '.join(sorted(missing))} not installed here: {fallback}")


@dataclass(frozen=True)
class Execution:
    """How one artifact runs: its backend, the execution precision asked of it (None: the file's own), and why."""

    backend: str
    precision: str | None
    why: str

    @property
    def label(self) -> str:
        return self.backend + (f" {self.precision}" if self.precision else "")


def choose_execution(kind, meta, plan: CpuPlan, *, backend: str | None = None, precision: str | None = None,
                     device: str | None = None) -> Execution:
    """The backend and execution precision for an artifact of `kind` with metadata `meta` (None: not known yet)
    on this CPU: what is asked where asked, else the plan's; a reduced precision only where `meta.verified` has
    that execution at its gate. GPUs and kinds with one runtime keep theirs."""
    on_cpu = device != "cuda" and "cpu" in kind.devices
    graph = meta.graph if meta is not None else "fast"
    file_precision = meta.precision if meta is not None else "fp32"
    if backend is None:
        if not on_cpu or len(kind.backends) == 1:
            backend, why = kind.backend, "the format's runtime"
        else:
            backend = plan.backend_for(graph, file_precision)
            backend = backend if backend in kind.backends else kind.backend
            why = f"the {plan.cpu} CPU plan"
    else:
        why = "asked"
    if backend != _OV:  # the file's own precision
        if precision not in (None, "f32"):
            raise ValueError(f"precision={precision!r} with backend {backend!r}, which runs the file's own "
                             f"precision ({file_precision}); accepted: None, or backend='openvino' for bf16 / f16")
        return Execution(backend, None, why)
    if precision is not None:
        return Execution(backend, precision, f"{why}; {precision} asked")
    wanted = plan.precision if file_precision != "int8" else "f32"
    verified = (meta.verified or {}) if meta is not None else {}
    if wanted != "f32" and f"{_OV}:{wanted}" in verified:
        return Execution(backend, wanted, f"{why}; {wanted} met its gate at export "
                                          f"({verified[f'{_OV}:{wanted}']:.1f} dB)")
    if wanted != "f32":
        return Execution(backend, "f32", f"{why}; f32: {wanted} was not verified for this artifact at export (export "
                                         f"it where openvino is installed, or ask precision='{wanted}')")
    return Execution(backend, "f32", why)
