"""The ONNX artifact: PyTorch -> ONNX (fp32) with the dynamo exporter (dynamic batch, optional dynamic H/W),
then the precision conversion (export/precision.py), and the style encoder beside it. The writer of
`gaugan_sdk.kinds.ONNX` (`write`), and the first stage of the formats built from ONNX (TensorRT, OpenVINO).

The ONNX carries its metadata in metadata_props, and is checked to use only ops the TensorRT ONNX parser
supports (onnx-tensorrt docs/operators.md), so the same file builds on TensorRT 10 and 11.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from gaugan_sdk._io import atomic_write
from gaugan_sdk.backends.onnxruntime import weights_sha256
from gaugan_sdk.contract import DEFAULT_BATCH, REFERENCE, STYLE_SIZE, GraphVariant, Range, Shapes
from gaugan_sdk.kinds import TENSORRT
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.models import ConvEncoder, SPADEGenerator
from gaugan_sdk.precisions import PRECISIONS, precision_named

from .job import Built, ExportJob
from .precision import ConversionSettings, PrecisionReport
from .trace import TraceSpec, encoder_trace, generator_trace

# Ops of the TensorRT ONNX parser's support matrix that graphs like ours can contain (all are supported by
# TensorRT 10.x and 11.x; QuantizeLinear/DequantizeLinear with zero points 0 only).
TRT_PARSER_OPS = frozenset({
    "Abs", "Add", "And", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape",
    "Conv", "DequantizeLinear", "Div", "Equal", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm", "Greater",
    "Identity", "InstanceNormalization", "LeakyRelu", "Less", "MatMul", "Max", "Min", "Mul", "Neg", "Not", "Or",
    "Pad", "Pow", "QuantizeLinear", "Range", "Reciprocal", "ReduceMean", "Relu", "Reshape", "Resize", "Round",
    "Shape", "Sigmoid", "Slice", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})


def write(job: ExportJob) -> list[Built]:
    """The ONNX artifacts of an export, in the staging folder: the generator graph in the job's precision
    (verified by ONNX Runtime's CPU provider), the style encoder beside it."""
    stem, steps = job.output.stem, job.steps
    with steps(f"export the {job.variant.label} generator graph to ONNX (fp32)"):
        onnx32 = job.staged(f"{stem}.fp32.onnx")
        meta = export_generator(job.generator, onnx32, job.shapes, uint8_output=job.options.uint8_output,
                                encoder_file=job.encoder_name, variant=job.variant, **job.recorded)
    final = job.staged(f"{stem}.onnx")
    with steps(f"precision {job.precision}"):
        from .verify import generator_feeds

        meta, report = apply_precision(onnx32, final, meta, job.precision, generator_feeds(meta, *job.masks),
                                       job.conversion, job.options.min_psnr)
        for note in report.notes if report else []:
            job.note(note)
    built = [Built(final, meta)]
    if job.encoder is not None:
        with steps("export style encoder"):
            path = job.staged(f"{stem}_encoder.onnx")
            built.append(Built(path, export_style_encoder(job.encoder, path, job.precision, job.recorded)))
    return built


def export_generator(generator: SPADEGenerator, path: str | Path, shapes: Shapes = Shapes(), *,
                     uint8_output: bool = False, encoder_file: str | None = None, variant: GraphVariant = REFERENCE,
                     **recorded: Any) -> ArtifactMetadata:
    """Export a generator (ids in, image out; the graph `variant`) to an fp32 ONNX file at `path` with its
    metadata inside (`recorded`: further metadata fields, such as source and export)."""
    shapes = shapes.resolved(generator.cfg)
    spec = generator_trace(generator, shapes, uint8_output, variant=variant)
    meta = ArtifactMetadata.for_graph("generator", "onnx", "fp32", generator.cfg, (spec.inputs, spec.outputs),
                                      shapes, uint8_output=uint8_output, encoder=encoder_file, variant=variant,
                                      **recorded)
    return save_onnx(_export(spec), path, meta)


def export_encoder(encoder: ConvEncoder, path: str | Path, batch: Range = DEFAULT_BATCH, *,
                   float_input: bool = False, **recorded: Any) -> ArtifactMetadata:
    """Export the style encoder: uint8 RGB (N, H, W, 3) of any size (or float NCHW) -> mu, logvar."""
    batch = Range.of(batch, "batch range")
    spec = encoder_trace(encoder, batch, float_input)
    meta = ArtifactMetadata.for_graph("encoder", "onnx", "fp32", encoder.cfg, (spec.inputs, spec.outputs),
                                      Shapes(batch, STYLE_SIZE, STYLE_SIZE), **recorded)
    return save_onnx(_export(spec), path, meta)


def apply_precision(onnx32: Path, final: Path, meta: ArtifactMetadata, precision: str,
                    feeds: dict[str, np.ndarray], settings: ConversionSettings = ConversionSettings(),
                    target_psnr_db: float | None = None) -> tuple[ArtifactMetadata, PrecisionReport | None]:
    """The fp32 ONNX at `onnx32` (left in place) converted to `precision` by its converter into `final`, to its
    PSNR target (default: the precision's gate) on `feeds`; fp32 moves `onnx32` to `final`."""
    converter = precision_named(precision, file_only=True).converter
    if converter is None:
        Path(onnx32).replace(final)
        return meta, None
    from .verify import PsnrProbe

    target = target_psnr_db if target_psnr_db is not None else PRECISIONS[precision].min_psnr
    measure = PsnrProbe(onnx32, feeds, Path(final).parent, 255.0 if meta.uint8_output else 2.0)
    module = importlib.import_module(f"{__package__}.{converter}")
    converted, report = module.convert(Path(onnx32), feeds, measure, target, settings)
    return save_onnx(converted, final, dataclasses.replace(meta, precision=precision)), report


def export_style_encoder(encoder: ConvEncoder, path: Path, precision: str, recorded: dict) -> ArtifactMetadata:
    """The style encoder's ONNX: fp32, or fp16 (also for int8 models: there are no style images to calibrate
    the encoder on, and it is ~1 GMAC against the generator's ~200)."""
    from .fp16 import to_fp16

    meta = export_encoder(encoder, path, **recorded)
    if precision != "fp32":
        meta = save_onnx(to_fp16(onnx.load(path)), path, dataclasses.replace(meta, precision="fp16"))
    return meta


def save_onnx(model: onnx.ModelProto, path: str | Path, meta: ArtifactMetadata) -> ArtifactMetadata:
    """Write the model atomically with its metadata in metadata_props, and the sha256 of everything else
    (`weights_sha256`, gaugan_sdk.backends.onnxruntime) among them, so the file checks itself wherever it is
    copied; check its op types first (graphs TensorRT may build: not the CPU-only sparse graph). Returns the
    metadata with that hash."""
    tensorrt_may_build = meta.variant is None or meta.graph in TENSORRT.graphs
    unsupported = unsupported_ops(model) if tensorrt_may_build else set()
    if unsupported:
        raise RuntimeError(f"the exported graph uses ops the TensorRT ONNX parser does not support: "
                           f"{', '.join(sorted(unsupported))}")
    del model.metadata_props[:]
    data = model.SerializeToString()  # no metadata yet: what the hash covers
    meta = dataclasses.replace(meta, weights_sha256=weights_sha256(data))
    props = onnx.ModelProto()  # appended: a serialized message followed by another is their merge
    for key, value in meta.to_props().items():
        props.metadata_props.add(key=key, value=value)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data + props.SerializeToString())
    return meta


def unsupported_ops(model: onnx.ModelProto) -> set[str]:
    ops = {node.op_type for node in model.graph.node}
    for function in model.functions:  # nested function bodies count too
        ops |= {node.op_type for node in function.node}
    return ops - TRT_PARSER_OPS


def localize_branch_initializers(model: onnx.ModelProto) -> int:
    """Move each initializer that only an If branch reads into that branch (a subgraph may hold its own
    initializers). The exporter leaves them in the main graph, read from the outer scope, where ONNX Runtime's
    layout optimizer does not look: the convs inside a branch then miss its NCHWc kernels. Returns the count
    moved."""
    initializers = {t.name: t for t in model.graph.initializer}
    readers: dict[str, set[int]] = {}
    graphs = {id(model.graph): model.graph}

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            for name in node.input:
                if name in initializers:
                    readers.setdefault(name, set()).add(id(graph))
            for attr in node.attribute:
                for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                    graphs[id(sub)] = sub
                    walk(sub)

    walk(model.graph)
    outputs = {o.name for o in model.graph.output}
    moved = {name for name, where in readers.items()
             if len(where) == 1 and id(model.graph) not in where and name not in outputs}
    for name in moved:
        (where,) = readers[name]
        graphs[where].initializer.append(initializers[name])
    keep = [t for t in model.graph.initializer if t.name not in moved]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return len(moved)


# ------------------------------------------------------------------------------------------------ internals
EXPORTER_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")  # the exporter's and the IR library it builds with


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter's loggers at ERROR and its warnings ignored, for one export only (their levels and the warnings
    filter are restored after): without it the exporter prints progress lines and, for the sparse graph's If
    branches, "Attribute type is ambiguous" lines to stderr even with verbose=False."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export(spec: TraceSpec) -> onnx.ModelProto:
    """torch.onnx.export (dynamo), quiet (`quiet_exporter`)."""
    with quiet_exporter():
        program = torch.onnx.export(spec.module, spec.args, kwargs=spec.kwargs or None, dynamo=True, verbose=False,
                                    dynamic_shapes=spec.dynamic_shapes, output_names=spec.output_names)
    model = program.model_proto
    localize_branch_initializers(model)
    return model
