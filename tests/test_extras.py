"""The extras in pyproject.toml: ONNX Runtime's two builds (onnxruntime, onnxruntime-gpu) provide one module and
must never both be installed, so exactly two extras name them, one each, and no combination of the others
brings either. The slow test asks pip itself to resolve `.[dev,gpu]` (a dry run against the package index)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILDS = {"onnxruntime", "onnxruntime-gpu"}


def extras() -> dict[str, set[str]]:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {name: {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in reqs} for name, reqs in
            table.items()}


def test_each_onnxruntime_build_has_its_own_extra_and_no_other_extra_names_either():
    table = extras()
    assert table["onnxruntime"] & BUILDS == {"onnxruntime"} and table["gpu"] & BUILDS == {"onnxruntime-gpu"}
    others = {name: reqs for name, reqs in table.items() if name not in ("onnxruntime", "gpu")}
    for count in range(1, len(others) + 1):
        for combo in itertools.combinations(others, count):
            names = set().union(*(others[c] for c in combo))
            assert not names & BUILDS, f"extras {combo} bring {names & BUILDS}"
            assert len((names | table["gpu"]) & BUILDS) == 1  # e.g. .[dev,gpu]: one build


def test_cuda_python_is_new_enough_for_cuda_bindings():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (cuda,) = [r for r in table["trt"] if r.startswith("cuda-python")]
    assert cuda == "cuda-python>=12.6.1"  # cuda.bindings, which the TensorRT backend imports, exists from 12.6.1


@pytest.mark.slow
def test_pip_resolves_dev_with_gpu_to_one_onnxruntime(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--report", str(report), "torch==2.13.0", f"{ROOT}[dev,gpu]"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"pip could not resolve against the package index here: {proc.stderr.strip()[-300:]}")
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert names & BUILDS == {"onnxruntime-gpu"}, sorted(names & BUILDS)
