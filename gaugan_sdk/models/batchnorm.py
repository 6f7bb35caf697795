"""Re-estimate batch-norm running statistics from forward passes.

After training tricks that change the weights without updating the statistics (weight averaging, surgery),
and for random-weight models used in benchmarks and tests: with statistics that do not match the activations,
eval-mode activations grow block after block, tanh saturates, and fp16 overflows. This resets the running
statistics and recomputes them as a cumulative average over the given batches, in train mode, then restores
the modules' modes and momenta.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[tuple]) -> nn.Module:
    """Run `model(*batch)` for each batch in train mode with cumulative BN averaging; returns the model in
    the mode it had. Spectral-norm power iterations run as in training (one per call)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches
    model.train()
    try:
        for batch in batches:
            model(*batch)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model


def random_generator(cfg, seed: int = 0):
    """A generator of `cfg` with random weights (`seed`) and batch-norm statistics estimated on two procedural
    scenes, in eval mode: the stand-in for a trained model in benchmarks (default statistics would blow the
    activations up, which no trained model does)."""
    from ..labels import label_set_for, to_semantics
    from ..procedural import scene_batch
    from .generator import SPADEGenerator

    torch.manual_seed(seed)
    generator = SPADEGenerator(cfg)
    labels, instances = scene_batch(2000, 2, *cfg.image_size, label_set_for(cfg))
    semantics = torch.from_numpy(to_semantics(labels, instances if cfg.use_instance else None, cfg))
    recalibrate_batchnorm(generator, [(semantics, torch.randn(2, cfg.z_dim) if cfg.use_vae else None)])
    return generator.eval()
