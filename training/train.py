"""python -m training.train: train a SPADE/GauGAN generator with the NVlabs recipe.

    python -m training.train --dataset procedural --set ngf=16 --set crop_size=128 --max-iters 2000
    python -m training.train --dataset cityscapes --dataroot data/cityscapes --vgg-weights vgg19-dcbb9e9d.pth
    torchrun --nproc-per-node 8 -m training.train --dataset ade20k --dataroot data/ADEChallengeData2016 --batch-size 4
    python -m training.train --resume runs/00003-procedural                 # continue where it stopped
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import label_set_for

from . import distributed, run
from .datasets import build_dataset
from .metrics import FID, ConfusionMatrix, torchscript_segmenter
from .options import TrainOptions, build_parser, options_from_args
from .trainer import Trainer

__all__ = ["main", "train", "Evaluator"]


# Paths of pretrained networks: stored absolute, so that a run resumes from any folder
WEIGHTS = {"vgg_weights": "--vgg-weights", "inception_weights": "--inception-weights", "seg_model": "--seg-model"}
# What a resumed run takes from the command line; every other option is the run's stored one
RESUME_APPLIES = ("max_iters", "device", "outdir", "dataroot", "label_dir", "image_dir", "instance_dir", *WEIGHTS)


def main(argv: list[str] | None = None) -> Path | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    opts = options_from_args(args)
    resume_ckpt = None
    if opts.resume:
        resume_path = run.resolve_resume(opts.resume)
        resume_ckpt = run.load_training_checkpoint(resume_path)
        opts = _resumed_options(resume_ckpt.training["options"], opts, resume_path, _given(argv))
    else:
        opts = dataclasses.replace(opts, **{name: _weight_file(getattr(opts, name), name) for name in WEIGHTS})
    cfg = opts.generator_config()
    if args.dry_run:
        print(json.dumps({"options": opts.to_dict(), "model": cfg.to_dict()}, indent=2, sort_keys=True))
        return None
    return train(opts, cfg, resume_ckpt)


def train(opts: TrainOptions, cfg: GeneratorConfig, resume_ckpt=None) -> Path | None:
    info, device = distributed.init_distributed(opts.device)
    try:
        return _train(opts, cfg, info, device, resume_ckpt)
    finally:
        distributed.cleanup(info)


def _train(opts: TrainOptions, cfg: GeneratorConfig, info: distributed.Dist, device: torch.device,
           resume_ckpt) -> Path | None:
    torch.manual_seed(opts.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    dataset = build_dataset(opts, cfg, report=info.is_main)
    per_step = opts.batch_size * info.world_size
    iters_per_epoch = len(dataset) // per_step
    if iters_per_epoch == 0:
        raise ValueError(f"the dataset has {len(dataset)} samples, fewer than one step's batch ({opts.batch_size} x "
                         f"{info.world_size} processes); lower --batch-size")
    total = opts.max_iters or (opts.niter + opts.niter_decay) * iters_per_epoch
    trainer = Trainer(opts, cfg, device, info)
    labels = getattr(dataset, "labels", None) or label_set_for(cfg)  # procedural: its scene classes

    start = 0
    run_dir = None
    if resume_ckpt is not None:
        trainer.load_state_dict(resume_ckpt.generator, resume_ckpt.encoder, resume_ckpt.training)
        start = resume_ckpt.training["iteration"]
        run_dir = run.resumed_run_dir(Path(opts.resume))
        if start >= total:  # nothing written: the last line must not name a checkpoint this run did not write
            if info.is_main:
                print(f"nothing to train: {Path(opts.resume).name} is at iteration {start}, where this run ends "
                      f"({total}); give --max-iters above {start} to continue it", flush=True)
            return run_dir
    torch.manual_seed(opts.seed + 1000 * info.rank + start)  # per-rank z noise
    if resume_ckpt is not None:
        run.set_rng_state(resume_ckpt.training["rng"][info.rank] if info.rank < len(resume_ckpt.training["rng"])
                          else resume_ckpt.training["rng"][0])
    evaluator = Evaluator(opts, cfg, device) if info.is_main else None  # before any folder: its weights may fail
    made = None  # the run folder this start created: removed if the start fails before it logged or saved anything
    if info.is_main:
        newest = run.list_checkpoints(run_dir)[-1] if run_dir is not None else None
        if newest is not None and newest.resolve() != Path(opts.resume).resolve():  # another timeline is newer
            base = re.sub(r"^\d{5}-", "", run_dir.name)
            made = run.new_run_dir(run_dir.parent, f"{base}-from-{start}")
            print(f"resume: {Path(opts.resume).name} is not the newest checkpoint of {run_dir.name} ({newest.name} "
                  f"is): continuing in a new run {made.name}, so the newer files stay as they are", flush=True)
            run_dir = made
        elif run_dir is None:
            run_dir = made = run.new_run_dir(opts.outdir, opts.name or opts.dataset)
    board = written = None
    try:
        if info.is_main:
            run.write_json(run_dir / "options.json", {"options": opts.to_dict(), "model": cfg.to_dict(),
                                                      "world_size": info.world_size,
                                                      "iters_per_epoch": iters_per_epoch, "total_iters": total})
            (run_dir / "images").mkdir(exist_ok=True)
            print(f"run {run_dir}: {len(dataset)} samples, batch {opts.batch_size} x {info.world_size} process(es) "
                  f"on {device}, {iters_per_epoch} it/epoch, iterations {start} -> {total}", flush=True)
        board = run.Board(run_dir if info.is_main else None)
        progress = run.Progress(total, start, run_dir / "log.txt" if info.is_main else None, device)
        written = _loop(opts, cfg, trainer, dataset, labels, evaluator, board, progress, run_dir, info, device,
                        start, total, iters_per_epoch, per_step)
    except BaseException:
        if board is not None:
            board.close()
        if made is not None and not run.list_checkpoints(made) and not (made / "log.txt").is_file():
            shutil.rmtree(made, ignore_errors=True)  # nothing trained: the failed start leaves no numbered folder
            print(f"removed {made}, which this failed start had created", file=sys.stderr, flush=True)
        raise
    board.close()
    _check_replicas(trainer, info, device)
    if info.is_main:
        print(f"done: {run_dir}\n  checkpoint {written}\n  next: gaugan-export --checkpoint {written} --engine fp32 "
              f"--format onnx --output engines/{run_dir.name}.onnx", flush=True)
    return run_dir


def _loop(opts: TrainOptions, cfg: GeneratorConfig, trainer: Trainer, dataset, labels, evaluator, board, progress,
          run_dir: Path | None, info: distributed.Dist, device: torch.device, start: int, total: int,
          iters_per_epoch: int, per_step: int) -> Path | None:
    """The training iterations from `start` to `total`; the last checkpoint written (main process)."""
    it, written = start, None
    while it < total:
        epoch = it // iters_per_epoch
        trainer.set_epoch(epoch)
        dataset.set_epoch(epoch)
        order = _epoch_order(len(dataset), opts.seed, epoch, info, iters_per_epoch * per_step)
        loader = torch.utils.data.DataLoader(dataset, batch_size=opts.batch_size,
                                             sampler=order[(it % iters_per_epoch) * opts.batch_size:],
                                             num_workers=opts.num_workers, drop_last=True,
                                             pin_memory=device.type == "cuda")
        for batch in loader:
            g_losses, fake = trainer.generator_step(batch)
            d_losses = trainer.discriminator_step(batch)
            it += 1
            losses = {**g_losses, **d_losses}
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"iteration {it}: a loss is not finite ({_fmt(losses)}); lower --lr, or "
                                         "train with --precision fp32")
            if it % opts.log_every == 0 or it == total:
                mean = distributed.all_reduce_mean(losses, info, device)
                if info.is_main:
                    print(progress.line(it, epoch + 1, mean), flush=True)
                    board.scalars(mean, it, "loss/")
                    board.scalars({"lr/G": trainer.opt_G.param_groups[0]["lr"]}, it)
            if info.is_main and opts.image_every and (it % opts.image_every == 0 or it == total):
                grid = run.image_grid(labels, batch["label"], fake, batch["image"])
                Image.fromarray(grid).save(run_dir / "images" / f"iter_{it:07d}.png")
                board.image("mask | generated | real", grid, it)
            if it % opts.checkpoint_every == 0 or it == total:
                written = _checkpoint(run_dir, it, epoch, opts, cfg, trainer, info, device) or written
            if info.is_main and (it == total or (opts.eval_every and it % opts.eval_every == 0)):
                metrics = evaluator(trainer)
                if metrics:
                    board.scalars(metrics, it, "metrics/")
                    _append_metrics(run_dir, it, metrics)
                    print(f"it {it}: " + _fmt(metrics), flush=True)
            if it >= total:
                break
    return written


class Evaluator:
    """Metrics on held-out samples: mIoU (procedural oracle or --seg-model) and FID (--inception-weights)."""

    def __init__(self, opts: TrainOptions, cfg: GeneratorConfig, device: torch.device):
        self.opts, self.cfg, self.device = opts, cfg, device
        self.dataset = None
        self.segment = None
        self.fid = FID(opts.inception_weights, device) if opts.inception_weights else None
        if opts.seg_model:
            self.segment = torchscript_segmenter(opts.seg_model, device)
        if opts.dataset == "procedural":
            self.dataset = build_dataset(opts, cfg, train=False)
            if self.segment is None:
                from gaugan_sdk.procedural import SceneOracle

                height, width = cfg.image_size
                oracle = SceneOracle.fit(self.dataset.labels, height, width)
                self.segment = oracle.segment
        elif self.segment is not None or self.fid is not None:
            self.dataset = build_dataset(opts, cfg, phase="val", train=False)
        self._real_miou: float | None = None

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        if self.dataset is None:
            return {}
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=self.opts.batch_size,
                                             sampler=range(min(len(self.dataset), self.opts.eval_samples)))
        confusion = ConfusionMatrix(self.cfg.num_label_channels)
        real_confusion = ConfusionMatrix(self.cfg.num_label_channels)
        real_needed = self.fid is not None and not self.fid.has_real  # real statistics: once per run
        for batch in loader:
            fake = run.tensor_to_uint8(trainer.sample(batch))
            real = run.tensor_to_uint8(batch["image"])
            target = batch["label"][:, 0].numpy()
            if self.segment is not None:
                confusion.update(target, self.segment(fake))
                if self._real_miou is None:
                    real_confusion.update(target, self.segment(real))
            if self.fid is not None:
                self.fid.update(fake, real=False)
                if real_needed:
                    self.fid.update(real, real=True)
        metrics = {}
        if self.segment is not None:
            if self._real_miou is None:
                self._real_miou = real_confusion.mean_iou()
            metrics.update(mIoU=confusion.mean_iou(), mIoU_real_images=self._real_miou,
                           pixel_accuracy=confusion.accuracy())
        if self.fid is not None:
            metrics["FID"] = self.fid.compute()
        return metrics


def _epoch_order(n: int, seed: int, epoch: int, info: distributed.Dist, used: int) -> list[int]:
    """This rank's sample order for an epoch: a permutation from (seed, epoch), cut to whole steps, dealt out
    round-robin over ranks. The same on resume, so a resumed run sees the batches the interrupted one would have."""
    order = np.random.default_rng([seed, epoch]).permutation(n)[:used]
    return order[info.rank::info.world_size].tolist()


def _checkpoint(run_dir: Path | None, it: int, epoch: int, opts: TrainOptions, cfg: GeneratorConfig,
                trainer: Trainer, info: distributed.Dist, device: torch.device) -> Path | None:
    rng_states = _gather_rng(info)
    if not info.is_main:
        return None
    training = {"iteration": it, "epoch": epoch, "options": opts.to_dict(), "world_size": info.world_size,
                "rng": rng_states, **trainer.state_dict()}
    return run.save_training_checkpoint(run_dir, it, cfg, trainer.G, trainer.E, training)


def _gather_rng(info: distributed.Dist) -> list[dict[str, Any]]:
    state = run.rng_state()
    if not info.enabled:
        return [state]
    gathered: list[Any] = [None] * info.world_size
    torch.distributed.all_gather_object(gathered, state)
    return gathered


def _check_replicas(trainer: Trainer, info: distributed.Dist, device: torch.device) -> None:
    if not info.enabled:
        return
    sums = distributed.replica_checksums(trainer.G, info, device) + distributed.replica_checksums(trainer.D, info,
                                                                                                  device)
    g, d = sums[:info.world_size], sums[info.world_size:]
    agree = len(set(g)) == 1 and len(set(d)) == 1
    if info.is_main:
        print(f"replicas {'agree' if agree else 'DIFFER'} across {info.world_size} ranks: G |w| sums {g}, "
              f"D |w| sums {d}", flush=True)
    if not agree:
        raise RuntimeError("DDP replicas diverged: the model weights differ across ranks")


def _resumed_options(stored: dict[str, Any], given: TrainOptions, path: Path,
                     flags: dict[str, Any] | None = None) -> TrainOptions:
    """The interrupted run's options. From the command line: --max-iters (to extend it), --device, --outdir
    (where a checkpoint outside a run directory starts its new run), the data folders where given (data that has
    moved: resolved where the resumed run is started, never from where the first one was) and the weight files
    where given (each replaces the stored path, said so). A stored weight file that no longer exists is an
    error naming it and its flag. `flags`: the options the command line gave (`_given`); a line says which of
    them apply and which are ignored."""
    opts = TrainOptions.from_dict(stored)
    opts.resume = str(path)
    if given.max_iters is not None:
        opts.max_iters = given.max_iters
    opts.device, opts.outdir = given.device, given.outdir
    for name in ("dataroot", "label_dir", "image_dir", "instance_dir"):
        if getattr(given, name) is not None:
            setattr(opts, name, getattr(given, name))
    for name, flag in WEIGHTS.items():
        old, new = getattr(opts, name), _weight_file(getattr(given, name), name)
        if new is not None and new != old:
            _say(f"resume: {flag} {new} replaces the stored {old}")
        elif new is None and old is not None and not Path(old).is_file():
            raise FileNotFoundError(f"{flag} {old}, stored by the run, no longer exists; give it again: {flag} PATH "
                                    f"(--resume {given.resume} {flag} PATH)")
        setattr(opts, name, new or old)
    applied, ignored = [], []
    for dest, value in (flags or {}).items():
        flag = "--" + dest.replace("_", "-")
        shown = " ".join(f"--set {v}" for v in value) if dest == "set" else flag if value is True \
            else f"{flag} {value}"
        if dest in RESUME_APPLIES:
            applied.append(shown)
        elif dest in ("set", "use_vae"):
            ignored.append(f"{shown} (the model is the checkpoint's)")
        elif dest not in ("resume", "dry_run"):
            ignored.append(f"{shown} (stored {getattr(opts, dest)})")
    if applied or ignored:
        _say("resume: from the command line, " + "; ".join(
            part for part in (f"applied: {', '.join(applied)}" if applied else "",
                              f"ignored (the run's stored values kept): {', '.join(ignored)}" if ignored else "")
            if part))
    return opts.resolved()


def _given(argv: list[str]) -> dict[str, Any]:
    """The options the command line gave, by dest (defaults left out), whatever their values."""
    parser = build_parser()
    for action in parser._actions:  # set_defaults would put the marker in the namespace, then type-convert it
        action.default = argparse.SUPPRESS
    return vars(parser.parse_args(argv))


def _weight_file(path: str | None, name: str) -> str | None:
    """A weights path made absolute (a run resumes from any folder), or None; one that is not a file is an error
    naming its flag."""
    if path is None:
        return None
    full = os.path.abspath(os.path.expanduser(path))
    if not Path(full).is_file():
        raise FileNotFoundError(f"{WEIGHTS[name]} {full}: no such file")
    return full


def _say(line: str) -> None:
    """A line on the main process only (main() runs on every rank under torchrun)."""
    if os.environ.get("RANK", "0") == "0":
        print(line, flush=True)


def _append_metrics(run_dir: Path, it: int, metrics: dict[str, float]) -> None:
    path = run_dir / "metrics.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps({"iteration": it, **metrics}) + "\n")


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in values.items())


if __name__ == "__main__":
    main()
