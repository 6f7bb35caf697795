"""gaugan-benchmark: artifacts side by side through the runtime, in one process, as one table (the columns
Ultralytics' benchmark prints: format, precision, size on disk, quality, latency, throughput).

    gaugan-benchmark engines/city.onnx engines/city_fp16.onnx engines/city.pt2 --batch 1 8
    gaugan-benchmark engines/*.onnx --reference runs/00003-city/checkpoints/iter_0050000.pt --json bench.json

Every artifact runs the same held-out procedural masks (and, for style models, the same seeds). Quality is the
PSNR of its uint8 images against a reference's: `--reference` (a checkpoint: eager PyTorch fp32), else the
first artifact's (the table says which). Latency per call: `--warmup` calls, then `--iters` timed ones; median
and p90 (gaugan_sdk.measure, the harness of every benchmark of the SDK; the JSON names the machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .imaging import psnr
from .kinds import CHECKPOINT, kind_of
from .measure import Table, check_writable, time_calls
from .procedural import scene_batch
from .synthesizer import Synthesizer, resolve_artifact

__all__ = ["benchmark", "table", "COLUMNS", "main"]

COLUMNS = ("artifact", "format", "precision", "runtime", "plan", "size_mb", "batch", "psnr_db", "median_ms", "p90_ms",
           "images_per_s")


def benchmark(artifacts: list[str | Path], *, reference: str | Path | None = None, batches: tuple[int, ...] = (1,),
              warmup: int = 1, iters: int = 5, device: str | None = None, all_runtimes: bool = False,
              hint: str = "latency") -> tuple[list[dict], str]:
    """One row per artifact, runtime and batch; and what the quality column is measured against. Each artifact
    runs where the CPU plan puts it (`Synthesizer`'s "auto"), or, with `all_runtimes`, on every runtime installed
    that runs its kind, in each execution precision this CPU has (`executions`); the `plan` column marks the
    runtime "auto" picks."""
    if not artifacts:
        raise ValueError("no artifacts to benchmark")
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batches):
        raise ValueError(f"batches {batches}: accepted: ints >= 1")
    paths = [resolve_artifact(a) for a in artifacts]
    first = Synthesizer(paths[0], device=device)
    labels, instances = scene_batch(3000, max(batches), *first.size, first.labels)
    first.close()
    reference_path, against = _reference(reference, paths[0])
    expected = _images(reference_path, labels, instances, device) if reference_path is not None else None
    rows = []
    for path in paths:
        with Synthesizer(path, device=device) as auto:
            planned = auto.chosen.label
        for backend, precision in executions(path) if all_runtimes else [("auto", "auto")]:
            with Synthesizer(path, device=device, backend=backend, precision=precision, hint=hint) as syn:
                images = _run(syn, labels, instances)
                if expected is None:  # the first artifact is the reference
                    expected = images
                quality = psnr(images, expected, peak_to_peak=255.0)
                for batch in batches:
                    timing = time_calls(lambda syn=syn, batch=batch: _run(syn, labels[:batch], instances[:batch]),
                                        warmup=warmup, iters=iters)
                    rows.append({"artifact": path.name, "format": syn.meta.format, "runtime": syn.chosen.label,
                                 "plan": syn.chosen.label == planned, "execution": syn.execution,
                                 "precision": syn.meta.precision, "size_mb": _size_mb(path, syn),
                                 "resolution": f"{syn.size[0]}x{syn.size[1]}", "psnr_db": quality,
                                 **timing.row(batch)})
    return rows, against


def executions(path: Path) -> list[tuple[str, str]]:
    """(backend, execution precision) pairs that can run an artifact here: each backend of its kind whose library
    is installed; OpenVINO in f32, and in bf16 where this CPU has bf16 arithmetic and the file is float."""
    from .cpu import installed, openvino_bf16_here

    kind, meta_precision = kind_of(path), None
    with Synthesizer(path) as syn:
        meta_precision = syn.meta.precision
    out = []
    for backend in kind.backends:
        if backend in ("onnxruntime", "openvino") and not installed(backend):
            continue
        if backend == "openvino":
            out.append((backend, "f32"))
            if openvino_bf16_here(meta_precision):
                out.append((backend, "bf16"))
        else:
            out.append((backend, "auto"))
    return out


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


def _size_mb(path: Path, syn: Synthesizer) -> float:
    files = [path] + ([path.with_name(syn.meta.encoder)] if syn.meta.encoder else [])
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def table(rows: list[dict], against: str) -> Table:
    """The rows as the harness's table, with what the PSNR is measured against."""
    out = Table("gaugan-benchmark", COLUMNS)
    for row in rows:
        out.add(**row)
    if rows:
        out.note(f"PSNR of uint8 images against {against}, on {rows[0]['resolution']} held-out procedural masks; "
                 f"plan: the runtime this CPU's plan picks (gaugan_sdk.cpu)")
    return out


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
    p.add_argument("--all-runtimes", action="store_true",
                   help="each artifact on every runtime installed that runs it (OpenVINO in f32 and, where the CPU "
                        "has it, bf16), not only where this CPU's plan puts it")
    p.add_argument("--hint", choices=["latency", "throughput"], default="latency",
                   help="latency: one request at a time; throughput: a batch's images in flight together (OpenVINO)")
    p.add_argument("--json", help="also write the rows (and the machine) to this JSON file")
    args = p.parse_args(argv)
    try:
        check_writable(args.json)  # before the run, not after it
        rows, against = benchmark(args.artifacts, reference=args.reference, batches=tuple(args.batch),
                                  warmup=args.warmup, iters=args.iters, device=args.device,
                                  all_runtimes=args.all_runtimes, hint=args.hint)
        result = table(rows, against)
        print(result.text())
        if args.json:
            result.write_json(args.json)
    except (ValueError, TypeError, FileNotFoundError, PermissionError, RuntimeError, ImportError, OSError) as e:
        print(f"gaugan-benchmark: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
