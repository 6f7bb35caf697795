"""ONNX Runtime backend: TensorRT EP, CUDA EP, CPU EP in that order among those installed (or the ones asked).

On a GPU provider the session runs through IO binding: inputs cross to the device once, outputs are allocated
on the device by ONNX Runtime's arena (reused from call to call) and either copied back once or handed out in
place (device_output).

Int8 (Q/DQ) models on the CPU provider run "fused" (ONNX Runtime's integer kernels) or "exact" (the Q/DQ nodes as
written): `int8_mode`, resolved by the rule in `gaugan_sdk.cpu` ("auto": exact where the fused kernels saturate)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..contract import Range, TensorSpec, spec_from_runtime
from ..cpu import resolve_int8_mode
from ..kinds import ONNX
from ..metadata import ArtifactMetadata
from .base import Backend, DeviceArray, RuntimeOptions, missing_library

ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int32)": "int32",
              "tensor(int64)": "int64", "tensor(uint8)": "uint8"}
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


METADATA_PROPS_FIELD = 14  # ModelProto.metadata_props (onnx.proto)


def weights_sha256(source: str | Path | bytes) -> str:
    """The sha256 of an ONNX model's content without its metadata_props: every top-level field of the ModelProto
    (the graph with its weights, opsets, producer) but field 14, in file order. The file carries it in its own
    metadata (gaugan_sdk.weights_sha256) without changing it, so a model copied without its sidecar is still
    checked. Streams the file; standard library only (no onnx package at run time)."""
    digest = hashlib.sha256()
    with (open(source, "rb") if not isinstance(source, bytes) else _Bytes(source)) as f:
        while True:
            head = f.read(1)
            if not head:
                return digest.hexdigest()
            key, raw = _varint(head, f)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, body = _varint(f.read(1), f)
                size = 0
            elif wire in (1, 5):
                body, size = b"", 8 if wire == 1 else 4
            elif wire == 2:
                length, body = _varint(f.read(1), f)
                size = length
            else:
                raise ValueError(f"{source}: not an ONNX model (protobuf wire type {wire} at the top level)")
            keep = field != METADATA_PROPS_FIELD
            if keep:
                digest.update(raw + body)
            while size:
                chunk = f.read(min(size, 1 << 20))
                if not chunk:
                    raise ValueError(f"{source}: truncated ONNX model (a field runs past the end of the file)")
                size -= len(chunk)
                if keep:
                    digest.update(chunk)


def _varint(first: bytes, f) -> tuple[int, bytes]:
    """A protobuf varint starting with `first`: (its value, its raw bytes)."""
    raw, value, shift, byte = bytearray(), 0, 0, first
    while True:
        if not byte:
            raise ValueError("truncated ONNX model (a varint runs past the end of the file)")
        raw += byte
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80 or shift > 63:
            return value, bytes(raw)
        shift += 7
        byte = f.read(1)


class _Bytes:
    """A bytes object read like a file (the model an exporter is about to write)."""

    def __init__(self, data: bytes):
        import io

        self._f = io.BytesIO(data)
        self.read = self._f.read

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def open_artifact(path: Path, meta: ArtifactMetadata | None, options: RuntimeOptions) -> OnnxRuntimeBackend:
    """An ONNX file on the providers asked for, or those of the device asked for; a graph that runs on the CPU
    only (the sparse graph: data-dependent shapes) on the CPU provider, whatever GPU providers are installed."""
    requested = list(options.providers) if options.providers else None
    if meta is not None and meta.variant is not None and "cuda" not in meta.variant.kind.devices:
        if options.device == "cuda" or (requested and requested[0] != "CPUExecutionProvider"):
            asked = f"device={options.device!r}" if options.device == "cuda" else f"providers={requested!r}"
            raise ValueError(f"{asked}: {path.name} is a {meta.graph} graph, which runs on the CPU (ONNX Runtime's "
                             f"CPU provider); accepted: device None or 'cpu', providers starting with "
                             f"CPUExecutionProvider. For a GPU, export the dense graph (gaugan-export --graph fast)")
        requested = ["CPUExecutionProvider"]
    providers = requested or providers_for(options.device)
    return OnnxRuntimeBackend(path, providers, options.threads, int8_mode=options.int8_mode)


def providers_for(device: str | None) -> list[str] | None:
    """Providers for a device request: None -> the best installed; "cpu" -> CPU only; "cuda" -> the GPU
    providers installed (an error when there are none)."""
    if device in (None, "cpu"):
        return None if device is None else ["CPUExecutionProvider"]
    import onnxruntime as ort

    gpu = [p for p in PREFERRED[:2] if p in ort.get_available_providers()]
    if not gpu:
        raise ValueError(f"device='cuda' but this onnxruntime build has no GPU provider (it has "
                         f"{ort.get_available_providers()}): pip uninstall onnxruntime, then "
                         f"pip install \"gaugan-sdk[gpu]\"")
    return gpu + ["CPUExecutionProvider"]


def provider_options(provider: str, artifact: str | Path) -> dict[str, str]:
    """Options for one execution provider. The TensorRT EP builds an engine per process unless it caches it:
    engine and timing caches go to `<artifact>.trt_cache/` beside the artifact, or, where that folder is not
    writable, to ~/.cache/gaugan-sdk/ort-trt/<artifact name>-<path hash>/."""
    if provider != "TensorrtExecutionProvider":
        return {}
    artifact = Path(artifact).resolve()
    cache = artifact.with_name(f"{artifact.name}.trt_cache")
    if not os.access(artifact.parent, os.W_OK):
        digest = hashlib.sha256(str(artifact).encode()).hexdigest()[:12]
        cache = Path.home() / ".cache" / "gaugan-sdk" / "ort-trt" / f"{artifact.name}-{digest}"
    return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(cache)}


class OnnxRuntimeBackend(Backend):
    kind = ONNX

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int | None = None,
                 io_binding: bool | None = None, int8_mode: str = "auto"):
        """`io_binding` None: on when the first provider is a GPU one. `int8_mode` ("auto", "exact", "fused"):
        how the CPU provider runs Q/DQ nodes (no effect on float models and on GPU providers)."""
        int8_execution, self.int8_reason = resolve_int8_mode(int8_mode)
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_library("onnxruntime", ONNX, "running .onnx artifacts") from None
        available = ort.get_available_providers()
        chosen = list(providers) if providers else [p for p in PREFERRED if p in available]
        unknown = [p for p in chosen if p not in available]
        if unknown:
            raise ValueError(f"execution provider(s) {unknown} are not available in this onnxruntime build; "
                             f"available: {available}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        on_cpu = (chosen or ["CPUExecutionProvider"])[0] == "CPUExecutionProvider"
        self.int8_execution = int8_execution if on_cpu else "provider"  # GPU providers: their own int8 kernels
        if self.int8_execution == "exact":
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen,
                                                provider_options=[provider_options(p, path) for p in chosen] or None)
        except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / RuntimeException types
            raise ValueError(f"{path} is not a loadable ONNX model (truncated or corrupted?): "
                             f"{str(e).splitlines()[0][:300]}") from e
        self.providers = self.session.get_providers()
        self.device = "cuda" if self.providers[0] in PREFERRED[:2] else "cpu"
        bind = self.device == "cuda" if io_binding is None else io_binding
        self.binding = self.session.io_binding() if bind else None
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def execution(self) -> str:
        """What ran, in words, for reports: the provider and how int8 Q/DQ nodes were executed."""
        int8 = {"exact": "int8 Q/DQ executed exactly as written (session.disable_quant_qdq)",
                "fused": "int8 Q/DQ fused into integer kernels", "provider": "int8 by the provider's kernels"}
        return f"ONNX Runtime {self.providers[0]}; {int8[self.int8_execution]}"

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        if self.binding is None:
            return self.session.run(None, feeds)
        binding = self.binding
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in self.output_names:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        if not device_output:
            return binding.copy_outputs_to_cpu()
        values = binding.get_outputs()
        if self.device == "cpu":
            return [v.numpy() for v in values]
        return [DeviceArray(v.data_ptr(), tuple(v.shape()), np.dtype(ONNX_TYPES[v.data_type()]), owner=v)
                for v in values]

    def metadata_props(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def io(self) -> tuple[list[TensorSpec], list[TensorSpec], dict[str, Range]]:
        """ONNX records dynamic dimensions by name only (no range)."""
        def spec(arg) -> TensorSpec:
            return spec_from_runtime(arg.name, ONNX_TYPES.get(arg.type, arg.type), tuple(arg.shape))

        return [spec(a) for a in self.session.get_inputs()], [spec(a) for a in self.session.get_outputs()], {}

    def close(self) -> None:
        self.session = self.binding = None
