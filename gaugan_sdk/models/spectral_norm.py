"""SNConv2d: a Conv2d with spectral normalization, stored the way NVlabs checkpoints store it.

The released checkpoints were written by `torch.nn.utils.spectral_norm` (the legacy hook API): per conv a
parameter `weight_orig`, buffers `weight_u` [out] and `weight_v` [in*kh*kw], and no `weight`. This layer keeps
exactly that state-dict layout and math, without depending on the legacy hook (which re-assigns `.weight` on
every call and trips up torch.export):

    W = weight_orig / sigma,  sigma = u . (W_mat v),  W_mat = weight_orig reshaped to [out, in*kh*kw]

In training mode each forward first runs one power iteration that updates u and v in place; in eval mode the
stored u, v are used as they are, so folding W into a plain conv (`folded()`) is exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SNConv2d(nn.Conv2d):
    def __init__(self, *args, eps: float = 1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        # Re-register the weight as weight_orig. Conv2d registered weight before bias, so the state-dict order
        # becomes bias, weight_orig, weight_u, weight_v: the order of the reference checkpoints.
        weight = self._parameters.pop("weight")
        self.weight_orig = nn.Parameter(weight.detach())
        self.eps = eps
        rows, cols = weight.shape[0], weight[0].numel()
        self.register_buffer("weight_u", F.normalize(weight.new_empty(rows).normal_(), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(weight.new_empty(cols).normal_(), dim=0, eps=eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)

    def normalized_weight(self) -> torch.Tensor:
        device = self.weight_orig.device.type
        if device in ("cpu", "cuda") and torch.is_autocast_enabled(device):
            with torch.autocast(device, enabled=False):  # sigma in the weights' precision, not bf16
                return self._normalized_weight()
        return self._normalized_weight()

    def _normalized_weight(self) -> torch.Tensor:
        weight = self.weight_orig
        w_mat = weight.flatten(1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                F.normalize(torch.mv(w_mat.t(), u), dim=0, eps=self.eps, out=v)
                F.normalize(torch.mv(w_mat, v), dim=0, eps=self.eps, out=u)
            # Clones keep autograd from seeing the next in-place update of the buffers.
            u = u.clone(memory_format=torch.contiguous_format)
            v = v.clone(memory_format=torch.contiguous_format)
        sigma = torch.dot(u, torch.mv(w_mat, v))
        return weight / sigma

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        """A plain Conv2d with the eval-mode normalized weight (exact: the same division, done once)."""
        was_training = self.training
        self.eval()
        weight = self.normalized_weight()
        self.train(was_training)
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, groups=self.groups,
                         bias=self.bias is not None, padding_mode=self.padding_mode,
                         device=weight.device, dtype=weight.dtype)
        conv.weight.copy_(weight)
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        return conv

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from PyTorch 1.0-era spectral_norm hold weight (= weight_orig / sigma), weight_orig and
        # weight_u but no weight_v. Recover a v with u = normalize(W v) and u . W v = sigma, as torch did.
        keys = {name: prefix + name for name in ("weight", "weight_orig", "weight_u", "weight_v")}
        if keys["weight_v"] not in state_dict and all(keys[n] in state_dict for n in ("weight", "weight_orig",
                                                                                      "weight_u")):
            weight = state_dict.pop(keys["weight"])
            state_dict[keys["weight_v"]] = solve_v(state_dict[keys["weight_orig"]], state_dict[keys["weight_u"]],
                                                   weight)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@torch.no_grad()
def solve_v(weight_orig: torch.Tensor, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The v of an old spectral-norm state dict: v = pinv(W_mat) u, rescaled so that u . W_mat v = sigma.

    (torch computes pinv(W^T W) W^T u, the same vector; pinv(W_mat) is far cheaper for wide 3x3 convs.)
    """
    w_mat = weight_orig.flatten(1).double()
    sigma = (weight_orig.double() / weight.double()).mean()
    v = torch.linalg.pinv(w_mat) @ u.double()
    v = v * (sigma / torch.dot(u.double(), w_mat @ v))
    return v.to(weight_orig.dtype)
