"""Backends, one file each, chosen by artifact kind (`gaugan_sdk.kinds.ArtifactKind.backend`); each imports its
library only when it is opened. A new runtime backend is a module here and a kind row naming it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..kinds import ArtifactKind
from ..metadata import ArtifactMetadata
from .base import Backend, DeviceArray, RuntimeOptions

__all__ = ["Backend", "DeviceArray", "RuntimeOptions", "backend_module", "open_backend"]


def backend_module(kind: ArtifactKind, name: str | None = None) -> ModuleType:
    """The module of backend `name` (default: the kind's) that runs `kind` (importing it imports no runtime library
    yet); a ValueError where that backend does not run the kind."""
    name = name or kind.backend
    if name not in kind.backends:
        raise ValueError(f"backend={name!r} does not run {kind.name} artifacts; accepted: "
                         f"{', '.join(kind.backends)}")
    return importlib.import_module(f"{__name__}.{name}")


def open_backend(kind: ArtifactKind, path: str | Path, meta: ArtifactMetadata | None,
                 options: RuntimeOptions = RuntimeOptions()) -> Backend:
    """One artifact of `kind` opened by its backend (`options.backend`, else the kind's default; `meta` None: a
    file without metadata, described from its IO where the format records it)."""
    return backend_module(kind, options.backend).open_artifact(Path(path), meta, options)
