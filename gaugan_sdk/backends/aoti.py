"""AOTInductor backend: a .pt2 package compiled for CPU or CUDA (imports torch)."""

from __future__ import annotations

from pathlib import Path

from ..kinds import PT2
from ..metadata import ArtifactMetadata
from .base import RuntimeOptions
from .torch import TorchModuleBackend, check_torch_device


def open_artifact(path: Path, meta: ArtifactMetadata | None, options: RuntimeOptions) -> AOTIBackend:
    """A package on the device type it was built for (its metadata says which: a package does not describe its
    IO, so it needs its sidecar)."""
    if meta is None:
        raise FileNotFoundError(f"{path} has no metadata sidecar {path.name}.json; re-export it with gaugan-export, "
                                f"which writes one beside every artifact")
    check_torch_device(options.device, path.name)
    built_for = meta.device or "cpu"
    if options.device is not None and options.device != built_for:
        raise ValueError(f"{path.name} is a {built_for} package (AOTInductor packages run on the device type they "
                         f"were built for); re-export it on a {options.device} machine")
    return AOTIBackend(path, meta.input_names, built_for)


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
