"""Runtime benchmark: every artifact through the public Synthesizer API, side by side in one run.

    python samples/benchmark.py engines/city.onnx engines/city.pt2 checkpoints/city.pt --batch 1 8
    python samples/benchmark.py --random cityscapes --set ngf=16 --formats onnx pt2 checkpoint

The table is `gaugan-benchmark`'s (gaugan_sdk.benchmark: format, precision, size, PSNR, median / p90 latency,
images/s), PSNR against eager PyTorch fp32 of the checkpoint among the artifacts if there is one. `--random
PRESET` first writes a random-weight checkpoint (batch-norm statistics estimated on procedural scenes) and
exports it with `gaugan-export`, so the benchmark runs anywhere. Also the host-to-device bytes per frame of the
ids-in graph against a one-hot-in graph (what the in-graph expansion saves).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


from gaugan_sdk import Synthesizer
from gaugan_sdk.benchmark import benchmark, table
from gaugan_sdk.measure import check_writable


def build_random(preset: str, overrides: list[str], formats: list[str], folder: Path, graph: str = "fast",
                 verify: bool = True) -> list[Path]:
    """A random-weight checkpoint of `preset` (batch-norm statistics estimated on procedural scenes) exported as
    each of `formats` ("onnx", "openvino", "pt2", ..., optionally with a precision: "onnx:int8"; "checkpoint": the
    checkpoint itself), verified by default (so the metadata records which executions met their gates, and the
    CPU plan may use them). Files already in `folder` from an earlier run are reused."""
    from export import export_checkpoint
    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.config import GeneratorConfig, parse_overrides
    from gaugan_sdk.kinds import EXPORT_FORMATS
    from gaugan_sdk.models import ConvEncoder, random_generator

    cfg = GeneratorConfig.preset(preset, **parse_overrides(overrides))
    checkpoint = folder / f"{preset}.pt"
    if not checkpoint.is_file():
        save_checkpoint(checkpoint, cfg, random_generator(cfg), ConvEncoder(cfg).eval() if cfg.use_vae else None)
    artifacts = []
    for entry in formats:
        fmt, _, precision = entry.partition(":")
        if fmt == "checkpoint":
            artifacts.append(checkpoint)
            continue
        output = folder / f"{preset}_{graph}_{precision or 'fp32'}{EXPORT_FORMATS[fmt].suffix}"
        if not output.is_file():
            export_checkpoint(checkpoint, format=fmt, precision=precision or "fp32", graph=graph, output=output,
                              batch=8, verify=verify, verbose=False)
        artifacts.append(output)
    return artifacts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="*", type=Path)
    p.add_argument("--random", metavar="PRESET", help="build random-weight artifacts of this preset first")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--formats", nargs="+", default=["onnx", "pt2", "checkpoint"],
                   help="with --random: what to export, FORMAT or FORMAT:PRECISION (onnx:int8), or checkpoint")
    p.add_argument("--graph", default="fast", help="with --random: the graph exported (fast, sparse, reference)")
    p.add_argument("--folder", type=Path, help="with --random: keep (and reuse) the artifacts here")
    p.add_argument("--all-runtimes", action="store_true", help="every runtime installed (gaugan-benchmark's)")
    p.add_argument("--hint", choices=("latency", "throughput"), default="latency")
    p.add_argument("--json", help="also write the table (and the machine) to this JSON file")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    args = p.parse_args(argv)
    if not args.artifacts and not args.random:
        p.error("give artifact paths, or --random PRESET")
    check_writable(args.json)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = list(args.artifacts)
        if args.random:
            folder = args.folder or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            artifacts += build_random(args.random, args.overrides, args.formats, folder, args.graph)
        reference = next((a for a in artifacts if Path(a).suffix in (".pt", ".pth")), None)  # eager fp32
        rows, against = benchmark(artifacts, reference=reference, batches=tuple(args.batch), warmup=args.warmup,
                                  iters=args.iters, all_runtimes=args.all_runtimes, hint=args.hint)
        cfg = Synthesizer(artifacts[0]).config
    result = table(rows, against)
    print("\n" + result.text())
    if args.json:
        result.write_json(args.json)
    h, w = cfg.image_size
    ids = 4 * h * w * (2 if cfg.use_instance else 1)
    one_hot = 4 * h * w * cfg.semantic_nc
    print(f"\nhost->device bytes per frame at {h}x{w}: ids in {ids:,} (int32 label"
          f"{' + instance' if cfg.use_instance else ''}) vs one-hot in {one_hot:,} (float32 x {cfg.semantic_nc}): "
          f"{one_hot / ids:.0f}x less. Device->host: {3 * h * w:,} (uint8 RGB) or {12 * h * w:,} (float32)")
    print(f"python {sys.version.split()[0]}; {len(rows)} rows")


if __name__ == "__main__":
    main()
