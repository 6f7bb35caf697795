"""Training throughput side by side: fp32 vs bf16 autocast, with and without channels_last, in one process.

    python -m training.benchmark                                   # cityscapes-size recipe (256x512, ngf 64), GPU
    python -m training.benchmark --set crop_size=128 --set ngf=16 --iters 5   # small, runs anywhere

Each variant builds the full recipe (generator, multiscale discriminator, the losses; VGG with --vgg-weights),
runs --warmup steps, then --iters timed steps (one G step + one D step each) on procedural scenes; it reports
it/s, images/s, peak GPU memory and whether every loss stayed finite. CUDA timings are synchronized.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch

from gaugan_sdk.config import parse_overrides

from .datasets import ProceduralDataset
from .distributed import resolve_device
from .options import TrainOptions
from .trainer import Trainer


def measure(opts: TrainOptions, device: torch.device, warmup: int, iters: int) -> dict:
    cfg = opts.generator_config()
    torch.manual_seed(opts.seed)
    trainer = Trainer(opts, cfg, device)
    data = ProceduralDataset(cfg, opts.batch_size * (warmup + iters), seed=opts.seed)
    batches = list(torch.utils.data.DataLoader(data, batch_size=opts.batch_size))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    finite = True
    start = None
    for i, batch in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        g, _ = trainer.generator_step(batch)
        d = trainer.discriminator_step(batch)
        finite &= all(math.isfinite(v) for v in {**g, **d}.values())
    _sync(device)
    seconds = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"precision": opts.precision, "channels_last": opts.channels_last, "it_per_s": iters / seconds,
            "images_per_s": iters * opts.batch_size / seconds, "peak_gib": memory, "finite": finite}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cityscapes", help="model preset (cityscapes: 256x512, 'more' layers)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--vgg-weights")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    model = {**_preset_model(args.preset), **parse_overrides(args.set)}
    rows = []
    for precision, channels_last in itertools.product(args.precisions, (False, True)):
        opts = TrainOptions(dataset="procedural", model=model,
                            batch_size=args.batch_size, ndf=args.ndf, vgg_weights=args.vgg_weights,
                            lambda_vgg=10.0 if args.vgg_weights else 0.0, precision=precision,
                            channels_last=channels_last, device=args.device).resolved()
        rows.append(measure(opts, device, args.warmup, args.iters))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    cfg = opts.generator_config()
    h, w = cfg.image_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{args.preset} recipe on procedural scenes, {h}x{w}, ngf {cfg.ngf}, batch {args.batch_size}, {name}, "
          f"torch {torch.__version__}; {args.iters} steps after {args.warmup} warm-up")
    print(f"{'precision':<10}{'channels_last':<15}{'it/s':>8}{'img/s':>8}{'peak GiB':>10}  losses")
    for r in rows:
        peak = "-" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f}"  # measured on CUDA only
        print(f"{r['precision']:<10}{str(r['channels_last']):<15}{r['it_per_s']:>8.2f}{r['images_per_s']:>8.2f}"
              f"{peak:>10}  {'finite' if r['finite'] else 'NOT FINITE'}")
    return rows


def _preset_model(preset: str) -> dict:
    """The preset's architecture expressed on the procedural label set (the scenes are drawn in its classes)."""
    from gaugan_sdk.config import GeneratorConfig

    base = GeneratorConfig.preset(preset)
    return {"crop_size": base.crop_size, "aspect_ratio": base.aspect_ratio,
            "num_upsampling_layers": base.num_upsampling_layers}


if __name__ == "__main__":
    main()
