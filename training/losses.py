"""The reference losses (NVlabs `models/networks/loss.py`, `pix2pix_model.py`).

hinge:  D: mean(relu(1 - real)) + mean(relu(1 + fake)) per scale; G: -mean(fake); averaged over scales.
feature matching: L1(fake features, real features) over every block output except the logits, x lambda / num_D.
VGG19 perceptual: L1 of relu1_1..relu5_1 features with weights 1/32, 1/16, 1/8, 1/4, 1 (x lambda_vgg), on
                  images in [-1, 1] as the reference feeds them (no ImageNet normalization).
KL:     -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) over batch and dims (a sum, not a mean), x lambda_kld.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

Features = list[list[torch.Tensor]]  # per discriminator scale, the block outputs (last: logits)


def hinge_d_loss(real: Features, fake: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """(D_real, D_fake), each averaged over scales."""
    d_real = sum(F.relu(1 - scale[-1]).mean() for scale in real) / len(real)
    d_fake = sum(F.relu(1 + scale[-1]).mean() for scale in fake) / len(fake)
    return d_real, d_fake


def hinge_g_loss(fake: Features) -> torch.Tensor:
    return sum(-scale[-1].mean() for scale in fake) / len(fake)


def feature_matching_loss(fake: Features, real: Features, weight: float = 10.0) -> torch.Tensor:
    total = fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake, real, strict=True):
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(f, r.detach()) * (weight / len(fake))
    return total


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


# ---------------------------------------------------------------------------------------------- VGG19
# torchvision's vgg19().features, layer by layer: numbers are conv widths, "M" max-pools. Only the first 30
# layers (up to relu5_1) are used; the state-dict keys match torchvision's (features.<index>.weight/bias).
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
VGG_SLICES = (2, 7, 12, 21, 30)  # ends of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class VGG19Features(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers[:VGG_SLICES[-1]])

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> VGG19Features:
        """Weights from a torchvision VGG19 state dict (e.g. vgg19-dcbb9e9d.pth); classifier keys are ignored."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a VGG19 state dict (torchvision format), got {type(state).__name__}")
        model = cls()
        wanted = model.state_dict()
        features = {k: v for k, v in state.items() if k in wanted}
        missing = sorted(set(wanted) - set(features))
        if missing:
            raise ValueError(f"{path} is not a torchvision VGG19 state dict: missing {', '.join(missing[:4])}"
                             f"{' ...' if len(missing) > 4 else ''}")
        bad = [k for k in wanted if features[k].shape != wanted[k].shape]
        if bad:
            raise ValueError(f"{path}: {bad[0]} has shape {tuple(features[bad[0]].shape)}, VGG19 has "
                             f"{tuple(wanted[bad[0]].shape)}")
        model.load_state_dict(features)
        return model.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for end in VGG_SLICES:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x)
            start = end
        return out


class VGGLoss(nn.Module):
    def __init__(self, vgg: VGG19Features):
        super().__init__()
        self.vgg = vgg

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_features, real_features = self.vgg(fake), self.vgg(real)
        return sum(w * F.l1_loss(f, r.detach())
                   for w, f, r in zip(VGG_WEIGHTS, fake_features, real_features, strict=True))
