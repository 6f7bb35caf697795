"""Precisions, written once: what each means, and the gate that holds it against eager PyTorch fp32.

Two kinds of precision meet in an artifact:
- the *file* precision, what gaugan-export writes into the graph: fp32, fp16 (fp16 weights and math, the
  normalization statistics kept in fp32) or int8 (calibrated symmetric Q/DQ on the convs, the most sensitive
  ones kept in fp16);
- the *execution* precision a runtime may compute a float file in: bf16 on CPUs with bf16 matrix units
  (OpenVINO's inference-precision hint), f16 on GPUs.

Every artifact is verified against eager PyTorch fp32 with the gate of the lowest precision that touches it:
fp32 elementwise (|a - b| <= atol + rtol |b|), the others by PSNR over [-1, 1] (or [0, 255] for uint8 output).
The export's conversions aim at the same PSNR, and the runtime's CPU plan never picks an execution precision
whose gate was not met. Torch-free: the runtime imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Precision", "FP32", "FP16", "INT8", "BF16", "PRECISIONS", "FILE_PRECISIONS", "EXECUTION_PRECISION",
           "precision_named", "gate_of"]


@dataclass(frozen=True)
class Precision:
    name: str
    rank: int  # lower is coarser: the gate of the coarsest precision involved applies
    atol: float | None = None  # elementwise gate (fp32): |a - b| <= atol + rtol |b|
    rtol: float | None = None
    min_psnr: float | None = None  # dB against eager fp32
    in_file: bool = True  # gaugan-export writes it into a graph (False: an execution precision only)
    converter: str | None = None  # the export module that converts an fp32 ONNX to it: export.<converter>
    description: str = ""


FP32 = Precision("fp32", 3, atol=1e-4, rtol=0.0, description="float32 throughout")
FP16 = Precision("fp16", 2, min_psnr=40.0, converter="fp16",
                 description="fp16 weights and math; normalization statistics in fp32")
BF16 = Precision("bf16", 2, min_psnr=40.0, in_file=False,
                 description="bfloat16 math on the CPU's matrix units, from a float file (an execution precision)")
INT8 = Precision("int8", 1, min_psnr=35.0, converter="int8",
                 description="int8 Q/DQ convs from label-map calibration, the most sensitive convs in fp16")
PRECISIONS = {p.name: p for p in (FP32, FP16, BF16, INT8)}
FILE_PRECISIONS = tuple(p.name for p in PRECISIONS.values() if p.in_file)  # gaugan-export --engine values
EXECUTION_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}  # a runtime's names -> these


def precision_named(name: str, file_only: bool = False) -> Precision:
    """The precision `name`; a ValueError naming the accepted ones otherwise."""
    accepted = FILE_PRECISIONS if file_only else tuple(PRECISIONS)
    if name not in accepted:
        raise ValueError(f"precision={name!r}; accepted: {', '.join(accepted)}")
    return PRECISIONS[name]


def gate_of(*names: str | None) -> Precision:
    """The precision whose gate applies to an artifact touched by `names` (file and execution precisions; None
    and "unknown" are skipped): the coarsest of them, fp32 when none is known."""
    known = [PRECISIONS[n] for n in names if n in PRECISIONS]
    return min(known, key=lambda p: p.rank) if known else FP32
