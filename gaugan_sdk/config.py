"""GeneratorConfig: everything that fixes a SPADE generator's architecture and input layout.

Torch-free on purpose: the runtime reads it from artifact metadata, `labels.to_semantics` reads the input layout
from it, and training/export build models from it. `gaugan_sdk.models` re-exports it.

The geometry follows the reference exactly: the latent grid (sh, sw) is fixed at construction from
(crop_size, aspect_ratio, num_upsampling_layers), and the output is (sh * 2**n, sw * 2**n).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .presets import preset_named

__all__ = ["GeneratorConfig", "parse_overrides", "UPSAMPLING_LAYERS", "PARAM_FREE_NORMS"]

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}
PARAM_FREE_NORMS = ("syncbatch", "batch", "instance")


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a SPADE generator and its style encoder.

    Field names follow the NVlabs options where one exists (label_nc, crop_size, ngf, z_dim, use_vae, ...);
    `norm_G="spectralspadesyncbatch3x3"` is split into `spectral_norm`, `param_free_norm` and `spade_kernel_size`.
    """

    label_nc: int
    contain_dontcare_label: bool = False  # one extra channel; file value 255 maps to index label_nc
    use_instance: bool = False  # one extra channel of instance edges (last)
    crop_size: int = 256
    aspect_ratio: float = 1.0  # width / height
    num_upsampling_layers: str = "normal"  # normal | more | most
    ngf: int = 64
    z_dim: int = 256
    use_vae: bool = False  # z -> Linear stem and a style encoder, instead of the mask -> conv stem
    param_free_norm: str = "syncbatch"  # syncbatch | batch | instance
    spectral_norm: bool = True  # on the residual-block convs (generator) and on the encoder convs
    spade_kernel_size: int = 3
    spade_hidden: int = 128  # hard-coded 128 in the reference; smaller values only for tiny test models
    label_set: str | None = None  # palette/class names: "cityscapes" | "ade20k" | "coco" | "procedural" | None

    # ------------------------------------------------------------------ construction
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GeneratorConfig:
        """A dataset preset's model (`gaugan_sdk.presets`) with keyword overrides, e.g.
        ``GeneratorConfig.preset("cityscapes", use_vae=True)``."""
        model = preset_named(name).model
        _check_field_names(overrides, f"override for preset {name!r}")
        return cls(**{**model, **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of `to_dict`; unknown keys are an error (they usually mean a newer SDK wrote the file)."""
        if not isinstance(data, dict):
            raise TypeError(f"a GeneratorConfig is read from a dict, got {type(data).__name__}")
        _check_field_names(data, "GeneratorConfig key")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GeneratorConfig:
        _check_field_names(changes, "GeneratorConfig field")
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        _check_int(self.label_nc, "label_nc", minimum=1)
        _check_int(self.crop_size, "crop_size", minimum=1)
        _check_int(self.ngf, "ngf", minimum=2)
        _check_int(self.z_dim, "z_dim", minimum=1)
        _check_int(self.spade_hidden, "spade_hidden", minimum=1)
        _check_int(self.spade_kernel_size, "spade_kernel_size", minimum=1)
        if self.spade_kernel_size % 2 == 0:
            raise ValueError(f"spade_kernel_size={self.spade_kernel_size} must be odd (padding keeps the size)")
        if self.num_upsampling_layers not in UPSAMPLING_LAYERS:
            raise ValueError(f"num_upsampling_layers={self.num_upsampling_layers!r}; accepted: normal, more, most")
        if self.param_free_norm not in PARAM_FREE_NORMS:
            raise ValueError(f"param_free_norm={self.param_free_norm!r}; accepted: {', '.join(PARAM_FREE_NORMS)}")
        if isinstance(self.aspect_ratio, bool) or not isinstance(self.aspect_ratio, (int, float)) \
                or not self.aspect_ratio > 0:
            raise ValueError(f"aspect_ratio={self.aspect_ratio!r} must be a number > 0 (width / height)")
        for name in ("contain_dontcare_label", "use_instance", "use_vae", "spectral_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.num_upsampling_layers == "most" and self.ngf % 2:
            raise ValueError(f"ngf={self.ngf} must be even with num_upsampling_layers='most' (last block has ngf/2)")
        if min(self.latent_size) < 1:
            min_sw = next(sw for sw in range(1, 1 << 20) if round(sw / self.aspect_ratio) >= 1)
            raise ValueError(
                f"crop_size={self.crop_size} with aspect_ratio={self.aspect_ratio} and "
                f"num_upsampling_layers={self.num_upsampling_layers!r} gives an empty latent grid; crop_size must "
                f"be >= {min_sw * self.stride}")

    # ------------------------------------------------------------------ derived quantities
    @property
    def num_up_layers(self) -> int:
        return UPSAMPLING_LAYERS[self.num_upsampling_layers]

    @property
    def stride(self) -> int:
        """Output pixels per latent cell: label maps for a fully convolutional run are multiples of this."""
        return 2 ** self.num_up_layers

    @property
    def latent_size(self) -> tuple[int, int]:
        """(sh, sw) of the stem, as the reference computes it: sw = crop // 2**n, sh = round(sw / aspect)."""
        sw = self.crop_size // self.stride
        return round(sw / self.aspect_ratio), sw

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the generated image."""
        sh, sw = self.latent_size
        return sh * self.stride, sw * self.stride

    @property
    def num_label_channels(self) -> int:
        """One-hot channels: label_nc, plus one for dontcare (ids 0..label_nc are then valid)."""
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        """Channels of the generator input: one-hot labels (+ dontcare) (+ instance edges)."""
        return self.num_label_channels + int(self.use_instance)

    @property
    def norm_G(self) -> str:
        """The equivalent NVlabs `--norm_G` option string."""
        k = self.spade_kernel_size
        return f"{'spectral' if self.spectral_norm else ''}spade{self.param_free_norm}{k}x{k}"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Command-line "KEY=VALUE" strings -> typed GeneratorConfig overrides ("use_vae=true", "ngf=32")."""
    defaults = GeneratorConfig(label_nc=1)
    names = sorted(f.name for f in dataclasses.fields(GeneratorConfig))
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(names)}")
        default = getattr(defaults, key)
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            elif isinstance(default, (int, float)):
                out[key] = type(default)(value)
            else:
                out[key] = None if value.lower() == "none" else value
        except ValueError:
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default), "a string")
            raise ValueError(f"--set {item!r}: {key} takes {kind}") from None
    return out


def _check_field_names(data: dict[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(GeneratorConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(known))}")


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
