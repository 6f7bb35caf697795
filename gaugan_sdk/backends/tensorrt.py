"""TensorRT backend (10.x / 11.x name-based API) with cuda-python for memory: no torch.

One execution context; per call set_input_shape + set_tensor_address for every IO tensor and
execute_async_v3 on one stream. Device buffers are sized once, at the max shapes of the metadata's ranges (the
ranges the plan's optimization profile was built from: `contract.TensorSpec.shape_at`); inputs are staged
through pinned host memory.

NOT EXECUTED in this workplace (TensorRT does not install here). The plan/machine compatibility check is pure
Python and tested; every `trt.` name is checked against the 10.x and 11.x bindings by the tests.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..contract import Range, TensorSpec, spec_from_runtime
from ..kinds import TENSORRT
from ..metadata import ArtifactMetadata
from .base import Backend, DeviceArray, RuntimeOptions, missing_library


def open_artifact(path: Path, meta: ArtifactMetadata | None, options: RuntimeOptions) -> TensorRTBackend:
    if options.device == "cpu":
        raise ValueError(f"device='cpu': {path.name} is a TensorRT plan, which runs on an NVIDIA GPU; accepted: "
                         f"device 'cuda' or None (the .onnx beside the plan runs on the CPU)")
    return TensorRTBackend(path, meta)


def cuda_call(cudart, result, what: str):
    """A cuda-python call's (status, *values): raise on any status but cudaSuccess, naming the error and the
    operation (the check NVIDIA's samples make after every call); return the value (one alone), or the values."""
    status, *values = result if isinstance(result, tuple) else (result,)
    if status != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA error {_error_name(cudart, status)} ({int(status)}) in {what}")
    return values[0] if len(values) == 1 else tuple(values)


def _error_name(cudart, status) -> str:
    _, name = cudart.cudaGetErrorName(status)
    return name.decode() if isinstance(name, bytes) else str(name)


def device_facts(trt_version: str) -> dict[str, str]:
    """What a plan is tied to: TensorRT version, GPU name and compute capability of the current device."""
    from cuda.bindings import runtime as cudart

    device = cuda_call(cudart, cudart.cudaGetDevice(), "cudaGetDevice")
    props = cuda_call(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {"version": trt_version, "gpu": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}"}


def plan_mismatch(built: dict | None, here: dict, plan: str, source: dict | None = None) -> str | None:
    """None if the plan can run here, else a message naming both and the command that rebuilds it."""
    if not built:
        return None  # no record (a plan exported elsewhere): TensorRT itself refuses an incompatible one
    if (built.get("version"), built.get("compute_capability")) == (here["version"], here["compute_capability"]):
        return None
    checkpoint = next(iter((source or {}).get("files", {}).values()), "<checkpoint>")
    return (f"{plan} was built with TensorRT {built.get('version')} for {built.get('gpu')} (compute capability "
            f"{built.get('compute_capability')}); this machine has TensorRT {here['version']} and {here['gpu']} "
            f"(compute capability {here['compute_capability']}). Plans are tied to both: rebuild it here with\n"
            f"  gaugan-export --checkpoint {checkpoint} --format trt --output {plan}")


class TensorRTBackend(Backend):
    kind = TENSORRT
    device = "cuda"

    def __init__(self, path: str | Path, meta: ArtifactMetadata | None):
        """`meta` None: a plan without its sidecar, described from its own IO (see io())."""
        try:
            import tensorrt as trt
        except ImportError:
            raise missing_library("tensorrt", TENSORRT, "running TensorRT plans") from None
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            raise missing_library("cuda-python", TENSORRT, "running TensorRT plans") from None
        err, count = cudart.cudaGetDeviceCount()
        if err != cudart.cudaError_t.cudaSuccess or count == 0:
            status = "" if err == cudart.cudaError_t.cudaSuccess else f" ({_error_name(cudart, err)})"
            raise RuntimeError(f"{Path(path).name}: no CUDA device here{status}; TensorRT plans need an NVIDIA GPU "
                               f"and a driver that fits cuda-python (the .onnx beside the plan runs on the CPU)")
        mismatch = meta and plan_mismatch(meta.tensorrt, device_facts(trt.__version__), str(path), meta.source)
        if mismatch:
            raise RuntimeError(mismatch)
        self.trt, self.cudart = trt, cudart
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            raise ValueError(f"{path} is not a loadable TensorRT plan (truncated, corrupted, or built for another "
                             f"TensorRT version or GPU than TensorRT {trt.__version__} here: rebuild it with "
                             f"gaugan-export --format trt)")
        self.engine = engine
        self.meta = meta or self.io_metadata(Path(path).name)  # the plan's own IO when it has no sidecar
        self.context = engine.create_execution_context()
        self.stream = self._cuda(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.buffers: dict[str, tuple[int, int, np.ndarray]] = {}  # name -> (device ptr, host ptr, host view)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        specs = {t.name: t for t in (*self.meta.inputs, *self.meta.outputs)}
        if set(specs) != set(names):
            raise ValueError(f"the metadata of {Path(path).name} names the tensors {sorted(specs)}, the plan has "
                             f"{sorted(names)}. Was the sidecar copied from another export?")
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            self._allocate(name, specs[name].shape_at(self.meta.ranges, "max"), dtype)

    def io(self) -> tuple[list[TensorSpec], list[TensorSpec], dict[str, Range]]:
        """IO from the engine: -1 dimensions are dynamic, their min/opt/max from optimization profile 0."""
        trt, engine = self.trt, self.engine
        inputs, outputs, ranges = [], [], {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
            spec = spec_from_runtime(name, dtype, tuple(engine.get_tensor_shape(name)))
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                outputs.append(spec)
                continue
            inputs.append(spec)
            low, opt, high = engine.get_tensor_profile_shape(name, 0)
            for axis, dim in enumerate(spec.shape):
                if isinstance(dim, str):
                    ranges[dim] = Range(int(low[axis]), int(opt[axis]), int(high[axis]))
        return inputs, outputs, ranges

    def run(self, feeds: dict[str, np.ndarray], device_output: bool = False) -> list:
        cudart = self.cudart
        for name in self.inputs:
            array = np.ascontiguousarray(feeds[name])
            device, host, view = self.buffers[name]
            view[:array.size] = array.reshape(-1)
            self._cuda(cudart.cudaMemcpyAsync(device, host, array.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                              self.stream), f"cudaMemcpyAsync of {name} to the device")
            self.context.set_input_shape(name, array.shape)
            self.context.set_tensor_address(name, device)
        shapes = {}
        for name in self.outputs:
            shapes[name] = tuple(self.context.get_tensor_shape(name))
            self.context.set_tensor_address(name, self.buffers[name][0])
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
        if device_output:  # the engine's own buffers, overwritten by the next run
            self._cuda(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize after the engine")
            return [DeviceArray(int(self.buffers[name][0]), shapes[name], self.buffers[name][2].dtype)
                    for name in self.outputs]
        results = []
        for name in self.outputs:
            device, host, view = self.buffers[name]
            size = int(np.prod(shapes[name]))
            self._cuda(cudart.cudaMemcpyAsync(host, device, size * view.itemsize,
                                              cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream),
                       f"cudaMemcpyAsync of {name} to the host")
            results.append((name, size))
        self._cuda(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize after the engine")
        return [self.buffers[name][2][:size].reshape(shapes[name]).copy() for name, size in results]

    def close(self) -> None:
        """Free everything, then raise the first CUDA error met (a sticky error from a failed run shows here)."""
        errors = []
        for device, host, _ in self.buffers.values():
            errors += [self.cudart.cudaFree(device), self.cudart.cudaFreeHost(host)]
        self.buffers = {}
        if getattr(self, "stream", None) is not None:
            errors.append(self.cudart.cudaStreamDestroy(self.stream))
            self.stream = None
        self.context = self.engine = None
        for result in errors:
            self._cuda(result, "freeing the TensorRT backend's CUDA memory")

    def _cuda(self, result, what: str):
        return cuda_call(self.cudart, result, what)

    def _allocate(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        nbytes = int(np.prod(shape)) * dtype.itemsize
        device = self._cuda(self.cudart.cudaMalloc(nbytes), f"cudaMalloc of {nbytes:,} bytes for {name} {shape}")
        try:  # pinned host memory: asynchronous copies
            host = self._cuda(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost of {nbytes:,} bytes for {name}")
        except RuntimeError:
            self.cudart.cudaFree(device)
            raise
        raw = (ctypes.c_byte * nbytes).from_address(host)
        self.buffers[name] = (device, host, np.frombuffer(raw, dtype=dtype))
