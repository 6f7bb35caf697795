"""The README's Python examples run as written, on an NVlabs-format checkpoint folder made here."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.models import SPADEGenerator

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 4
    folder = tmp_path / "checkpoints" / "cityscapes_pretrained"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(OrderedDict(SPADEGenerator(GeneratorConfig.preset("cityscapes")).state_dict()),
               folder / "latest_net_G.pth")  # what NVlabs writes: a plain state dict
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md block 1", "exec"), namespace)
    assert namespace["rgb"].shape == (256, 512, 3) and namespace["rgb"].dtype.name == "uint8"
    assert namespace["mask_rgb"][0, 0].tolist() == [70, 130, 180]  # sky
    namespace["style"] = torch.rand(1, 3, 256, 512) * 2 - 1
    with torch.no_grad():
        exec(compile(blocks[1], "README.md block 2", "exec"), namespace)
    assert namespace["image"].shape == (1, 3, 256, 512)


def test_readme_synthesizer_example_runs(tmp_path, monkeypatch):
    """The runtime block, on a tiny cityscapes style model exported to engines/city.onnx (+ encoder)."""
    import numpy as np

    from helpers import random_labels, tiny_config
    from export.to_onnx import export_encoder, export_generator
    from gaugan_sdk.metadata import write_sidecar
    from gaugan_sdk.models import ConvEncoder
    from helpers import realistic_generator

    block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[3]
    cfg = tiny_config("cityscapes", use_vae=True)
    (tmp_path / "engines").mkdir()
    generator_meta = export_generator(realistic_generator(cfg), tmp_path / "engines" / "city.onnx",
                                      encoder_file="city_encoder.onnx")
    write_sidecar(tmp_path / "engines" / "city.onnx", generator_meta)
    encoder_meta = export_encoder(ConvEncoder(cfg).eval(), tmp_path / "engines" / "city_encoder.onnx")
    write_sidecar(tmp_path / "engines" / "city_encoder.onnx", encoder_meta)
    labels, instances = random_labels(cfg, batch=3)
    namespace = {"label": labels[0], "inst": instances[0], "labels": labels, "frames": list(labels),
                 "photo": np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)}
    namespace["palette_mask"] = __import__("gaugan_sdk.labels", fromlist=["x"]).get_label_set("cityscapes").colorize(
        labels[0])
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md runtime block", "exec"), namespace)
    assert namespace["img"].shape == (64, 128, 3) and namespace["imgs"].shape == (3, 64, 128, 3)


def test_readme_export_api_example_runs(tmp_path, monkeypatch):
    """The export_checkpoint block, on a tiny cityscapes checkpoint at the path it names."""
    from helpers import tiny_config
    from gaugan_sdk.checkpoint import save_checkpoint
    from helpers import realistic_generator

    block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[2]
    cfg = tiny_config("cityscapes")
    checkpoint = tmp_path / "runs" / "00003-city" / "checkpoints" / "iter_0050000.pt"
    checkpoint.parent.mkdir(parents=True)
    save_checkpoint(checkpoint, cfg, realistic_generator(cfg))
    (tmp_path / "engines").mkdir()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md export block", "exec"), namespace)
    result = namespace["result"]
    assert result.output == Path("engines/city.onnx") and result.output.is_file()
    assert result.verification[0].passed and result.metadata[0].precision == "fp16"
