"""Training throughput side by side: fp32 vs bf16 autocast, with and without channels_last, in one process.

    python -m training.benchmark                                   # cityscapes-size recipe (256x512, ngf 64), GPU
    python -m training.benchmark --set crop_size=128 --set ngf=16 --iters 5   # small, runs anywhere

Each variant builds the full recipe (generator, multiscale discriminator, the losses; VGG with --vgg-weights),
runs --warmup steps, then --iters timed steps (one G step + one D step each) on procedural scenes; it reports
it/s and images/s of the median step (gaugan_sdk.measure), peak GPU memory and whether every loss stayed finite.
CUDA timings are synchronized.
"""

from __future__ import annotations

import argparse
import itertools
import math

import torch

from gaugan_sdk.config import parse_overrides
from gaugan_sdk.measure import Table, check_writable, time_calls

from .datasets import ProceduralDataset
from .distributed import resolve_device
from .options import TrainOptions
from .trainer import Trainer


COLUMNS = ("precision", "channels_last", "it_per_s", "images_per_s", "peak_gib", "finite")


def measure(opts: TrainOptions, device: torch.device, warmup: int, iters: int) -> dict:
    cfg = opts.generator_config()
    torch.manual_seed(opts.seed)
    trainer = Trainer(opts, cfg, device)
    data = ProceduralDataset(cfg, opts.batch_size * (warmup + iters), seed=opts.seed)
    batches = iter(list(torch.utils.data.DataLoader(data, batch_size=opts.batch_size)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses: list[float] = []

    def step() -> None:  # one G step and one D step on the next batch
        batch = next(batches)
        g, _ = trainer.generator_step(batch)
        d = trainer.discriminator_step(batch)
        losses.extend({**g, **d}.values())

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    timing = time_calls(step, warmup=warmup, iters=iters, sync=sync)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"precision": opts.precision, "channels_last": opts.channels_last, "it_per_s": 1 / timing.median,
            "images_per_s": opts.batch_size / timing.median, "peak_gib": memory,
            "finite": all(math.isfinite(v) for v in losses)}


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
    p.add_argument("--json", help="also write the rows (and the machine) to this JSON file")
    args = p.parse_args(argv)
    check_writable(args.json)
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
    table = Table(f"{args.preset} recipe on procedural scenes, {h}x{w}, ngf {cfg.ngf}, batch {args.batch_size}, "
                  f"{name}, torch {torch.__version__}; median step of {args.iters} after {args.warmup} warm-up",
                  COLUMNS)
    for row in rows:
        table.add(**row)
    print("\n" + table.text())
    if args.json:
        table.write_json(args.json)
    return rows


def _preset_model(preset: str) -> dict:
    """The preset's architecture expressed on the procedural label set (the scenes are drawn in its classes)."""
    from gaugan_sdk.config import GeneratorConfig

    base = GeneratorConfig.preset(preset)
    return {"crop_size": base.crop_size, "aspect_ratio": base.aspect_ratio,
            "num_upsampling_layers": base.num_upsampling_layers}


if __name__ == "__main__":
    main()
