"""The distribution as users install it: build the real wheel (offline, no isolation) and read it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(out), str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("gaugan_sdk-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_the_top_level_packages_and_no_tests(wheel):
    names = wheel.namelist()
    for module in ("gaugan_sdk/__init__.py", "gaugan_sdk/labels.py", "gaugan_sdk/config.py",
                   "gaugan_sdk/checkpoint.py", "gaugan_sdk/models/generator.py", "gaugan_sdk/presets.py",
                   "training/__init__.py", "training/train.py", "export/__init__.py", "export/cli.py",
                   "export/options.py"):  # the three packages of the product: none may go missing
        assert module in names, module
    for package in ("gaugan_sdk", "training", "export"):  # every module of the tree is in the wheel
        for path in (ROOT / package).rglob("*.py"):
            assert path.relative_to(ROOT).as_posix() in names, path
    assert not any(name.startswith("tests/") for name in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "gaugan-export = export.cli:main" in wheel.read(entry_points).decode()


def test_core_needs_only_numpy_and_onnxruntime_builds_never_meet(wheel):
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    meta = Parser().parsestr(wheel.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("=")[0].strip() for r in core] == ["numpy"]
    extras = set(meta.get_all("Provides-Extra"))
    assert {"train", "export", "onnxruntime", "gpu", "trt", "samples", "dev"} <= extras
    for extra in extras:  # the CPU and GPU builds of ONNX Runtime provide the same module
        wanted = {r.split(";")[0].split(">")[0].strip() for r in requires if f'extra == "{extra}"' in r}
        assert not {"onnxruntime", "onnxruntime-gpu"} <= wanted, extra
