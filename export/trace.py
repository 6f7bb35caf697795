"""What both exporters trace: the contract's graph module, example inputs inside the shape ranges, and the
dynamic dimensions, all derived from `gaugan_sdk.contract`.

torch.onnx.export (dynamo) and torch.export + AOTInductor take the same description, so ONNX, TensorRT and
.pt2 artifacts accept the same inputs over the same shape ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.export import Dim

from gaugan_sdk.contract import (BATCH, HEIGHT, INSTANCE, LABEL, LABEL_BATCH, STYLE_HEIGHT, STYLE_SIZE, STYLE_WIDTH,
                                 REFERENCE, WIDTH, Z, GraphVariant, Range, Shapes, TensorSpec, dim_ranges, encoder_io,
                                 generator_io)
from gaugan_sdk.models import ConvEncoder, EncoderGraph, GeneratorGraph, SPADEGenerator


@dataclass
class TraceSpec:
    module: torch.nn.Module
    args: tuple[torch.Tensor, ...]
    kwargs: dict[str, torch.Tensor]
    dynamic_shapes: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def generator_trace(generator: SPADEGenerator, shapes: Shapes, uint8_output: bool = False, *,
                    variant: GraphVariant = REFERENCE) -> TraceSpec:
    """The generator graph (ids in; the graph `variant`) with example inputs inside `shapes` (resolved)."""
    cfg = generator.cfg
    inputs, outputs = generator_io(cfg, shapes, uint8_output, variant.graph)
    module = GeneratorGraph(generator, uint8_output=uint8_output, follows_input=shapes.follows_input(cfg),
                            variant=variant).eval()
    ranges = dim_ranges("generator", shapes.batch, shapes.height, shapes.width)
    # Spatial sizes are multiples of the stride: the latent grid is the symbolic dimension.
    dims = {BATCH: _dim(BATCH, ranges[BATCH]), LABEL_BATCH: _dim(LABEL_BATCH, ranges[LABEL_BATCH]),
            HEIGHT: _dim("h", ranges[HEIGHT], cfg.stride), WIDTH: _dim("w", ranges[WIDTH], cfg.stride)}
    # the label batch is its own symbol (its own Dim), traced at the batch's value, which it divides
    example = {BATCH: _example_batch(ranges[BATCH]), HEIGHT: _example_size(ranges[HEIGHT], cfg.stride),
               WIDTH: _example_size(ranges[WIDTH], cfg.stride)}
    example[LABEL_BATCH] = example[BATCH]
    rng = np.random.default_rng(0)
    tensors = {}
    for spec in inputs:
        shape = tuple(example[d] if isinstance(d, str) else d for d in spec.shape)
        if spec.name == LABEL:
            tensors[LABEL] = torch.from_numpy(rng.integers(0, cfg.num_label_channels, shape).astype(np.int32))
        elif spec.name == INSTANCE:
            tensors[INSTANCE] = tensors[LABEL] * 7 + 1
        elif spec.name == Z:
            tensors[Z] = torch.randn(shape)
    return TraceSpec(module, (tensors[LABEL],), {t.name: tensors[t.name] for t in inputs[1:]},
                     _dynamic(inputs, dims), inputs, outputs)


def encoder_trace(encoder: ConvEncoder, batch: Range, float_input: bool = False) -> TraceSpec:
    """The style encoder graph: uint8 RGB (N, H, W, 3) of any size in STYLE_SIZE (or float NCHW)."""
    graph = EncoderGraph(encoder, float_input=float_input).eval()
    inputs, outputs = encoder_io(encoder.cfg.z_dim, batch, float_input)
    dims = {BATCH: _dim(BATCH, batch), STYLE_HEIGHT: _dim("style_h", STYLE_SIZE),
            STYLE_WIDTH: _dim("style_w", STYLE_SIZE)}
    example = {BATCH: _example_batch(batch), STYLE_HEIGHT: 192, STYLE_WIDTH: 160}  # away from the bounds
    (spec,) = inputs
    shape = tuple(example[d] if isinstance(d, str) else d for d in spec.shape)
    style = torch.randint(0, 256, shape, dtype=torch.uint8) if spec.dtype == "uint8" else torch.rand(shape) * 2 - 1
    return TraceSpec(graph, (style,), {}, _dynamic(inputs, dims), inputs, outputs)


def _dynamic(inputs: tuple[TensorSpec, ...], dims: dict[str, Any]) -> dict[str, dict[int, Any]]:
    """torch.export's dynamic_shapes, keyed by the forward arguments (named as the contract's inputs)."""
    return {spec.name: {axis: dims[d] for d, axis in spec.axes.items()} for spec in inputs}


def _dim(name: str, values: Range, step: int = 1):
    """A symbolic dimension over `values` (in multiples of `step`); None for a fixed one."""
    if not values.dynamic:
        return None
    dim = Dim(name, min=values.min // step, max=values.max // step)
    return dim if step == 1 else step * dim


def _example_batch(values: Range) -> int:
    return min(max(2, values.min), values.max)  # batch 1 would specialize a dynamic batch


def _example_size(values: Range, stride: int) -> int:
    """A traced size away from 1 * stride (that would specialize the symbolic latent size to 1)."""
    return values.opt if values.opt != stride else values.max
