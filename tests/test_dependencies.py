"""The dependency direction of docs/design.md ("Layers"), enforced.

- The runtime core of gaugan_sdk (everything but `models/` and `checkpoint.py`) imports only the standard
  library, numpy and other core modules at module level: `import gaugan_sdk` works without torch.
- gaugan_sdk never imports `training` or `export`; `training` and `export` never import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_MODULES = ("gaugan_sdk.models", "gaugan_sdk.checkpoint")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module_level_only: bool, module: str | None = None) -> list[str]:
    """Absolute names imported by a file (relative imports resolved), skipping `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                    found.extend(f"{prefix}.{a.name}" if not node.module else prefix for a in node.names)
                else:
                    found.append(node.module)
            if module_level_only:
                if isinstance(node, (ast.If, ast.Try, ast.With)):
                    visit(ast.iter_child_nodes(node))
            else:
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def python_files(package: str) -> list[Path]:
    assert (ROOT / package / "__init__.py").is_file(), f"the package {package} is missing"
    return sorted((ROOT / package).rglob("*.py"))


def is_core(module: str) -> bool:
    return module.startswith("gaugan_sdk") and not module.startswith(TORCH_MODULES)


def test_runtime_core_imports_only_stdlib_numpy_and_core():
    allowed_third_party = {"numpy"}
    offenders = []
    for path in python_files("gaugan_sdk"):
        if not is_core(module_name(path)):
            continue
        for name in imports(path, module_level_only=True):
            top = name.split(".")[0]
            ok = top in sys.stdlib_module_names or top in allowed_third_party or (top == "gaugan_sdk" and is_core(name))
            if not ok:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_packages_keep_their_direction():
    rules = {"gaugan_sdk": ("training", "export"), "training": ("export",), "export": ("training",)}
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for package, forbidden in rules.items() for path in python_files(package)
                 for name in imports(path, module_level_only=False) if name.split(".")[0] in forbidden]
    assert not offenders, offenders


def test_import_gaugan_sdk_works_where_importing_torch_fails():
    script = textwrap.dedent("""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        import gaugan_sdk
        from gaugan_sdk import GeneratorConfig
        from gaugan_sdk.labels import get_label_set, to_semantics
        cfg = GeneratorConfig.preset("cityscapes")
        labels = np.zeros((8, 16), np.uint8)
        assert to_semantics(labels, labels, cfg).shape == (1, 36, 8, 16)
        assert get_label_set("coco").decode(get_label_set("coco").colorize(labels)).shape == (8, 16)
        try:
            import gaugan_sdk.models
        except ImportError as e:
            assert "blocked" in str(e)
        else:
            raise AssertionError("the torch block did not work")
        assert "torch" not in sys.modules
        print("ok", gaugan_sdk.__version__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")


@pytest.mark.parametrize("source, expected", [
    ("import torch", ["torch"]),
    ("from .models import SPADE", ["gaugan_sdk.models"]),
    ("from . import labels", ["gaugan_sdk.labels"]),
    ("def f():\n    import onnxruntime", []),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch", ["typing"]),
])
def test_the_import_scanner_sees_what_it_must(tmp_path, source, expected):
    # The checks above are only as good as this scanner: it must see module-level imports, resolve relative
    # ones and ignore lazy (in-function) and type-checking-only imports.
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert imports(path, module_level_only=True, module="gaugan_sdk.probe") == expected


def test_contract_and_kinds_import_only_the_standard_library():
    """The contract is read by every runtime (TensorRT, ONNX Runtime) and exporter: not even numpy."""
    for name in ("contract", "kinds"):
        path = ROOT / "gaugan_sdk" / f"{name}.py"
        third_party = [m for m in imports(path, module_level_only=False) if m.split(".")[0] not in
                       sys.stdlib_module_names and not m.startswith("gaugan_sdk")]
        assert not third_party, (name, third_party)


def public_names(module: str) -> set[str] | None:
    """A module's `__all__` (None when it has none: then nothing in it is public)."""
    import importlib

    return set(getattr(importlib.import_module(module), "__all__", ())) or None


def test_samples_use_public_names_only():
    """Every name a sample imports from the SDK is in its module's `__all__`, from a module without a private
    (underscore) part: the samples are what users copy."""
    offenders = []
    for path in sorted((ROOT / "samples").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] in (
                    "gaugan_sdk", "export", "training"):
                names = public_names(node.module)
                for alias in node.names:
                    if any(p.startswith("_") for p in node.module.split(".")) or not names or alias.name not in names:
                        offenders.append(f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.relative_to(ROOT)}: import {a.name}" for a in node.names
                              if a.name.split(".")[0] in ("gaugan_sdk", "export", "training")
                              and public_names(a.name) is None]
    assert not offenders, offenders


def module_graph() -> dict[str, set[str]]:
    """Each module of the three packages -> the modules of the three it imports, at any level (a lazy import
    still makes a circle: the two modules cannot be understood, or changed, apart)."""
    modules = {module_name(p): p for package in ("gaugan_sdk", "export", "training") for p in python_files(package)}
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imports(path, module_level_only=False, module=module):
            while name and name not in modules:  # "pkg.mod.Name" -> "pkg.mod"
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def test_no_import_circles():
    """No module reaches itself through its imports (package __init__ files aside: they gather their modules)."""
    graph = {m: {e for e in edges if not (ROOT / e.replace(".", "/") / "__init__.py").is_file()}
             for m, edges in module_graph().items()}
    circles = []

    def walk(module: str, path: list[str]) -> None:
        for nxt in graph[module]:
            if nxt in path:
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in done:
                walk(nxt, path + [nxt])
        done.add(module)

    done: set[str] = set()
    for module in graph:
        if module not in done:
            walk(module, [module])
    assert not circles, sorted(set(circles))
