"""tests/gpu_suite.py, the one command of the GPU run: rehearsed here at tiny sizes on the CPU (every step
that does not need CUDA runs; the CUDA-only rows say they were skipped), and run for real under `-m gpu`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # as the GPU machine runs it: from the checkout, no install


def run_suite(out: Path, *args: str, timeout: int = 900) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "gpu_suite.py"), str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (out / "gpu_suite.md").is_file()
    return json.loads((out / "gpu_suite.json").read_text())


@pytest.mark.slow
def test_the_suite_rehearses_env_and_runtime_on_the_cpu(tmp_path):
    results = run_suite(tmp_path, "--tiny", "--steps", "env", "runtime")
    assert {name: r["status"] for name, r in results["steps"].items()} == {"env": "ok", "runtime": "ok"}
    assert results["env"]["peak_tflops"] > 0 and results["env"]["torch"]
    rows = results["steps"]["runtime"]["rows"]
    artifacts = [r for r in rows if "artifact" in r]
    assert [r["artifact"] for r in artifacts] == [".pt", ".pt2"]
    assert all(r["device_output_equals_numpy_path"] and r["max_levels_vs_eager"] <= 1 for r in artifacts)
    import torch

    if not torch.cuda.is_available():
        assert rows[-1] == {"tensorrt_memory_code": "skipped: needs CUDA"}
    markdown = (tmp_path / "gpu_suite.md").read_text()
    assert "## runtime (ok" in markdown and "| artifact | backend |" in markdown


def test_the_suite_refuses_a_real_run_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "gpu_suite.py"), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2 and "pass --tiny for a rehearsal" in proc.stderr


@pytest.mark.slow
def test_the_whole_suite_rehearses_at_tiny_sizes(tmp_path):
    results = run_suite(tmp_path, "--tiny", timeout=1800)
    assert all(r["status"] == "ok" for r in results["steps"].values()), results["steps"]
    inference = results["steps"]["inference"]["rows"]
    assert {r["graph"] for r in inference} == {"reference", "fast:conv+fused"}
    assert all(r["max_abs_diff"] < 1e-3 for r in inference if "max_abs_diff" in r)


@pytest.mark.gpu
def test_the_suite_runs_on_cuda(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    results = run_suite(tmp_path, "--tiny", "--steps", "env", "inference", "runtime")
    assert all(r["status"] == "ok" for r in results["steps"].values()), results["steps"]
    memory = results["steps"]["runtime"]["rows"][-1]
    assert memory["round_trip_exact"] and memory["device_output_exact"] and "cudaErrorMemoryAllocation" in \
        memory["oom_error"]
