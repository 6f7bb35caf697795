"""Stage 7: a Triton Inference Server model repository for the exported artifacts.

    <repo>/<name>_generator/config.pbtxt  1/model.onnx | 1/model.plan
    <repo>/<name>_encoder/...             (models with a style encoder)
    <repo>/<name>/config.pbtxt            ensemble: style -> encoder -> mu as z -> generator (style-guided)

Dynamic batching up to the artifact's max batch, preferring its opt and max batch. Instance groups: a TensorRT
plan on the GPU (KIND_GPU); an ONNX model where Triton finds a device (KIND_AUTO: its GPUs, else the CPU), or
as `device` says ("gpu" / "cpu").
`tritonserver --model-repository=<repo>` serves it. The configs parse with Triton's ModelConfig protobuf.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gaugan_sdk.contract import BATCH, MU, Z, TensorSpec
from gaugan_sdk.kinds import ONNX, TENSORRT
from gaugan_sdk.metadata import ArtifactMetadata

PLATFORMS = {ONNX.name: ("onnxruntime_onnx", "model" + ONNX.suffix),
             TENSORRT.name: ("tensorrt_plan", "model" + TENSORRT.suffix)}
TYPES = {"int32": "TYPE_INT32", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}
DEVICES = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def instance_kind(fmt: str, device: str = "auto") -> str:
    """Where Triton places the instances of an artifact of format `fmt`: plans only run on GPUs; ONNX as asked
    (auto: KIND_AUTO, Triton's GPUs if it has any, else its CPU)."""
    if device not in DEVICES:
        raise ValueError(f"triton device {device!r}; accepted: {', '.join(DEVICES)}")
    if fmt == TENSORRT.name:
        if device == "cpu":
            raise ValueError("a TensorRT plan runs on a GPU only: use --triton-device gpu or auto, or export ONNX")
        return "KIND_GPU"
    return DEVICES[device]


def model_config(name: str, meta: ArtifactMetadata, *, instances: int = 1, queue_delay_us: int = 1000,
                 device: str = "auto") -> str:
    """config.pbtxt of one artifact; the batch dimension belongs to Triton (max_batch_size), dims omit it."""
    if meta.format not in PLATFORMS:
        raise ValueError(f"Triton serves ONNX and TensorRT artifacts, not {meta.format!r}: export with "
                         f"--format onnx or --format trt")
    platform, _ = PLATFORMS[meta.format]
    preferred = sorted({b for b in (meta.batch.opt, meta.batch.max) if b > 1})
    lines = [f'name: "{name}"', f'platform: "{platform}"', f"max_batch_size: {meta.batch.max}",
             _tensors("input", meta.inputs), _tensors("output", meta.outputs)]
    if meta.batch.max > 1:
        prefer = f" preferred_batch_size: [ {', '.join(map(str, preferred))} ]" if preferred else ""
        lines.append(f"dynamic_batching {{{prefer} max_queue_delay_microseconds: {queue_delay_us} }}")
    lines.append(f"instance_group [ {{ count: {instances} kind: {instance_kind(meta.format, device)} }} ]")
    return "\n".join(lines) + "\n"


def ensemble_config(name: str, generator: ArtifactMetadata, encoder: ArtifactMetadata, generator_model: str,
                    encoder_model: str) -> str:
    """Style-guided synthesis in one request: the style image's mu becomes the generator's z."""
    inputs = [t for t in generator.inputs if t.name != Z] + list(encoder.inputs)
    generator_map = " ".join(f'input_map {{ key: "{t.name}" value: "{t.name}" }}' for t in generator.inputs)
    image = generator.outputs[0].name
    steps = (f'step [ {{ model_name: "{encoder_model}" model_version: -1 '
             f'input_map {{ key: "{encoder.inputs[0].name}" value: "{encoder.inputs[0].name}" }} '
             f'output_map {{ key: "{MU}" value: "{Z}" }} }}, '
             f'{{ model_name: "{generator_model}" model_version: -1 {generator_map} '
             f'output_map {{ key: "{image}" value: "{image}" }} }} ]')
    return "\n".join([f'name: "{name}"', 'platform: "ensemble"',
                      f"max_batch_size: {min(generator.batch.max, encoder.batch.max)}",
                      _tensors("input", inputs), _tensors("output", generator.outputs),
                      f"ensemble_scheduling {{ {steps} }}"]) + "\n"


def write_repository(repo: Path, name: str, artifacts: list[tuple[Path, ArtifactMetadata]], *,
                     instances: int = 1, device: str = "auto") -> list[Path]:
    """Write model folders for `artifacts` (the generator first) under `repo`; returns the folders written."""
    folders = []
    by_role = {meta.role: (path, meta) for path, meta in artifacts}
    for role, (path, meta) in by_role.items():
        model = f"{name}_{role}"
        config = model_config(model, meta, instances=instances, device=device)  # refuses what Triton cannot serve
        folder = repo / model
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / "1" / PLATFORMS[meta.format][1])
        (folder / "config.pbtxt").write_text(config)
        folders.append(folder)
    if "encoder" in by_role:
        folder = repo / name
        (folder / "1").mkdir(parents=True, exist_ok=True)  # Triton wants a version folder for ensembles too
        (folder / "config.pbtxt").write_text(ensemble_config(name, by_role["generator"][1], by_role["encoder"][1],
                                                             f"{name}_generator", f"{name}_encoder"))
        folders.append(folder)
    return folders


def _tensors(kind: str, specs) -> str:
    entries = ", ".join(f'{{ name: "{t.name}" data_type: {TYPES[t.dtype]} dims: [ {_dims(t)} ] }}' for t in specs)
    return f"{kind} [ {entries} ]"


def _dims(spec: TensorSpec) -> str:
    """The dims without the batch axis (Triton's own); -1 where the contract names a dynamic dimension."""
    batch = spec.axis_of(BATCH)
    return ", ".join("-1" if isinstance(d, str) else str(d) for axis, d in enumerate(spec.shape) if axis != batch)
