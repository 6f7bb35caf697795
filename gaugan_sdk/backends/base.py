"""The one interface every backend implements: named numpy inputs in, numpy outputs out (in the order of the
artifact's metadata outputs). Backends import their library only when they are created."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract import Range, TensorSpec
from ..kinds import ArtifactKind
from ..metadata import ArtifactMetadata, metadata_from_io


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


def missing_library(package: str, extra: str, purpose: str) -> ImportError:
    return ImportError(f"{purpose} needs the {package!r} package: pip install \"gaugan-sdk[{extra}]\"")
