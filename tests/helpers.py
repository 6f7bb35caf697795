"""The one home of the tests' helpers: tiny model configs, random label maps, generators with realistic
batch-norm statistics, output guards and the samples' loader. Tiny models (small ngf, small SPADE hidden width,
64x128-ish images) keep the CPU run fast while exercising the same code paths as the full-size models.
Fixtures live in conftest.py and build on these."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
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


def semantics_for(cfg, batch: int = 2, seed: int = 0):
    """The one-hot generator input (torch) of `random_labels`."""
    import torch

    from gaugan_sdk.labels import to_semantics

    labels, instance = random_labels(cfg, batch, seed)
    return torch.from_numpy(to_semantics(labels, instance, cfg))


def realistic_generator(cfg, seed: int = 0):
    """A generator in eval mode whose batch-norm running statistics come from a train-mode pass, as after
    training. (With default statistics the activations grow block after block and tanh saturates to +-1,
    which would make every output comparison vacuous.) The spectral-norm vectors move as in training too."""
    import torch

    from gaugan_sdk.models import SPADEGenerator
    from gaugan_sdk.models.batchnorm import recalibrate_batchnorm

    torch.manual_seed(seed)
    model = SPADEGenerator(cfg)
    z = torch.randn(4, cfg.z_dim) if cfg.use_vae else None
    recalibrate_batchnorm(model, [(semantics_for(cfg, batch=4, seed=seed + 100), z)])
    return model.eval()


def assert_informative(image) -> None:
    """Guard against vacuous comparisons: most pixels away from tanh saturation, many distinct values."""
    unsaturated = (image.abs() < 0.99).float().mean().item()
    assert unsaturated > 0.5 and image.unique().numel() > 100, f"saturated output ({unsaturated:.0%} unsaturated)"


def old_form(state: dict) -> dict:
    """A PyTorch 1.0-era spectral-norm state dict: weight = weight_orig / sigma kept, weight_v dropped."""
    import reference_spade as ref

    old = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            continue
        old[key] = value
        if key.endswith(".weight_orig"):
            base = key[: -len("_orig")]
            old[base] = ref.sn_weight(state, base)
    return old


def load_sample(name: str, path: Path):
    """A sample script (not a package module) imported from its path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
