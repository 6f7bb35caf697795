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
