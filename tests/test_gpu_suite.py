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


def test_the_device_call_rehearses_on_the_cpu(tmp_path):
    """tests/gpu_run.sh, the command a device call runs: the gpu-marked tests (skipped here) then the suite with
    the time they left as its budget (its env step here); every file the device tool brings back is written."""
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(ROOT / "tests" / "gpu_run.sh"), str(out), "400", "--tiny", "--steps", "env"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**ENV, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(f.name for f in out.iterdir()) == ["gpu_suite.json", "gpu_suite.log", "gpu_suite.md",
                                                     "nvidia-smi.txt", "pytest_gpu.log"]
    assert " skipped" in (out / "pytest_gpu.log").read_text()  # no GPU here: the gpu tests skip with the reason
    results = json.loads((out / "gpu_suite.json").read_text())
    assert 0 < results["budget_s"] < 400  # what the gpu tests left
    assert results["steps"]["env"]["status"] == "ok"
    assert results["env"]["peak_tflops"] > 0 and results["env"]["torch"]
    assert "## env (ok" in (out / "gpu_suite.md").read_text()


@pytest.mark.parametrize("total", ["abc", "5", "-1", "1.5"])
def test_the_device_call_refuses_a_bad_total_and_writes_nothing(tmp_path, total):
    proc = subprocess.run(["bash", str(ROOT / "tests" / "gpu_run.sh"), str(tmp_path / "out"), total],
                          capture_output=True, text=True, timeout=60, env={**ENV, "PYTHON": sys.executable})
    assert proc.returncode == 2 and f"TOTAL_S={total}; accepted: whole seconds, at least 60" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_spent_budget_skips_steps_and_says_so(tmp_path):
    results = run_suite(tmp_path, "--tiny", "--budget", "0", "--steps", "env", "aot", "training")
    steps = results["steps"]
    assert steps["env"]["status"] == "ok"  # always: the peak that MFU needs
    assert steps["aot"] == steps["training"] == {"status": "skipped: --budget spent", "rows": [], "seconds": 0.0}
    assert "## aot (skipped: --budget spent" in (tmp_path / "gpu_suite.md").read_text()


def test_the_learning_run_is_sized_to_the_time_left():
    from gpu_suite import LEARNING_OVERHEAD_S, learning_iterations

    assert learning_iterations(300, float("inf"), 0.5) == 300
    assert learning_iterations(300, LEARNING_OVERHEAD_S + 100, 2.0) == 160  # 100 s x 2 it/s x 0.8
    assert learning_iterations(300, LEARNING_OVERHEAD_S + 10, 2.0) is None  # 16 would fit: not worth a run


def test_targets_are_computed_from_the_rows():
    from gpu_suite import targets

    def row(graph, mode, batch, ms, mfu):
        return {"graph": graph, "mode": mode, "batch": batch, "median_ms": ms, "mfu": mfu}

    styles = {"graph": "fast:conv+fused", "mode": "one mask x 8 styles (fp16)", "one_image_ms": 3.0}
    results = {"env": {"peak_tflops": 500.0}, "gflop_per_image": 562.6, "steps": {
        "inference": {"rows": [row("reference", "eager fp32", 1, 40.0, 0.03),
                               row("reference", "eager fp32", 16, 300.0, 0.06),
                               row("fast:conv+fused", "eager fp16 CUDA graph", 16, 40.0, 0.45), styles]},
        "aot": {"rows": [row("fast:conv+fused", "AOTInductor .pt2 fp16", 1, 4.0, 0.28),
                         row("fast:conv+fused", "AOTInductor .pt2 fp16", 16, 30.0, 0.6),
                         {"graph": "reference", "mode": "AOTInductor .pt2 fp16", "skipped": "budget"}]},
        "training": {"rows": [{"precision": "fp32", "channels_last": False, "it_per_s": 2.0},
                              {"precision": "bf16", "channels_last": False, "it_per_s": 3.0},
                              {"precision": "bf16", "channels_last": True, "it_per_s": 5.0}]}}}
    measured = targets(results)
    assert measured == pytest.approx({
        "batch 1 .pt2 fp16 fast:conv+fused vs eager fp32 (>= 4x)": 10.0,
        "batch 1 .pt2 fp16 fast:conv+fused / fp16 compute floor (<= 2x)": 4.0 / (562.6 / 500.0),
        "batch 16 best MFU (>= 0.5)": 0.6, "batch 16 best MFU by": "fast:conv+fused, AOTInductor .pt2 fp16",
        "training bf16 (best layout) vs fp32 it/s (>= 2x)": 2.5})
    assert targets({"steps": {}}) == {}


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
    rows = results["steps"]["runtime"]["rows"]
    artifacts = [r for r in rows if "artifact" in r]
    assert [r["artifact"] for r in artifacts] == [".pt", ".pt2"]
    assert all(r["device_output_equals_numpy_path"] and r["max_levels_vs_eager"] <= 1 for r in artifacts)
    import torch

    if not torch.cuda.is_available():
        assert rows[-1] == {"tensorrt_memory_code": "skipped: needs CUDA"}
    inference = results["steps"]["inference"]["rows"] + results["steps"]["aot"]["rows"]
    assert {r["graph"] for r in inference} == {"reference", "fast:conv+fused"}
    assert any(r["mode"].startswith("AOTInductor") for r in inference)
    assert all(r["max_abs_diff"] < 1e-3 for r in inference if "max_abs_diff" in r)
    assert results["targets"]  # the rows the tiny run has (no fp16 .pt2 on the CPU)


@pytest.mark.gpu
def test_the_suite_runs_on_cuda(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    # the CUDA paths at tiny sizes (inference and .pt2 speed at full size are the suite's own rows, in the same call)
    results = run_suite(tmp_path, "--tiny", "--steps", "env", "runtime")
    assert all(r["status"] == "ok" for r in results["steps"].values()), results["steps"]
    rows = results["steps"]["runtime"]["rows"]
    artifacts = [r for r in rows if "artifact" in r]
    assert [r["artifact"] for r in artifacts] == [".pt", ".pt2"]
    # on the GPU, in TF32 convolutions (PyTorch's default): a few levels from the CPU's eager image, not hundreds
    assert all(r["device"].startswith("cuda") and r["device_output_equals_numpy_path"]
               and r["max_levels_vs_eager"] <= 8 for r in artifacts), artifacts
    memory = rows[-1]
    assert memory["round_trip_exact"] and memory["device_output_exact"] and "cudaErrorMemoryAllocation" in \
        memory["oom_error"]
