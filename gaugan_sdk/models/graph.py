"""The ids-in graphs of the contract (`gaugan_sdk.contract`): exactly what every artifact computes, and what
a checkpoint runs in the runtime.

GeneratorGraph: label [, instance] [, z] -> image. The one-hot / dontcare / instance-edge expansion runs inside
the graph (one int per pixel crosses to the device instead of semantic_nc floats) and equals
`gaugan_sdk.labels.to_semantics` bit for bit. Ids are not range-checked here: the runtime rejects bad ones
before they reach an engine. The reference variant runs the reference module graph one op to one op (the
parity baseline); the fast variants (`contract.GraphVariant`) its exact restructuring (`models.fast`: batch norm folded into the
modulation, one mask conv per block or a lookup, one mask for N styles).

EncoderGraph: style (uint8 RGB NHWC, or float NCHW in [-1, 1]) -> mu, logvar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import REFERENCE, GraphVariant
from .encoder import ENCODER_INPUT_SIZE, ConvEncoder
from .fast import FastGenerator
from .folding import fold_for_inference
from .generator import SPADEGenerator
from .semantics import semantics_tensor


def image_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), rounded (gaugan_sdk.imaging.image_to_uint8 in numpy)."""
    return torch.round((image + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class GeneratorGraph(nn.Module):
    """`follows_input`: the latent grid follows the input size (a fully convolutional run at sizes other than
    the config's; `contract.Shapes.follows_input`)."""

    def __init__(self, generator: SPADEGenerator, *, uint8_output: bool = False, follows_input: bool = False,
                 variant: GraphVariant = REFERENCE):
        super().__init__()
        self.cfg, self.variant = generator.cfg, variant
        folded = fold_for_inference(generator)
        self.generator = FastGenerator(folded, variant) if variant.kind.ids_level else folded
        self.uint8_output = uint8_output
        self.follows_input = follows_input

    def forward(self, label: torch.Tensor, instance: torch.Tensor | None = None,
                z: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.generator.conv_img.weight.dtype  # fp16 packages compute in half, IO stays int32 / float32
        latent = None
        if self.follows_input:
            latent = (label.shape[2] // self.cfg.stride, label.shape[3] // self.cfg.stride)
        z = None if z is None else z.to(dtype)
        if self.variant.kind.ids_level:  # takes the ids: its mask branch resizes ids, not a one-hot map
            image = self.generator(label, instance, z, latent_size=latent)
        else:
            image = self.generator(semantics_tensor(label, instance, self.cfg).to(dtype), z, latent_size=latent)
        image = image.float()
        return image_to_uint8(image) if self.uint8_output else image


class EncoderGraph(nn.Module):
    def __init__(self, encoder: ConvEncoder, *, float_input: bool = False):
        super().__init__()
        self.encoder = fold_for_inference(encoder)
        self.float_input = float_input

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.float_input:
            style = style.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1
        # Always resized: bilinear to the same size is exactly the identity, and the graph stays shape-generic.
        style = F.interpolate(style, size=(ENCODER_INPUT_SIZE, ENCODER_INPUT_SIZE), mode="bilinear",
                              align_corners=False)
        mu, logvar = self.encoder(style.to(self.encoder.fc_mu.weight.dtype))
        return mu.float(), logvar.float()
