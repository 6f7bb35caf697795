"""Runtime benchmark: every artifact through the public Synthesizer API, side by side in one run.

    python samples/benchmark.py engines/city.onnx engines/city.pt2 checkpoints/city.pt --batch 1 8
    python samples/benchmark.py --random cityscapes --set ngf=16 --formats onnx pt2 checkpoint

`--random PRESET` first writes a random-weight checkpoint (batch-norm statistics estimated on procedural
scenes) and exports it with `gaugan-export`, so the benchmark runs anywhere. Latency per call: warm-up, then
`--iters` timed calls; median, p90 and images/s. Also the host-to-device bytes per frame of the ids-in graph
against a one-hot-in graph (what the in-graph expansion saves).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


from gaugan_sdk import Synthesizer
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.procedural import scene_batch


def build_random(preset: str, overrides: list[str], formats: list[str], folder: Path) -> list[Path]:
    import torch

    from export import export_checkpoint
    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.config import GeneratorConfig, parse_overrides
    from gaugan_sdk.kinds import EXPORT_FORMATS
    from gaugan_sdk.labels import to_semantics
    from gaugan_sdk.models import ConvEncoder, SPADEGenerator, recalibrate_batchnorm

    cfg = GeneratorConfig.preset(preset, **parse_overrides(overrides))
    torch.manual_seed(0)
    generator = SPADEGenerator(cfg)
    labels, instances = scene_batch(0, 2, *cfg.image_size, label_set_for(cfg))
    semantics = torch.from_numpy(to_semantics(labels, instances if cfg.use_instance else None, cfg))
    recalibrate_batchnorm(generator, [(semantics, torch.randn(2, cfg.z_dim) if cfg.use_vae else None)])
    checkpoint = save_checkpoint(folder / f"{preset}.pt", cfg, generator.eval(),
                                 ConvEncoder(cfg).eval() if cfg.use_vae else None)
    artifacts = []
    for fmt in formats:
        if fmt == "checkpoint":
            artifacts.append(checkpoint)
            continue
        output = folder / f"{preset}{EXPORT_FORMATS[fmt].suffix}"
        result = export_checkpoint(checkpoint, format=fmt, output=output, batch=8, verify=False, verbose=False)
        artifacts.append(result.output)
    return artifacts


def bench(path: Path, batches: list[int], warmup: int, iters: int) -> list[dict]:
    syn = Synthesizer(path)
    h, w = syn.size
    labels, instances = scene_batch(100, max(batches), h, w, syn.labels)
    rows = []
    for batch in batches:
        args = (labels[:batch], instances[:batch] if syn.config.use_instance else None)
        seed = 0 if syn.meta.z_dim is not None else None  # style models: a fixed style
        for _ in range(warmup):
            syn.run(*args, seed=seed)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            syn.run(*args, seed=seed)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append({"artifact": path.name, "backend": syn.backend, "precision": syn.meta.precision, "batch": batch,
                     "size": f"{h}x{w}", "median_ms": 1000 * median,
                     "p90_ms": 1000 * sorted(times)[max(0, round(0.9 * len(times)) - 1)],
                     "images_per_s": batch / median})
    syn.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="*", type=Path)
    p.add_argument("--random", metavar="PRESET", help="build random-weight artifacts of this preset first")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--formats", nargs="+", default=["onnx", "pt2", "checkpoint"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    args = p.parse_args(argv)
    if not args.artifacts and not args.random:
        p.error("give artifact paths, or --random PRESET")
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = list(args.artifacts)
        if args.random:
            artifacts += build_random(args.random, args.overrides, args.formats, Path(tmp))
        rows = [row for path in artifacts for row in bench(path, args.batch, args.warmup, args.iters)]
        cfg = Synthesizer(artifacts[0]).config
    print(f"\n{'artifact':<18}{'backend':<13}{'prec':<6}{'batch':>6}{'size':>10}{'median ms':>11}{'p90 ms':>9}"
          f"{'img/s':>8}")
    for r in rows:
        print(f"{r['artifact']:<18}{r['backend']:<13}{r['precision']:<6}{r['batch']:>6}{r['size']:>10}"
              f"{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}{r['images_per_s']:>8.2f}")
    h, w = cfg.image_size
    ids = 4 * h * w * (2 if cfg.use_instance else 1)
    one_hot = 4 * h * w * cfg.semantic_nc
    print(f"\nhost->device bytes per frame at {h}x{w}: ids in {ids:,} (int32 label"
          f"{' + instance' if cfg.use_instance else ''}) vs one-hot in {one_hot:,} (float32 x {cfg.semantic_nc}): "
          f"{one_hot / ids:.0f}x less. Device->host: {3 * h * w:,} (uint8 RGB) or {12 * h * w:,} (float32)")
    print(f"python {sys.version.split()[0]}; {len(rows)} rows")


if __name__ == "__main__":
    main()
