"""AOTInductor packages (.pt2) for machines without TensorRT: torch.export + AOTInductor. The writer of
`gaugan_sdk.kinds.PT2`.

A package is compiled for the device type it is built on (CPU, or CUDA on a GPU machine); fp16 packages are
CUDA only. Dynamic batch (and H/W when asked) as in the ONNX, from the same trace description.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch._inductor import config as inductor_config

from gaugan_sdk._io import atomic_write
from gaugan_sdk.contract import DEFAULT_BATCH, REFERENCE, STYLE_SIZE, GraphVariant, Range, Shapes
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.models import ConvEncoder, SPADEGenerator

from .job import Built, ExportJob
from .options import ExportOptions
from .trace import TraceSpec, encoder_trace, generator_trace

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def preflight(options: ExportOptions) -> None:
    """Refuse before any work what this machine cannot compile (an fp16 package without CUDA)."""
    check_precision_device(options.precision, None)


def write(job: ExportJob) -> list[Built]:
    """The packages of an export, in the staging folder: the generator, the style encoder beside it."""
    device, precision = job.device, job.precision
    with job.steps(f"AOTInductor package of the {job.variant.label} graph ({precision}, {device})"):
        path = job.staged(job.output.name)
        meta = export_generator_pt2(job.generator, path, job.shapes, precision=precision, device=device,
                                    uint8_output=job.options.uint8_output, encoder_file=job.encoder_name,
                                    variant=job.variant, **job.recorded)
    built = [Built(path, meta)]
    if job.encoder is not None:
        with job.steps("AOTInductor package of the style encoder"):
            path = job.staged(job.encoder_name)
            built.append(Built(path, export_encoder_pt2(job.encoder, path, precision=precision, device=device,
                                                        **job.recorded)))
    return built


def export_generator_pt2(generator: SPADEGenerator, path: str | Path, shapes: Shapes = Shapes(), *,
                         precision: str = "fp32", device: str | None = None, uint8_output: bool = False,
                         encoder_file: str | None = None, variant: GraphVariant = REFERENCE,
                         **recorded: Any) -> ArtifactMetadata:
    device = check_precision_device(precision, device)
    shapes = shapes.resolved(generator.cfg)
    spec = generator_trace(generator, shapes, uint8_output, variant=variant)
    _compile(spec, path, device, precision)
    return ArtifactMetadata.for_graph("generator", "pt2", precision, generator.cfg, (spec.inputs, spec.outputs),
                                      shapes, uint8_output=uint8_output, encoder=encoder_file, device=device,
                                      variant=variant, **recorded)


def export_encoder_pt2(encoder: ConvEncoder, path: str | Path, batch: Range = DEFAULT_BATCH, *,
                       precision: str = "fp32", device: str | None = None, **recorded: Any) -> ArtifactMetadata:
    device = check_precision_device(precision, device)
    batch = Range.of(batch, "batch range")
    spec = encoder_trace(encoder, batch)
    _compile(spec, path, device, precision)
    return ArtifactMetadata.for_graph("encoder", "pt2", precision, encoder.cfg, (spec.inputs, spec.outputs),
                                      Shapes(batch, STYLE_SIZE, STYLE_SIZE), device=device, **recorded)


def pt2_runner(path: str | Path, meta: ArtifactMetadata):
    """The runtime's AOTInductor backend for a package (feeds by input name -> numpy outputs)."""
    from gaugan_sdk.backends.aoti import AOTIBackend

    return AOTIBackend(path, meta.input_names, meta.device or "cpu").run


def check_precision_device(precision: str, device: str | None) -> str:
    device = device or default_device()
    if precision not in DTYPES:
        raise ValueError(f".pt2 packages are fp32 or fp16 (CUDA), not {precision!r}")
    if precision == "fp16" and device != "cuda":
        raise ValueError("fp16 .pt2 packages need CUDA (build them on a GPU machine); on CPU use fp32")
    return device


def _compile(spec: TraceSpec, path: str | Path, device: str, precision: str) -> None:
    # spec.module holds folded copies of the user's modules, so casting it leaves theirs untouched
    module = spec.module.to(device=device, dtype=DTYPES[precision])
    args = tuple(a.to(device) for a in spec.args)
    kwargs = {k: v.to(device) for k, v in spec.kwargs.items()}
    with torch.no_grad():
        program = torch.export.export(module, args, kwargs, dynamic_shapes=spec.dynamic_shapes)
    # compile workers: none on small machines (the 2-core ones: a pool only competes with the compile), up to 8
    # where there are cores for them (GPU machines compile many Triton kernels); set for this call only
    cores = os.cpu_count() or 1
    with atomic_write(path) as tmp, inductor_config.patch(compile_threads=1 if cores <= 4 else min(8, cores)):
        torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
