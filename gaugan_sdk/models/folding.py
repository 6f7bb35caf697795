"""Export-time transform: the eval-mode model with nothing left that an exporter or engine trips on.

- spectral norm folded into plain conv weights (exact in eval mode: the same W / sigma, computed once);
- SyncBatchNorm swapped for BatchNorm2d with the same running statistics (its single-device eval form);
- eval mode, no gradients.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .spectral_norm import SNConv2d


@torch.no_grad()
def fold_for_inference(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return `model` (a copy unless inplace) ready for tracing: eval, SN folded, SyncBN -> BatchNorm2d."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SNConv2d):
                setattr(parent, name, child.folded())
            elif isinstance(child, nn.SyncBatchNorm):
                setattr(parent, name, _batchnorm_from_sync(child))
    model.requires_grad_(False)
    return model


def _batchnorm_from_sync(sync: nn.SyncBatchNorm) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(sync.num_features, eps=sync.eps, momentum=sync.momentum, affine=sync.affine,
                        track_running_stats=sync.track_running_stats)
    bn.load_state_dict(sync.state_dict())
    return bn.to(_device_of(sync)).eval()


def _device_of(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")
