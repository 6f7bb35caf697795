"""torchrun / DDP set-up: NCCL with SyncBatchNorm on CUDA, gloo on CPU; a no-op for one process.

    torchrun --nproc-per-node 8 -m training.train ...                                  # one node, 8 GPUs
    torchrun --nnodes 2 --node-rank R --master-addr HOST --nproc-per-node 8 -m training.train ...

torchrun sets RANK / LOCAL_RANK / WORLD_SIZE; each process takes GPU LOCAL_RANK. The batch size is per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_arg: str) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = Dist(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)
    device = resolve_device(device_arg, info.local_rank)
    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return info, device


def resolve_device(device_arg: str, local_rank: int = 0) -> torch.device:
    if device_arg == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(device_arg)
    except RuntimeError:
        raise ValueError(f"device={device_arg!r}; accepted: auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device_arg!r} but torch sees no CUDA GPU (torch {torch.__version__}); use "
                               "--device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    elif device.type != "cpu":
        raise ValueError(f"device={device_arg!r}; accepted: auto, cpu, cuda, cuda:N")
    return device


def prepare_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """SyncBatchNorm synchronizes statistics across CUDA processes; on CPU (gloo) it cannot, and a single
    process never needs it: there it becomes BatchNorm2d. State-dict keys are the same either way."""
    if device.type == "cuda" and dist.is_initialized():
        return module
    for name, child in module.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                child.track_running_stats, device=child.running_mean.device)
            bn.load_state_dict(child.state_dict())
            setattr(module, name, bn)
        else:
            prepare_batchnorm(child, device)
    return module


def wrap(module: nn.Module, info: Dist, device: torch.device) -> nn.Module:
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_reduce_mean(values: dict[str, float], info: Dist, device: torch.device) -> dict[str, float]:
    if not info.enabled or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / info.world_size).tolist()))


@torch.no_grad()
def replica_checksums(module: nn.Module, info: Dist, device: torch.device) -> list[float]:
    """Every rank's sum of |parameter| (float64); equal on all ranks when DDP kept the replicas in step."""
    total = sum(p.detach().double().abs().sum() for p in module.parameters()).to(device)
    if not info.enabled:
        return [total.item()]
    gathered = [torch.zeros_like(total) for _ in range(info.world_size)]
    dist.all_gather(gathered, total)
    return [t.item() for t in gathered]


def cleanup(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
