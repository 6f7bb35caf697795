"""Stages 2-3, what every precision conversion shares: its settings and its report.

Precision lives in the ONNX itself, so it means the same to ONNX Runtime, TensorRT 10/11 and OpenVINO. Each
file precision names its converter (`gaugan_sdk.precisions`: fp16 -> export/fp16.py, int8 -> export/int8.py);
every converter takes an fp32 ONNX file, the calibration masks, a PSNR probe and a target, and returns the
converted model and a `PrecisionReport`. `export.to_onnx.apply_precision` picks the converter and writes the
result. A new precision is a row in gaugan_sdk/precisions.py, a converter module, and the formats that take it
(gaugan_sdk/kinds.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx

NORMALIZATION_OPS = ("BatchNormalization", "InstanceNormalization")  # always computed in fp32


@dataclass(frozen=True)
class ConversionSettings:
    """What a conversion may use beyond the model and the masks."""

    calib_cache: Path | None = None  # int8: calibration ranges cached by model, masks and method
    int8_max_fp16: float | None = None  # int8: the largest share of convs kept in fp16 (None: its default)
    show_progress: bool | None = None  # progress bars (None: where stderr is a terminal)


@dataclass
class PrecisionReport:
    precision: str
    psnr_db: float  # against the fp32 ONNX on the calibration masks
    target_psnr_db: float
    kept_fp32_ops: list[str] = field(default_factory=list)
    kept_fp32_nodes: list[str] = field(default_factory=list)
    kept_fp16_nodes: list[str] = field(default_factory=list)  # int8: convs left out of int8
    notes: list[str] = field(default_factory=list)


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
