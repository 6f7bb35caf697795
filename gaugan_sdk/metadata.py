"""Artifact metadata: what an exported generator or encoder is, enough to run it with no other file and to
refuse it with a readable reason.

Stored as `<artifact>.json` beside the artifact (`city.onnx` -> `city.onnx.json`; a TensorRT plan stays a pure
plan) and, for ONNX, also in the model's metadata_props under the same keys prefixed "gaugan_sdk.".

An artifact with neither (a plan copied without its sidecar) is described from its IO by `metadata_from_io`:
inputs, outputs, batch and size ranges are there; the model config (label count, palette), the precision and
the source are not, so such metadata has config=None and precision "unknown".
"""

from __future__ import annotations

import json
import math
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
UNKNOWN = "unknown"  # the precision of an artifact described from its IO alone
STYLE_SIZE = (16, 256, 2048)  # min, opt, max side of the style images encoders take (resized in-graph)
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
    precision: str  # fp32 | fp16 | int8 (what the graph computes in; IO types are in inputs/outputs) | unknown
    config: GeneratorConfig | None  # None: described from the artifact's IO alone (metadata_from_io)
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
        precisions = PRECISIONS + ((UNKNOWN,) if self.config is None else ())
        for name, allowed in (("role", ROLES), ("format", FORMATS), ("precision", precisions)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"metadata {name}={getattr(self, name)!r}; accepted: {', '.join(allowed)}")
        for name in ("batch", "height", "width"):
            low, opt, high = getattr(self, name)
            if not 1 <= low <= opt <= high:
                raise ValueError(f"metadata {name} range {getattr(self, name)} must satisfy 1 <= min <= opt <= max")

    @property
    def dynamic_size(self) -> bool:
        return self.height[0] != self.height[2] or self.width[0] != self.width[2]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def takes_instance(self) -> bool:
        """Whether the generator takes instance ids (its instance-edge channel)."""
        return "instance" in self.input_names

    @property
    def z_dim(self) -> int | None:
        """Length of the style vector the generator takes, None without a style path."""
        return next((int(t.shape[1]) for t in self.inputs if t.name == "z"), None)

    @property
    def size_step(self) -> int:
        """Sizes of a dynamic-size generator are multiples of this: the model's stride, or, when the config is
        unknown, the largest step every recorded size shares (a multiple of the stride)."""
        if self.config is not None:
            return self.config.stride
        return math.gcd(*self.height, *self.width)

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        if self.config is None:
            raise ValueError("metadata described from an artifact's IO is not written out: re-export the artifact")
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


# ---------------------------------------------------------------------------------------------- from IO alone
# Dimension names by position for the IO tensors of the export contract (export/trace.py); None = fixed.
LAYOUTS = {"label": ("batch", None, "height", "width"), "instance": ("batch", None, "height", "width"),
           "z": ("batch", None), "style": ("batch", "style_height", "style_width", None),
           "mu": ("batch", None), "logvar": ("batch", None)}
IMAGE_LAYOUTS = {"float32": ("batch", None, "height", "width"), "uint8": ("batch", "height", "width", None)}
UNBOUNDED_BATCH = 64  # calls split into chunks of this many maps when an artifact sets no batch limit


def io_spec(name: str, dtype: str, shape: tuple) -> TensorSpec:
    """A TensorSpec from what a runtime reports: dynamic dimensions (None, -1, or any symbol name) take the
    contract's name for that position."""
    layout = IMAGE_LAYOUTS.get(dtype) if name == "image" else LAYOUTS.get(name)
    if layout is None or len(layout) != len(shape):
        raise ValueError(f"IO tensor {name!r} {dtype} {tuple(shape)} is not part of the gaugan-sdk contract "
                         f"(label, instance, z -> image; style -> mu, logvar)")
    dims = []
    for dim, named in zip(shape, layout):
        fixed = isinstance(dim, int) and dim >= 0
        if not fixed and named is None:
            raise ValueError(f"IO tensor {name!r} has a dynamic dimension where the contract fixes one: {shape}")
        dims.append(int(dim) if fixed else named)
    return TensorSpec(name, dtype, tuple(dims))


def metadata_from_io(where: str, fmt: str, inputs: list[TensorSpec], outputs: list[TensorSpec],
                     ranges: dict[str, tuple[int, int, int]] | None = None) -> ArtifactMetadata:
    """Metadata from an artifact's IO when it carries no other (config=None, precision "unknown").

    `ranges` holds the min/opt/max of dynamic dimensions ("batch", "height", "width", "style_height") where the
    artifact records them (a TensorRT optimization profile). A dynamic batch without a range runs in chunks of
    UNBOUNDED_BATCH; a dynamic image size without one is not enough to run: the accepted sizes are unknown."""
    names = [t.name for t in inputs]
    if names and names[0] == "style":
        role, first = "encoder", inputs[0]
        size_dims = ("style_height", "style_width")
    elif names and names[0] == "label" and set(names) <= {"label", "instance", "z"}:
        role, first = "generator", inputs[0]
        size_dims = ("height", "width")
    else:
        raise ValueError(f"{where}: inputs {names} do not tell what this artifact is (a generator takes label"
                         f"[, instance][, z]; a style encoder takes style)")
    ranges = ranges or {}

    def span(dim: str) -> tuple[int, int, int]:
        value = first.shape[LAYOUTS[first.name].index(dim)]
        if not isinstance(value, str):
            return value, value, value
        if dim in ranges:
            return tuple(int(v) for v in ranges[dim])
        if dim == "batch":
            return 1, 1, UNBOUNDED_BATCH
        if role == "encoder":
            return STYLE_SIZE  # the encoder resizes any style image in-graph
        raise ValueError(f"{where}: the IO has a dynamic {dim} with no recorded range, so the sizes it accepts "
                         f"are unknown; restore its metadata (the .json sidecar gaugan-export wrote) or re-export it")

    batch, height, width = (span(dim) for dim in ("batch",) + size_dims)
    uint8_output = role == "generator" and bool(outputs) and outputs[0].dtype == "uint8"
    return ArtifactMetadata(role, fmt, UNKNOWN, None, tuple(inputs), tuple(outputs), batch, height, width,
                            uint8_output=uint8_output)
