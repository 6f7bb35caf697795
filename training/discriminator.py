"""The multiscale PatchGAN discriminator of the reference (`netD=multiscale`, `n_layer` subnets).

Each scale: conv(4x4, s2) + lReLU, then n_layers_D - 1 conv -> instance-norm blocks (spectral norm, no bias;
the last one stride 1), then conv(4x4, s1) -> 1 channel of patch logits. It returns every block's output, the
intermediate ones for feature matching. Scale k + 1 sees the input average-pooled (3x3, s2, pad 1,
count_include_pad=False). The input is the semantic map concatenated with the (real or fake) image.
State-dict names follow the reference: discriminator_{k}.model{j}.0 (+ .1 for the norm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gaugan_sdk.models import SNConv2d

LEAKY_SLOPE = 0.2


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        kw, pad = 4, math.ceil((4 - 1) / 2)
        self.add_module("model0", nn.Sequential(nn.Conv2d(input_nc, ndf, kw, stride=2, padding=pad),
                                                nn.LeakyReLU(LEAKY_SLOPE)))
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = SNConv2d(nf_prev, nf, kw, stride=stride, padding=pad, bias=False)
            self.add_module(f"model{n}", nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False),
                                                       nn.LeakyReLU(LEAKY_SLOPE)))
        self.add_module(f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=pad)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.children():
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, num_D: int = 2):
        super().__init__()
        for k in range(num_D):
            self.add_module(f"discriminator_{k}", NLayerDiscriminator(input_nc, ndf, n_layers))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """x: (N, semantic_nc + 3, H, W) -> per scale, the list of block outputs (last: patch logits)."""
        outputs = []
        for k, scale in enumerate(self.children()):
            if k:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
