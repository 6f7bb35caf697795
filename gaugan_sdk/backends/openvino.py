"""OpenVINO backend (CPU): an OpenVINO IR (.xml + .bin), or an .onnx read by OpenVINO's ONNX frontend. numpy and
openvino only, no torch.

What it is built on (measured with openvino 2026.4 on an AVX-512 Zen 4 CPU; tests/test_openvino.py checks them):
- The CPU plugin's default inference precision is bf16 on CPUs with bf16 support: 42 dB against fp32 on a test
  generator. The backend asks for f32 unless told otherwise and reports the precision the compiled model
  actually uses (f16 asked on a CPU without f16 arithmetic runs bf16).
- Our metadata lives in the IR's rt_info, section "gaugan_sdk", one JSON string per key (`write_ir`). OpenVINO
  carries an ONNX file's metadata_props into rt_info["framework"] under the same "gaugan_sdk." keys, which are
  read where the section is absent (an .onnx, or an IR saved straight from one).
- Dynamic dimensions lose their ONNX names; `write_ir` bounds them to the metadata's ranges (min..max), which the
  IR records and `io()` reads back (no optimum: opt = min).
- The model cache (CACHE_DIR) is given the ov.Model, not the path: a compile from a path keys the cache on the
  .xml alone and served the old weights after the .bin was replaced; a model's key covers its weights.
- Inputs are copied into the request (share_inputs=False): a request that shared one caller's array copies the
  next call's inputs into that array. One infer request serves run() under a lock; CompiledModel.__call__ from
  several threads fails ("Infer Request is busy") and overwrote a caller's input array.
- Int8 (Q/DQ ONNX -> FakeQuantize + int8 weights) runs on OpenVINO's integer kernels (u8 x s8). Like ONNX
  Runtime's fused kernels they saturate without an int8 dot-product instruction: 17 dB against fp32 with oneDNN
  capped to AVX2, 37 dB with AVX-512 VNNI. There is no exact Q/DQ mode here, so int8_mode "auto" refuses where
  `gaugan_sdk.cpu` says the kernels saturate; "fused" runs them anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .._io import sha256_file
from ..contract import Range, TensorSpec, spec_from_runtime
from ..cpu import resolve_int8_mode
from ..kinds import ONNX, OPENVINO
from ..metadata import PROPS_PREFIX, ArtifactMetadata
from .base import EXECUTION_PRECISIONS as PRECISIONS
from .base import HINTS as _HINTS
from .base import Backend, RuntimeOptions, missing_library

HINTS = {hint: hint.upper() for hint in _HINTS}  # ours -> OpenVINO's PERFORMANCE_HINT values
SECTION = "gaugan_sdk"  # the IR's rt_info section holding our metadata
# oneDNN caps (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA) without an int8 dot-product instruction: int8 kernels that
# saturate (caps below AVX-512 also leave bf16 without kernels: `_check_kernels`)
NO_VNNI_CAPS = frozenset({"SSE41", "AVX", "AVX2", "AVX512_CORE"})


def _openvino():
    try:
        import openvino
    except ImportError:
        raise missing_library("openvino", OPENVINO, "running artifacts with OpenVINO") from None
    return openvino


def open_artifact(path: Path, meta: ArtifactMetadata | None, options: RuntimeOptions) -> OpenVINOBackend:
    """An IR, or an .onnx file, on OpenVINO's CPU plugin in the execution precision asked (None: f32)."""
    if options.device == "cuda":
        raise ValueError(f"device='cuda': OpenVINO runs {path.name} on the CPU here; accepted: device None or 'cpu' "
                         f"(or another backend: {', '.join(b for b in ONNX.backends if b != 'openvino')} for .onnx)")
    return OpenVINOBackend(path, options.threads, precision=options.precision or "f32", hint=options.hint,
                           int8_mode=options.int8_mode)


def weights_sha256(path: str | Path) -> str:
    """The sha256 of an IR's weights: its .bin (the .xml records it in rt_info, gaugan_sdk.weights_sha256)."""
    return sha256_file(Path(path).with_suffix(".bin"))


def isa_cap() -> str | None:
    """The ISA oneDNN is capped to by the environment (ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA), upper case; None
    where uncapped. OpenVINO's own capability report (OPTIMIZATION_CAPABILITIES) does not see the cap."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return value.strip().upper() if value and value.strip().upper() != "ALL" else None


def cache_folder(artifact: str | Path) -> Path:
    """The model cache of one artifact: `<artifact>.ov_cache/` beside it, or, where that folder is not writable,
    ~/.cache/gaugan-sdk/ov/<artifact name>-<path hash>/ (as the TensorRT EP's engine cache)."""
    artifact = Path(artifact).resolve()
    if os.access(artifact.parent, os.W_OK):
        return artifact.with_name(f"{artifact.name}.ov_cache")
    digest = hashlib.sha256(str(artifact).encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "gaugan-sdk" / "ov" / f"{artifact.name}-{digest}"


def read_model(path: str | Path):
    """An ov.Model from an .xml IR or an .onnx file, or a ValueError naming the file and what is wrong with it.

    The format is sniffed by its own frontend first: handed a file that is not one, read_model tries every
    frontend (TensorFlow's prints parse errors on stderr) and says only that no frontend could read it."""
    ov = _openvino()
    from openvino.frontend import FrontEndManager

    path = Path(path)
    if path.suffix not in (".xml", ".onnx"):
        raise ValueError(f"{path}: OpenVINO artifacts are .xml (IR, with its .bin) or .onnx; got {path.suffix!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    what = "OpenVINO IR (.xml)" if path.suffix == ".xml" else "ONNX model"
    if not FrontEndManager().load_by_framework("ir" if path.suffix == ".xml" else "onnx").supported(str(path)):
        raise ValueError(f"{path} is not an {what}: its content is not one")
    if path.suffix == ".xml" and not path.with_suffix(".bin").is_file():
        raise ValueError(f"{path}: its weights {path.with_suffix('.bin').name} are missing (an IR is the .xml and the "
                         f".bin beside it, same name)")
    try:
        return ov.Core().read_model(str(path))
    except RuntimeError as e:  # OpenVINO raises RuntimeError for every failure
        raise ValueError(f"{path} is not a loadable {what} (truncated or corrupted?): {_said(e)}") from e


def write_ir(source, xml_path: str | Path, meta: ArtifactMetadata, compress_to_fp16: bool = False
             ) -> ArtifactMetadata:
    """Write an IR (.xml + .bin) with `meta` inside: `source` is an ov.Model or an .onnx path. The metadata goes
    to rt_info section "gaugan_sdk", one JSON string per key (the values of `meta.to_props()`); dynamic dimensions
    are bounded to the metadata's ranges. `compress_to_fp16` (save_model's default, not ours) stores float weights
    in fp16: half the file, weights rounded (67 dB against the fp32 weights on a test generator). The two files are
    renamed into place, the .xml last; the .xml records the .bin's sha256 (`weights_sha256`). Returns the metadata
    with that hash."""
    ov = _openvino()
    model = read_model(source) if isinstance(source, (str, os.PathLike)) else source
    xml_path = Path(xml_path)
    if xml_path.suffix != ".xml":
        raise ValueError(f"{xml_path}: an IR is written to a .xml path (its weights go to the .bin beside it)")
    rt = model.get_rt_info()
    if "framework" in list(rt.keys()) and all(k.startswith(PROPS_PREFIX) for k in rt["framework"]):
        del rt["framework"]  # the ONNX's copy, which says format "onnx"
    placeholder = "0" * 64  # the .bin's sha256, known once it is written: replaced in the .xml's text then
    for key, value in dataclasses.replace(meta, weights_sha256=placeholder).to_props().items():
        model.set_rt_info(value, [SECTION, key[len(PROPS_PREFIX):]])
    ranges = meta.ranges
    shapes = {}
    for spec in meta.inputs:
        dims = [ov.Dimension(ranges[d].min, ranges[d].max) if isinstance(d, str) else ov.Dimension(d)
                for d in spec.shape]
        shapes[spec.name] = ov.PartialShape(dims)
    model.reshape(shapes)
    tmp = xml_path.with_name(f".{xml_path.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=compress_to_fp16)
        digest = sha256_file(tmp.with_suffix(".bin"))
        text = tmp.read_text()
        if text.count(placeholder) != 1:
            raise RuntimeError(f"{xml_path.name}: the weights hash's placeholder was not found once in the IR")
        tmp.write_text(text.replace(placeholder, digest))
        os.replace(tmp.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp, xml_path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    return dataclasses.replace(meta, weights_sha256=digest)


def _props(model) -> dict[str, str]:
    """Our metadata keys ("gaugan_sdk.<key>" -> JSON) from rt_info: the "gaugan_sdk" section, else what
    OpenVINO carried over from an ONNX file's metadata_props."""
    rt = model.get_rt_info()
    keys = list(rt.keys())  # an iterator otherwise: one `in` would consume it
    if SECTION in keys:
        return {PROPS_PREFIX + k: model.get_rt_info([SECTION, k]).astype(str) for k in rt[SECTION]}
    if "framework" in keys:
        return {k: model.get_rt_info(["framework", k]).astype(str) for k in rt["framework"]
                if k.startswith(PROPS_PREFIX)}
    return {}


class OpenVINOBackend(Backend):
    kind = OPENVINO
    device = "cpu"

    def __init__(self, path: str | Path, threads: int | None = None, precision: str | None = "f32",
                 hint: str = "latency", streams: int | None = None, cache_dir: str | Path | None = "auto",
                 int8_mode: str = "auto"):
        """`precision`: "f32" (the default: what the artifact was verified in), "bf16", "f16" or None (OpenVINO's
        choice for this CPU: bf16 where it has bf16 arithmetic). `hint`: "latency" (one stream) or "throughput"
        (streams for parallel requests: run_many). `streams`: NUM_STREAMS, None: the hint's. `cache_dir`: "auto"
        (`cache_folder`), a folder, or None (no model cache). `int8_mode` for int8 (FakeQuantize) models: "auto"
        refuses where OpenVINO's integer kernels saturate (`gaugan_sdk.cpu`), "fused" runs them anyway, "exact" is
        ONNX Runtime's and refused here."""
        ov = _openvino()
        resolve_int8_mode(int8_mode)  # bad values fail here; "auto" is decided below (`_int8_saturation`)
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; accepted: {', '.join(PRECISIONS)} or None (OpenVINO's "
                             f"default for this CPU)")
        if hint not in HINTS:
            raise ValueError(f"hint={hint!r}; accepted: {', '.join(repr(h) for h in HINTS)}")
        for name, value in (("threads", threads), ("streams", streams)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name}={value!r}; accepted: an int >= 1 or None")
        self.path = Path(path)
        self.kind = OPENVINO if self.path.suffix == ".xml" else ONNX
        model = read_model(self.path)
        self._props = _props(model)
        self._io = _model_io(model, self.path)
        self.output_names = [spec.name for spec in self._io[1]]
        self.int8 = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
        self.int8_saturation = _int8_saturation(self.int8, int8_mode, self.path)
        config = {"PERFORMANCE_HINT": HINTS[hint]}
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if streams:
            config["NUM_STREAMS"] = streams
        self.cache = None if cache_dir is None else cache_folder(self.path) if cache_dir == "auto" else Path(cache_dir)
        if self.cache is not None:
            try:
                self.cache.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(self.cache)
            except OSError as e:  # a cache is an optimization: run without one
                warnings.warn(f"{self.path.name}: no OpenVINO model cache ({e}); every process compiles the model",
                              stacklevel=2)
                self.cache = None
        core = ov.Core()
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as e:
            raise ValueError(f"OpenVINO could not compile {self.path.name}: {_said(e)}") from e
        del model  # the compiled model holds what it needs
        self.precision = _type_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.requested_precision = precision
        self.hint = str(self.compiled.get_property("PERFORMANCE_HINT")).rsplit(".", 1)[-1]
        self.streams = int(self.compiled.get_property("NUM_STREAMS"))
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.loaded_from_cache = self.cache is not None and bool(self.compiled.get_property("LOADED_FROM_CACHE"))
        self.version = ov.__version__.split("-")[0]
        self.device_name = core.get_property("CPU", "FULL_DEVICE_NAME")
        _check_kernels(self.compiled, self.path, self.precision)
        self._request = self.compiled.create_infer_request()
        self._queue = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return OPENVINO.backend

    @property
    def execution(self) -> str:
        """What ran, in words: OpenVINO's version, the device, the precision the compiled model uses, the hint
        and its streams, and the model cache."""
        asked = self.requested_precision
        precision = self.precision + ("" if asked == self.precision else
                                      " (OpenVINO's default here)" if asked is None else f" ({asked} asked)")
        cache = "no model cache" if self.cache is None else \
            f"model cache {self.cache} ({'loaded' if self.loaded_from_cache else 'compiled and stored'})"
        int8 = "; int8 FakeQuantize on OpenVINO's integer kernels" if self.int8 else ""
        return (f"OpenVINO {self.version} CPU ({self.device_name}); inference precision {precision}; "
                f"{self.hint}, {self.streams} stream(s), {self.threads} thread(s); {cache}{int8}")

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        """One synchronous inference; outputs are copies (the request's own buffers are reused next call).
        `device_output` changes nothing: the CPU's memory is numpy's."""
        with self._lock:
            request = self._live(self._request)
            try:
                result = request.infer(feeds, share_inputs=False, share_outputs=False)
            except RuntimeError as e:  # shapes outside the IR's bounds, sizes the graph cannot take, unknown names
                shapes = {name: tuple(np.shape(value)) for name, value in feeds.items()}
                raise ValueError(f"OpenVINO refused inputs {shapes} for {self.path.name}: {_said(e)}") from e
            return [result[name] for name in self.output_names]

    def run_many(self, batches: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """Several independent feeds at once, in flight together on the compiled model's streams
        (AsyncInferQueue with its optimal number of requests: 1 under the latency hint, one per stream under
        throughput); the outputs in the order of `batches`."""
        ov = _openvino()
        with self._lock:
            self._live(self._request)
            if self._queue is None:
                self._queue = ov.AsyncInferQueue(self.compiled, self.requests)
            results: list = [None] * len(batches)
            errors: list = []

            def done(request, index: int) -> None:
                try:
                    results[index] = [request.get_tensor(name).data.copy() for name in self.output_names]
                except Exception as e:  # noqa: BLE001 (raised below, in the caller's thread)
                    errors.append(e)

            self._queue.set_callback(done)
            for index, feeds in enumerate(batches):
                self._queue.start_async(feeds, userdata=index, share_inputs=False)
            self._queue.wait_all()
            if errors:
                raise errors[0]
            return results

    def metadata_props(self) -> dict[str, str]:
        """Our "gaugan_sdk.*" keys as the IR's rt_info stores them (or as an ONNX file's metadata_props)."""
        return dict(self._props)

    def io(self) -> tuple[list[TensorSpec], list[TensorSpec], dict[str, Range]]:
        """IO from the model; bounded dynamic dimensions (what `write_ir` records) give ranges with opt = min
        (OpenVINO records no optimum), unbounded ones (an .onnx) none."""
        inputs, outputs, ranges = self._io
        return list(inputs), list(outputs), dict(ranges)

    def close(self) -> None:
        with self._lock:
            self._request = self._queue = self.compiled = None

    def _live(self, request):
        if request is None:
            raise RuntimeError(f"the OpenVINO backend of {self.path.name} is closed")
        return request


def _said(error: Exception) -> str:
    """What an OpenVINO error says: its last non-empty line (the ones before name source files)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _model_io(model, path: Path) -> tuple[list[TensorSpec], list[TensorSpec], dict[str, Range]]:
    def spec(port) -> TensorSpec:
        dims = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        return spec_from_runtime(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()).name, tuple(dims))

    try:
        inputs, outputs = [spec(p) for p in model.inputs], [spec(p) for p in model.outputs]
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    ranges: dict[str, Range] = {}
    for port, tensor in zip([*model.outputs, *model.inputs], [*outputs, *inputs]):  # outputs first: z's batch
        for name, axis in tensor.axes.items():
            dim = port.get_partial_shape()[axis]
            low, high = dim.get_min_length(), dim.get_max_length()
            if name not in ranges and low >= 1 and high >= low:
                ranges[name] = Range(low, low, high)
    return inputs, outputs, ranges


def _type_name(value) -> str:
    """"f32" / "bf16" / "f16" for a compiled model's INFERENCE_PRECISION_HINT (an ov.Type); "dynamic" reads as the
    model's own precision (EXECUTION_MODE_HINT=ACCURACY)."""
    text = str(getattr(value, "get_type_name", lambda: value)())
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "f32": "f32", "bf16": "bf16", "f16": "f16",
            "dynamic": "f32 (the model's own)", "undefined": "f32 (the model's own)"}.get(text, text)


def _int8_saturation(int8: bool, mode: str, path: Path) -> str | None:
    """Why OpenVINO's int8 kernels would saturate on this CPU (None: they do not, or the model is not int8);
    a ValueError where int8_mode refuses to run them."""
    if not int8:
        return None
    if mode == "exact":
        raise ValueError(f"int8_mode='exact' for {path.name}: OpenVINO runs int8 FakeQuantize on its integer kernels "
                         f"only; exact Q/DQ execution is ONNX Runtime's (run the int8 .onnx with the onnxruntime "
                         f"backend); accepted here: 'auto' or 'fused'")
    from ..cpu import int8_saturation_reason

    cap = isa_cap()
    reason = int8_saturation_reason() or (f"oneDNN is capped to {cap} (ONEDNN_MAX_CPU_ISA), which has no int8 "
                                          f"dot-product instructions" if cap in NO_VNNI_CAPS else None)
    if reason and mode == "auto":
        raise ValueError(f"{path.name} is int8, and OpenVINO's integer kernels saturate on this CPU: {reason} "
                         f"(measured: 17 dB against fp32 instead of 37). Run the int8 .onnx with ONNX Runtime, whose "
                         f"int8_mode 'auto' executes the Q/DQ exactly here, or force int8_mode='fused'")
    return reason


def _check_kernels(compiled, path: Path, precision: str) -> None:
    """Refuse a compiled model with convolutions that have no kernel ("undef_*" primitives): what OpenVINO builds
    for bf16 when oneDNN is capped below AVX-512 (ONEDNN_MAX_CPU_ISA=AVX2), and which crashes the process at the
    first inference."""
    missing = {op.get_rt_info()["primitiveType"].astype(str) for op in compiled.get_runtime_model().get_ops()
               if op.get_rt_info()["layerType"].astype(str) == "Convolution"
               and op.get_rt_info()["primitiveType"].astype(str).startswith("undef")}
    if missing:
        cap = isa_cap()
        capped = f"; oneDNN is capped to {cap} by ONEDNN_MAX_CPU_ISA" if cap else ""
        raise ValueError(f"{path.name}: OpenVINO has no {precision} convolution kernel here "
                         f"({', '.join(sorted(missing))}{capped}) and would crash at the first inference; accepted "
                         f"here: precision='f32'")
