"""ConvEncoder: a style image -> (mu, logvar) of the VAE latent z (SPADE paper, appendix B).

Input (N, 3, H, W) in [-1, 1], resized (bilinear, align_corners=False) to 256x256 as in the reference; six
stride-2 3x3 convs (each conv -> instance norm, spectral norm on the convs, no bias) with leaky ReLU(0.2)
between them bring it to 512x4x4, and two Linear heads give mu and logvar.

Differences from NVlabs/SPADE, neither of which changes a released checkpoint: the reference drops layer6
when crop_size < 256 and then crashes (its input is 256x256 regardless), so layer6 is always here; and the
heads output z_dim values instead of a hard-coded 256 (the default z_dim is 256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GeneratorConfig
from .spade import LEAKY_SLOPE
from .spectral_norm import SNConv2d

ENCODER_INPUT_SIZE = 256


class ConvEncoder(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        ndf = cfg.ngf  # the reference uses ngf here (its --nef option is unused)
        conv = SNConv2d if cfg.spectral_norm else nn.Conv2d
        widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf, 8 * ndf]
        for i in range(6):
            layer = nn.Sequential(conv(widths[i], widths[i + 1], 3, stride=2, padding=1, bias=False),
                                  nn.InstanceNorm2d(widths[i + 1], affine=False))
            self.add_module(f"layer{i + 1}", layer)
        grid = ENCODER_INPUT_SIZE // 2 ** 6
        self.fc_mu = nn.Linear(8 * ndf * grid * grid, cfg.z_dim)
        self.fc_var = nn.Linear(8 * ndf * grid * grid, cfg.z_dim)

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if style.dim() != 4 or style.shape[1] != 3:
            raise ValueError(f"style must be an RGB batch (N, 3, H, W) in [-1, 1], got {tuple(style.shape)}")
        x = style
        if x.shape[2] != ENCODER_INPUT_SIZE or x.shape[3] != ENCODER_INPUT_SIZE:
            x = F.interpolate(x, size=(ENCODER_INPUT_SIZE, ENCODER_INPUT_SIZE), mode="bilinear",
                              align_corners=False)
        x = self.layer1(x)
        for layer in (self.layer2, self.layer3, self.layer4, self.layer5, self.layer6):
            x = layer(F.leaky_relu(x, LEAKY_SLOPE))
        x = F.leaky_relu(x, LEAKY_SLOPE).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + eps * exp(logvar / 2); eps ~ N(0, I) unless given (pass it for reproducible styles)."""
    std = torch.exp(0.5 * logvar)
    if eps is None:
        eps = torch.randn_like(std)
    return eps * std + mu
