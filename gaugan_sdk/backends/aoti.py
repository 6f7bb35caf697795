"""AOTInductor backend: a .pt2 package compiled for CPU or CUDA (imports torch)."""

from __future__ import annotations

from pathlib import Path

from ..kinds import PT2
from .torch import TorchModuleBackend


class AOTIBackend(TorchModuleBackend):
    kind = PT2

    def __init__(self, path: str | Path, names: list[str], device: str):
        super().__init__(None, names, device)
        torch = self.torch
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{path} is a CUDA package, and this machine has no CUDA device")
        try:
            self.module = torch._inductor.aoti_load_package(str(path))
        except Exception as e:
            raise ValueError(f"{path} is not a loadable AOTInductor package (truncated or corrupted?): "
                             f"{str(e).splitlines()[0][:300]}") from e

    @property
    def execution(self) -> str:
        return f"AOTInductor package ({self.device})"
