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


def backend_module(kind: ArtifactKind) -> ModuleType:
    """The module that runs `kind` (importing it imports no runtime library yet)."""
    return importlib.import_module(f"{__name__}.{kind.backend}")


def open_backend(kind: ArtifactKind, path: str | Path, meta: ArtifactMetadata | None,
                 options: RuntimeOptions = RuntimeOptions()) -> Backend:
    """One artifact of `kind` opened by its backend (`meta` None: a file without metadata, described from its IO
    where the format records it)."""
    return backend_module(kind).open_artifact(Path(path), meta, options)
