"""Shared fixtures, built on tests/helpers.py (the helpers' one home): session-wide tiny models and exports that
several test modules read (none writes beside them)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import LAYOUTS, realistic_generator, tiny_config


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Our checkpoint files of two tiny models: city.pt (cityscapes layout, instance edges) and coco.pt (coco
    layout with a style encoder), read by the export tests (none writes beside them)."""
    import torch

    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.models import ConvEncoder

    folder = tmp_path_factory.mktemp("checkpoints")
    city, coco = tiny_config("cityscapes"), tiny_config("coco", use_vae=True)
    save_checkpoint(folder / "city.pt", city, realistic_generator(city))
    torch.manual_seed(0)
    save_checkpoint(folder / "coco.pt", coco, realistic_generator(coco), ConvEncoder(coco).eval())
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """cityscapes (instance edges) and coco + VAE (style encoder) as fp32 ONNX files with their sidecars (batch
    1..4, opt 2) and checkpoints: {name: dict(cfg, generator, encoder, onnx, checkpoint)}, read by the runtime
    tests (none writes beside them)."""
    import torch

    from export.to_onnx import export_encoder, export_generator
    from gaugan_sdk.checkpoint import save_checkpoint
    from gaugan_sdk.contract import Shapes
    from gaugan_sdk.metadata import write_sidecar
    from gaugan_sdk.models import ConvEncoder

    folder = tmp_path_factory.mktemp("artifacts")
    out = {}
    for name, cfg in (("city", tiny_config("cityscapes")), ("coco", tiny_config("coco", use_vae=True))):
        generator = realistic_generator(cfg)
        torch.manual_seed(1)
        encoder = ConvEncoder(cfg).eval() if cfg.use_vae else None
        save_checkpoint(folder / f"{name}.pt", cfg, generator, encoder)
        meta = export_generator(generator, folder / f"{name}.onnx", Shapes(batch=(1, 2, 4)),
                                encoder_file=f"{name}_encoder.onnx" if encoder else None)
        write_sidecar(folder / f"{name}.onnx", meta)
        if encoder is not None:
            write_sidecar(folder / f"{name}_encoder.onnx", export_encoder(encoder, folder / f"{name}_encoder.onnx"))
        out[name] = dict(cfg=cfg, generator=generator, encoder=encoder, onnx=folder / f"{name}.onnx",
                         checkpoint=folder / f"{name}.pt", meta=meta)
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One tiny fp32 ONNX per layout, batch 1..4 (opt 2), with its sidecar: {(preset, vae): (generator, path,
    meta)}, exported once for the session (test_export, test_int8, test_contract and test_fast read them; none
    writes beside them)."""
    from export.to_onnx import export_generator
    from gaugan_sdk.contract import Range, Shapes
    from gaugan_sdk.metadata import write_sidecar

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
