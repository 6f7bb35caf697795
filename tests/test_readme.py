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
    assert len(blocks) == 2
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
