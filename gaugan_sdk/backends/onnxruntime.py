"""ONNX Runtime backend: TensorRT EP, CUDA EP, CPU EP in that order among those installed (or the ones asked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, missing_library

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


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


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_library("onnxruntime", "onnxruntime] or [gpu", "running .onnx artifacts") from None
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
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / RuntimeException types
            raise ValueError(f"{path} is not a loadable ONNX model (truncated or corrupted?): "
                             f"{str(e).splitlines()[0][:300]}") from e
        self.providers = self.session.get_providers()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def metadata_props(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def close(self) -> None:
        self.session = None
