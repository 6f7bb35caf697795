"""Run bookkeeping: numbered run directories, the progress line, TensorBoard, image grids, checkpoints.

    runs/00003-procedural/
        options.json          the resolved options and the model config (what --dry-run prints)
        log.txt               the progress lines
        events.out.tfevents.* TensorBoard scalars and image grids (mask | generated | real)
        images/iter_0000500.png
        checkpoints/iter_0001000.pt   gaugan-sdk checkpoints (written atomically; the newest KEEP are kept)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gaugan_sdk._io import atomic_write
from gaugan_sdk.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.imaging import image_to_uint8
from gaugan_sdk.labels import LabelSet

__all__ = [
    "new_run_dir", "write_json", "checkpoint_path", "save_training_checkpoint", "list_checkpoints",
    "resolve_resume", "resumed_run_dir", "load_training_checkpoint", "Progress", "Board", "tensor_to_uint8",
    "image_grid"
]

KEEP = 3
_CHECKPOINT = re.compile(r"^iter_(\d+)\.pt$")


def new_run_dir(outdir: str | Path, name: str) -> Path:
    """outdir/NNNNN-name with NNNNN one past the highest number there."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    run = outdir / f"{max(numbers, default=-1) + 1:05d}-{name}"
    run.mkdir()
    return run


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------- checkpoints
def checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return run_dir / "checkpoints" / f"iter_{iteration:07d}.pt"


def save_training_checkpoint(run_dir: Path, iteration: int, cfg: GeneratorConfig, generator, encoder,
                             training: dict[str, Any]) -> Path:
    """Write iter_NNNNNNN.pt atomically, then drop all but the newest KEEP. A kill mid-write leaves at most a
    hidden temporary file, which `latest_checkpoint` ignores."""
    path = checkpoint_path(run_dir, iteration)
    path.parent.mkdir(exist_ok=True)
    save_checkpoint(path, cfg, generator, encoder, training=training)
    for old in list_checkpoints(run_dir)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_resume(target: str | Path) -> Path:
    """A checkpoint file, or a run directory (its newest checkpoint)."""
    target = Path(target)
    if target.is_file():
        return target
    if target.is_dir():
        found = list_checkpoints(target)
        if not found:
            raise FileNotFoundError(f"--resume {target}: no checkpoints/iter_*.pt in that run directory")
        return found[-1]
    raise FileNotFoundError(f"--resume {target}: no such checkpoint file or run directory")


def resumed_run_dir(checkpoint: Path) -> Path | None:
    """The run a resumed training continues in: the directory the checkpoint lies in (`RUN/checkpoints/iter_N.pt`
    -> RUN), wherever that directory has been copied or moved. Never a path stored in the checkpoint: a copy of a
    run must not write into (and prune the checkpoints of) the run it was copied from. None for a checkpoint
    outside a run directory: the resumed training then starts a new run directory in --outdir."""
    checkpoint = Path(checkpoint).resolve()
    if checkpoint.parent.name == "checkpoints" and _CHECKPOINT.match(checkpoint.name):
        return checkpoint.parent.parent
    return None


def load_training_checkpoint(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if not ckpt.training or "iteration" not in ckpt.training:
        raise ValueError(f"{path} holds model weights but no training state (optimizers, iteration); it can "
                         "be exported or run, not resumed")
    return ckpt


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------- logging
class Progress:
    """The fixed-width progress line: iteration, epoch, it/s, ETA, losses, peak GPU memory."""

    def __init__(self, total: int, start: int, log_file: Path | None, device: torch.device):
        self.total, self.start, self.log_file, self.device = total, start, log_file, device
        self.t0 = self.t_last = time.perf_counter()
        self.it_last = start

    def line(self, iteration: int, epoch: int, losses: dict[str, float]) -> str:
        now = time.perf_counter()
        rate = (iteration - self.it_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.it_last = now, iteration
        overall = (iteration - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - iteration) / overall if overall > 0 else 0
        parts = [f"it {iteration:>7d}/{self.total}", f"ep {epoch:>3d}", f"{rate:6.2f} it/s",
                 f"ETA {_hms(eta)}"]
        parts.append(" ".join(f"{k} {v:7.4f}" for k, v in losses.items()))
        if self.device.type == "cuda":
            parts.append(f"mem {torch.cuda.max_memory_allocated(self.device) / 2**30:5.2f} GiB")
        text = " | ".join(parts)
        if self.log_file is not None:
            with open(self.log_file, "a") as f:
                f.write(text + "\n")
        return text


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] on any device -> uint8 (N, H, W, 3) numpy."""
    return image_to_uint8(images.detach().float().cpu().numpy())


def image_grid(labels: LabelSet, label_ids: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
               rows: int = 4) -> np.ndarray:
    """uint8 (H', W', 3): one row per sample, mask (palette colours) | generated | real."""
    n = min(rows, label_ids.shape[0])
    ids = label_ids[:n, 0].cpu().numpy()
    masks = labels.colorize(ids)
    fakes, reals = tensor_to_uint8(fake[:n]), tensor_to_uint8(real[:n])
    return np.concatenate([np.concatenate([m, f, r], axis=1) for m, f, r in zip(masks, fakes, reals)], axis=0)


class Board:
    """TensorBoard writer (scalars, image grids) on the main process; a no-op elsewhere or without tensorboard."""

    def __init__(self, run_dir: Path | None):
        self.writer = None
        if run_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                import warnings

                warnings.warn("tensorboard is not installed: no TensorBoard scalars or images (pip install "
                              "'gaugan-sdk[train]'); image grids still go to images/", stacklevel=2)
            else:
                self.writer = SummaryWriter(str(run_dir))

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def image(self, tag: str, grid: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, grid, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
