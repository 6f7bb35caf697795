"""Export benchmark: a generator exported as each graph variant (reference; fast with the mask conv as a conv
or a lookup, convs fused or one each) and precision, timed side by side with eager PyTorch in one process on the same masks, with each
artifact's MACs (counted from the ONNX itself) and quality against eager fp32 of the reference graph.

    python -m export.benchmark --preset cityscapes --engines fp32 --iters 5        # real size, random weights
    python -m export.benchmark --preset ade20k --graphs reference fast:lookup fast:lookup+fused
    python -m export.benchmark --preset cityscapes --set use_vae=true --styles 8    # one mask, 8 styles
    python -m export.benchmark --checkpoint ckpt.pt --engines fp32 fp16 int8

Latency: warm-up, then `--iters` timed calls; median and p90 (gaugan_sdk.measure, one harness for every
benchmark; `--json` also records the machine and its CPU flags). Quality: PSNR and worst uint8 level vs eager, on
masks held out from calibration. Int8 runs twice on the CPU: Q/DQ executed exactly (what TensorRT computes) and
ONNX Runtime's fused integer kernels (which saturate on x86 CPUs without VNNI; `gaugan_sdk.cpu`).
On a CUDA machine eager runs on the GPU too (CUDA-event timing); ONNX Runtime runs on the providers it has.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gaugan_sdk.config import GeneratorConfig, parse_overrides
from gaugan_sdk.presets import PRESETS
from gaugan_sdk.contract import CPU_ONLY_GRAPHS, VARIANT_NAMES, GraphVariant, Range, Shapes
from gaugan_sdk.cpu import cpu_has_bf16
from gaugan_sdk.imaging import image_to_uint8, psnr
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.measure import Table, Timing, check_writable, time_calls
from gaugan_sdk.metadata import PRECISIONS
from gaugan_sdk.models import GeneratorGraph
from gaugan_sdk.procedural import scene_batch

from .calibration import INT8_MASKS
from .macs import onnx_macs
from .to_onnx import apply_precision, export_generator
from .verify import generator_feeds, onnx_runner


DEFAULT_VARIANTS = ("reference", "fast:conv", "fast:lookup", "fast:conv+fused", "fast:lookup+fused")


COLUMNS = ("backend", "graph", "batch", "gmac_per_image", "median_ms", "p90_ms", "images_per_s", "vs_first", "quality")


def timed(fn, warmup: int, iters: int, cuda: bool = False) -> Timing:
    """`fn` timed by the harness: on CUDA between CUDA events (the device's time), else by the wall clock."""
    events = (lambda: torch.cuda.Event(enable_timing=True)) if cuda else None
    return time_calls(fn, warmup=warmup, iters=iters, events=events)


def add_row(table: Table, name: str, graph: str, timing: Timing, batch: int, quality: str,
            gmacs: float | None = None) -> dict:
    return table.add(backend=name, graph=graph, gmac_per_image=gmacs, quality=quality, **timing.row(batch))


def variant(text: str) -> GraphVariant:
    try:
        return GraphVariant.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def model_arguments(p: argparse.ArgumentParser) -> None:
    """The model a benchmark measures: --preset [--set ...] with random weights (--seed), or --checkpoint."""
    p.add_argument("--preset", default="cityscapes", choices=sorted(PRESETS))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field (random weights), e.g. --set use_vae=true")
    p.add_argument("--checkpoint", help="our checkpoint (default: the preset at full size, random weights)")
    p.add_argument("--seed", type=int, default=0, help="random weights' seed")


def model_from(args: argparse.Namespace):
    """The generator `model_arguments` describe."""
    if args.checkpoint:
        from gaugan_sdk.checkpoint import load_checkpoint

        return load_checkpoint(args.checkpoint).build_generator()
    from gaugan_sdk.models import random_generator

    return random_generator(GeneratorConfig.preset(args.preset, **parse_overrides(args.overrides)), args.seed)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_arguments(p)
    p.add_argument("--graphs", nargs="+", type=variant, default=[variant(v) for v in DEFAULT_VARIANTS],
                   help=f"graph variants: {', '.join(VARIANT_NAMES)}, each but reference with +fused (default "
                        f"{' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--engines", nargs="+", default=["fp32", "fp16", "int8"], choices=PRECISIONS)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--pt2", action="store_true", help="also AOTInductor packages of each graph (fp32; fp16 on CUDA)")
    p.add_argument("--styles", type=int, default=0,
                   help="style models: also time one mask with this many styles (fast graphs broadcast it)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--calib-count", type=int, default=INT8_MASKS,
                   help="int8 calibration masks (default: gaugan-export's)")
    p.add_argument("--int8-target", type=float, help="int8 PSNR target of the conversion (default: the int8 gate)")
    p.add_argument("--openvino", nargs="*", choices=("f32", "bf16"),
                   help="also each ONNX file through OpenVINO in these execution precisions (no value: f32 and bf16; "
                        "bf16 only where the CPU has bf16 arithmetic)")
    p.add_argument("--threads", type=int, help="OpenVINO's inference threads (default: its own, all cores)")
    p.add_argument("--json", help="also write the rows (and the machine) to this JSON file")
    args = p.parse_args(argv)
    if args.openvino == []:
        args.openvino = ["f32", "bf16"]
    check_writable(args.json)

    generator = model_from(args)
    cfg = generator.cfg
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    from gaugan_sdk.cpu import int8_saturation_reason

    table = Table(f"{cfg.label_set or 'custom'} {cfg.image_size[0]}x{cfg.image_size[1]}, batch {args.batch}, torch "
                  f"{torch.__version__} ({device}, {torch.get_num_threads()} threads)", COLUMNS,
                  [f"int8 on this CPU: {int8_saturation_reason() or 'fused kernels exact (int8 dot-product)'}",
                   "quality: against eager fp32 of the reference graph; vs_first: images/s against the first row"])
    print(table.title)
    labels, instances = scene_batch(1000, args.calib_count, *cfg.image_size, label_set_for(cfg))
    held_out = scene_batch(3000, args.batch, *cfg.image_size, label_set_for(cfg))  # timing and quality
    batch = Range(1, args.batch, max(args.batch, args.styles, 8))
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for graph in args.graphs:
            name = graph.label
            fp32_path = Path(tmp) / f"{name.replace(':', '_').replace('+', '_')}.onnx"
            t = time.perf_counter()
            meta = export_generator(generator, fp32_path, Shapes(batch), variant=graph)
            print(f"exported the {name} graph (fp32 ONNX) in {time.perf_counter() - t:.1f} s")
            feeds = generator_feeds(meta, *held_out)
            one = {k: v[:1] for k, v in feeds.items()}
            gmacs = None if graph.graph in CPU_ONLY_GRAPHS else \
                onnx_macs(fp32_path, {k: v.shape for k, v in one.items()})["total"] / 1e9  # sparse: data-dependent
            module = GeneratorGraph(generator, variant=graph).eval().to(device)
            inputs = [torch.from_numpy(v).to(device) for v in feeds.values()]
            with torch.no_grad():
                out = module(*inputs).float().cpu().numpy()
                if reference is None:
                    reference = out if graph.graph == "reference" else \
                        GeneratorGraph(generator).eval().to(device)(*inputs).float().cpu().numpy()
                add_row(table, f"eager PyTorch fp32 ({device})", name,
                        timed(lambda module=module, inputs=inputs: module(*inputs), args.warmup, args.iters, cuda),
                        args.batch, _quality(out, reference), gmacs)
            for engine in args.engines if graph.graph not in CPU_ONLY_GRAPHS else ["fp32"]:  # sparse: fp32 only
                _onnx_rows(table, args, engine, fp32_path, Path(tmp), meta, name, feeds, reference, gmacs,
                           generator_feeds(meta, labels, instances))
            if args.pt2 and graph.graph not in CPU_ONLY_GRAPHS:
                _pt2_rows(table, args, generator, graph, Path(tmp), batch, feeds, reference, gmacs, device)
            if args.styles and meta.z_dim is not None:
                _styles_rows(table, args, fp32_path, meta, name, feeds)
    base = table.rows[0]["images_per_s"]
    for row in table.rows:
        row["vs_first"] = f"{row['images_per_s'] / base:.2f}x"
    print("\n" + table.text())
    if args.json:
        table.write_json(args.json)
    return table.rows


def _onnx_rows(table, args, engine, fp32_path, tmp, meta, name, feeds, reference, gmacs, calib) -> None:
    path = fp32_path if engine == "fp32" else tmp / f"{fp32_path.stem}.{engine}.onnx"
    note = ""
    if engine != "fp32":
        t = time.perf_counter()
        _, report = apply_precision(fp32_path, path, meta, engine, calib,
                                    target_psnr_db=args.int8_target if engine == "int8" else None)
        for line in report.notes:
            print(f"  {line}")
        note = f", {len(report.kept_fp16_nodes)} convs in fp16" if engine == "int8" else ""
        print(f"converted the {name} graph to {engine} in {time.perf_counter() - t:.1f} s")
    # int8 on the CPU both ways: exact Q/DQ (what TensorRT computes) and ONNX Runtime's fused kernels
    for mode in ("exact", "fused") if engine == "int8" else ("exact",):
        run = onnx_runner(path, int8_mode=mode)
        out = run(feeds)[0]
        backend = f"ONNX Runtime {engine}{f' {mode}' if engine == 'int8' else ''} (CPU EP)"
        add_row(table, backend, name, timed(lambda run=run: run(feeds), args.warmup, args.iters), args.batch,
                _quality(out, reference) + note, gmacs)
    if args.openvino:
        _openvino_rows(table, args, engine, path, name, feeds, reference, gmacs, note)


def _openvino_rows(table, args, engine, path, name, feeds, reference, gmacs, note) -> None:
    """The same ONNX file through OpenVINO, in each execution precision asked (`--openvino`): f32 and bf16 for a
    float file (bf16 where the CPU has bf16 arithmetic: elsewhere OpenVINO would run f32 or crash), an int8 file
    on OpenVINO's integer kernels, which saturate like ONNX Runtime's fused ones without VNNI."""
    from gaugan_sdk.backends.openvino import OpenVINOBackend

    for precision in args.openvino:  # an int8 file: its int8 convs on integer kernels, the rest in this precision
        if precision == "bf16" and not cpu_has_bf16():
            table.note(f"OpenVINO bf16 {name}: skipped, this CPU has no bf16 arithmetic")
            continue
        backend = OpenVINOBackend(path, args.threads, precision=precision, int8_mode="fused", cache_dir=None)
        out = backend.run(feeds)[0]
        label = f"OpenVINO {'int8 kernels' if engine == 'int8' else engine}, {backend.precision} (CPU)"
        add_row(table, label, name, timed(lambda b=backend: b.run(feeds), args.warmup, args.iters), args.batch,
                _quality(out, reference) + note, gmacs)
        backend.close()


def _pt2_rows(table, args, generator, graph, tmp, batch, feeds, reference, gmacs, device) -> None:
    from .to_pt2 import export_generator_pt2, pt2_runner

    for precision in ("fp32", "fp16") if device == "cuda" else ("fp32",):
        name = graph.label
        path = tmp / f"{name.replace(':', '_').replace('+', '_')}.{precision}.pt2"
        t = time.perf_counter()
        meta = export_generator_pt2(generator, path, Shapes(batch), precision=precision, device=device,
                                    variant=graph)
        print(f"AOTInductor package of the {name} graph ({precision}, {device}) in {time.perf_counter() - t:.1f} s")
        run = pt2_runner(path, meta)
        out = run(feeds)[0]
        add_row(table, f"AOTInductor {precision} ({device})", name,
                timed(lambda run=run: run(feeds), args.warmup, args.iters, device == "cuda"), args.batch,
                _quality(out, reference), gmacs)


def _styles_rows(table, args, path, meta, name, feeds) -> None:
    """One mask with `--styles` styles against one image: the fast graph takes the mask once (label batch 1),
    the reference graph needs it repeated."""
    run = onnx_runner(path)
    z = np.random.default_rng(7).standard_normal((args.styles, meta.z_dim)).astype(np.float32)
    maps = {k: v[:1] for k, v in feeds.items() if k != "z"}
    if not meta.broadcasts_label:
        maps = {k: np.repeat(v, args.styles, axis=0) for k, v in maps.items()}
    single = timed(lambda: run({**{k: v[:1] for k, v in maps.items()}, "z": z[:1]}), args.warmup, args.iters)
    many = timed(lambda: run({**maps, "z": z}), args.warmup, args.iters)
    how = "mask once" if meta.broadcasts_label else "mask repeated"
    add_row(table, "ONNX Runtime fp32, 1 style (CPU EP)", name, single, 1, "reference for the styles row")
    add_row(table, f"ONNX Runtime fp32, 1 mask x {args.styles} styles (CPU EP)", name, many, args.styles,
            f"{many.median / single.median:.2f} single images ({how})")


def _quality(out: np.ndarray, reference: np.ndarray) -> str:
    worst = int(np.abs(image_to_uint8(out).astype(int) - image_to_uint8(reference).astype(int)).max())
    return f"PSNR {psnr(out, reference):.1f} dB, max|d| {np.abs(out - reference).max():.2g}, worst {worst} levels"


if __name__ == "__main__":
    main()
