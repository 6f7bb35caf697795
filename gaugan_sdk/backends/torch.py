"""Eager PyTorch backend for our checkpoints (.pt / .pth): parity runs and users without exported engines.

A checkpoint runs through the contract's graphs (`gaugan_sdk.models.GeneratorGraph` / `EncoderGraph`), the very
modules every exporter traces: the same int32 ids and uint8 styles in, the in-graph one-hot, the same outputs.
`TorchModuleBackend` runs any torch callable that takes the contract's inputs by name (AOTInductor packages too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import STYLE_SIZE, UNBOUNDED_BATCH, Shapes, encoder_io, generator_io
from ..kinds import CHECKPOINT
from ..metadata import ArtifactMetadata
from .base import Backend, RuntimeOptions, missing_library


class TorchModuleBackend(Backend):
    """A torch callable over the contract's inputs: named numpy feeds in, numpy (or torch, device_output) out."""

    kind = CHECKPOINT

    def __init__(self, module, names: list[str], device: str):
        try:
            import torch
        except ImportError:
            raise missing_library("torch", self.kind, f"running {self.kind.name} artifacts") from None
        self.torch, self.module, self.names, self.device = torch, module, list(names), device

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        torch = self.torch
        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device) for n in self.names]
        with torch.no_grad():
            out = self.module(tensors[0], **dict(zip(self.names[1:], tensors[1:])))
        outputs = list(out) if isinstance(out, (tuple, list)) else [out]
        return outputs if device_output else [t.cpu().numpy() for t in outputs]

    def close(self) -> None:
        self.module = None


def open_model(path, options: RuntimeOptions):
    """The runtime's entry for checkpoints (kinds.CHECKPOINT.whole_model): `open_checkpoint` on the device asked."""
    return open_checkpoint(path, options.device)


def check_torch_device(device: str | None, artifact: str) -> None:
    """device="cuda" for a torch-run artifact where torch has no CUDA: said with the reason (torch itself raises
    an AssertionError, "Torch not compiled with CUDA enabled")."""
    import torch

    if device != "cuda" or torch.cuda.is_available():
        return
    why = "is a CPU-only build" if torch.version.cuda is None else "sees no CUDA device"
    raise ValueError(f"device='cuda' but this torch {torch.__version__} {why} (it has no CUDA to run {artifact} "
                     f"on); accepted here: device='cpu' or None. On a GPU machine, install the CUDA build of torch")


def open_checkpoint(path, device: str | None = None, config=None):
    """(generator backend, encoder backend or None, generator metadata, encoder metadata or None) from a
    checkpoint file or NVlabs folder, the metadata from the contract (fixed size, batch UNBOUNDED_BATCH)."""
    try:
        import torch
    except ImportError:
        raise missing_library("torch", CHECKPOINT, "running checkpoints") from None

    from ..checkpoint import load_checkpoint
    from ..models import EncoderGraph, GeneratorGraph

    check_torch_device(device, Path(path).name)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = load_checkpoint(path, config)
    cfg, source = ckpt.config, ckpt.source
    shapes = Shapes(UNBOUNDED_BATCH).resolved(cfg)
    meta = ArtifactMetadata.for_graph("generator", "checkpoint", "fp32", cfg, generator_io(cfg, shapes), shapes,
                                      source=source)
    generator = TorchModuleBackend(GeneratorGraph(ckpt.build_generator()).to(device), meta.input_names, device)
    if not ckpt.encoder:
        return generator, None, meta, None
    encoder_meta = ArtifactMetadata.for_graph("encoder", "checkpoint", "fp32", cfg,
                                              encoder_io(cfg.z_dim, UNBOUNDED_BATCH),
                                              Shapes(UNBOUNDED_BATCH, STYLE_SIZE, STYLE_SIZE), source=source)
    encoder = TorchModuleBackend(EncoderGraph(ckpt.build_encoder()).to(device), encoder_meta.input_names, device)
    return generator, encoder, meta, encoder_meta
