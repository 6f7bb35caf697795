"""The exported graphs (DESIGN.md section 3): what goes in and out of every ONNX / TensorRT / .pt2 artifact.

GeneratorGraph
    label    int32 (N, 1, H, W)   class ids; 255 = dontcare when the model has that channel
    instance int32 (N, 1, H, W)   only when the model uses instance edges
    z        float32 (N, z_dim)   only when the model has a style path (use_vae)
    -> image float32 (N, 3, H, W) in [-1, 1], or uint8 (N, H, W, 3) with uint8_output

The one-hot / dontcare / instance-edge expansion runs inside the graph (one int per pixel crosses to the
device instead of semantic_nc floats) and equals `gaugan_sdk.labels.to_semantics` bit for bit. Ids outside
the accepted range are not checked here: the runtime rejects them before they reach the engine.

EncoderGraph
    style uint8 (N, H, W, 3) RGB  (or float32 (N, 3, H, W) in [-1, 1] with float_input)
    -> mu, logvar float32 (N, z_dim)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gaugan_sdk.models import ConvEncoder, SPADEGenerator, fold_for_inference
from gaugan_sdk.models.encoder import ENCODER_INPUT_SIZE
from gaugan_sdk.models.semantics import semantics_tensor


def image_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), rounded (gaugan_sdk.imaging.to_uint8 in numpy)."""
    return torch.round((image + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class GeneratorGraph(nn.Module):
    def __init__(self, generator: SPADEGenerator, *, uint8_output: bool = False, dynamic_size: bool = False):
        super().__init__()
        self.cfg = generator.cfg
        self.generator = fold_for_inference(generator)
        self.uint8_output = uint8_output
        self.dynamic_size = dynamic_size

    def forward(self, label: torch.Tensor, instance: torch.Tensor | None = None,
                z: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.generator.conv_img.weight.dtype  # fp16 packages compute in half, IO stays int32 / float32
        semantics = semantics_tensor(label, instance, self.cfg).to(dtype)
        latent = None
        if self.dynamic_size:  # fully convolutional: the latent grid follows the input size
            latent = (label.shape[2] // self.cfg.stride, label.shape[3] // self.cfg.stride)
        image = self.generator(semantics, None if z is None else z.to(dtype), latent_size=latent).float()
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
