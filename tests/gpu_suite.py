"""The GPU run: everything only a GPU can show, in one command, written to one folder as it goes.

    bash tests/gpu_run.sh OUT                                           # the device call: gpu tests + this
    PYTHONPATH=. python tests/gpu_suite.py OUT --budget 420             # on a CUDA machine, ends by the budget
    PYTHONPATH=. python tests/gpu_suite.py /tmp/suite --tiny            # any machine: tiny sizes, a rehearsal

Steps (each one's rows are printed and saved before the next starts, so a run cut short keeps what it did;
a failing step is recorded with its error and the suite goes on):
  env        GPU, driver, torch / CUDA versions, and the dense fp16 / bf16 matmul peak measured here (8192^3),
             the reference for MFU
  inference  cityscapes 256x512 at real size (random weights, estimated batch norm), batch 1 / 8 / 16, CUDA
             events: eager fp32, eager fp16, fp16 channels_last, fp16 CUDA graph, for the reference and the fast
             graph; parity with eager fp32 of the reference graph (max |diff|, PSNR) and MFU = 2 x the reference
             MACs x batch / time / peak (the fast graph does fewer MACs: its MFU is the effective one); one
             mask with 8 styles (the fast graph's broadcast)
  aot        AOTInductor .pt2 packages on CUDA, the same rows: fast fp16, reference fp16, fast fp32, reference
             fp32, in that order; with --budget, a package is compiled only while AOT_RESERVE_S are left over
  runtime    Synthesizer on a CUDA .pt2 and on a checkpoint with device="cuda", device_output consumed by torch
             through __cuda_array_interface__ (zero-copy), and the TensorRT backend's cuda-python memory code
             (allocation, pinned host buffers, copies, stream sync, error checks) with a stand-in engine
  training   the cityscapes-size recipe on procedural scenes: fp32 / bf16 x channels_last (it/s, images/s,
             peak memory, losses finite); torchrun --nproc-per-node 1 (NCCL, SyncBatchNorm); a bf16 run of
             --train-iters iterations (fewer where --budget leaves less time, sized by the measured it/s) with
             the oracle mIoU at the end

--budget SECONDS: no step starts after it (env always runs); the slow items (a .pt2 compile, the training runs)
are sized or skipped by the time left, and what was skipped is recorded with the reason, so the run ends inside
the device tool's command limit with every result it measured.

Out: <out>/gpu_suite.json (every row, the environment, each step's status and time, the issue's targets as
measured) and <out>/gpu_suite.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from gaugan_sdk import Synthesizer
from gaugan_sdk._io import atomic_write
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import REFERENCE, GraphVariant, Range, Shapes
from gaugan_sdk.imaging import image_to_uint8, psnr
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.measure import Timing, time_calls
from gaugan_sdk.models import GeneratorGraph, random_generator
from gaugan_sdk.models.profile import generator_macs
from gaugan_sdk.procedural import scene_batch

ROOT = Path(__file__).resolve().parents[1]
FAST = GraphVariant("fast", "conv", True)  # the GPU target's fast graph (GraphVariant.for_target on cuda)
STEPS = ("env", "inference", "aot", "runtime", "training")
AOT_RESERVE_S = 180  # with --budget: what a .pt2 compile leaves to runtime (~50 s) and training (~100 s + learning)


class Suite:
    """Runs steps, keeps their rows, and rewrites the JSON and the markdown after each one."""

    def __init__(self, out: Path, args: argparse.Namespace):
        self.out, self.args = out, args
        self.cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.results: dict = {"command": " ".join(sys.argv), "tiny": args.tiny, "budget_s": args.budget, "steps": {}}
        self.peak_tflops: float | None = None
        self.start = time.perf_counter()
        self._model = None

    def left(self) -> float:
        """Seconds left of --budget (infinite without one)."""
        return math.inf if self.args.budget is None else self.args.budget - (time.perf_counter() - self.start)

    def model(self):
        """The inference steps' generator, inputs and eager fp32 reference output, built once."""
        if self._model is None:
            cfg = model_config(self.args.tiny)
            generator = random_generator(cfg)
            batches = (1, 2) if self.args.tiny else (1, 8, 16)
            label, instance = inputs(cfg, max(batches), self.device)
            with torch.no_grad():
                reference = GeneratorGraph(generator).eval().to(self.device)(label, instance).float()
            flops = 2 * generator_macs(cfg).total  # per image, the reference graph's
            self.results["gflop_per_image"] = flops / 1e9
            self._model = generator, batches, label, instance, reference, flops
        return self._model

    def step(self, name: str, fn) -> None:
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        record = {"status": "ok", "rows": []}
        self.results["steps"][name] = record
        if name != "env" and self.left() <= 0:
            record |= {"status": "skipped: --budget spent", "seconds": 0.0}
            print("  skipped: --budget spent", flush=True)
            self.save()
            return
        try:
            for row in fn():
                record["rows"].append(row)
                print("  " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
                self.save()
        except Exception as e:  # the suite goes on: a GPU slice is too rare to lose to one failing step
            record["status"] = f"failed: {type(e).__name__}: {e}"
            record["traceback"] = traceback.format_exc()[-3000:]
            print(f"  FAILED: {type(e).__name__}: {e}", flush=True)
        record["seconds"] = round(time.perf_counter() - start, 1)
        self.save()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.results["targets"] = targets(self.results)
        with atomic_write(self.out / "gpu_suite.json") as tmp:
            tmp.write_text(json.dumps(self.results, indent=2, default=str))
        with atomic_write(self.out / "gpu_suite.md") as tmp:
            tmp.write_text(markdown(self.results))

    def timer(self, fn, warmup: int, iters: int) -> Timing:
        """The harness's timing (gaugan_sdk.measure): CUDA events on a GPU, the wall clock on the CPU."""
        events = (lambda: torch.cuda.Event(enable_timing=True)) if self.cuda else None
        return time_calls(fn, warmup=warmup, iters=iters, events=events)


# ---------------------------------------------------------------------------------------------- env
def env(suite: Suite):
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name() if suite.cuda else f"CPU ({os.cpu_count()} cores)",
            "driver": _driver() if suite.cuda else None}
    suite.results["env"] = info
    yield info
    n = 512 if suite.args.tiny else 8192
    dtypes = ("fp16", "bf16") if suite.cuda else ("fp32", "bf16")
    for name in dtypes:
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]
        a = torch.randn(n, n, dtype=dtype, device=suite.device)
        b = torch.randn(n, n, dtype=dtype, device=suite.device)
        timing = suite.timer(lambda a=a, b=b: a @ b, 3, 10 if suite.cuda else 3)
        tflops = 2 * n ** 3 / timing.median / 1e12
        if suite.peak_tflops is None or name == "fp16":
            suite.peak_tflops = tflops  # MFU's reference: fp16 on GPUs (the dtype the fp16 rows run in)
        yield {"matmul": f"{n}^3 {name}", "median_ms": 1000 * timing.median, "tflops": tflops}
    suite.results["env"]["peak_tflops"] = suite.peak_tflops


def _driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------------------------- inference
def model_config(tiny: bool, **overrides) -> GeneratorConfig:
    if tiny:
        overrides = {"ngf": 8, "spade_hidden": 16, "crop_size": 128, **overrides}
    return GeneratorConfig.preset("cityscapes", **overrides)


def inputs(cfg: GeneratorConfig, batch: int, device: torch.device, seed: int = 3000):
    labels, instances = scene_batch(seed, batch, *cfg.image_size, label_set_for(cfg))
    label = torch.from_numpy(labels.astype(np.int32))[:, None].to(device)
    instance = torch.from_numpy(instances.astype(np.int32))[:, None].to(device)
    return label, instance


def inference(suite: Suite):
    generator, batches, label, instance, reference, flops = suite.model()
    for variant in (REFERENCE, FAST):
        graph = GeneratorGraph(generator, variant=variant).eval().to(suite.device)
        modes = {"eager fp32": graph}
        if suite.cuda:
            half = copy.deepcopy(graph).half()
            modes |= {"eager fp16": half,
                      "eager fp16 channels_last": copy.deepcopy(half).to(memory_format=torch.channels_last)}
        for mode, module in modes.items():
            for batch in batches:
                yield _row(suite, variant.label, mode, batch, lambda m=module, b=batch: m(label[:b], instance[:b]),
                           reference[:batch], flops)
        if suite.cuda:
            for batch in batches:
                run = _cuda_graph(modes["eager fp16"], label[:batch], instance[:batch])
                yield _row(suite, variant.label, "eager fp16 CUDA graph", batch, run, reference[:batch], flops)
    yield from _styles_rows(suite)


def _row(suite: Suite, graph: str, mode: str, batch: int, fn, reference: torch.Tensor, flops: float) -> dict:
    with torch.no_grad():
        out = fn().float()
        timing = suite.timer(lambda: fn(), suite.args.warmup, suite.args.iters)
    diff = (out - reference).abs().max().item()
    quality = psnr(out.cpu().numpy(), reference.cpu().numpy())
    mfu = flops * batch / timing.median / (suite.peak_tflops * 1e12) if suite.peak_tflops else None
    return {"graph": graph, "mode": mode, **timing.row(batch), "max_abs_diff": diff, "psnr_db": quality, "mfu": mfu}


def _cuda_graph(module, label: torch.Tensor, instance: torch.Tensor):
    """The module captured in a CUDA graph on static inputs; replaying it is the call."""
    static = (label.clone(), instance.clone())
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):
            module(*static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        output = module(*static)

    def replay():
        graph.replay()
        return output

    return replay


def aot(suite: Suite):
    """AOTInductor packages of both graphs: compiled on this device, timed and checked like the eager rows."""
    from export.to_pt2 import export_generator_pt2

    generator, batches, label, instance, reference, flops = suite.model()
    precisions = ("fp16", "fp32") if suite.cuda else ("fp32",)
    packages = [(v, p) for p in precisions for v in (FAST, REFERENCE)]
    if suite.args.tiny:
        packages = packages[:1]
    last_compile_s = 45.0  # a guess for the first package; then the last one's measured time
    for variant, precision in packages:
        mode = f"AOTInductor .pt2 {precision}"
        spare = suite.left() - AOT_RESERVE_S
        if spare < last_compile_s:
            yield {"graph": variant.label, "mode": mode,
                   "skipped": f"{suite.left():.0f} s left of --budget, {AOT_RESERVE_S} s kept for runtime + training"}
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.pt2"
            start = time.perf_counter()
            export_generator_pt2(generator, path, Shapes(Range(1, max(batches), max(batches))), precision=precision,
                                 device=suite.device.type, variant=variant)
            last_compile_s = time.perf_counter() - start
            runner = torch._inductor.aoti_load_package(str(path))
            for batch in batches:
                def call(b=batch, runner=runner):
                    return runner(label[:b], instance=instance[:b])

                row = _row(suite, variant.label, mode, batch, call, reference[:batch], flops)
                yield {**row, "compile_s": last_compile_s}


def _styles_rows(suite: Suite):
    """One mask with 8 styles against one image: the fast graph of a style model computes the mask branch once."""
    cfg = model_config(suite.args.tiny, use_vae=True)
    generator = random_generator(cfg)
    label, instance = inputs(cfg, 1, suite.device)
    graph = GeneratorGraph(generator, variant=FAST).eval().to(suite.device)
    if suite.cuda:
        graph = graph.half()
    dtype = torch.float16 if suite.cuda else torch.float32
    z = torch.randn(8, cfg.z_dim, device=suite.device, dtype=dtype)
    with torch.no_grad():
        one = suite.timer(lambda: graph(label, instance, z[:1]), suite.args.warmup, suite.args.iters).median
        eight = suite.timer(lambda: graph(label, instance, z), suite.args.warmup, suite.args.iters).median
    yield {"graph": FAST.label, "mode": f"one mask x 8 styles ({'fp16' if suite.cuda else 'fp32'})",
           "one_image_ms": 1000 * one, "eight_styles_ms": 1000 * eight, "in_single_images": eight / one}


# ---------------------------------------------------------------------------------------------- runtime
def runtime(suite: Suite):
    from export.to_pt2 import export_generator_pt2
    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.metadata import write_sidecar

    cfg = model_config(tiny=True)  # the paths are what is tested here, not the speed
    generator = random_generator(cfg)
    labels, instances = scene_batch(4000, 2, *cfg.image_size, label_set_for(cfg))
    with torch.no_grad():
        eager = image_to_uint8(GeneratorGraph(generator)(torch.from_numpy(labels.astype(np.int32))[:, None],
                                                         torch.from_numpy(instances)[:, None]).numpy())
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_checkpoint(Path(tmp) / "city.pt", cfg, generator)
        package = Path(tmp) / "city.pt2"
        write_sidecar(package, export_generator_pt2(generator, package, Shapes(Range(1, 2, 2)), variant=FAST,
                                                    device=suite.device.type))
        for path in (checkpoint, package):
            with Synthesizer(path, device=suite.device.type) as syn:
                images = syn.run(labels, instances)
                raw = syn.run(labels, instances, device_output=True)
                tensor = raw if isinstance(raw, torch.Tensor) else torch.as_tensor(raw, device=suite.device.type)
                zero_copy = image_to_uint8(tensor.float().cpu().numpy())
                yield {"artifact": path.suffix, "backend": syn.backend, "device": str(tensor.device),
                       "max_levels_vs_eager": int(np.abs(images.astype(int) - eager.astype(int)).max()),
                       "device_output_equals_numpy_path": bool((zero_copy == images).all())}
    if not suite.cuda:
        yield {"tensorrt_memory_code": "skipped: needs CUDA"}
        return
    yield _tensorrt_memory_code()


def _tensorrt_memory_code() -> dict:
    """The TensorRT backend's run() with its real cuda-python memory code, an engine stand-in that copies its
    input to its output on the stream: H2D through pinned memory, the 'engine', D2H, sync, device_output."""
    from cuda.bindings import runtime as cudart

    from gaugan_sdk.backends.tensorrt import TensorRTBackend, cuda_call

    class Context:  # stands in for an IExecutionContext: output = input, on the backend's stream
        def __init__(self, backend):
            self.backend, self.shapes = backend, {}

        def set_input_shape(self, name, shape):
            self.shapes["out"] = tuple(shape)

        def set_tensor_address(self, name, address):
            pass

        def get_tensor_shape(self, name):
            return self.shapes["out"]

        def execute_async_v3(self, stream):
            (source, _, view), (target, _, _) = self.backend.buffers["in"], self.backend.buffers["out"]
            nbytes = int(np.prod(self.shapes["out"])) * view.itemsize
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
            cuda_call(cudart, cudart.cudaMemcpyAsync(target, source, nbytes, kind, stream), "the engine's copy")
            return True

    backend = object.__new__(TensorRTBackend)
    backend.cudart, backend.buffers, backend.inputs, backend.outputs = cudart, {}, ["in"], ["out"]
    backend.stream = cuda_call(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
    for name in ("in", "out"):
        backend._allocate(name, (4, 3, 256, 512), np.dtype("float32"))
    backend.context = Context(backend)
    data = np.random.default_rng(0).standard_normal((2, 3, 256, 512)).astype(np.float32)
    (out,) = backend.run({"in": data})
    device_out = backend.run({"in": data}, device_output=True)[0]
    on_device = torch.as_tensor(device_out, device="cuda").cpu().numpy()
    error = None
    try:
        backend._allocate("huge", (1 << 40,), np.dtype("float32"))  # 4 TiB: an out-of-memory, named
    except RuntimeError as e:
        error = str(e)
    backend.close()
    return {"tensorrt_memory_code": "ran", "round_trip_exact": bool(np.array_equal(out, data)),
            "device_output_exact": bool(np.array_equal(on_device, data)), "oom_error": error}


# ---------------------------------------------------------------------------------------------- training
def training(suite: Suite):
    from training import benchmark

    tiny = ["--set", "ngf=8", "--set", "spade_hidden=16", "--set", "crop_size=128", "--ndf", "8"] \
        if suite.args.tiny else []
    batch = "2" if suite.args.tiny else "8"
    iters = ["--warmup", "1", "--iters", "2"] if suite.args.tiny else ["--warmup", "3", "--iters", "10"]
    rates = {}
    for row in benchmark.main([*tiny, "--batch-size", batch, *iters, "--device", suite.device.type]):
        rates[(row["precision"], row["channels_last"])] = row["it_per_s"]
        yield {"recipe": "cityscapes size" if not suite.args.tiny else "tiny", **row}
    model = tiny or ["--set", "crop_size=512", "--set", "aspect_ratio=2.0", "--set", "num_upsampling_layers=more"]
    with tempfile.TemporaryDirectory() as tmp:
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "-m", "training.train",
                    *model, "--batch-size", batch, "--max-iters", "4" if suite.args.tiny else "20",
                    "--checkpoint-every", "1000", "--image-every", "0", "--eval-every", "0", "--device",
                    suite.device.type, "--outdir", str(Path(tmp) / "ddp")]
        yield _subprocess_row(suite, "torchrun --nproc-per-node 1 (NCCL + SyncBatchNorm on CUDA, gloo on CPU)",
                              torchrun)
        precision = ("bf16", True) if suite.cuda else ("fp32", False)
        iterations = learning_iterations(suite.args.train_iters, suite.left(), rates[precision])
        if iterations is None:
            yield {"run": "learning run", "skipped": f"{suite.left():.0f} s left of --budget"}
            return
        learn = [sys.executable, "-m", "training.train", *model, "--batch-size", batch, "--max-iters",
                 str(iterations), "--eval-every", str(iterations), "--checkpoint-every", str(iterations),
                 "--image-every", "0", "--device", suite.device.type, "--outdir", str(Path(tmp) / "learn")]
        if suite.cuda:
            learn += ["--precision", "bf16", "--channels-last"]
        row = _subprocess_row(suite, f"{iterations} iterations{' bf16 channels_last' if suite.cuda else ''}", learn)
        metrics = sorted((Path(tmp) / "learn").glob("*/metrics.jsonl"))
        if metrics:
            last = json.loads(metrics[0].read_text().splitlines()[-1])
            row |= {"oracle_mIoU": last.get("mIoU"), "mIoU_real_images": last.get("mIoU_real_images")}
        yield row


LEARNING_OVERHEAD_S = 60  # the learning run's start (imports, data, cuDNN autotuning) and its final evaluation


def learning_iterations(wanted: int, left_s: float, it_per_s: float) -> int | None:
    """Iterations of the learning run: `wanted`, or what fits in the time left at the measured rate (80% of it,
    after LEARNING_OVERHEAD_S); None when fewer than 20 would fit."""
    fits = (left_s - LEARNING_OVERHEAD_S) * it_per_s * 0.8
    if fits >= wanted:
        return wanted
    return int(fits) if fits >= 20 else None


def _subprocess_row(suite: Suite, what: str, command: list[str]) -> dict:
    start = time.perf_counter()
    timeout = min(3600.0, max(60.0, suite.left()))  # the budget's time left, at least a minute
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
    speed = [line for line in proc.stdout.splitlines() if "it/s" in line]
    return {"run": what, "seconds": seconds, "last_progress_line": speed[-1].strip() if speed else None}


# ---------------------------------------------------------------------------------------------- output
def targets(results: dict) -> dict:
    """The issue's targets as measured (a target whose rows are missing is left out): batch 1 .pt2 fp16 >= 4x
    eager fp32 and within 2x of the fp16 compute floor, >= 50% MFU at the largest batch, training bf16 >= 2x fp32
    it/s."""
    timed = [r for step in ("inference", "aot") for r in results["steps"].get(step, {}).get("rows", [])
             if "median_ms" in r]

    def best(batch: int, mode_prefix: str, graph: str | None = None) -> dict | None:
        found = [r for r in timed if r["batch"] == batch and r["mode"].startswith(mode_prefix)
                 and (graph is None or r["graph"] == graph)]
        return min(found, key=lambda r: r["median_ms"]) if found else None

    out: dict = {}
    eager = best(1, "eager fp32", REFERENCE.label)
    peak, gflop = results.get("env", {}).get("peak_tflops"), results.get("gflop_per_image")
    for graph in (FAST.label, REFERENCE.label):
        package = best(1, "AOTInductor .pt2 fp16", graph)
        if package and eager:
            out[f"batch 1 .pt2 fp16 {graph} vs eager fp32 (>= 4x)"] = eager["median_ms"] / package["median_ms"]
        if package and peak and gflop:
            floor_ms = gflop / peak  # GFLOP / TFLOP/s = ms
            out[f"batch 1 .pt2 fp16 {graph} / fp16 compute floor (<= 2x)"] = package["median_ms"] / floor_ms
    if timed:
        largest = max(r["batch"] for r in timed)
        top = max((r for r in timed if r["batch"] == largest and r.get("mfu") is not None),
                  key=lambda r: r["mfu"], default=None)
        if top:
            out[f"batch {largest} best MFU (>= 0.5)"] = top["mfu"]
            out[f"batch {largest} best MFU by"] = f"{top['graph']}, {top['mode']}"
    rates = {(r["precision"], r["channels_last"]): r["it_per_s"]
             for r in results["steps"].get("training", {}).get("rows", []) if "it_per_s" in r}
    if ("fp32", False) in rates and any(p == "bf16" for p, _ in rates):
        bf16 = max(v for (p, _), v in rates.items() if p == "bf16")
        out["training bf16 (best layout) vs fp32 it/s (>= 2x)"] = bf16 / rates[("fp32", False)]
    return out


def _fmt(value) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    return str(value)


def markdown(results: dict) -> str:
    lines = [f"# GPU suite\n\n`{results['command']}`\n"]
    if "env" in results:
        lines.append(" | ".join(f"{k}: {_fmt(v)}" for k, v in results["env"].items()) + "\n")
    if results.get("targets"):
        lines += ["| target | measured |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in results["targets"].items()] + [""]
    for name, record in results["steps"].items():
        lines.append(f"## {name} ({record['status']}, {record.get('seconds', '...')} s)\n")
        groups: dict[tuple, list[dict]] = {}
        for row in record["rows"]:
            groups.setdefault(tuple(row), []).append(row)
        for keys, rows in groups.items():
            lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder for gpu_suite.json and gpu_suite.md")
    p.add_argument("--tiny", action="store_true", help="tiny models and few iterations: a rehearsal on any machine")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    p.add_argument("--warmup", type=int, help="untimed calls before each timing (default 3; tiny 1)")
    p.add_argument("--iters", type=int, help="timed calls per row (default 10; tiny 2)")
    p.add_argument("--train-iters", type=int, help="iterations of the learning run (default 300; tiny 4)")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="the suite's time: no step starts after it, slow items are sized or skipped to end by it")
    args = p.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    args.iters = args.iters if args.iters is not None else (2 if args.tiny else 10)
    args.train_iters = args.train_iters if args.train_iters is not None else (4 if args.tiny else 300)
    suite = Suite(args.out, args)
    if not suite.cuda and not args.tiny:
        print("gpu_suite: no CUDA device here; pass --tiny for a rehearsal on this machine", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    steps = {"env": env, "inference": inference, "aot": aot, "runtime": runtime, "training": training}
    for name in ["env", *[s for s in args.steps if s != "env"]]:  # env first: the peak MFU needs
        suite.step(name, lambda name=name: steps[name](suite))
    failed = [n for n, r in suite.results["steps"].items() if r["status"].startswith("failed")]
    print(f"\nwrote {args.out / 'gpu_suite.json'} and {args.out / 'gpu_suite.md'}"
          f"{'; failed: ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
