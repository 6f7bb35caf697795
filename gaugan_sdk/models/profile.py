"""Parameter and multiply-accumulate (MAC) counts, for tests and benchmarks.

MACs are counted per forward call with hooks on Conv2d and Linear (norms, resizes and element-wise ops are
left out, the usual convention; docs/design.md, "The model"). The model runs on the meta device,
so counting a full-size generator allocates nothing and takes well under a second.

    python -m gaugan_sdk.models.profile --preset cityscapes [--use-vae] [--batch 1]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import GeneratorConfig
from ..presets import PRESETS


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class MacReport:
    by_module: dict[str, int]  # qualified module name -> MACs of its calls (Conv2d / Linear leaves)

    @property
    def total(self) -> int:
        return sum(self.by_module.values())

    def total_where(self, predicate: Callable[[str], bool]) -> int:
        return sum(macs for name, macs in self.by_module.items() if predicate(name))

    def by_prefix(self, depth: int = 1) -> dict[str, int]:
        """MACs summed per name prefix of `depth` parts (depth 1: per top-level block)."""
        out: dict[str, int] = {}
        for name, macs in self.by_module.items():
            key = ".".join(name.split(".")[:depth])
            out[key] = out.get(key, 0) + macs
        return out


@torch.no_grad()
def count_macs(model: nn.Module, *args, **kwargs) -> MacReport:
    """Run `model(*args, **kwargs)` once and count the MACs of every Conv2d and Linear call."""
    counts: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs, output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs = output.numel() * (module.in_channels // module.groups) * kh * kw
            else:
                macs = output.numel() * module.in_features
            counts[name] = counts.get(name, 0) + macs
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return MacReport(counts)


def is_mask_branch(name: str) -> bool:
    """The SPADE modulation convs (mlp_shared, mlp_gamma, mlp_beta): they depend on the mask only."""
    return ".mlp_" in name


def generator_macs(cfg: GeneratorConfig, batch: int = 1) -> MacReport:
    """MACs of one generator forward at the config's image size, counted on the meta device."""
    from .generator import SPADEGenerator

    with torch.device("meta"):
        model = SPADEGenerator(cfg).eval()
        semantics = torch.zeros(batch, cfg.semantic_nc, *cfg.image_size)
        z = torch.zeros(batch, cfg.z_dim) if cfg.use_vae else None
    return count_macs(model, semantics, z)


def main(argv: list[str] | None = None) -> None:
    from .encoder import ConvEncoder
    from .generator import SPADEGenerator

    parser = argparse.ArgumentParser(description="Parameters and MACs of a SPADE generator preset.")
    parser.add_argument("--preset", default="cityscapes", choices=sorted(PRESETS))
    parser.add_argument("--use-vae", action="store_true")
    parser.add_argument("--num-upsampling-layers", choices=["normal", "more", "most"])
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    overrides = {"use_vae": args.use_vae}
    if args.num_upsampling_layers:
        overrides["num_upsampling_layers"] = args.num_upsampling_layers
    cfg = GeneratorConfig.preset(args.preset, **overrides)
    with torch.device("meta"):
        params = count_parameters(SPADEGenerator(cfg))
        encoder_params = count_parameters(ConvEncoder(cfg)) if cfg.use_vae else 0
    report = generator_macs(cfg, args.batch)
    mask = report.total_where(is_mask_branch)
    h, w = cfg.image_size
    print(f"preset {args.preset} ({cfg.norm_G}, {cfg.num_upsampling_layers}, use_vae={cfg.use_vae}), "
          f"{h}x{w}, batch {args.batch}")
    print(f"generator parameters: {params:,}" + (f"   encoder parameters: {encoder_params:,}" if cfg.use_vae else ""))
    print(f"generator GMAC: {report.total / 1e9:.2f}   mask branch (SPADE mlp convs): {mask / 1e9:.2f} "
          f"({100 * mask / report.total:.1f}%)")
    print(f"{'block':<12}{'GMAC':>9}{'mask branch':>13}")
    for block, macs in report.by_prefix(1).items():
        block_mask = report.total_where(lambda n, b=block: n.split(".")[0] == b and is_mask_branch(n))
        print(f"{block:<12}{macs / 1e9:>9.2f}{block_mask / 1e9:>13.2f}")


if __name__ == "__main__":
    main()
