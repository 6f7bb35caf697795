"""Artifact metadata: what an exported generator or encoder is, enough to run it with no other file and to
refuse it with a readable reason.

Stored as `<artifact>.json` beside the artifact (`city.onnx` -> `city.onnx.json`; a TensorRT plan stays a pure
plan) and, for ONNX, also in the model's metadata_props under the same keys prefixed "gaugan_sdk.".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__
from ._io import atomic_write
from .config import GeneratorConfig

SCHEMA_VERSION = 1
FORMATS = ("onnx", "tensorrt", "pt2", "checkpoint")
PRECISIONS = ("fp32", "fp16", "int8")
ROLES = ("generator", "encoder")
PROPS_PREFIX = "gaugan_sdk."


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: int32, float32, float16, uint8
    shape: tuple[int | str, ...]  # str = a dynamic dimension's name ("batch", "height", "width")


@dataclass(frozen=True)
class ArtifactMetadata:
    role: str  # generator | encoder
    format: str  # onnx | tensorrt | pt2 | checkpoint (eager PyTorch)
    precision: str  # fp32 | fp16 | int8 (what the graph computes in; IO types are in inputs/outputs)
    config: GeneratorConfig
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch: tuple[int, int, int]  # min, opt, max
    height: tuple[int, int, int]  # min, opt, max; all equal for a fixed size
    width: tuple[int, int, int]
    uint8_output: bool = False
    encoder: str | None = None  # file name of the style encoder artifact, beside this one
    source: dict[str, Any] = field(default_factory=dict)  # checkpoint kind, files, sha256
    tensorrt: dict[str, Any] | None = None  # version, gpu, compute_capability (plans only)
    device: str | None = None  # "cpu" or "cuda" for .pt2 packages, which are built for one device type
    sdk_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name, allowed in (("role", ROLES), ("format", FORMATS), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"metadata {name}={getattr(self, name)!r}; accepted: {', '.join(allowed)}")
        for name in ("batch", "height", "width"):
            low, opt, high = getattr(self, name)
            if not 1 <= low <= opt <= high:
                raise ValueError(f"metadata {name} range {getattr(self, name)} must satisfy 1 <= min <= opt <= max")

    @property
    def dynamic_size(self) -> bool:
        return self.height[0] != self.height[2] or self.width[0] != self.width[2]

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "metadata") -> ArtifactMetadata:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"{where}: metadata schema version {version!r}; this gaugan-sdk {__version__} reads "
                             f"versions up to {SCHEMA_VERSION}: upgrade gaugan-sdk")
        known = {f.name for f in fields(cls)}
        unknown, missing = set(data) - known, {f.name for f in fields(cls) if f.name not in data} & {
            "role", "format", "precision", "config", "inputs", "outputs", "batch", "height", "width"}
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        try:
            return cls(**{**data,
                          "config": GeneratorConfig.from_dict(data["config"]),
                          "inputs": tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in data["inputs"]),
                          "outputs": tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]))
                                           for t in data["outputs"]),
                          "batch": tuple(data["batch"]), "height": tuple(data["height"]),
                          "width": tuple(data["width"])})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: malformed metadata ({e})") from e

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_props(self) -> dict[str, str]:
        """Flat string pairs for ONNX metadata_props: each top-level key, JSON-encoded."""
        return {PROPS_PREFIX + key: json.dumps(value) for key, value in self.to_dict().items()}

    @classmethod
    def from_props(cls, props: dict[str, str], where: str = "ONNX metadata_props") -> ArtifactMetadata:
        ours = {k[len(PROPS_PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(PROPS_PREFIX)}
        if not ours:
            raise ValueError(f"{where}: no gaugan-sdk metadata")
        return cls.from_dict(ours, where)


def sidecar_path(artifact: str | os.PathLike) -> Path:
    return Path(f"{artifact}.json")


def write_sidecar(artifact: str | os.PathLike, meta: ArtifactMetadata) -> Path:
    path = sidecar_path(artifact)
    with atomic_write(path) as tmp:
        tmp.write_text(meta.to_json())
    return path


def read_sidecar(artifact: str | os.PathLike) -> ArtifactMetadata:
    path = sidecar_path(artifact)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    return ArtifactMetadata.from_dict(data, str(path))
