"""The artifact kinds, one vocabulary: the metadata's `format`, the file suffixes, the runtime backend that runs
them and the `gaugan-export --format` value that writes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ArtifactKind", "ONNX", "TENSORRT", "PT2", "CHECKPOINT", "KINDS", "FORMATS", "SUFFIXES", "EXPORT_FORMATS",
    "kind_of", "kind_named"
]


@dataclass(frozen=True)
class ArtifactKind:
    name: str  # the metadata's "format"
    suffixes: tuple[str, ...]  # the first is the one gaugan-export writes
    backend: str  # the runtime backend's name (Backend.name)
    export_format: str | None  # gaugan-export --format; None: not written by gaugan-export

    @property
    def suffix(self) -> str:
        return self.suffixes[0]


ONNX = ArtifactKind("onnx", (".onnx",), "onnxruntime", "onnx")
TENSORRT = ArtifactKind("tensorrt", (".plan", ".engine"), "tensorrt", "trt")
PT2 = ArtifactKind("pt2", (".pt2",), "aoti", "pt2")
CHECKPOINT = ArtifactKind("checkpoint", (".pt", ".pth"), "torch", None)
KINDS = (ONNX, TENSORRT, PT2, CHECKPOINT)

FORMATS = tuple(k.name for k in KINDS)
SUFFIXES = {suffix: kind for kind in KINDS for suffix in kind.suffixes}
# gaugan-export --format values: each kind's own, and "engine" (Ultralytics' name for a TensorRT plan; it writes
# .engine files, which load like .plan ones)
EXPORT_FORMATS = {kind.export_format: kind for kind in KINDS if kind.export_format} | {"engine": TENSORRT}


def kind_of(path) -> ArtifactKind:
    """The kind of an artifact path, by suffix; a ValueError naming the accepted suffixes otherwise."""
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown artifact suffix {suffix!r}; accepted: {', '.join(sorted(SUFFIXES))}")
    return SUFFIXES[suffix]


def kind_named(name: str) -> ArtifactKind:
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"artifact format {name!r}; accepted: {', '.join(FORMATS)}")
