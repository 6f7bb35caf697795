"""The generator input built from label ids on the device: one-hot (+ dontcare) and instance edges in torch.

Used by training (ids cross to the GPU as one int per pixel) and inside the exported graphs; equal to the numpy
reference `gaugan_sdk.labels.to_semantics` bit for bit. Ids are not range-checked here: callers validate them
(the runtime before they reach an engine, the datasets when they read a file).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import GeneratorConfig
from ..labels import DONTCARE_ID


def semantics_tensor(label: torch.Tensor, instance: torch.Tensor | None, cfg: GeneratorConfig) -> torch.Tensor:
    """int ids (N, 1, H, W) [+ instance ids] -> float32 (N, semantic_nc, H, W), as labels.to_semantics does."""
    if cfg.contain_dontcare_label:
        label = torch.where(label == DONTCARE_ID, torch.full_like(label, cfg.label_nc), label)
    channels = torch.arange(cfg.num_label_channels, dtype=label.dtype, device=label.device).view(1, -1, 1, 1)
    one_hot = (label == channels).to(torch.float32)
    if not cfg.use_instance:
        return one_hot
    if instance is None:
        raise ValueError("this model uses instance edges (use_instance=True): pass instance ids (N, 1, H, W)")
    return torch.cat([one_hot, instance_edges_tensor(instance)], dim=1)


def instance_edges_tensor(instance: torch.Tensor) -> torch.Tensor:
    """1.0 where a pixel differs from a 4-neighbour, both sides of a boundary marked (labels.instance_edges)."""
    horizontal = (instance[..., :, 1:] != instance[..., :, :-1]).to(torch.float32)
    vertical = (instance[..., 1:, :] != instance[..., :-1, :]).to(torch.float32)
    edge = torch.maximum(F.pad(horizontal, (1, 0)), F.pad(horizontal, (0, 1)))
    edge = torch.maximum(edge, torch.maximum(F.pad(vertical, (0, 0, 1, 0)), F.pad(vertical, (0, 0, 0, 1))))
    return edge
