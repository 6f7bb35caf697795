"""The TensorRT backend's CUDA calls (cuda-python) are checked the way NVIDIA's samples check them: a failed
status raises with the error's name and the operation, never a silent null pointer. Statuses come from a stand-in
module here, and from the real cuda.bindings where it is installed (on this GPU-less machine every call fails
with cudaErrorInsufficientDriver or cudaErrorNoDevice)."""

from __future__ import annotations

import enum
from types import SimpleNamespace

import numpy as np
import pytest

from gaugan_sdk.backends.tensorrt import TensorRTBackend, cuda_call


class FakeError(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


def fake_cudart(**calls):
    return SimpleNamespace(cudaError_t=FakeError, cudaGetErrorName=lambda s: (FakeError.cudaSuccess, s.name.encode()),
                           **calls)


def test_cuda_call_raises_with_the_error_name_and_returns_values():
    cudart = fake_cudart()
    assert cuda_call(cudart, (FakeError.cudaSuccess, 1234), "cudaMalloc") == 1234
    assert cuda_call(cudart, (FakeError.cudaSuccess,), "cudaFree") == ()
    assert cuda_call(cudart, (FakeError.cudaSuccess, 1, 2), "two values") == (1, 2)
    with pytest.raises(RuntimeError, match=r"CUDA error cudaErrorMemoryAllocation \(2\) in cudaMalloc of 4 bytes"):
        cuda_call(cudart, (FakeError.cudaErrorMemoryAllocation, 0), "cudaMalloc of 4 bytes")


def test_a_failed_pinned_allocation_frees_the_device_buffer_and_names_the_tensor():
    freed = []
    cudart = fake_cudart(cudaMalloc=lambda n: (FakeError.cudaSuccess, 4096),
                         cudaMallocHost=lambda n: (FakeError.cudaErrorMemoryAllocation, 0),
                         cudaFree=lambda p: freed.append(p) or (FakeError.cudaSuccess,))
    backend = object.__new__(TensorRTBackend)  # the memory code alone: no TensorRT engine
    backend.cudart, backend.buffers = cudart, {}
    with pytest.raises(RuntimeError, match=r"cudaErrorMemoryAllocation \(2\) in cudaMallocHost of 98,304 bytes for "
                                           r"image"):
        backend._allocate("image", (1, 3, 64, 128), np.dtype("float32"))
    assert freed == [4096] and backend.buffers == {}
    out_of_memory = fake_cudart(cudaMalloc=lambda n: (FakeError.cudaErrorMemoryAllocation, 0))
    backend.cudart = out_of_memory
    with pytest.raises(RuntimeError, match=r"in cudaMalloc of 98,304 bytes for image \(1, 3, 64, 128\)"):
        backend._allocate("image", (1, 3, 64, 128), np.dtype("float32"))


def test_real_cuda_bindings_statuses_are_raised_by_name():
    cudart = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed (pip install -e "
                                                                 "'.[dev]' brings cuda-bindings)")
    status, count = cudart.cudaGetDeviceCount()
    if status == cudart.cudaError_t.cudaSuccess and count > 0:
        pytest.skip("this machine has a CUDA device: cudaMalloc would succeed")
    with pytest.raises(RuntimeError, match=r"CUDA error cudaError\w+ \(\d+\) in cudaMalloc of 1,024 bytes"):
        cuda_call(cudart, cudart.cudaMalloc(1024), "cudaMalloc of 1,024 bytes")


def test_every_cudart_name_the_backend_uses_exists_in_cuda_bindings():
    import re
    from pathlib import Path

    cudart = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    source = (Path(__file__).resolve().parents[1] / "gaugan_sdk" / "backends" / "tensorrt.py").read_text()
    names = set(re.findall(r"cudart\.(\w+)", source))
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamSynchronize"} <= names
    missing = sorted(n for n in names if not hasattr(cudart, n))
    assert not missing, f"not in cuda.bindings.runtime: {missing}"
    assert hasattr(cudart.cudaMemcpyKind, "cudaMemcpyHostToDevice") and hasattr(cudart.cudaError_t, "cudaSuccess")
