"""TensorRT cannot run here, so the TensorRT code is checked against the real API instead.

The TensorRT Python bindings wheels install from the registry without their native libraries (about 1.3 MB
each): `tensorrt_cu12_bindings` 10.x and `tensorrt_cu13_bindings` 11.x. Their compiled module names every
class, method, property and enum member it registers. Every `tensorrt` attribute our builder and runtime code
uses must be there in both versions (11.x removed e.g. the FP16/INT8 builder flags and the calibrators, and
both removed execute_async_v2). Limit: a name is looked up, not its owner, so an enum member removed from one
enum but alive in another (BuilderFlag.BF16 vs DataType.BF16 on 11.x) still counts as present.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "gaugan-sdk" / "tensorrt-bindings"
WHEELS = {"10.x": "tensorrt_cu12_bindings>=10,<11", "11.x": "tensorrt_cu13_bindings>=11,<12"}
# Our files that talk to TensorRT (the runtime backend joins this list when it exists).
TRT_SOURCES = [p for p in (ROOT / "export" / "tensorrt.py", ROOT / "gaugan_sdk" / "backends" / "tensorrt.py")
               if p.exists()]
# Names our code gives TensorRT objects; attributes reached from them are TensorRT API.
IDENTIFIER_TAIL = re.compile(rb"[A-Za-z0-9_]+$")
TRT_OBJECTS = {"trt", "logger", "builder", "network", "parser", "config", "profile", "cache", "tensor", "engine",
               "context", "runtime"}


def api_names(version: str) -> set[str]:
    """Every identifier in one bindings wheel's compiled module and its Python __init__."""
    CACHE.mkdir(parents=True, exist_ok=True)
    spec = WHEELS[version]
    wheel = next(iter(sorted(CACHE.glob(f"{spec.split('>')[0]}-*.whl"))), None)
    if wheel is None:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                 "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", str(CACHE),
                                 spec], capture_output=True, text=True)
        wheel = next(iter(sorted(CACHE.glob(f"{spec.split('>')[0]}-*.whl"))), None)
        if wheel is None:
            pytest.skip(f"cannot download {spec} from the package registry: {result.stderr.strip()[-300:]}")
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.endswith(".so"):
                names |= registered_names(z.read(member))
            elif member.endswith("__init__.py"):  # what the Python layer defines (__version__, nptype, ...)
                names |= defined_names(z.read(member).decode())
    return names


def registered_names(binary: bytes) -> set[str]:
    """Names a compiled module registers: each is a NUL-terminated string, or the tail of one, because the
    linker merges "Builder" into the end of "IBuilder" and "serialize" into "deserialize". Words inside
    docstrings do not count (a docstring rarely ends in a bare identifier)."""
    names = set()
    for piece in binary.split(b"\0"):
        tail = IDENTIFIER_TAIL.search(piece)
        if tail:
            word = tail.group().decode()
            names.update(word[i:] for i in range(len(word)))
    return names


def defined_names(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def used_names(source: str) -> set[str]:
    """Attributes reached from TensorRT objects: trt.X.Y, builder.f(), config.g().h(), ..."""
    def is_trt_root(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in TRT_OBJECTS
        # self.context, self.engine, self.trt, ... in classes that keep TensorRT objects as attributes
        return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
            and node.attr in TRT_OBJECTS

    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and not is_trt_root(node):
            root = node.value
            while not is_trt_root(root) and isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if is_trt_root(root):
                used.add(node.attr)
    return used


@pytest.fixture(scope="module", params=sorted(WHEELS))
def api(request) -> tuple[str, set[str]]:
    return request.param, api_names(request.param)


def test_our_tensorrt_code_uses_only_names_both_versions_have(api):
    version, names = api
    assert len(names) > 1000 and "ICudaEngine" in names  # a real bindings module, not an empty read
    used = set().union(*(used_names(p.read_text()) for p in TRT_SOURCES))
    assert len(used) >= 20, sorted(used)  # the scanner sees the builder's calls
    assert {"set_input_shape", "set_tensor_address", "execute_async_v3"} <= used  # ... and the runtime's
    missing = sorted(used - names)
    print(f"TensorRT {version}: {len(used)} names used, all present" if not missing else "")
    assert not missing, f"not in the TensorRT {version} bindings: {missing}"


def test_the_check_catches_removed_apis(api):
    version, names = api
    probe = "config.set_flag(trt.BuilderFlag.FP16)\nconfig.int8_calibrator = c\ncontext.execute_async_v2(b, s)"
    missing = used_names(probe) - names
    assert "execute_async_v2" in missing  # removed in 10.0
    if version == "11.x":
        assert {"FP16", "int8_calibrator"} <= missing  # weak typing and calibrators removed in 11.0
    else:
        assert not {"FP16", "int8_calibrator"} & missing  # still in 10.x


@pytest.mark.trt
@pytest.mark.gpu
def test_build_plan_from_an_exported_onnx(tmp_path):
    """Where TensorRT and a GPU exist: a strongly typed plan from the tiny fp16 ONNX, with its metadata."""
    import tensorrt as trt

    from helpers import tiny_config
    from export.tensorrt import build_plan
    from export.to_onnx import export_generator
    from gaugan_sdk.contract import Shapes
    from helpers import realistic_generator

    cfg = tiny_config("cityscapes")
    meta = export_generator(realistic_generator(cfg), tmp_path / "g.onnx", Shapes(batch=(1, 2, 4)))
    plan_meta = build_plan(tmp_path / "g.onnx", tmp_path / "g.plan", meta, workspace_gb=1,
                           timing_cache=tmp_path / "timing.cache")
    assert plan_meta.format == "tensorrt" and plan_meta.tensorrt["version"] == trt.__version__
    assert (tmp_path / "timing.cache").stat().st_size > 0
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine((tmp_path / "g.plan").read_bytes())
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert names == ["label", "instance", "image"]


def test_a_plan_from_another_machine_names_both_and_the_rebuild_command():
    from gaugan_sdk.backends.tensorrt import plan_mismatch

    built = {"version": "10.16.1", "gpu": "NVIDIA A100", "compute_capability": "8.0"}
    here = {"version": "11.4.0", "gpu": "NVIDIA H100", "compute_capability": "9.0"}
    message = plan_mismatch(built, here, "engines/city.plan", {"files": {"checkpoint": "ckpt/city.pt"}})
    assert "TensorRT 10.16.1 for NVIDIA A100 (compute capability 8.0)" in message
    assert "TensorRT 11.4.0 and NVIDIA H100 (compute capability 9.0)" in message
    assert "gaugan-export --checkpoint ckpt/city.pt --format trt --output engines/city.plan" in message
    assert plan_mismatch(built, dict(built), "x.plan") is None and plan_mismatch(None, here, "x.plan") is None


def test_without_tensorrt_a_plan_fails_with_the_install_hint(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    from helpers import tiny_config
    from gaugan_sdk import Synthesizer
    from gaugan_sdk.contract import Shapes, generator_io
    from gaugan_sdk.metadata import ArtifactMetadata, write_sidecar

    cfg = tiny_config("ade20k")
    shapes = Shapes(batch=(1, 1, 4)).resolved(cfg)
    meta = ArtifactMetadata.for_graph("generator", "tensorrt", "fp16", cfg, generator_io(cfg, shapes), shapes)
    (tmp_path / "m.plan").write_bytes(b"not a plan")
    write_sidecar(tmp_path / "m.plan", meta)
    with pytest.raises(ImportError, match=r"running TensorRT plans needs the 'tensorrt' package: pip install"):
        Synthesizer(tmp_path / "m.plan")
