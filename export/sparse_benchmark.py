"""Sparse-graph benchmark: the boundary-sparse graph against the dense fast graph (the same mask conv) and eager
PyTorch, per kind of mask, in one process on the same masks.

    python -m export.sparse_benchmark --preset cityscapes                      # real size, random weights
    python -m export.sparse_benchmark --preset ade20k --kinds scenes noise --iters 3
    python -m export.sparse_benchmark --checkpoint ckpt.pt --json sparse.json

For each mask kind (`gaugan_sdk.procedural.MASK_KINDS`: procedural scenes, the tests' blocky random maps, one
class everywhere, per-pixel noise): the band fraction at each resolution and which blocks run sparse, the MACs
each graph executes (dense: counted from its ONNX; sparse: that minus what the sparse blocks skip), the median
latency of ONNX Runtime (CPU EP) dense and sparse and of eager PyTorch (the reference graph), and the sparse
image against the dense one (max |diff| in fp32, uint8 levels).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gaugan_sdk.contract import MASK_CONVS, GraphVariant, Range, Shapes
from gaugan_sdk.imaging import image_to_uint8
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.measure import Table, check_writable
from gaugan_sdk.models import GeneratorGraph
from gaugan_sdk.models.fast import FastGenerator, block_levels, mask_levels
from gaugan_sdk.models.sparse import TAPS, band_masks
from gaugan_sdk.procedural import MASK_KINDS, mask_batch

from .benchmark import model_arguments, model_from, timed
from .macs import onnx_macs
from .to_onnx import export_generator
from .verify import generator_feeds, onnx_runner


COLUMNS = ("kind", "sparse_blocks", "dense_gmac", "sparse_gmac", "speedup_vs_dense", "speedup_vs_eager",
           "max_abs_diff", "uint8_within_1")
SWEEP_COLUMNS = ("map", "block", "size", "band", "sparse_ms", "dense_ms", "sparse_per_dense")


def band_report(module: FastGenerator, feeds: dict[str, np.ndarray]) -> list[dict]:
    """Per block of a sparse FastGenerator, for these inputs: its level's size, band and non-uniform pixel counts,
    whether it runs sparse, and the MACs of its dense and its sparse mask branch (lookups and gathers count 0)."""
    cfg = module.cfg
    label = torch.from_numpy(feeds["label"])
    instance = torch.from_numpy(feeds["instance"]) if "instance" in feeds else None
    sizes = [(label.shape[2] // cfg.stride * 2 ** k, label.shape[3] // cfg.stride * 2 ** k)
             for k in range(cfg.num_up_layers + 1)]
    levels = mask_levels(label, instance, cfg, sizes, set(), torch.float32)
    rows = []
    for block, k in zip(module.blocks, block_levels(cfg)):
        maps = block.sparse
        mixed, band = band_masks(levels[k].ids, levels[k].edges)
        pixels, in_band, non_uniform = band.numel(), int(band.sum()), int(mixed.sum())
        per_pixel = sum(TAPS * maps.hidden * 2 * c for c in maps.channels)  # the hidden -> [A; B] convs
        masks = sum(m.weight.numel() if isinstance(m, torch.nn.Conv2d) else
                    (m.edge_weight.numel() if m.edge_weight is not None else 0) for m in block.masks)
        edges = maps.edge_taps.numel() if maps.edge_taps is not None else 0
        rows.append({"level": k, "size": list(sizes[k]), "band": in_band / pixels,
                     "sparse": in_band / pixels <= maps.threshold,
                     "dense_macs": (per_pixel + masks) * pixels,
                     "sparse_macs": per_pixel * in_band + edges * non_uniform})
    return rows


def sweep(generator, dense: GraphVariant, sparse_variant: GraphVariant, iters: int, tmp: Path) -> list[dict]:
    """Each block's time through its sparse and through its dense branch (ONNX Runtime's profile of the If
    nodes, graphs built always-sparse and always-dense) on maps whose band covers from a few percent to all of
    each level: blocky maps of 4..128-pixel squares, procedural scenes, one class. Where the two cross is where
    the threshold (the variant's `dense_above`, default contract.DENSE_ABOVE) belongs."""
    import onnxruntime as ort

    from gaugan_sdk.procedural import blocky_labels

    cfg = generator.cfg
    h, w = cfg.image_size
    labels = label_set_for(cfg)
    maps = [(f"blocky {b}px", blocky_labels(np.random.default_rng(b), 1, h, w, len(labels), block=b))
            for b in (4, 8, 16, 32, 64, 128) if b <= min(h, w)]
    maps = [(name, (ids, ids.astype(np.int32))) for name, ids in maps]
    maps += [(kind, mask_batch(kind, 3000, 1, h, w, labels)) for kind in ("scenes", "one-class")]
    module = GeneratorGraph(generator, variant=sparse_variant).eval()
    block_times = {}
    for mode, fraction in (("sparse", 1.0), ("dense", 0.0)):
        path = tmp / f"sweep_{mode}.onnx"
        forced = dataclasses.replace(sparse_variant, dense_above=fraction)
        meta = export_generator(generator, path, Shapes(Range(1, 1, 1)), variant=forced)
        options = ort.SessionOptions()
        options.enable_profiling, options.profile_file_prefix = True, str(tmp / f"profile_{mode}")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _, masks in maps:
            feeds = generator_feeds(meta, *masks)
            for _ in range(iters + 1):  # the first: warm-up, dropped below
                session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        runs = [e for e in events if e.get("cat") == "Node" and e["args"].get("op_name") == "If"
                and e["name"].endswith("_kernel_time")]
        order = list(dict.fromkeys(e["name"] for e in runs))  # the If nodes: one per block, in order
        per_call = len(order)
        for i, (name, _) in enumerate(maps):
            calls = runs[i * (iters + 1) * per_call:(i + 1) * (iters + 1) * per_call][per_call:]
            for j in range(per_call):
                block_times[(mode, name, j)] = statistics.median(e["dur"] for e in calls[j::per_call]) / 1000
    rows = []
    for name, masks in maps:
        feeds = generator_feeds(meta, *masks)
        for j, block in enumerate(band_report(module.generator, feeds)):
            rows.append({"map": name, "block": j, "size": block["size"], "band": block["band"],
                         "sparse_ms": block_times[("sparse", name, j)], "dense_ms": block_times[("dense", name, j)]})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_arguments(p)
    p.add_argument("--kinds", nargs="+", default=list(MASK_KINDS), choices=MASK_KINDS)
    p.add_argument("--mask-conv", choices=("auto", *MASK_CONVS), default="auto",
                   help="both graphs' first mask conv (default: gaugan-export's CPU choice for the preset)")
    p.add_argument("--no-eager", dest="eager", action="store_false", help="skip eager PyTorch (slow at full size)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--sweep", action="store_true",
                   help="instead: each block's sparse and dense time over band fractions (where the threshold goes)")
    args = p.parse_args(argv)
    check_writable(args.json)

    generator = model_from(args)
    cfg = generator.cfg
    dense = GraphVariant.for_target("fast", cfg, "cpu", mask_conv=args.mask_conv)
    sparse = GraphVariant.for_target("sparse", cfg, "cpu", mask_conv=args.mask_conv)
    print(f"{cfg.label_set or 'custom'} {cfg.image_size[0]}x{cfg.image_size[1]}, batch 1, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); dense {dense.label} vs {sparse.label}")
    rows = []
    table = Table(f"sparse {sparse.label} vs dense {dense.label}", COLUMNS)
    with tempfile.TemporaryDirectory() as tmp:
        if args.sweep:
            sweep_table = Table(f"sweep: {sparse.label} vs {dense.label}, per block", SWEEP_COLUMNS)
            for row in sweep(generator, dense, sparse, args.iters, Path(tmp)):
                sweep_table.add(**row, sparse_per_dense=row["sparse_ms"] / row["dense_ms"])
            print("\n" + sweep_table.text())
            if args.json:
                sweep_table.write_json(args.json)
            return sweep_table.rows
        paths, runs = {}, {}
        for variant in (dense, sparse):
            paths[variant] = Path(tmp) / f"{variant.graph}.onnx"
            t = time.perf_counter()
            meta = export_generator(generator, paths[variant], Shapes(Range(1, 1, 8)), variant=variant)
            print(f"exported the {variant.label} graph in {time.perf_counter() - t:.1f} s")
            runs[variant] = onnx_runner(paths[variant])
        module = GeneratorGraph(generator, variant=sparse).eval()
        reference = GeneratorGraph(generator).eval()
        for kind in args.kinds:
            labels, instances = mask_batch(kind, 3000, 1, *cfg.image_size, label_set_for(cfg))
            feeds = generator_feeds(meta, labels, instances)
            blocks = band_report(module.generator, feeds)
            dense_macs = onnx_macs(paths[dense], {k: v.shape for k, v in feeds.items()})["total"]
            skipped = sum(b["dense_macs"] - b["sparse_macs"] for b in blocks if b["sparse"])
            out = {v: runs[v](feeds)[0] for v in (dense, sparse)}
            times = {v.graph: timed(lambda v=v, feeds=feeds: runs[v](feeds), args.warmup, args.iters)
                     for v in (dense, sparse)}
            if args.eager:
                inputs = [torch.from_numpy(x) for x in feeds.values()]
                with torch.no_grad():
                    times["eager"] = timed(lambda inputs=inputs: reference(*inputs), args.warmup, args.iters)
            medians = {k: 1000 * t.median for k, t in times.items()}
            levels = {b["level"]: b for b in blocks}
            diff = np.abs(out[sparse] - out[dense])
            levels_off = np.abs(image_to_uint8(out[sparse]).astype(int) - image_to_uint8(out[dense]).astype(int))
            rows.append(table.add(kind=kind, **{ "band_by_level": {f"{v['size'][0]}x{v['size'][1]}": round(v["band"], 4)
                                                         for v in levels.values()},
                         "sparse_blocks": sum(b["sparse"] for b in blocks), "blocks": len(blocks),
                         "dense_gmac": dense_macs / 1e9, "sparse_gmac": (dense_macs - skipped) / 1e9,
                         "median_ms": medians, "speedup_vs_dense": medians["fast"] / medians["sparse"],
                         "speedup_vs_eager": medians["eager"] / medians["sparse"] if "eager" in medians else None,
                         "max_abs_diff": float(diff.max()), "uint8_within_1": float((levels_off <= 1).mean()),
                         "uint8_worst": int(levels_off.max())}))
            _print_row(rows[-1])
    print("\n" + table.text())
    if args.json:
        table.write_json(args.json)
    return rows


def _print_row(r: dict) -> None:
    band = ", ".join(f"{size} {100 * f:.0f}%" for size, f in r["band_by_level"].items())
    ms = r["median_ms"]
    eager = f", eager {ms['eager']:.0f} ms ({r['speedup_vs_eager']:.2f}x)" if "eager" in ms else ""
    print(f"\n{r['kind']}: band {band}; {r['sparse_blocks']}/{r['blocks']} blocks sparse\n"
          f"  GMAC dense {r['dense_gmac']:.1f} -> sparse {r['sparse_gmac']:.1f} "
          f"({r['dense_gmac'] / r['sparse_gmac']:.2f}x fewer)\n"
          f"  ONNX Runtime CPU: dense {ms['fast']:.0f} ms, sparse {ms['sparse']:.0f} ms "
          f"({r['speedup_vs_dense']:.2f}x){eager}\n"
          f"  sparse vs dense: max |diff| {r['max_abs_diff']:.2g}, uint8 within 1 level "
          f"{100 * r['uint8_within_1']:.4f}%, worst {r['uint8_worst']}")


if __name__ == "__main__":
    main()
