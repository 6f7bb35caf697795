"""gaugan-benchmark: artifacts side by side through the runtime, in one process, as one table (the columns
Ultralytics' benchmark prints: format, precision, size on disk, quality, latency, throughput).

    gaugan-benchmark engines/city.onnx engines/city_fp16.onnx engines/city.pt2 --batch 1 8
    gaugan-benchmark engines/*.onnx --reference runs/00003-city/checkpoints/iter_0050000.pt --json bench.json

Every artifact runs the same held-out procedural masks (and, for style models, the same seeds). Quality is the
PSNR of its uint8 images against a reference's: `--reference` (a checkpoint: eager PyTorch fp32), else the
first artifact's (the table says which). Latency per call: `--warmup` calls, then `--iters` timed ones; median and p90.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .imaging import psnr
from .kinds import CHECKPOINT, kind_of
from .procedural import scene_batch
from .synthesizer import Synthesizer, resolve_artifact

__all__ = ["benchmark", "table", "p90", "main"]


def benchmark(artifacts: list[str | Path], *, reference: str | Path | None = None, batches: tuple[int, ...] = (1,),
              warmup: int = 1, iters: int = 5, device: str | None = None) -> tuple[list[dict], str]:
    """One row per artifact and batch; and what the quality column is measured against."""
    if not artifacts:
        raise ValueError("no artifacts to benchmark")
    if any(b < 1 for b in batches) or iters < 1 or warmup < 0:
        raise ValueError(f"batches {batches}, iters {iters}, warmup {warmup}: batches and iters >= 1, warmup >= 0")
    paths = [resolve_artifact(a) for a in artifacts]
    first = Synthesizer(paths[0], device=device)
    labels, instances = scene_batch(3000, max(batches), *first.size, first.labels)
    first.close()
    reference_path, against = _reference(reference, paths[0])
    expected = _images(reference_path, labels, instances, device) if reference_path is not None else None
    rows = []
    for path in paths:
        with Synthesizer(path, device=device) as syn:
            images = _run(syn, labels, instances)
            if expected is None:  # the first artifact is the reference
                expected = images
            quality = psnr(images, expected, peak_to_peak=255.0)
            for batch in batches:
                times = _timed(lambda syn=syn, batch=batch: _run(syn, labels[:batch], instances[:batch]), warmup,
                               iters)
                median = statistics.median(times)
                rows.append({"artifact": path.name, "format": syn.meta.format, "backend": syn.backend,
                             "precision": syn.meta.precision, "size_mb": _size_mb(path, syn), "batch": batch,
                             "resolution": f"{syn.size[0]}x{syn.size[1]}", "psnr_db": quality,
                             "median_ms": 1000 * median, "p90_ms": 1000 * p90(times),
                             "images_per_s": batch / median})
    return rows, against


def _reference(reference, first_path: Path) -> tuple[Path | None, str]:
    if reference is None:
        return None, f"the first artifact, {first_path.name}"
    path = Path(reference)
    if kind_of(path) is not CHECKPOINT:
        raise ValueError(f"--reference {path}: a checkpoint (.pt / .pth) to run in eager PyTorch fp32")
    return path, f"eager PyTorch fp32 of {path.name}"


def _images(path: Path, labels: np.ndarray, instances: np.ndarray, device: str | None) -> np.ndarray:
    with Synthesizer(path, device=device) as syn:
        return _run(syn, labels, instances)


def _run(syn: Synthesizer, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
    seeds = list(range(len(labels))) if syn.meta.z_dim is not None else None  # style models: fixed styles
    return syn.run(labels, instances if syn.meta.takes_instance else None, seed=seeds)


def _timed(fn, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def p90(times: list[float]) -> float:
    """The 90th percentile of timings (nearest rank), as every benchmark of the SDK reports it."""
    return sorted(times)[max(0, round(0.9 * len(times)) - 1)]


def _size_mb(path: Path, syn: Synthesizer) -> float:
    files = [path] + ([path.with_name(syn.meta.encoder)] if syn.meta.encoder else [])
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def table(rows: list[dict], against: str) -> str:
    head = (f"{'artifact':<24}{'format':<11}{'backend':<13}{'precision':<10}{'size MB':>9}{'batch':>6}{'PSNR dB':>9}"
            f"{'median ms':>11}{'p90 ms':>9}{'img/s':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        quality = "-" if r["psnr_db"] is None else "inf" if r["psnr_db"] == float("inf") else f"{r['psnr_db']:.1f}"
        lines.append(f"{r['artifact']:<24}{r['format']:<11}{r['backend']:<13}{r['precision']:<10}{r['size_mb']:>9.1f}"
                     f"{r['batch']:>6}{quality:>9}{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}{r['images_per_s']:>9.2f}")
    lines.append(f"PSNR of uint8 images against {against}, on {rows[0]['resolution']} held-out procedural masks")
    return "\n".join(lines)


def _check_writable(path: Path, option: str) -> None:
    """A file the run will write at its end, checked at its start: a folder, a missing or read-only folder."""
    problem = ("is a folder" if path.is_dir() else f"the folder {path.parent} does not exist"
               if not path.parent.is_dir() else f"the folder {path.parent} is not writable"
               if not os.access(path.parent, os.W_OK) else None)
    if problem:
        raise ValueError(f"{option} {path}: {problem}; give a file path in a writable folder")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gaugan-benchmark", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", nargs="+", help=".onnx .plan .engine .pt2, checkpoints, or .json sidecars")
    p.add_argument("--reference", help="a checkpoint whose eager PyTorch fp32 images the PSNR is against")
    p.add_argument("--batch", nargs="+", type=int, default=[1], help="batch sizes (default 1)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    p.add_argument("--iters", type=int, default=5, help="timed calls (default 5)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: the best each artifact has")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    try:
        if args.json:  # before the run, not after it
            _check_writable(Path(args.json), "--json")
        rows, against = benchmark(args.artifacts, reference=args.reference, batches=tuple(args.batch),
                                  warmup=args.warmup, iters=args.iters, device=args.device)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as e:
        print(f"gaugan-benchmark: error: {e}", file=sys.stderr)
        return 2
    print(table(rows, against))
    if args.json:
        from ._io import atomic_write

        with atomic_write(args.json) as tmp:
            finite = [{**r, "psnr_db": r["psnr_db"] if np.isfinite(r["psnr_db"]) else None} for r in rows]
            tmp.write_text(json.dumps({"against": against, "rows": finite}, indent=2))  # identical: null
    return 0


if __name__ == "__main__":
    sys.exit(main())
