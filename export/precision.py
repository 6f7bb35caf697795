"""Stages 2-3: precision lives in the ONNX itself, so it means the same to ONNX Runtime and TensorRT 10/11.

FP16: ONNX Runtime's float16 converter with the graph inputs/outputs keeping their types. Normalization ops
(and the converter's own block list) always stay in fp32; if the measured PSNR against fp32 is still below the
target, the output layers (last conv, tanh) and then the stem stay in fp32 too. The report says what was kept.

INT8: symmetric Q/DQ (zero points 0, as TensorRT requires; per-channel weights) on the convolutions, calibrated
on real label maps with ONNX Runtime's static quantizer. The calibrated ranges go to a cache file keyed by the
model and the masks. If the PSNR misses the target, the output conv, then the stem, then the convs of the
highest-resolution block stay in float; the report names them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

NORMALIZATION_OPS = ("BatchNormalization", "InstanceNormalization")


@dataclass
class PrecisionReport:
    precision: str
    psnr_db: float  # against the fp32 ONNX on the calibration masks
    target_psnr_db: float
    kept_fp32_ops: list[str] = field(default_factory=list)
    kept_fp32_nodes: list[str] = field(default_factory=list)
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


def convert_int8(model_path: str | Path, feeds: dict[str, np.ndarray], measure_psnr: Callable[[onnx.ModelProto], float],
                 target_psnr_db: float = 30.0, cache_path: str | Path | None = None,
                 method: str = "percentile") -> tuple[onnx.ModelProto, PrecisionReport]:
    """Q/DQ INT8 ONNX from an fp32 ONNX file, calibrated on `feeds` (one sample at a time)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"calibration method {method!r}; accepted: {', '.join(methods)}")
    model = onnx.load(model_path)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    top_block = convs[-max(1, len(convs) // 4):]
    escalation = [("nothing", []), ("output conv", convs[-1:]), ("input stem", convs[:1]),
                  ("highest-resolution block", top_block)]
    count = len(next(iter(feeds.values())))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{k: v[i:i + 1] for k, v in feeds.items()} for i in range(count)])

        def get_next(self):
            return next(self.items, None)

    key = _calibration_key(model_path, feeds, method)
    cache = _CalibrationCache(Path(cache_path) if cache_path else None, key)
    excluded: list[str] = []
    notes = [f"calibration: {count} masks, {method}; " + ("ranges from the cache" if cache.hit else "computed")]
    with tempfile.TemporaryDirectory() as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        for step, (what, nodes) in enumerate(escalation):
            excluded = list(dict.fromkeys(excluded + nodes))
            quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                            nodes_to_exclude=excluded or None, calibrate_method=methods[method],
                            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
                            calibration_cache_path=str(cache.ort_path(tmp)))
            cache.store(tmp)
            candidate = onnx.load(out)
            psnr = measure_psnr(candidate)
            notes.append(f"kept in float: {what if step else 'nothing'} ({len(excluded)} convs); PSNR {psnr:.2f} dB")
            if psnr >= target_psnr_db:
                break
        else:
            notes.append(f"PSNR stays below the {target_psnr_db} dB target with every fallback")
    quantized = sum(1 for n in candidate.graph.node if n.op_type == "QuantizeLinear")
    notes.append(f"{len(convs) - len(excluded)} of {len(convs)} convs in int8 ({quantized} QuantizeLinear nodes)")
    return candidate, PrecisionReport("int8", psnr, target_psnr_db, kept_fp32_nodes=excluded, notes=notes)


def _calibration_key(model_path: str | Path, feeds: dict[str, np.ndarray], method: str) -> str:
    digest = hashlib.sha256(Path(model_path).read_bytes())
    for name in sorted(feeds):
        digest.update(name.encode() + np.ascontiguousarray(feeds[name]).tobytes())
    digest.update(method.encode())
    return digest.hexdigest()


class _CalibrationCache:
    """Our cache file: {"key": sha256 of model + masks + method, "ranges": ONNX Runtime's calibration cache}."""

    def __init__(self, path: Path | None, key: str):
        self.path, self.key, self.ranges = path, key, None
        if path and path.is_file():
            try:
                stored = json.loads(path.read_text())
                self.ranges = stored["ranges"] if stored.get("key") == key else None
            except (json.JSONDecodeError, KeyError, TypeError):
                self.ranges = None  # unreadable cache: calibrate again and overwrite it
        self.hit = self.ranges is not None

    def ort_path(self, tmp: str) -> Path:
        path = Path(tmp) / "ort-calibration.json"
        if self.ranges is not None and not path.exists():
            path.write_text(json.dumps(self.ranges))
        return path

    def store(self, tmp: str) -> None:
        ort_file = Path(tmp) / "ort-calibration.json"
        if self.path is None or self.hit or not ort_file.exists():
            return
        from gaugan_sdk._io import atomic_write

        self.ranges = json.loads(ort_file.read_text())
        with atomic_write(self.path) as out:
            out.write_text(json.dumps({"key": self.key, "ranges": self.ranges}))
        self.hit = True
