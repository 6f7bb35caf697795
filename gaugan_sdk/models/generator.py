"""SPADEGenerator: label map (one-hot semantics) [+ style z] -> RGB image in [-1, 1].

Structure (ngf = nf; resolution doubles at each "up"):

    stem   mask -> nearest resize to the latent grid (sh, sw) -> 3x3 conv to 16nf     (use_vae=False)
           z -> Linear -> reshape to (16nf, sh, sw)                                    (use_vae=True)
    head_0                      16nf -> 16nf    at (sh, sw)
    up, G_middle_0              16nf -> 16nf
    [up if more/most] G_middle_1 16nf -> 16nf
    up, up_0 .. up, up_3        16nf -> 8nf -> 4nf -> 2nf -> nf
    [up, up_4 if most]          nf -> nf/2
    conv_img(leaky_relu(x, 0.2)) -> tanh

Every block is modulated by the label map resized (nearest) to its resolution. The reference resizes the full
map inside each of the 18 SPADE layers; here each resolution is computed once and shared (identical values).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GeneratorConfig
from .spade import LEAKY_SLOPE, SPADEResnetBlock


class SPADEGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        nf = cfg.ngf
        self.sh, self.sw = cfg.latent_size
        if cfg.use_vae:
            self.fc = nn.Linear(cfg.z_dim, 16 * nf * self.sh * self.sw)
        else:
            self.fc = nn.Conv2d(cfg.semantic_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, cfg.semantic_nc, spectral_norm=cfg.spectral_norm,
                                    norm=cfg.param_free_norm, kernel_size=cfg.spade_kernel_size,
                                    hidden=cfg.spade_hidden)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, 1 * nf)
        final_nc = nf
        if cfg.num_upsampling_layers == "most":
            self.up_4 = block(1 * nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def forward(self, semantics: torch.Tensor, z: torch.Tensor | None = None, *,
                latent_size: tuple[int, int] | None = None) -> torch.Tensor:
        """semantics: float (N, semantic_nc, H, W); z: (N or 1, z_dim) when use_vae (sampled from N(0, I) if
        None). Returns (N, 3, sh*2**n, sw*2**n) in [-1, 1].

        `latent_size` overrides the latent grid (sh, sw) of a mask-stem model so that it runs fully
        convolutionally at another resolution (export uses H // stride, W // stride). By default the grid is
        the one fixed by the config, as in the reference: the mask is then resized to it.
        """
        cfg = self.cfg
        if semantics.dim() != 4 or semantics.shape[1] != cfg.semantic_nc:
            raise ValueError(f"semantics must be (N, {cfg.semantic_nc}, H, W) for this model, got "
                             f"{tuple(semantics.shape)}; build it with gaugan_sdk.labels.to_semantics")
        sh, sw = self._latent_size(latent_size)
        # One nearest resize of the mask per resolution: level k is (sh * 2**k, sw * 2**k).
        segs = [F.interpolate(semantics, size=(sh * 2 ** k, sw * 2 ** k), mode="nearest")
                for k in range(cfg.num_up_layers + 1)]

        x = self._stem(semantics, segs[0], z)
        x = self.head_0(x, segs[0])
        x = self.G_middle_0(_up(x), segs[1])
        level = 1
        if cfg.num_upsampling_layers in ("more", "most"):
            x, level = _up(x), 2
        x = self.G_middle_1(x, segs[level])
        for block in self.up_blocks():
            level += 1
            x = block(_up(x), segs[level])
        x = self.conv_img(F.leaky_relu(x, LEAKY_SLOPE))
        return torch.tanh(x)

    def up_blocks(self) -> list[SPADEResnetBlock]:
        names = ["up_0", "up_1", "up_2", "up_3"] + (["up_4"] if hasattr(self, "up_4") else [])
        return [getattr(self, name) for name in names]

    def _latent_size(self, latent_size: tuple[int, int] | None) -> tuple[int, int]:
        if latent_size is None:
            return self.sh, self.sw
        if self.cfg.use_vae:
            raise ValueError("latent_size cannot change for a use_vae generator: its Linear stem produces the "
                             f"fixed {self.sh}x{self.sw} grid")
        return latent_size

    def _stem(self, semantics: torch.Tensor, seg_latent: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        if not self.cfg.use_vae:
            if z is not None:
                raise ValueError("this generator has no style input (use_vae=False); call it with z=None")
            return self.fc(seg_latent)
        if z is None:
            z = torch.randn(semantics.shape[0], self.cfg.z_dim, device=semantics.device, dtype=semantics.dtype)
        elif z.dim() != 2 or z.shape[1] != self.cfg.z_dim:
            raise ValueError(f"z must be (N, {self.cfg.z_dim}), got {tuple(z.shape)}")
        return self.fc(z).view(-1, 16 * self.cfg.ngf, self.sh, self.sw)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")
