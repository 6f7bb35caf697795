"""A Triton Inference Server model repository for the exported artifacts.

    <repo>/<name>_generator/config.pbtxt  1/model.onnx | 1/model.plan
    <repo>/<name>_encoder/...             (models with a style encoder)
    <repo>/<name>/config.pbtxt            ensemble: style -> encoder -> mu as z -> generator (style-guided)

Which formats Triton serves, and its platform for each, are the kind rows' (`gaugan_sdk.kinds`, `triton`).
Dynamic batching up to the artifact's max batch, preferring its opt and max batch. Instance groups: where both
the format and the graph run (a TensorRT plan: the GPU; the sparse graph: the CPU); an ONNX model where Triton
finds a device (KIND_AUTO: its GPUs, else the CPU), or as `device` says ("gpu" / "cpu").
`tritonserver --model-repository=<repo>` serves it. The configs parse with Triton's ModelConfig protobuf.

A repository is the user's: a model folder gaugan-export did not write, or whose files changed since, is never
replaced (`check_repository` refuses it before any work). Each folder it writes records its files' sha256 in
`.gaugan-export.json`, so a re-export replaces exactly its own earlier output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gaugan_sdk._io import sha256_file
from gaugan_sdk.contract import BATCH, GRAPH_KINDS, MU, Z, TensorSpec
from gaugan_sdk.kinds import KINDS, ArtifactKind, kind_named
from gaugan_sdk.metadata import ArtifactMetadata

TYPES = {"int32": "TYPE_INT32", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}
DEVICES = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
OWNED = ".gaugan-export.json"  # in each model folder gaugan-export writes: its files and their sha256


def served() -> str:
    """The formats Triton serves, in words."""
    return " and ".join(k.export_format or k.name for k in KINDS if k.triton)


def instance_kind(kind: ArtifactKind, graph: str, device: str = "auto") -> str:
    """Where Triton places the instances of a `graph` exported as `kind`: on the devices both run on (a plan:
    GPUs; the sparse graph: the CPU); where both run anywhere, as asked (auto: KIND_AUTO, Triton's GPUs if it has
    any, else its CPU)."""
    if device not in DEVICES:
        raise ValueError(f"triton device {device!r}; accepted: {', '.join(DEVICES)}")
    runs_on = [d for d in kind.devices if d in GRAPH_KINDS[graph].devices]
    wanted = {"gpu": "cuda", "cpu": "cpu"}.get(device)
    if wanted is not None and wanted not in runs_on:
        what = f"{kind.name} artifacts of the {graph} graph"
        raise ValueError(f"triton_device={device!r}: {what} run on {' or '.join(runs_on)} only; accepted: "
                         f"{', '.join(['auto'] + [{'cuda': 'gpu'}.get(d, d) for d in runs_on])}")
    if len(runs_on) == 1:
        return "KIND_GPU" if runs_on == ["cuda"] else "KIND_CPU"
    return DEVICES[device]


def check_repository(repo: Path, name: str) -> None:
    """Refuse, before any work, a repository that is a file or has no parent folder, and model folders of this
    export's names that gaugan-export did not write or whose files changed since (nothing of the user's is
    replaced)."""
    if repo.exists() and not repo.is_dir():
        raise ValueError(f"triton_repo {repo} is a file; give a folder (created if missing)")
    if not repo.parent.is_dir():
        raise FileNotFoundError(f"triton_repo {repo}: the folder {repo.parent} does not exist")
    for model in (f"{name}_generator", f"{name}_encoder", name):
        folder = repo / model
        if folder.exists() and (foreign := _not_ours(folder)):
            raise ValueError(f"triton_repo: {folder} exists and holds what gaugan-export did not write or what "
                             f"changed since it did ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                             f"it is left as it is: export into another --triton-repo, or move that folder away")


def _not_ours(folder: Path) -> list[str]:
    """The entries of a model folder that its `.gaugan-export.json` does not account for (all, without one): a
    file recorded with another sha256, or not recorded."""
    try:
        owned = json.loads((folder / OWNED).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        owned = {}
    if not folder.is_dir():
        return [folder.name]
    foreign = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative == OWNED:
            continue
        expected = owned.get(relative) if isinstance(owned, dict) else None
        if expected != ("folder" if path.is_dir() else sha256_file(path)):
            foreign.append(relative + ("/" if path.is_dir() else ""))
    return foreign


def model_config(name: str, meta: ArtifactMetadata, *, instances: int = 1, queue_delay_us: int = 1000,
                 device: str = "auto") -> str:
    """config.pbtxt of one artifact; the batch dimension belongs to Triton (max_batch_size), dims omit it."""
    kind = kind_named(meta.format)
    if kind.triton is None:
        raise ValueError(f"Triton serves {served()} artifacts, not {meta.format!r}: export with --format "
                         f"{' or --format '.join(k.export_format for k in KINDS if k.triton)}")
    platform = kind.triton
    preferred = sorted({b for b in (meta.batch.opt, meta.batch.max) if b > 1})
    lines = [f'name: "{name}"', f'platform: "{platform}"', f"max_batch_size: {meta.batch.max}",
             _tensors("input", meta.inputs), _tensors("output", meta.outputs)]
    if meta.batch.max > 1:
        prefer = f" preferred_batch_size: [ {', '.join(map(str, preferred))} ]" if preferred else ""
        lines.append(f"dynamic_batching {{{prefer} max_queue_delay_microseconds: {queue_delay_us} }}")
    graph = meta.graph if meta.graph in GRAPH_KINDS else "reference"  # an encoder: runs where the format runs
    lines.append(f"instance_group [ {{ count: {instances} kind: {instance_kind(kind, graph, device)} }} ]")
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
        shutil.copy(path, folder / "1" / f"model{kind_named(meta.format).suffix}")
        (folder / "config.pbtxt").write_text(config)
        _own(folder)
        folders.append(folder)
    if "encoder" in by_role:
        folder = repo / name
        (folder / "1").mkdir(parents=True, exist_ok=True)  # Triton wants a version folder for ensembles too
        (folder / "config.pbtxt").write_text(ensemble_config(name, by_role["generator"][1], by_role["encoder"][1],
                                                             f"{name}_generator", f"{name}_encoder"))
        _own(folder)
        folders.append(folder)
    return folders


def _own(folder: Path) -> None:
    """Record the files of a model folder as gaugan-export's (what `check_repository` reads)."""
    files = {p.relative_to(folder).as_posix(): "folder" if p.is_dir() else sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.name != OWNED}
    (folder / OWNED).write_text(json.dumps({"files": files}, indent=2))


def _tensors(kind: str, specs) -> str:
    entries = ", ".join(f'{{ name: "{t.name}" data_type: {TYPES[t.dtype]} dims: [ {_dims(t)} ] }}' for t in specs)
    return f"{kind} [ {entries} ]"


def _dims(spec: TensorSpec) -> str:
    """The dims without the batch axis (Triton's own); -1 where the contract names a dynamic dimension."""
    batch = spec.axis_of(BATCH)
    return ", ".join("-1" if isinstance(d, str) else str(d) for axis, d in enumerate(spec.shape) if axis != batch)
