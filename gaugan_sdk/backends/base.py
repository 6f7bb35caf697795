"""The one interface every backend implements: named numpy inputs in, numpy outputs out (in the order of the
artifact's metadata outputs). Backends import their library only when they are created."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Backend(ABC):
    """One loaded artifact (a generator or a style encoder)."""

    name: str = "backend"

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run once; `feeds` maps input names to arrays of the dtypes the metadata names."""

    def input_names(self) -> list[str] | None:
        """The artifact's own input names, where it records them (to check a sidecar against)."""
        return None

    def close(self) -> None:  # noqa: B027 (a no-op where there is nothing to free)
        """Free the artifact's memory (device memory for GPU backends)."""


def missing_library(package: str, extra: str, purpose: str) -> ImportError:
    return ImportError(f"{purpose} needs the {package!r} package: pip install \"gaugan-sdk[{extra}]\"")
