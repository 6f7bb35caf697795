"""Artifact metadata: what an exported generator or encoder is, enough to run it with no other file and to
refuse it with a readable reason.

Stored as `<artifact>.json` beside the artifact (`city.onnx` -> `city.onnx.json`; a TensorRT plan stays a pure
plan) and, for ONNX, also in the model's metadata_props under the same keys prefixed "gaugan_sdk.".

An artifact with neither (a plan copied without its sidecar) is described from its IO by `metadata_from_io`:
inputs, outputs, batch and size ranges are there; the model config (label count, palette), the precision and
the source are not, so such metadata has config=None and precision "unknown".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__
from ._io import atomic_write, sha256_file
from .config import GeneratorConfig
from .contract import (BATCH, HEIGHT, INSTANCE, LABEL, LABEL_BATCH, ROLES, STYLE_HEIGHT, STYLE_SIZE, STYLE_WIDTH,
                       UNBOUNDED_BATCH, WIDTH, Z, GraphVariant, Range, Shapes, TensorSpec, dim_ranges, role_of)
from .kinds import FORMATS, kind_of
from .precisions import PRECISIONS as _PRECISIONS

__all__ = [
    "ArtifactMetadata", "PRECISIONS", "UNKNOWN", "SCHEMA_VERSION", "sidecar_path", "write_sidecar", "read_sidecar",
    "metadata_from_io"
]

# 2: graph, mask_conv and fused (version 1: reference graphs); 3: the artifact's sha256; 4: the graph variant as
# one object (with the sparse graph's threshold) and the export options
SCHEMA_VERSION = 4
HASH_KEY = "artifact_sha256"  # in the sidecar only (a file cannot carry its own hash): the artifact's content
PRECISIONS = tuple(p.name for p in _PRECISIONS.values() if p.in_file)  # what a graph is exported in
UNKNOWN = "unknown"  # the precision of an artifact described from its IO alone
PROPS_PREFIX = "gaugan_sdk."
RANGE_FIELDS = ("batch", "height", "width")  # Ranges here, (min, opt, max) lists in JSON


@dataclass(frozen=True)
class ArtifactMetadata:
    role: str  # generator | encoder
    format: str  # gaugan_sdk.kinds: onnx | tensorrt | pt2 | checkpoint (eager PyTorch)
    precision: str  # fp32 | fp16 | int8 (what the graph computes in; IO types are in inputs/outputs) | unknown
    config: GeneratorConfig | None  # None: described from the artifact's IO alone (metadata_from_io)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch: Range
    height: Range  # a generator's image height; an encoder's style image side (STYLE_SIZE)
    width: Range
    uint8_output: bool = False
    encoder: str | None = None  # file name of the style encoder artifact, beside this one
    source: dict[str, Any] = field(default_factory=dict)  # checkpoint kind, files, sha256
    tensorrt: dict[str, Any] | None = None  # version, gpu, compute_capability (plans only)
    device: str | None = None  # "cpu" or "cuda" for .pt2 packages, which are built for one device type
    variant: GraphVariant | None = GraphVariant()  # the exact restructuring exported (None: from IO alone)
    export: dict[str, Any] | None = None  # the export's options (export.ExportOptions.to_dict())
    # the sha256 of the weights as the file itself records it (ONNX: the model without its metadata_props; IR:
    # the .bin): checked at load even where the sidecar is missing
    weights_sha256: str | None = None
    # executions that met their gate against eager fp32 at export, "<backend>:<precision>" -> PSNR dB: what the
    # runtime's CPU plan may choose (a reduced execution precision only where it is listed)
    verified: dict[str, float] | None = None
    sdk_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name, kinds, what in _FIELD_TYPES:  # read from files the SDK may not have written: types first
            value = getattr(self, name)
            if not isinstance(value, kinds) or isinstance(value, bool) and kinds is not bool:
                raise ValueError(f"metadata {name}={value!r}; accepted: {what}")
        if self.weights_sha256 is not None and not _is_sha256(self.weights_sha256):
            raise ValueError(f"metadata weights_sha256={self.weights_sha256!r}; accepted: 64 hex digits or null")
        if self.verified is not None and not all(isinstance(k, str) and isinstance(v, (int, float))
                                                 and not isinstance(v, bool) for k, v in self.verified.items()):
            raise ValueError(f"metadata verified={self.verified!r}; accepted: an object of \"backend:precision\" -> "
                             f"PSNR dB, or null")
        if self.device not in (None, "cpu", "cuda") or self.schema_version < 1:
            raise ValueError(f"metadata device={self.device!r}, schema_version={self.schema_version!r}; accepted: "
                             f"device null, 'cpu' or 'cuda'; schema_version an int >= 1")
        unknown = (UNKNOWN,) if self.config is None else ()
        checks = (("role", ROLES), ("format", FORMATS), ("precision", PRECISIONS + unknown))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"metadata {name}={getattr(self, name)!r}; accepted: "
                                 f"{', '.join(str(a) for a in allowed)}")
        if self.variant is not None and not isinstance(self.variant, GraphVariant):
            raise ValueError(f"metadata variant={self.variant!r}; accepted: a GraphVariant")
        if self.variant is None and self.config is not None:
            raise ValueError("metadata with a model config records its graph variant")
        for name in RANGE_FIELDS:
            object.__setattr__(self, name, Range.of(getattr(self, name), f"metadata {name} range"))
        if self.role == "generator" and self.outputs and self.uint8_output != (self.outputs[0].dtype == "uint8"):
            raise ValueError(f"metadata uint8_output={self.uint8_output} but the output {self.outputs[0].name} is "
                             f"{self.outputs[0].dtype}")

    @classmethod
    def for_graph(cls, role: str, fmt: str, precision: str, config: GeneratorConfig, io, shapes: Shapes,
                  **extra: Any) -> ArtifactMetadata:
        """The metadata of an exported graph: its contract IO (`contract.generator_io` / `encoder_io`) over its
        resolved shapes (an encoder's height and width: STYLE_SIZE)."""
        inputs, outputs = io
        return cls(role, fmt, precision, config, inputs, outputs, shapes.batch, shapes.height, shapes.width,
                   **extra)

    @property
    def graph(self) -> str:
        """The graph kind exported (contract.GRAPHS), "unknown" for an artifact described from its IO."""
        return UNKNOWN if self.variant is None else self.variant.graph

    @property
    def shapes(self) -> Shapes:
        return Shapes(self.batch, self.height, self.width)

    @property
    def ranges(self) -> dict[str, Range]:
        """Each dynamic dimension's name (the contract's) -> its range."""
        return dim_ranges(self.role, self.batch, self.height, self.width)

    @property
    def dynamic_size(self) -> bool:
        return self.shapes.dynamic_size

    @property
    def broadcasts_label(self) -> bool:
        """Whether the generator takes one mask for N styles (its label batch is `label_batch`)."""
        return any(LABEL_BATCH in t.axes for t in self.inputs if t.name == LABEL)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def takes_instance(self) -> bool:
        """Whether the generator takes instance ids (its instance-edge channel)."""
        return INSTANCE in self.input_names

    @property
    def z_dim(self) -> int | None:
        """Length of the style vector the generator takes, None without a style path."""
        return next((int(t.shape[1]) for t in self.inputs if t.name == Z), None)

    @property
    def size_step(self) -> int:
        """Sizes of a dynamic-size generator are multiples of this: the model's stride, or, when the config is
        unknown, the largest step every recorded size shares (a multiple of the stride)."""
        if self.config is not None:
            return self.config.stride
        return math.gcd(*self.height.to_list(), *self.width.to_list())

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        if self.config is None:
            raise ValueError("metadata described from an artifact's IO is not written out: re-export the artifact")
        data = asdict(self)
        data["config"] = self.config.to_dict()
        data["variant"] = self.variant.to_dict()
        data["inputs"] = [t.to_dict() for t in self.inputs]
        data["outputs"] = [t.to_dict() for t in self.outputs]
        for name in RANGE_FIELDS:
            data[name] = getattr(self, name).to_list()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "metadata") -> ArtifactMetadata:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"{where}: metadata schema version {version!r}; this gaugan-sdk {__version__} reads "
                             f"versions up to {SCHEMA_VERSION}: upgrade gaugan-sdk")
        data = _upgraded(data, version)
        known = {f.name for f in fields(cls)}
        unknown, missing = set(data) - known, {f.name for f in fields(cls) if f.name not in data} & {
            "role", "format", "precision", "config", "inputs", "outputs", *RANGE_FIELDS}
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        try:
            return cls(**{**data,
                          "config": GeneratorConfig.from_dict(data["config"]),
                          "variant": GraphVariant.from_dict(data.get("variant", {}), "variant"),
                          "inputs": tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
                          "outputs": tuple(TensorSpec.from_dict(t) for t in data["outputs"])})
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


_FIELD_TYPES = (
    ("role", str, "a string"), ("format", str, "a string"), ("precision", str, "a string"),
    ("uint8_output", bool, "true or false"), ("encoder", (str, type(None)), "a file name or null"),
    ("source", dict, "an object"), ("tensorrt", (dict, type(None)), "an object or null"),
    ("device", (str, type(None)), "a string or null"), ("export", (dict, type(None)), "an object or null"),
    ("weights_sha256", (str, type(None)), "64 hex digits or null"), ("verified", (dict, type(None)), "an object"),
    ("sdk_version", str, "a string"), ("schema_version", int, "an int"),
)


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _upgraded(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Metadata of an older schema in today's fields: before 4 the graph variant was three top-level keys (before 2:
    absent, a reference graph)."""
    if version >= 4:
        return data
    data = dict(data)
    variant = {key: data.pop(key) for key in ("graph", "mask_conv", "fused") if key in data}
    data["variant"] = {"graph": "reference", **variant}
    return data


def sidecar_path(artifact: str | os.PathLike) -> Path:
    return Path(f"{artifact}.json")


def artifact_sha256(artifact: str | os.PathLike) -> str:
    """The sha256 of an artifact's files, the artifact first, then its companions (an IR's .bin): one pass each."""
    digest = hashlib.sha256()
    for path in kind_of(artifact).files(artifact):
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def write_sidecar(artifact: str | os.PathLike, meta: ArtifactMetadata) -> Path:
    """`<artifact>.json`: the metadata and the sha256 of the artifact's files (written once they are final)."""
    path = sidecar_path(artifact)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({**meta.to_dict(), HASH_KEY: artifact_sha256(artifact)}, indent=2))
    return path


def read_sidecar(artifact: str | os.PathLike, check_hash: bool = False) -> ArtifactMetadata:
    """The metadata in `<artifact>.json`; with `check_hash`, the artifact's files must still have the content the
    sidecar recorded, and a sidecar that records no hash (written before schema 3, or edited) is refused: a
    sidecar cannot turn the check off."""
    path = sidecar_path(artifact)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    recorded = data.pop(HASH_KEY, None) if isinstance(data, dict) else None
    meta = ArtifactMetadata.from_dict(data, str(path))
    if not check_hash:
        return meta
    skip = "(Synthesizer(..., check_hash=False) skips this check)"
    if not _is_sha256(recorded):
        raise ValueError(f"{path.name} records no valid sha256 of {Path(artifact).name} ({HASH_KEY}={recorded!r}): "
                         f"written before gaugan-sdk checked artifacts, or edited. Re-export it to have it checked "
                         f"{skip}")
    if (actual := artifact_sha256(artifact)) != recorded:
        raise ValueError(f"{Path(artifact).name} is not the file its metadata describes: its sha256 is "
                         f"{actual[:16]}..., {path.name} recorded {recorded[:16]}... at export. The file was changed "
                         f"or damaged after export, or the sidecar belongs to another one: re-export it or restore "
                         f"the original {skip}")
    return meta


def cross_check(meta: ArtifactMetadata, io: tuple[list[TensorSpec], list[TensorSpec]] | None,
                props: dict[str, str], where: str) -> None:
    """Refuse metadata that contradicts what the artifact itself says: its IO (names, dtypes, fixed sizes such
    as channels and z_dim: the uint8 output and the style path follow from them) and, where the file carries
    metadata inside (ONNX, IR), the model config (label count, dontcare, instance channel), role, precision,
    graph variant and weights hash."""
    problems = []
    if io is not None:
        for claimed, actual, what in ((meta.inputs, io[0], "inputs"), (meta.outputs, io[1], "outputs")):
            if [t.name for t in claimed] != [t.name for t in actual]:
                problems.append(f"{what} {[t.name for t in claimed]} vs {[t.name for t in actual]}")
                continue
            for c, a in zip(claimed, actual):
                fixed = [(i, x, y) for i, (x, y) in enumerate(zip(c.shape, a.shape))
                         if isinstance(x, int) and isinstance(y, int) and x != y]
                if c.dtype != a.dtype or len(c.shape) != len(a.shape) or fixed:
                    problems.append(f"{c.name} {c.dtype} {list(c.shape)} vs {a.dtype} {list(a.shape)}")
    if any(key.startswith(PROPS_PREFIX) for key in props) and meta.config is not None:
        inside = ArtifactMetadata.from_props(props, f"{where} metadata_props")
        if inside.config != meta.config:
            diff = {k: (v, inside.config.to_dict().get(k)) for k, v in meta.config.to_dict().items()
                    if inside.config.to_dict().get(k) != v}
            problems.append("model config " + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items()))
        for name in ("role", "precision", "variant", "weights_sha256"):  # what the file says of itself
            if getattr(inside, name) != getattr(meta, name):
                problems.append(f"{name} {getattr(meta, name)!r} vs {getattr(inside, name)!r}")
    if problems:
        raise ValueError(f"the metadata of {where} does not match the artifact (metadata vs artifact): "
                         f"{'; '.join(problems)}. Was the sidecar copied from another export?")


# ---------------------------------------------------------------------------------------------- from IO alone
def metadata_from_io(where: str, fmt: str, inputs: list[TensorSpec], outputs: list[TensorSpec],
                     ranges: dict[str, Range] | None = None) -> ArtifactMetadata:
    """Metadata from an artifact's IO (`contract.spec_from_runtime` specs) when it carries no other
    (config=None, precision "unknown").

    `ranges` holds the Range of dynamic dimensions where the artifact records them (a TensorRT optimization
    profile). A dynamic batch without a range runs in chunks of UNBOUNDED_BATCH.max; a dynamic generator size
    without one is not enough to run: the accepted sizes are unknown. An encoder takes STYLE_SIZE."""
    try:
        role = role_of([t.name for t in inputs])
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    ranges, specs = ranges or {}, (*inputs, *outputs)

    def span(dim: str) -> Range:
        if any(dim in spec.axes for spec in specs):  # dynamic
            if dim in ranges:
                return Range.of(ranges[dim], f"{where}: {dim} range")
            if dim == BATCH:
                return UNBOUNDED_BATCH
            if role == "encoder":
                return STYLE_SIZE  # the encoder resizes any style image in-graph
            raise ValueError(f"{where}: the IO has a dynamic {dim} with no recorded range, so the sizes it "
                             f"accepts are unknown; restore its metadata (the .json sidecar gaugan-export wrote) "
                             f"or re-export it")
        sizes = [spec.shape[spec.axis_of(dim)] for spec in specs if spec.axis_of(dim) is not None]
        return Range.fixed(next(v for v in sizes if isinstance(v, int)))

    size_dims = (STYLE_HEIGHT, STYLE_WIDTH) if role == "encoder" else (HEIGHT, WIDTH)
    batch, height, width = (span(dim) for dim in (BATCH, *size_dims))
    uint8_output = role == "generator" and bool(outputs) and outputs[0].dtype == "uint8"
    return ArtifactMetadata(role, fmt, UNKNOWN, None, tuple(inputs), tuple(outputs), batch, height, width,
                            uint8_output=uint8_output, variant=None)
