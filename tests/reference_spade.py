"""An independent, functional restatement of the NVlabs/SPADE eval-mode forward (docs/design.md, "The model"),
computed straight from a raw state dict with torch.nn.functional.

It shares no code with gaugan_sdk.models, so a wiring mistake there (a norm applied to the wrong tensor, a
missing shortcut, a wrong resize, the wrong spectral-norm formula) shows up as a mismatch in the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SLOPE = 0.2


def sn_weight(sd: dict, key: str) -> torch.Tensor:
    """Legacy torch spectral_norm in eval mode: W_orig / (u . W_mat v), no power iteration."""
    w, u, v = sd[key + "_orig"], sd[key + "_u"], sd[key + "_v"]
    return w / torch.dot(u, w.reshape(w.shape[0], -1) @ v)


def weight(sd: dict, key: str) -> torch.Tensor:
    return sn_weight(sd, key) if key + "_orig" in sd else sd[key]


def spade(sd: dict, p: str, x: torch.Tensor, seg: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "instance":
        normalized = F.instance_norm(x, eps=1e-5)
    else:
        normalized = F.batch_norm(x, sd[f"{p}.param_free_norm.running_mean"], sd[f"{p}.param_free_norm.running_var"],
                                  training=False, eps=1e-5)
    seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
    ks = sd[f"{p}.mlp_shared.0.weight"].shape[-1]
    actv = F.relu(F.conv2d(seg, sd[f"{p}.mlp_shared.0.weight"], sd[f"{p}.mlp_shared.0.bias"], padding=ks // 2))
    gamma = F.conv2d(actv, sd[f"{p}.mlp_gamma.weight"], sd[f"{p}.mlp_gamma.bias"], padding=ks // 2)
    beta = F.conv2d(actv, sd[f"{p}.mlp_beta.weight"], sd[f"{p}.mlp_beta.bias"], padding=ks // 2)
    return normalized * (1 + gamma) + beta


def resblock(sd: dict, p: str, x: torch.Tensor, seg: torch.Tensor, norm: str) -> torch.Tensor:
    if f"{p}.norm_s.mlp_gamma.weight" in sd:
        x_s = F.conv2d(spade(sd, f"{p}.norm_s", x, seg, norm), weight(sd, f"{p}.conv_s.weight"))
    else:
        x_s = x
    dx = F.conv2d(F.leaky_relu(spade(sd, f"{p}.norm_0", x, seg, norm), SLOPE), weight(sd, f"{p}.conv_0.weight"),
                  sd[f"{p}.conv_0.bias"], padding=1)
    dx = F.conv2d(F.leaky_relu(spade(sd, f"{p}.norm_1", dx, seg, norm), SLOPE), weight(sd, f"{p}.conv_1.weight"),
                  sd[f"{p}.conv_1.bias"], padding=1)
    return x_s + dx


def generator(sd: dict, seg: torch.Tensor, *, sh: int, sw: int, num_upsampling_layers: str, norm: str,
              z: torch.Tensor | None = None) -> torch.Tensor:
    if sd["fc.weight"].dim() == 2:  # VAE stem: z -> Linear -> (16 ngf, sh, sw)
        x = F.linear(z, sd["fc.weight"], sd["fc.bias"])
        x = x.view(x.shape[0], -1, sh, sw)
    else:
        x = F.conv2d(F.interpolate(seg, size=(sh, sw)), sd["fc.weight"], sd["fc.bias"], padding=1)

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2)

    x = resblock(sd, "head_0", x, seg, norm)
    x = resblock(sd, "G_middle_0", up(x), seg, norm)
    if num_upsampling_layers in ("more", "most"):
        x = up(x)
    x = resblock(sd, "G_middle_1", x, seg, norm)
    blocks = ["up_0", "up_1", "up_2", "up_3"] + (["up_4"] if num_upsampling_layers == "most" else [])
    for name in blocks:
        x = resblock(sd, name, up(x), seg, norm)
    x = F.conv2d(F.leaky_relu(x, SLOPE), sd["conv_img.weight"], sd["conv_img.bias"], padding=1)
    return torch.tanh(x)


def encoder(sd: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape[2:] != (256, 256):
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
    for i in range(1, 7):
        if i > 1:
            x = F.leaky_relu(x, SLOPE)
        x = F.instance_norm(F.conv2d(x, weight(sd, f"layer{i}.0.weight"), stride=2, padding=1), eps=1e-5)
    x = F.leaky_relu(x, SLOPE).reshape(x.shape[0], -1)
    return F.linear(x, sd["fc_mu.weight"], sd["fc_mu.bias"]), F.linear(x, sd["fc_var.weight"], sd["fc_var.bias"])
