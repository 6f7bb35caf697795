"""Eager PyTorch backend for our checkpoints (.pt / .pth): parity runs and users without exported engines.

It takes the same inputs as the exported graphs (int32 ids, uint8 styles) and computes the model input with
the numpy reference `labels.to_semantics`, so all backends answer the same question.
"""

from __future__ import annotations

import numpy as np

from ..config import GeneratorConfig
from ..imaging import uint8_to_image
from ..labels import to_semantics
from .base import Backend


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, module, cfg: GeneratorConfig, role: str, device: str):
        import torch

        self.torch, self.module, self.cfg, self.role, self.device = torch, module.to(device).eval(), cfg, role, device

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        torch = self.torch
        with torch.no_grad():
            if self.role == "encoder":
                style = torch.from_numpy(uint8_to_image(feeds["style"])).to(self.device)
                outputs = list(self.module(style))
            else:
                instance = feeds["instance"][:, 0] if "instance" in feeds else None
                semantics = torch.from_numpy(to_semantics(feeds["label"][:, 0], instance, self.cfg)).to(self.device)
                z = torch.from_numpy(feeds["z"]).to(self.device) if "z" in feeds else None
                outputs = [self.module(semantics, z).float()]
        return outputs if device_output else [t.cpu().numpy() for t in outputs]

    def close(self) -> None:
        self.module = None


def open_checkpoint(path, device: str | None = None, config=None):
    """(generator backend, encoder backend or None, config, source) from a checkpoint file or NVlabs folder."""
    import torch

    from ..checkpoint import load_checkpoint

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = load_checkpoint(path, config)
    generator = TorchBackend(ckpt.build_generator(), ckpt.config, "generator", device)
    encoder = TorchBackend(ckpt.build_encoder(), ckpt.config, "encoder", device) if ckpt.encoder else None
    return generator, encoder, ckpt.config, ckpt.source
