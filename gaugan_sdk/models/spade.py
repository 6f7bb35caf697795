"""SPADE normalization and the SPADE residual block (Park et al. 2019, section 3).

SPADE: normalize x with a parameter-free norm, then modulate it per pixel with gamma and beta predicted from
the label map by a small conv net: out = norm(x) * (1 + gamma) + beta. The "1 +" makes a fresh layer start
as a plain norm. State-dict names follow NVlabs/SPADE: param_free_norm, mlp_shared.0, mlp_gamma, mlp_beta.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .spectral_norm import SNConv2d

LEAKY_SLOPE = 0.2


def make_param_free_norm(kind: str, channels: int) -> nn.Module:
    """Normalization without affine parameters; eps 1e-5, momentum 0.1 as in the reference."""
    if kind == "syncbatch":  # single-process: plain batch norm; under DDP: synchronized statistics
        return nn.SyncBatchNorm(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"param-free norm {kind!r}; accepted: syncbatch, batch, instance")


class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, norm: str = "syncbatch", kernel_size: int = 3,
                 hidden: int = 128):
        super().__init__()
        self.param_free_norm = make_param_free_norm(norm, norm_nc)
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        if segmap.shape[-2:] != x.shape[-2:]:  # the generator passes maps already at x's size
            segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Pre-activation residual block: SPADE -> leaky ReLU(0.2) -> conv, twice; a learned 1x1 shortcut
    (SPADE -> conv, no activation) when the channel count changes."""

    def __init__(self, fin: int, fout: int, label_nc: int, *, spectral_norm: bool = True,
                 norm: str = "syncbatch", kernel_size: int = 3, hidden: int = 128):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        conv = SNConv2d if spectral_norm else nn.Conv2d
        # Registration order = the reference's state-dict order: conv_0, conv_1, conv_s, norm_0, norm_1, norm_s.
        self.conv_0 = conv(fin, fmiddle, 3, padding=1)
        self.conv_1 = conv(fmiddle, fout, 3, padding=1)
        if self.learned_shortcut:
            self.conv_s = conv(fin, fout, 1, bias=False)
        spade = dict(label_nc=label_nc, norm=norm, kernel_size=kernel_size, hidden=hidden)
        self.norm_0 = SPADE(fin, **spade)
        self.norm_1 = SPADE(fmiddle, **spade)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, **spade)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), LEAKY_SLOPE))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), LEAKY_SLOPE))
        return x_s + dx
