"""FP16: ONNX Runtime's float16 converter with the graph inputs/outputs keeping their types.

Normalization ops (and the converter's own block list) always stay in fp32; if the measured PSNR against fp32 is
still below the target, the output layers (last conv, tanh) and then the stem stay in fp32 too. The report says
what was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from .precision import NORMALIZATION_OPS, ConversionSettings, PrecisionReport, copy_model


def convert(onnx32: Path, feeds: dict[str, np.ndarray], measure: Callable[[onnx.ModelProto], float],
            target_psnr_db: float, settings: ConversionSettings = ConversionSettings()
            ) -> tuple[onnx.ModelProto, PrecisionReport]:
    """The converter interface (export/precision.py): an fp32 ONNX file -> its fp16 model and report."""
    return convert_fp16(onnx.load(onnx32), measure, target_psnr_db)


def convert_fp16(model: onnx.ModelProto, measure_psnr: Callable[[onnx.ModelProto], float],
                 target_psnr_db: float = 40.0) -> tuple[onnx.ModelProto, PrecisionReport]:
    """Mixed fp16/fp32 ONNX whose PSNR against fp32 reaches the target if keeping layers in fp32 can reach it.

    `measure_psnr(candidate)` runs a candidate on the calibration masks and returns its PSNR against fp32.
    """
    ops = list(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *NORMALIZATION_OPS]))
    escalation = [("normalization statistics", []),
                  ("output layers", _output_layers(model)),
                  ("input stem", _stem_layers(model))]
    nodes: list[str] = []
    kept: list[str] = []
    for what, extra in escalation:
        nodes += extra
        kept.append(what)
        candidate = convert_float_to_float16(copy_model(model), keep_io_types=True, op_block_list=ops,
                                             node_block_list=nodes or None)
        psnr = measure_psnr(candidate)
        report = PrecisionReport("fp16", psnr, target_psnr_db, kept_fp32_ops=list(NORMALIZATION_OPS),
                                 kept_fp32_nodes=list(nodes))
        report.notes.append(f"kept in fp32: {', '.join(kept)}; PSNR {psnr:.2f} dB")
        if psnr >= target_psnr_db:
            return candidate, report
    report.notes.append(f"PSNR stays below the {target_psnr_db} dB target with every fallback")
    return candidate, report


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The whole graph in fp16 but the normalization ops, IO types kept (the style encoder's conversion)."""
    return convert_float_to_float16(model, keep_io_types=True, op_block_list=list(NORMALIZATION_OPS))


def _output_layers(model: onnx.ModelProto) -> list[str]:
    """The nodes from the last Conv on (conv_img, tanh, and the uint8 conversion if any)."""
    nodes = list(model.graph.node)
    last_conv = max((i for i, n in enumerate(nodes) if n.op_type == "Conv"), default=len(nodes))
    return [n.name for n in nodes[last_conv:] if n.name]


def _stem_layers(model: onnx.ModelProto) -> list[str]:
    """The first Conv or Gemm (the mask or z stem)."""
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            return [node.name] if node.name else []
    return []
