"""ONNX -> TensorRT plan with the TensorRT 10/11 Python API. The writer of `gaugan_sdk.kinds.TENSORRT`: the
verified ONNX first (export/to_onnx.py, kept beside the plan for rebuilds and trtexec), then one plan each.

Precision comes from the ONNX (fp32, fp16 with fp32 islands, int8 as Q/DQ), so the network is built strongly
typed: required on TensorRT 11 (which removed the FP16/INT8 builder flags and calibrators), opt-in and the
recommended mode on TensorRT 10. One optimization profile spans the metadata's shape ranges; a timing cache
file is read before and written after the build so rebuilds are fast.

Only names present in both the 10.x and 11.x bindings are used: tests/test_tensorrt_api.py checks every
`trt.` attribute of this file against the compiled modules of both.

NOT EXECUTED in this workplace (no TensorRT installs here); written after NVIDIA's documented usage.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from gaugan_sdk._io import atomic_write
from gaugan_sdk.backends.tensorrt import device_facts
from gaugan_sdk.kinds import ONNX
from gaugan_sdk.metadata import ArtifactMetadata

from . import to_onnx
from .job import Built, ExportJob
from .options import ExportOptions

INSTALL_HINT = ("TensorRT is not installed. Install it with `pip install \"gaugan-sdk[trt]\"` on a machine with an "
                "NVIDIA GPU and driver (TensorRT 10.x or 11.x); --format onnx and --format pt2 work without it.")


def tensorrt_available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def preflight(options: ExportOptions) -> None:
    """Refuse at once, before any work, where TensorRT is not installed."""
    if not tensorrt_available():
        raise ImportError(INSTALL_HINT)


def write(job: ExportJob) -> list[Built]:
    """The plans of an export, in the staging folder, each verified through the ONNX it was built from."""
    built = []
    for onnx_file in to_onnx.write(job):
        name = job.output.name if onnx_file.meta.role == "generator" else job.encoder_name
        plan = job.staged(name)
        with job.steps(f"build TensorRT plan {plan.name}"):
            meta = build_plan(onnx_file.path, plan, onnx_file.meta, workspace_gb=job.options.workspace_gb,
                              timing_cache=job.options.timing_cache,
                              show_progress=None if job.steps.verbose else False)
        built.append(Built(plan, meta, onnx_file.path, ONNX, extras=[onnx_file.path]))
    return built


def build_plan(onnx_path: str | Path, plan_path: str | Path, meta: ArtifactMetadata, *, workspace_gb: float = 4.0,
               timing_cache: str | Path | None = None, show_progress: bool | None = None) -> ArtifactMetadata:
    """Build a serialized TensorRT plan from an ONNX file; returns the plan's metadata. `show_progress`: the
    builder's phases as progress bars (None: where stderr is a terminal)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}:\n{errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    profile = builder.create_optimization_profile()
    specs = {t.name: t for t in meta.inputs}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        low, opt, high = specs[tensor.name].profile(meta.ranges)  # the contract's ranges
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)

    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    monitor = progress_monitor(trt, show_progress)
    if monitor is not None:
        config.progress_monitor = monitor  # kept alive by `monitor` until the build returns

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build a plan from {onnx_path} (see the log above)")
    with atomic_write(plan_path) as tmp:
        Path(tmp).write_bytes(plan)
    if cache_path:
        with atomic_write(cache_path) as tmp:
            Path(tmp).write_bytes(config.get_timing_cache().serialize())
    return replace(meta, format="tensorrt", tensorrt=device_facts(trt.__version__), weights_sha256=None)


def progress_monitor(trt, enabled: bool | None = None):
    """A TensorRT builder progress monitor (trt.IProgressMonitor, as in NVIDIA's simple_progress_monitor sample)
    that shows each build phase as a progress bar; None where bars are not enabled (`progress.bars_enabled`: None
    means where stderr is a terminal) or the TensorRT version has no progress monitor."""
    from .progress import Phases, bars_enabled

    if not hasattr(trt, "IProgressMonitor") or not bars_enabled(enabled):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.phases = Phases()

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.phases.start(phase_name, num_steps, f"TensorRT {phase_name}")

        def step_complete(self, phase_name, step):
            self.phases.advance(phase_name, step + 1)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            self.phases.finish(phase_name)

    return Monitor()


def trtexec_command(onnx_path: str | Path, plan_path: str | Path, meta: ArtifactMetadata) -> str:
    """The equivalent trtexec command line (strongly typed; shapes from the profile)."""
    shapes = [t.profile(meta.ranges) for t in meta.inputs]
    flag = lambda k: ",".join(f"{t.name}:{'x'.join(map(str, s[k]))}" for t, s in zip(meta.inputs, shapes))  # noqa: E731
    return (f"trtexec --onnx={onnx_path} --saveEngine={plan_path} --stronglyTyped "
            f"--minShapes={flag(0)} --optShapes={flag(1)} --maxShapes={flag(2)}")
