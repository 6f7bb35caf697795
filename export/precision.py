"""Stages 2-3: precision lives in the ONNX itself, so it means the same to ONNX Runtime and TensorRT 10/11.

FP16 (here): ONNX Runtime's float16 converter with the graph inputs/outputs keeping their types. Normalization
ops (and the converter's own block list) always stay in fp32; if the measured PSNR against fp32 is still below the
target, the output layers (last conv, tanh) and then the stem stay in fp32 too. The report says what was kept.

INT8: `export.int8` (calibrated symmetric Q/DQ, per-layer sensitivity search); it reports with the same type.
`apply_precision` runs either on an exported fp32 ONNX file, to the verification gate's PSNR by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from gaugan_sdk.metadata import ArtifactMetadata

NORMALIZATION_OPS = ("BatchNormalization", "InstanceNormalization")


@dataclass
class PrecisionReport:
    precision: str
    psnr_db: float  # against the fp32 ONNX on the calibration masks
    target_psnr_db: float
    kept_fp32_ops: list[str] = field(default_factory=list)
    kept_fp32_nodes: list[str] = field(default_factory=list)
    kept_fp16_nodes: list[str] = field(default_factory=list)  # int8: convs left out of int8
    notes: list[str] = field(default_factory=list)


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
        candidate = convert_float_to_float16(_copy(model), keep_io_types=True, op_block_list=ops,
                                             node_block_list=nodes or None)
        psnr = measure_psnr(candidate)
        report = PrecisionReport("fp16", psnr, target_psnr_db, kept_fp32_ops=list(NORMALIZATION_OPS),
                                 kept_fp32_nodes=list(nodes))
        report.notes.append(f"kept in fp32: {', '.join(kept)}; PSNR {psnr:.2f} dB")
        if psnr >= target_psnr_db:
            return candidate, report
    report.notes.append(f"PSNR stays below the {target_psnr_db} dB target with every fallback")
    return candidate, report


def apply_precision(onnx32: Path, final: Path, meta: ArtifactMetadata, precision: str,
                    feeds: dict[str, np.ndarray], calib_cache: Path | None = None,
                    target_psnr_db: float | None = None, int8_max_fp16: float | None = None,
                    show_progress: bool | None = None) -> tuple[ArtifactMetadata, PrecisionReport | None]:
    """fp16 / int8 conversion of the fp32 ONNX at `onnx32` (left in place) into `final`, to its PSNR target
    (default: the verification gate of `precision`) on `feeds`; fp32 moves `onnx32` to `final`.
    `show_progress`: progress bars for int8 calibration and search (None: where stderr is a terminal)."""
    from .int8 import MAX_FP16_FRACTION, convert_int8
    from .to_onnx import save_onnx
    from .verify import DEFAULT_GATES, PsnrProbe

    if precision == "fp32":
        Path(onnx32).replace(final)
        return meta, None
    target = target_psnr_db if target_psnr_db is not None else DEFAULT_GATES[precision]["min_psnr"]
    measure = PsnrProbe(onnx32, feeds, Path(final).parent, 255.0 if meta.uint8_output else 2.0)
    if precision == "fp16":
        converted, report = convert_fp16(onnx.load(onnx32), measure, target)
    else:
        fraction = MAX_FP16_FRACTION if int8_max_fp16 is None else int8_max_fp16
        converted, report = convert_int8(onnx32, feeds, measure, target, cache_path=calib_cache,
                                         max_fp16_fraction=fraction, show_progress=show_progress)
    meta = dataclasses.replace(meta, precision=precision)
    save_onnx(converted, final, meta)
    return meta, report


def export_style_encoder(encoder, path: Path, precision: str, source: dict) -> ArtifactMetadata:
    """The style encoder's ONNX: fp32, or fp16 (also for int8 models: there are no style images to calibrate
    the encoder on, and it is ~1 GMAC against the generator's ~200)."""
    from .to_onnx import export_encoder, save_onnx

    meta = export_encoder(encoder, path, source=source)
    if precision in ("fp16", "int8"):
        model = convert_float_to_float16(onnx.load(path), keep_io_types=True, op_block_list=list(NORMALIZATION_OPS))
        meta = dataclasses.replace(meta, precision="fp16")
        save_onnx(model, path, meta)
    return meta


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


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
