"""Stage 5: AOTInductor packages (.pt2) for machines without TensorRT: torch.export + AOTInductor.

A package is compiled for the device type it is built on (CPU, or CUDA on a GPU machine); fp16 packages are
CUDA only. Dynamic batch (and H/W when asked) as in the ONNX, from the same trace description.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch._inductor import config as inductor_config

from gaugan_sdk._io import atomic_write
from gaugan_sdk.contract import DEFAULT_BATCH, REFERENCE, STYLE_SIZE, GraphVariant, Range, Shapes
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.models import ConvEncoder, SPADEGenerator

from .trace import TraceSpec, encoder_trace, generator_trace, graph_fields

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def export_generator_pt2(generator: SPADEGenerator, path: str | Path, shapes: Shapes = Shapes(), *,
                         precision: str = "fp32", device: str | None = None, uint8_output: bool = False,
                         source: dict | None = None, encoder_file: str | None = None,
                         variant: GraphVariant = REFERENCE) -> ArtifactMetadata:
    device = check_precision_device(precision, device)
    shapes = shapes.resolved(generator.cfg)
    spec = generator_trace(generator, shapes, uint8_output, variant=variant)
    _compile(spec, path, device, precision)
    return ArtifactMetadata.for_graph("generator", "pt2", precision, generator.cfg, (spec.inputs, spec.outputs),
                                      shapes, uint8_output=uint8_output, encoder=encoder_file, source=source or {},
                                      device=device, **graph_fields(variant))


def export_encoder_pt2(encoder: ConvEncoder, path: str | Path, batch: Range = DEFAULT_BATCH, *,
                       precision: str = "fp32", device: str | None = None,
                       source: dict | None = None) -> ArtifactMetadata:
    device = check_precision_device(precision, device)
    batch = Range.of(batch, "batch range")
    spec = encoder_trace(encoder, batch)
    _compile(spec, path, device, precision)
    return ArtifactMetadata.for_graph("encoder", "pt2", precision, encoder.cfg, (spec.inputs, spec.outputs),
                                      Shapes(batch, STYLE_SIZE, STYLE_SIZE), source=source or {}, device=device)


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
