"""The one interface every backend implements: named numpy inputs in, numpy outputs out (in the order of the
artifact's metadata outputs). Backends import their library only when they are created.

A backend module (`gaugan_sdk/backends/<kind.backend>.py`) provides `open_artifact(path, meta, options)` (meta
None: an artifact without metadata, described from its IO where the format allows it), or, for kinds that hold
the whole model in one file (checkpoints), `open_model(path, options)`. `RuntimeOptions` is how the runtime asks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract import Range, TensorSpec
from ..cpu import INT8_MODES
from ..inputs import check_count
from ..kinds import KINDS, ArtifactKind
from ..metadata import ArtifactMetadata, metadata_from_io

DEVICES = ("cpu", "cuda")


EXECUTION_PRECISIONS = ("f32", "bf16", "f16")  # what a runtime may be asked to compute a float file in
HINTS = ("latency", "throughput")


@dataclass(frozen=True)
class RuntimeOptions:
    """How the runtime opens an artifact (the keywords of `Synthesizer`), checked once.

    device: "cpu", "cuda" or None (the best the backend has); backend: the runtime (a name in the kind row's
    `backends`, e.g. "openvino" for an .onnx) or None (the kind's default); precision: the execution precision
    asked of a CPU runtime ("f32", "bf16", "f16"; None: f32); hint: "latency" (one request at a time) or
    "throughput" (requests in flight on parallel streams); providers: ONNX Runtime execution providers in order
    (None: by device); threads: intra-op threads (None: the runtime's default); int8_mode: how int8 Q/DQ runs
    (gaugan_sdk.cpu)."""

    device: str | None = None
    providers: tuple[str, ...] | None = None
    threads: int | None = None
    int8_mode: str = "auto"
    backend: str | None = None
    precision: str | None = None
    hint: str = "latency"

    def __post_init__(self) -> None:
        if self.device not in (None, *DEVICES):
            raise ValueError(f"device={self.device!r}; accepted: 'cpu', 'cuda' or None (the best available)")
        providers = self.providers
        if providers is not None:
            listed = isinstance(providers, (list, tuple)) and all(isinstance(p, str) for p in providers)
            if not listed or not providers:
                raise TypeError(f"providers={providers!r}; accepted: a list of ONNX Runtime execution provider "
                                f"names, e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider'], or None (the best "
                                f"installed)")
            object.__setattr__(self, "providers", tuple(providers))
        if self.threads is not None:
            object.__setattr__(self, "threads", check_count(self.threads, "threads", 1))
        if self.int8_mode not in INT8_MODES:
            raise ValueError(f"int8_mode={self.int8_mode!r}; accepted: {', '.join(repr(m) for m in INT8_MODES)}")
        backends = sorted({b for kind in KINDS for b in kind.backends})
        if self.backend is not None and self.backend not in backends:
            raise ValueError(f"backend={self.backend!r}; accepted: {', '.join(backends)} or None (by artifact)")
        if self.precision is not None and self.precision not in EXECUTION_PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; accepted: {', '.join(EXECUTION_PRECISIONS)} or None")
        if self.hint not in HINTS:
            raise ValueError(f"hint={self.hint!r}; accepted: {', '.join(HINTS)}")


@dataclass(frozen=True)
class DeviceArray:
    """An engine output left in CUDA memory: zero-copy for CuPy, Numba and PyTorch
    (`torch.as_tensor(out, device="cuda")`) through `__cuda_array_interface__`. The memory belongs to the backend:
    valid until its next run or close (the stream is synchronized before it is handed out)."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    owner: Any = None  # what keeps the memory alive (an OrtValue), None for a backend's own buffer

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self.shape, "typestr": np.dtype(self.dtype).str, "data": (self.ptr, False), "version": 3,
                "strides": None, "stream": None}


class Backend(ABC):
    """One loaded artifact (a generator or a style encoder)."""

    kind: ArtifactKind  # what it runs (gaugan_sdk.kinds)
    device: str = "cpu"  # where it runs: "cpu" or "cuda"

    @property
    def name(self) -> str:
        return self.kind.backend

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        """Run once; `feeds` maps input names to arrays of the dtypes the metadata names. Outputs are numpy
        arrays, or with `device_output` left where the engine wrote them: a DeviceArray in CUDA memory, a
        torch.Tensor for the torch-based backends, a numpy array when the engine ran on the CPU."""

    @property
    def execution(self) -> str:
        """What runs the artifact, in words, for reports."""
        return self.name

    def metadata_props(self) -> dict[str, str]:
        """Key/value metadata stored inside the artifact (ONNX metadata_props); empty where there is none."""
        return {}

    def io(self) -> tuple[list[TensorSpec], list[TensorSpec], dict[str, Range]]:
        """What the artifact itself says of its IO: input and output specs (dynamic dimensions named by the
        contract, `contract.spec_from_runtime`) and the ranges of those dimensions where it records them."""
        raise NotImplementedError(f"{self.name} artifacts do not describe their IO: their metadata is needed")

    def io_metadata(self, where: str) -> ArtifactMetadata:
        """Metadata from the artifact's IO alone (`metadata.metadata_from_io`), for one that carries no other;
        derived once per backend."""
        if getattr(self, "_io_metadata", None) is None:
            self._io_metadata = metadata_from_io(where, self.kind.name, *self.io())
        return self._io_metadata

    def close(self) -> None:  # noqa: B027 (a no-op where there is nothing to free)
        """Free the artifact's memory (device memory for GPU backends)."""


def missing_library(package: str, kind: ArtifactKind, purpose: str) -> ImportError:
    """The error for a backend library that is not installed, with the install line of the kind's row."""
    return ImportError(f"{purpose} needs the {package!r} package: {kind.install}")
