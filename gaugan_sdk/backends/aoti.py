"""AOTInductor backend: a .pt2 package compiled for CPU or CUDA (imports torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Backend, missing_library


class AOTIBackend(Backend):
    name = "aoti"

    def __init__(self, path: str | Path, names: list[str], device: str):
        try:
            import torch
        except ImportError:
            raise missing_library("torch", "export", "running .pt2 packages") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{path} is a CUDA package, and this machine has no CUDA device")
        try:
            self.package = torch._inductor.aoti_load_package(str(path))
        except Exception as e:
            raise ValueError(f"{path} is not a loadable AOTInductor package (truncated or corrupted?): "
                             f"{str(e).splitlines()[0][:300]}") from e
        self.torch, self.names, self.device = torch, names, device

    @property
    def execution(self) -> str:
        return f"AOTInductor package ({self.device})"

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        torch = self.torch
        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device) for n in self.names]
        with torch.no_grad():
            out = self.package(tensors[0], **dict(zip(self.names[1:], tensors[1:])))
        outputs = list(out) if isinstance(out, (tuple, list)) else [out]
        return outputs if device_output else [t.cpu().numpy() for t in outputs]

    def close(self) -> None:
        self.package = None
