"""What both exporters trace: the graph module, example inputs, dynamic dimensions and the IO contract.

torch.onnx.export (dynamo) and torch.export + AOTInductor take the same description, so ONNX, TensorRT and
.pt2 artifacts accept the same inputs over the same shape ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.export import Dim

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.metadata import STYLE_SIZE, TensorSpec
from gaugan_sdk.models import ConvEncoder, SPADEGenerator

from .graph import EncoderGraph, GeneratorGraph


@dataclass(frozen=True)
class ShapeRange:
    """min/opt/max of the batch and (for dynamic-size generators) of H and W in pixels."""

    batch: tuple[int, int, int] = (1, 1, 8)
    height: tuple[int, int, int] | None = None  # None: the config's fixed image size
    width: tuple[int, int, int] | None = None

    def resolved(self, cfg: GeneratorConfig) -> ShapeRange:
        h, w = cfg.image_size
        height, width = self.height or (h, h, h), self.width or (w, w, w)
        for name, values in (("batch", self.batch), ("height", height), ("width", width)):
            if not (len(values) == 3 and 1 <= values[0] <= values[1] <= values[2]):
                raise ValueError(f"{name} range {values} must be min <= opt <= max, all >= 1")
        resolved = ShapeRange(self.batch, height, width)
        if resolved.follows_input(cfg):
            for name, values in (("height", height), ("width", width)):
                bad = [v for v in values if v % cfg.stride or v < 2 * cfg.stride]
                if bad:
                    raise ValueError(f"{name} {bad} not accepted: a generator run at other sizes than its "
                                     f"{h}x{w} takes multiples of its stride {cfg.stride}, at least {2 * cfg.stride}")
            if cfg.use_vae:
                raise ValueError(f"a use_vae generator has a fixed latent grid: it runs at {h}x{w} only")
        return resolved

    @property
    def dynamic_size(self) -> bool:
        return self.height[0] != self.height[2] or self.width[0] != self.width[2]

    def follows_input(self, cfg: GeneratorConfig) -> bool:
        """Whether the latent grid must follow the input size (fully convolutional run), i.e. any size in the
        range differs from the config's image size."""
        h, w = cfg.image_size
        return set(self.height) != {h} or set(self.width) != {w}


@dataclass
class TraceSpec:
    module: torch.nn.Module
    args: tuple[torch.Tensor, ...]
    kwargs: dict[str, torch.Tensor]
    dynamic_shapes: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    output_names: list[str] = field(default_factory=list)


def generator_trace(generator: SPADEGenerator, shapes: ShapeRange, uint8_output: bool = False) -> TraceSpec:
    """The generator graph (ids in) with example inputs inside `shapes` (already resolved)."""
    cfg = generator.cfg
    graph = GeneratorGraph(generator, uint8_output=uint8_output, dynamic_size=shapes.follows_input(cfg)).eval()
    example_batch = min(max(2, shapes.batch[0]), shapes.batch[2])  # batch 1 would specialize a dynamic dim
    example_h, example_w = _example_size(shapes.height, cfg.stride), _example_size(shapes.width, cfg.stride)
    label = torch.from_numpy(_example_labels(cfg, example_batch, example_h, example_w))
    kwargs = {"instance": label * 7 + 1 if cfg.use_instance else None,
              "z": torch.randn(example_batch, cfg.z_dim) if cfg.use_vae else None}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    batch = _dim("batch", shapes.batch)
    spatial = {axis: cfg.stride * Dim(name, min=values[0] // cfg.stride, max=values[2] // cfg.stride)
               for axis, name, values in ((2, "h", shapes.height), (3, "w", shapes.width)) if values[0] != values[2]}
    image_dims = {0: batch, **spatial}
    dynamic = {"label": image_dims, **{k: (image_dims if k == "instance" else {0: batch}) for k in kwargs}}

    b = "batch" if batch is not None else shapes.batch[0]
    h = "height" if 2 in spatial else shapes.height[0]
    w = "width" if 3 in spatial else shapes.width[0]
    inputs = [TensorSpec("label", "int32", (b, 1, h, w))]
    if cfg.use_instance:
        inputs.append(TensorSpec("instance", "int32", (b, 1, h, w)))
    if cfg.use_vae:
        inputs.append(TensorSpec("z", "float32", (b, cfg.z_dim)))
    output = TensorSpec("image", "uint8", (b, h, w, 3)) if uint8_output else \
        TensorSpec("image", "float32", (b, 3, h, w))
    return TraceSpec(graph, (label,), kwargs, dynamic, tuple(inputs), (output,), ["image"])


def encoder_trace(encoder: ConvEncoder, batch: tuple[int, int, int], float_input: bool = False) -> TraceSpec:
    """The style encoder graph: uint8 RGB (N, H, W, 3) of any size in STYLE_SIZE (or float NCHW)."""
    graph = EncoderGraph(encoder, float_input=float_input).eval()
    example_batch = min(max(2, batch[0]), batch[2])
    style = torch.randint(0, 256, (example_batch, 192, 160, 3), dtype=torch.uint8)
    spatial_axes = (1, 2)
    if float_input:
        style, spatial_axes = style.permute(0, 3, 1, 2).float() / 127.5 - 1, (2, 3)
    dims = {0: _dim("batch", batch), spatial_axes[0]: Dim("style_h", min=STYLE_SIZE[0], max=STYLE_SIZE[2]),
            spatial_axes[1]: Dim("style_w", min=STYLE_SIZE[0], max=STYLE_SIZE[2])}
    b = "batch" if batch[0] != batch[2] else batch[0]
    style_spec = TensorSpec("style", "float32", (b, 3, "style_height", "style_width")) if float_input else \
        TensorSpec("style", "uint8", (b, "style_height", "style_width", 3))
    z_dim = encoder.cfg.z_dim
    outputs = (TensorSpec("mu", "float32", (b, z_dim)), TensorSpec("logvar", "float32", (b, z_dim)))
    return TraceSpec(graph, (style,), {}, {"style": {k: v for k, v in dims.items() if v is not None}},
                     (style_spec,), outputs, ["mu", "logvar"])


def _dim(name: str, values: tuple[int, int, int]):
    return None if values[0] == values[2] else Dim(name, min=values[0], max=values[2])


def _example_size(values: tuple[int, int, int], stride: int) -> int:
    """A traced size away from 1 * stride (that would specialize the symbolic latent size to 1)."""
    return values[1] if values[1] != stride else values[2]


def _example_labels(cfg: GeneratorConfig, batch: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, cfg.num_label_channels, size=(batch, 1, h, w)).astype(np.int32)
