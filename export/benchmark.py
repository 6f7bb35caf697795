"""Export benchmark: a generator exported at fp32 / fp16 / int8, timed side by side with eager PyTorch fp32 in
one process on the same masks, with each artifact's quality against eager.

    python -m export.benchmark --preset cityscapes --batch 1 --iters 5        # real size, random weights
    python -m export.benchmark --checkpoint ckpt.pt --engines fp32 fp16

Latency: warm-up, then `--iters` timed calls; median and p90. Quality: PSNR and worst uint8 level vs eager, on
masks held out from calibration. Int8 runs twice on the CPU: Q/DQ executed exactly (what TensorRT computes) and
ONNX Runtime's fused integer kernels (which saturate on x86 CPUs without VNNI; `gaugan_sdk.cpu`).
On a CUDA machine eager runs on the GPU too (CUDA-event timing); ONNX Runtime runs on the providers it has.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import Range, Shapes
from gaugan_sdk.imaging import image_to_uint8, psnr
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.models import GeneratorGraph
from gaugan_sdk.procedural import scene_batch

from .calibration import INT8_MASKS
from .precision import apply_precision
from .to_onnx import export_generator
from .verify import generator_feeds, onnx_runner


def timed(fn, warmup: int, iters: int, cuda: bool = False) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return times


def row(name: str, times: list[float], batch: int, quality: str) -> dict:
    median = statistics.median(times)
    p90 = sorted(times)[max(0, int(round(0.9 * len(times))) - 1)]
    return {"backend": name, "batch": batch, "median_ms": 1000 * median, "p90_ms": 1000 * p90,
            "images_per_s": batch / median, "quality": quality}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cityscapes", choices=sorted(GeneratorConfig.PRESETS))
    p.add_argument("--checkpoint", help="our checkpoint (default: the preset at full size, random weights)")
    p.add_argument("--engines", nargs="+", default=["fp32", "fp16", "int8"], choices=["fp32", "fp16", "int8"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--calib-count", type=int, default=INT8_MASKS,
                   help="int8 calibration masks (default: gaugan-export's)")
    p.add_argument("--int8-target", type=float, help="int8 PSNR target of the conversion (default: the int8 gate)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--seed", type=int, default=0, help="random weights' seed")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    if args.checkpoint:
        from gaugan_sdk.checkpoint import load_checkpoint

        generator = load_checkpoint(args.checkpoint).build_generator()
    else:
        from gaugan_sdk.labels import to_semantics
        from gaugan_sdk.models import SPADEGenerator
        from gaugan_sdk.models.batchnorm import recalibrate_batchnorm

        # Random weights, with batch-norm statistics estimated on procedural scenes as training would leave
        # them (default statistics blow the activations up, which no trained model does).
        cfg = GeneratorConfig.preset(args.preset)
        generator = SPADEGenerator(cfg)
        scenes = scene_batch(2000, 2, *cfg.image_size, label_set_for(cfg))
        semantics = torch.from_numpy(to_semantics(scenes[0], scenes[1] if cfg.use_instance else None, cfg))
        recalibrate_batchnorm(generator, [(semantics, torch.randn(2, cfg.z_dim) if cfg.use_vae else None)])
        generator.eval()
    cfg = generator.cfg
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    print(f"{cfg.label_set or 'custom'} {cfg.image_size[0]}x{cfg.image_size[1]}, batch {args.batch}, "
          f"torch {torch.__version__} ({device}, {torch.get_num_threads()} threads)")

    labels, instances = scene_batch(1000, args.calib_count, *cfg.image_size, label_set_for(cfg))
    held_out = scene_batch(3000, args.batch, *cfg.image_size, label_set_for(cfg))  # timing and quality
    from gaugan_sdk.cpu import int8_saturation_reason

    print(f"int8 on this CPU: {int8_saturation_reason() or 'fused kernels exact (int8 dot-product instructions)'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "g.onnx"
        t = time.perf_counter()
        meta = export_generator(generator, fp32_path, Shapes(Range(1, args.batch, max(args.batch, 8))))
        print(f"exported fp32 ONNX in {time.perf_counter() - t:.1f} s")
        feeds = generator_feeds(meta, *held_out)
        calib = generator_feeds(meta, labels, instances)

        graph = GeneratorGraph(generator).eval().to(device)
        inputs = [torch.from_numpy(v).to(device) for v in feeds.values()]
        with torch.no_grad():
            reference = graph(*inputs).float().cpu().numpy()

            def eager():
                graph(*inputs)
                if cuda:
                    torch.cuda.synchronize()

            rows.append(row(f"eager PyTorch fp32 ({device})", timed(eager, args.warmup, args.iters, cuda),
                            args.batch, "reference"))

        for engine in args.engines:
            path = fp32_path if engine == "fp32" else Path(tmp) / f"g.{engine}.onnx"
            note = ""
            if engine != "fp32":
                t = time.perf_counter()
                _, report = apply_precision(fp32_path, path, meta, engine, calib,
                                            target_psnr_db=args.int8_target if engine == "int8" else None)
                for line in report.notes:
                    print(f"  {line}")
                note = f", {len(report.kept_fp16_nodes)} convs in fp16" if engine == "int8" else ""
                print(f"converted to {engine} in {time.perf_counter() - t:.1f} s")
            # int8 on the CPU both ways: exact Q/DQ (what TensorRT computes) and ONNX Runtime's fused kernels
            for mode in ("exact", "fused") if engine == "int8" else ("exact",):
                run = onnx_runner(path, int8_mode=mode)
                out = run(feeds)[0]
                worst = int(np.abs(image_to_uint8(out).astype(int) - image_to_uint8(reference).astype(int)).max())
                quality = f"PSNR {psnr(out, reference):.1f} dB, max|d| {np.abs(out - reference).max():.2g}, " \
                          f"worst {worst} levels{note}"
                name = f"ONNX Runtime {engine}{f' {mode}' if engine == 'int8' else ''} (CPU EP)"
                rows.append(row(name, timed(lambda run=run: run(feeds), args.warmup, args.iters), args.batch, quality))

    base = rows[0]["median_ms"]
    print(f"\n{'backend':<32}{'median ms':>11}{'p90 ms':>10}{'img/s':>8}{'vs eager':>10}  quality vs eager fp32")
    for r in rows:
        print(f"{r['backend']:<32}{r['median_ms']:>11.1f}{r['p90_ms']:>10.1f}{r['images_per_s']:>8.2f}"
              f"{base / r['median_ms']:>9.2f}x  {r['quality']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
