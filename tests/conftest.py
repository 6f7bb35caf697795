"""Shared fixtures: tiny model configs (small ngf, small SPADE hidden width, 64x128-ish images) keep the CPU
test run fast while exercising the same code paths as the full-size models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
# the label layouts every preset exercises: instance edges (cityscapes), dontcare (ade20k), plain (coco), each
# with the style path where it differs
LAYOUTS = [("cityscapes", {}), ("ade20k", {}), ("coco", {}), ("cityscapes", dict(use_vae=True)),
           ("coco", dict(use_vae=True))]


def tiny_config(preset: str = "cityscapes", **overrides):
    from gaugan_sdk.config import GeneratorConfig

    small = {"cityscapes": dict(crop_size=128), "ade20k": dict(crop_size=64), "coco": dict(crop_size=64)}[preset]
    if overrides.get("num_upsampling_layers") == "most":
        small = dict(crop_size=small["crop_size"] * 2)  # 7 up layers need a larger crop for a non-empty grid
    return GeneratorConfig.preset(preset, **{"ngf": 8, "spade_hidden": 16, **small, **overrides})


def random_labels(cfg, batch: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Blocky random label maps (and instance maps when the model uses them) at the config's image size."""
    from gaugan_sdk.procedural import blocky_labels

    rng = np.random.default_rng(seed)
    h, w = cfg.image_size
    labels = blocky_labels(rng, batch, h, w, cfg.num_label_channels)
    if cfg.contain_dontcare_label:
        labels[:, :4, :4] = 255
    instance = None
    if cfg.use_instance:
        instance = labels.astype(np.int32) * 1000 + blocky_labels(rng, batch, h, w, 3, block=16)
    return labels, instance


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One tiny fp32 ONNX per layout, batch 1..4 (opt 2), with its sidecar: {(preset, vae): (generator, path,
    meta)}, exported once for the session (test_export, test_int8, test_contract and test_fast read them; none
    writes beside them)."""
    from export.to_onnx import export_generator
    from gaugan_sdk.contract import Range, Shapes
    from gaugan_sdk.metadata import write_sidecar
    from test_models import realistic_generator

    folder = tmp_path_factory.mktemp("layouts")
    out = {}
    for preset, overrides in LAYOUTS:
        cfg = tiny_config(preset, **overrides)
        generator = realistic_generator(cfg)
        path = folder / f"{preset}{'_vae' if overrides else ''}.onnx"
        meta = export_generator(generator, path, Shapes(Range(1, 2, 4)))
        write_sidecar(path, meta)
        out[(preset, bool(overrides))] = (generator, path, meta)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """`trt` and `gpu` tests skip with the reason where TensorRT or a CUDA GPU is missing."""
    import importlib.util

    no_trt = importlib.util.find_spec("tensorrt") is None
    try:
        import torch

        no_gpu = not torch.cuda.is_available()
    except ImportError:
        no_gpu = True
    for item in items:
        if no_trt and "trt" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="TensorRT is not installed (pip install 'gaugan-sdk[trt]' on a "
                                                    "machine with an NVIDIA GPU)"))
        if no_gpu and "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU on this machine"))
