"""Stage 1: PyTorch -> ONNX (fp32) with the dynamo exporter, dynamic batch and optional dynamic H/W.

The ONNX carries its metadata in metadata_props, and is checked to use only ops the TensorRT ONNX parser
supports (onnx-tensorrt docs/operators.md), so the same file builds on TensorRT 10 and 11.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import torch

from gaugan_sdk._io import atomic_write
from gaugan_sdk.contract import CPU_ONLY_GRAPHS, DEFAULT_BATCH, REFERENCE, STYLE_SIZE, GraphVariant, Range, Shapes
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.models import ConvEncoder, SPADEGenerator

from .trace import TraceSpec, encoder_trace, generator_trace, graph_fields

# Ops of the TensorRT ONNX parser's support matrix that graphs like ours can contain (all are supported by
# TensorRT 10.x and 11.x; QuantizeLinear/DequantizeLinear with zero points 0 only).
TRT_PARSER_OPS = frozenset({
    "Abs", "Add", "And", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape",
    "Conv", "DequantizeLinear", "Div", "Equal", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm", "Greater",
    "Identity", "InstanceNormalization", "LeakyRelu", "Less", "MatMul", "Max", "Min", "Mul", "Neg", "Not", "Or",
    "Pad", "Pow", "QuantizeLinear", "Range", "Reciprocal", "ReduceMean", "Relu", "Reshape", "Resize", "Round",
    "Shape", "Sigmoid", "Slice", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})


def export_generator(generator: SPADEGenerator, path: str | Path, shapes: Shapes = Shapes(), *,
                     uint8_output: bool = False, source: dict | None = None, encoder_file: str | None = None,
                     variant: GraphVariant = REFERENCE) -> ArtifactMetadata:
    """Export a generator (ids in, image out; the graph `variant`) to an fp32 ONNX file at `path` with its
    metadata inside."""
    shapes = shapes.resolved(generator.cfg)
    spec = generator_trace(generator, shapes, uint8_output, variant=variant)
    meta = ArtifactMetadata.for_graph("generator", "onnx", "fp32", generator.cfg, (spec.inputs, spec.outputs),
                                      shapes, uint8_output=uint8_output, encoder=encoder_file, source=source or {},
                                      **graph_fields(variant))
    save_onnx(_export(spec), path, meta)
    return meta


def export_encoder(encoder: ConvEncoder, path: str | Path, batch: Range = DEFAULT_BATCH, *,
                   float_input: bool = False, source: dict | None = None) -> ArtifactMetadata:
    """Export the style encoder: uint8 RGB (N, H, W, 3) of any size (or float NCHW) -> mu, logvar."""
    batch = Range.of(batch, "batch range")
    spec = encoder_trace(encoder, batch, float_input)
    meta = ArtifactMetadata.for_graph("encoder", "onnx", "fp32", encoder.cfg, (spec.inputs, spec.outputs),
                                      Shapes(batch, STYLE_SIZE, STYLE_SIZE), source=source or {})
    save_onnx(_export(spec), path, meta)
    return meta


def save_onnx(model: onnx.ModelProto, path: str | Path, meta: ArtifactMetadata) -> None:
    """Set metadata_props, check the op types (graphs for TensorRT too: not the CPU-only sparse graph), write
    atomically (external data only past protobuf's 2 GB)."""
    unsupported = unsupported_ops(model) if meta.graph not in CPU_ONLY_GRAPHS else set()
    if unsupported:
        raise RuntimeError(f"the exported graph uses ops the TensorRT ONNX parser does not support: "
                           f"{', '.join(sorted(unsupported))}")
    del model.metadata_props[:]
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    with atomic_write(path) as tmp:
        onnx.save(model, tmp)


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
def _export(spec: TraceSpec) -> onnx.ModelProto:
    """torch.onnx.export (dynamo), quiet: verbose=False keeps its progress lines off the console, and its
    logger's level and the warnings filter are changed for this call only."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(spec.module, spec.args, kwargs=spec.kwargs or None, dynamo=True,
                                        verbose=False, dynamic_shapes=spec.dynamic_shapes,
                                        output_names=spec.output_names)
    finally:
        logger.setLevel(level)
    model = program.model_proto
    localize_branch_initializers(model)
    return model
