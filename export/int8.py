"""INT8 as TensorRT takes it: symmetric Q/DQ on every Conv (zero points 0, per-channel weights, activation
scales from label-map calibration), then the convs that cost the most quality back in fp16 until the PSNR target
is met.

1. Calibrate: ONNX Runtime's calibrator (percentile by default) over the masks one at a time, so memory stays at
   one image's activations at any size; the ranges go to a cache keyed by model, masks and method.
2. Quantize every Conv (ONNX Runtime's QDQ quantizer) where TensorRT's placement guide puts Q/DQ: on the inputs
   and weights of convs, not on their outputs, so each conv's float epilogue (bias, the SPADE modulation, the
   residual add) stays fusable. (ONNX Runtime's default also quantizes conv outputs: 118 instead of 44
   quantizers on cityscapes, and 34.1 instead of 36.0 dB at full size.)
3. Measure. Every candidate runs with its Q/DQ executed exactly as written (`export.verify.onnx_runner`), which
   is what TensorRT's int8 computes and the same on every CPU.
4. If the PSNR misses the target: sensitivity of each conv = the error of the model with only that conv in int8
   (its MSE against fp32). Int8 errors of separate layers add up nearly independently, so the convs with the
   largest MSE go to fp16, worst first, until the predicted remainder (scaled to the measured all-int8 error)
   meets the target; then measured, and more convs follow while it misses, up to a cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import onnx

from .precision import ConversionSettings, PrecisionReport
from .progress import progress
from .qdq import conv_labels, float_conv_weights, keep_in_float, quantized_convs

METHODS = ("percentile", "entropy", "minmax")
MAX_FP16_FRACTION = 0.25  # the cap: at most this share of the convs leaves int8
SEARCH_MASKS = 8  # masks per search measurement (the final one uses them all)
SENSITIVITY_MASKS = 2  # masks per conv in the sensitivity pass (one model run each)


def convert(onnx32: Path, feeds: dict[str, np.ndarray], measure, target_psnr_db: float,
            settings: ConversionSettings = ConversionSettings()) -> tuple[onnx.ModelProto, PrecisionReport]:
    """The converter interface (export/precision.py): an fp32 ONNX file -> its int8 Q/DQ model and report."""
    fraction = MAX_FP16_FRACTION if settings.int8_max_fp16 is None else settings.int8_max_fp16
    return convert_int8(onnx32, feeds, measure, target_psnr_db, cache_path=settings.calib_cache,
                        max_fp16_fraction=fraction, show_progress=settings.show_progress)


def convert_int8(model_path: str | Path, feeds: dict[str, np.ndarray], measure, target_psnr_db: float,
                 cache_path: str | Path | None = None, method: str = "percentile",
                 max_fp16_fraction: float = MAX_FP16_FRACTION,
                 show_progress: bool | None = None) -> tuple[onnx.ModelProto, PrecisionReport]:
    """Q/DQ INT8 ONNX (with the most sensitive convs in fp16 where the target needs it) from an fp32 ONNX file.

    `feeds`: the calibration masks (graph inputs, batch first). `measure(candidate, samples=None)`: PSNR of a
    candidate model against fp32 on the first `samples` masks (all when None), with a `peak` attribute
    (`export.verify.PsnrProbe`)."""
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r}; accepted: {', '.join(METHODS)}")
    if not 0 <= max_fp16_fraction <= 1:
        raise ValueError(f"max_fp16_fraction {max_fp16_fraction}: accepted 0..1 (share of the convs)")
    count = len(next(iter(feeds.values())))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        from onnxruntime.quantization import quant_pre_process

        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        ranges, cached = _calibrate(prepared, Path(model_path), feeds, method, cache_path, Path(tmp), show_progress)
        quantized = _quantize_all(prepared, ranges, method, Path(tmp))
        float_model = onnx.load(prepared)
        weights, labels = float_conv_weights(float_model), conv_labels(float_model)
    notes = [f"calibration: {count} masks, {method}; " + ("ranges from the cache" if cached else "computed")]
    search = _Search(quantized, weights, labels, measure, target_psnr_db, max_fp16_fraction, show_progress)
    model, kept, psnr = search.run(notes)
    convs = search.convs
    quantizers = sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear")
    notes.append(f"{len(convs) - len(kept)} of {len(convs)} convs in int8 ({quantizers} QuantizeLinear nodes), "
                 f"{len(kept)} in fp16; PSNR {psnr:.2f} dB on {measure.count} masks, Q/DQ executed exactly")
    if psnr < target_psnr_db:
        notes.append(f"PSNR stays below the {target_psnr_db} dB target with {len(kept)} convs in fp16 (the cap: "
                     f"{max_fp16_fraction:.0%} of the convs)")
    return model, PrecisionReport("int8", psnr, target_psnr_db, kept_fp16_nodes=[labels[c] for c in kept],
                                  notes=notes)


class _Search:
    """Which convs leave int8 (see the module docstring, step 4)."""

    def __init__(self, quantized: onnx.ModelProto, weights, labels: dict[str, str], measure, target: float,
                 max_fraction: float, show_progress: bool | None):
        self.quantized, self.weights, self.labels = quantized, weights, labels
        self.measure, self.target = measure, target
        self.convs = quantized_convs(quantized)
        self.cap = int(math.floor(max_fraction * len(self.convs)))
        self.show_progress = show_progress

    def mse(self, psnr: float) -> float:
        return 0.0 if math.isinf(psnr) else self.measure.peak ** 2 * 10 ** (-psnr / 10)

    def psnr(self, mse: float) -> float:
        return math.inf if mse == 0 else 10 * math.log10(self.measure.peak ** 2 / mse)

    def candidate(self, kept: list[str]) -> onnx.ModelProto:
        return keep_in_float(self.quantized, self.weights, kept, "fp16") if kept else self.quantized

    def accepted(self, kept: list[str], notes: list[str]) -> tuple[bool, float]:
        """(meets the target on the search masks and then on all masks, the last PSNR measured)."""
        model = self.candidate(kept)
        psnr = self.measure(model, samples=SEARCH_MASKS)
        searched = min(SEARCH_MASKS, self.measure.count)
        named = f" ({', '.join(self.labels[c] for c in kept)})" if kept else ""
        notes.append(f"{len(kept)} convs in fp16{named}: PSNR {psnr:.2f} dB on {searched} masks (target "
                     f"{self.target} dB)")
        if psnr < self.target:
            return False, psnr
        if searched < self.measure.count:
            psnr = self.measure(model)
        return psnr >= self.target, psnr

    def run(self, notes: list[str]) -> tuple[onnx.ModelProto, list[str], float]:
        ok, psnr = self.accepted([], notes)
        if ok or self.cap == 0:
            return self.quantized, [], psnr
        order, scale, mse = self.sensitivity(notes)
        kept, remaining = [], sum(mse.values())
        for conv in order[:self.cap]:  # predicted: the measured all-int8 error, less the convs taken out
            if scale * remaining <= 0.8 * self.mse(self.target):  # 0.8: layer errors are not quite independent
                break
            kept.append(conv)
            remaining -= mse[conv]
        while True:
            ok, psnr = self.accepted(kept, notes)
            if ok or len(kept) >= self.cap:
                return self.candidate(kept), kept, psnr
            kept = order[:min(self.cap, len(kept) + max(1, len(kept) // 4))]

    def sensitivity(self, notes: list[str]) -> tuple[list[str], float, dict[str, float]]:
        """Convs by their int8 error alone (MSE of the model with only that conv in int8), worst first; and the
        scale from the sum of those errors to the measured all-int8 error."""
        samples = SENSITIVITY_MASKS
        mse = {}
        for conv in progress(self.convs, f"int8 sensitivity ({len(self.convs)} convs)", len(self.convs),
                             self.show_progress):
            alone = keep_in_float(self.quantized, self.weights, [c for c in self.convs if c != conv], "fp32")
            mse[conv] = self.mse(self.measure(alone, samples=samples))
        total = self.mse(self.measure(self.quantized, samples=samples))
        order = sorted(self.convs, key=lambda c: -mse[c])
        scale = total / max(sum(mse.values()), 1e-30)
        worst = ", ".join(f"{self.labels[c]} {self.psnr(mse[c]):.1f} dB" for c in order[:5])
        notes.append(f"sensitivity on {samples} masks (PSNR with only that conv in int8), worst: {worst}; "
                     f"all-int8 error = {scale:.2f} x the sum of the single-conv errors")
        return order, scale, mse


# ------------------------------------------------------------------------------------------------ calibration
def _calibrate(prepared: Path, model_path: Path, feeds: dict[str, np.ndarray], method: str,
               cache_path: str | Path | None, tmp: Path, show_progress: bool | None) -> tuple[Path, bool]:
    """(ONNX Runtime's calibration cache file for `prepared`, whether it came from our cache)."""
    from onnxruntime.quantization.calibrate import CalibrationDataReader, create_calibrator, save_tensors_data

    key = _calibration_key(model_path, feeds, method)
    ranges_file = tmp / "ort-calibration.json"
    cache = Path(cache_path) if cache_path else None
    stored = _read_cache(cache, key)
    if stored is not None:
        ranges_file.write_text(json.dumps(stored))
        return ranges_file, True

    class One(CalibrationDataReader):
        def __init__(self, item):
            self.items = iter([item])

        def get_next(self):
            return next(self.items, None)

    calibrator = create_calibrator(prepared, ["Conv"], augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=_ort_method(method), providers=["CPUExecutionProvider"])
    count = len(next(iter(feeds.values())))
    # ONNX Runtime's histogram collector print()s its progress unconditionally: kept off the console for these
    # calls only (the progress bar is on stderr)
    with contextlib.redirect_stdout(io.StringIO()):
        for i in progress(range(count), f"int8 calibration ({count} masks)", count, show_progress):
            calibrator.collect_data(One({k: v[i:i + 1] for k, v in feeds.items()}))  # one at a time: bounded memory
        save_tensors_data(calibrator.compute_data(), ranges_file)
    if cache is not None:
        from gaugan_sdk._io import atomic_write

        with atomic_write(cache) as out:
            out.write_text(json.dumps({"key": key, "ranges": json.loads(ranges_file.read_text())}))
    return ranges_file, False


def _quantize_all(prepared: Path, ranges: Path, method: str, tmp: Path) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out = tmp / "int8.onnx"
    quantize_static(str(prepared), str(out), None, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    calibrate_method=_ort_method(method), calibration_cache_path=str(ranges),
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   # TensorRT's placement: inputs of weighted ops, not their outputs
                                   "OpTypesToExcludeOutputQuantization": ["Conv"]})
    return onnx.load(out)


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[method]


def _calibration_key(model_path: Path, feeds: dict[str, np.ndarray], method: str) -> str:
    digest = hashlib.sha256(model_path.read_bytes())
    for name in sorted(feeds):
        digest.update(name.encode() + np.ascontiguousarray(feeds[name]).tobytes())
    digest.update(method.encode())
    return digest.hexdigest()


def _read_cache(path: Path | None, key: str) -> dict | None:
    """Our cache file {"key": sha256 of model + masks + method, "ranges": ONNX Runtime's calibration cache}; None
    when absent, unreadable or for other inputs (then calibration runs again and overwrites it)."""
    if path is None or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        return stored["ranges"] if stored.get("key") == key else None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
