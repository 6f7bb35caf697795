"""The one checkpoint format, and the importer for released NVlabs GauGAN checkpoints.

Our format is a single `torch.save` file holding only JSON-able data and tensors, so it always loads with
`torch.load(weights_only=True)` (no pickled code):

    {"format": "gaugan-sdk.checkpoint", "version": 1, "sdk_version": "...",
     "config": GeneratorConfig.to_dict(),          # the architecture: no separate options file needed
     "generator": state dict, "encoder": state dict or None,
     "training": None or what the trainer needs to resume (ignored by export and runtime)}

NVlabs checkpoints are folders `<name>/<epoch>_net_G.pth` (+ `<epoch>_net_E.pth` for VAE models) of plain
state dicts; the architecture is not stored there, so a preset (and overrides) must say which model it is.
Both load through `load_checkpoint`, which checks every key and shape against the config before building.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from ._io import atomic_write, sha256_file
from .config import GeneratorConfig
from .presets import PRESETS
from .models import ConvEncoder, SPADEGenerator

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "import_nvlabs", "check_state_dicts"]

FORMAT = "gaugan-sdk.checkpoint"
VERSION = 1
StateDict = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    config: GeneratorConfig
    generator: StateDict
    encoder: StateDict | None = None
    training: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)  # kind ("gaugan-sdk" | "nvlabs"), files, sha256

    def build_generator(self, device: str | torch.device = "cpu") -> SPADEGenerator:
        """The generator with these weights (strict load), in eval mode."""
        return _build(SPADEGenerator, self.config, self.generator, device)

    def build_encoder(self, device: str | torch.device = "cpu") -> ConvEncoder:
        if self.encoder is None:
            raise ValueError("this checkpoint has no style encoder (use_vae=False)")
        return _build(ConvEncoder, self.config, self.encoder, device)

    def save(self, path: str | os.PathLike) -> Path:
        return save_checkpoint(path, self.config, self.generator, self.encoder, training=self.training)


def save_checkpoint(path: str | os.PathLike, config: GeneratorConfig, generator: nn.Module | StateDict,
                    encoder: nn.Module | StateDict | None = None, *,
                    training: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (a crash mid-write leaves the previous file intact)."""
    ckpt = Checkpoint(config, _cpu_state(generator), None if encoder is None else _cpu_state(encoder))
    check_state_dicts(ckpt)  # never write a file that would not load
    _check_plain_data(training, "training")
    payload = {
        "format": FORMAT, "version": VERSION, "sdk_version": __version__, "config": config.to_dict(),
        "generator": ckpt.generator, "encoder": ckpt.encoder, "training": training,
    }
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, config: GeneratorConfig | str | None = None,
                    **overrides: Any) -> Checkpoint:
    """Load one of our checkpoints, or import an NVlabs one (then `config` is a preset name or a config).

    For our checkpoints the stored config is used; overrides are not allowed there (they would not match the
    weights), except that a preset/config may be given and must then equal the stored one.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        return import_nvlabs(path, config, **overrides)
    data = _torch_load(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return _from_payload(data, path, config, overrides)
    g_path = _nvlabs_generator_file(path, "latest")
    return _import_nvlabs(g_path, _resolve_config(config, overrides, path), _as_state_dict(data, path))


def import_nvlabs(path: str | os.PathLike, config: GeneratorConfig | str | None, *, epoch: str = "latest",
                  **overrides: Any) -> Checkpoint:
    """Import an NVlabs/SPADE checkpoint: a folder holding `<epoch>_net_G.pth`, or that file itself.

    `config` is a preset name ("cityscapes", "ade20k", "coco") or a GeneratorConfig; `overrides` adjust a
    preset (e.g. use_vae=True). With use_vae the encoder `<epoch>_net_E.pth` must lie beside the generator.
    """
    g_path = _nvlabs_generator_file(Path(path), epoch)
    return _import_nvlabs(g_path, _resolve_config(config, overrides, path), _state_dict_file(g_path))


def _import_nvlabs(g_path: Path, cfg: GeneratorConfig, generator: StateDict) -> Checkpoint:
    files = {"generator": str(g_path)}
    sha = {"generator": sha256_file(g_path)}
    encoder = None
    if cfg.use_vae:
        e_path = g_path.with_name(g_path.name[:-len("_net_G.pth")] + "_net_E.pth")
        if not e_path.is_file():
            raise FileNotFoundError(f"the config has use_vae=True, so the style encoder {e_path} is needed beside "
                                    f"{g_path.name}, but it does not exist")
        encoder = _strip_module_prefix(_state_dict_file(e_path))
        files["encoder"], sha["encoder"] = str(e_path), sha256_file(e_path)
    ckpt = Checkpoint(cfg, _strip_module_prefix(generator), encoder,
                      source={"kind": "nvlabs", "files": files, "sha256": sha})
    check_state_dicts(ckpt)
    return ckpt


def check_state_dicts(ckpt: Checkpoint) -> None:
    """Compare every key and shape with the config's model; raise ValueError with a diagnosis if they differ."""
    if ckpt.config.use_vae != (ckpt.encoder is not None):
        raise ValueError(f"config.use_vae is {ckpt.config.use_vae} but the checkpoint "
                         f"{'has no' if ckpt.encoder is None else 'has a'} style encoder")
    problems = _state_dict_problems(ckpt.generator, _expected_shapes(SPADEGenerator, ckpt.config))
    if problems:
        raise ValueError(f"the generator weights do not fit the config: {problems}.\n"
                         f"{_describe_mismatch(ckpt.generator, ckpt.config)}")
    if ckpt.encoder is not None:
        problems = _state_dict_problems(ckpt.encoder, _expected_shapes(ConvEncoder, ckpt.config))
        if problems:
            raise ValueError(f"the encoder weights do not fit the config: {problems}")


# ------------------------------------------------------------------------------------------------ internals
def _build(cls: type[nn.Module], cfg: GeneratorConfig, state: StateDict, device: str | torch.device) -> Any:
    # Built on the meta device and filled by assignment: no random init of ~100M parameters just to overwrite
    # them. The module shares tensor memory with the checkpoint's state dict.
    with torch.device("meta"):
        module = cls(cfg)
    module.load_state_dict(state, strict=True, assign=True)
    return module.to(device).eval()


def _expected_shapes(cls: type[nn.Module], cfg: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {key: tuple(t.shape) for key, t in cls(cfg).state_dict().items()}


def _state_dict_problems(state: StateDict, expected: dict[str, tuple[int, ...]]) -> str:
    got = {key: tuple(t.shape) for key, t in state.items()}
    # Old spectral-norm form: X.weight next to X.weight_orig stands in for X.weight_v (SNConv2d converts it).
    for key_v in [k for k in expected if k.endswith(".weight_v") and k not in got]:
        key_w = key_v[:-2]
        if key_w in got and key_w + "_orig" in got:
            del got[key_w]
            got[key_v] = expected[key_v]
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k} {got[k]} in the file, {expected[k]} in the model" for k in expected
             if k in got and got[k] != expected[k]]
    parts = []
    if wrong:
        parts.append(f"{len(wrong)} shape mismatch(es): {_few(wrong)}")
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
    return "; ".join(parts)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _describe_generator(state: StateDict) -> dict[str, Any]:
    """What a generator state dict says about its architecture (normal and more have identical weights)."""
    found: dict[str, Any] = {}
    fc = state.get("fc.weight")
    if fc is not None and fc.dim() == 4:
        found.update(use_vae=False, semantic_nc=fc.shape[1])
    elif fc is not None and fc.dim() == 2:
        found.update(use_vae=True, z_dim=fc.shape[1])
        mlp = state.get("head_0.norm_0.mlp_shared.0.weight")
        if mlp is not None:
            found["semantic_nc"] = mlp.shape[1]
    img = state.get("conv_img.weight")
    most = any(k.startswith("up_4.") for k in state)
    if img is not None:
        found["ngf"] = img.shape[1] * (2 if most else 1)
    found["num_upsampling_layers"] = "most" if most else "normal or more"
    found["spectral_norm"] = any(k.endswith(".weight_orig") for k in state)
    found["param_free_norm"] = "batch or syncbatch" if any(k.endswith("running_mean") for k in state) \
        else "instance"
    return found


def _describe_mismatch(state: StateDict, cfg: GeneratorConfig) -> str:
    found = _describe_generator(state)
    looks = ", ".join(f"{k}={v}" for k, v in found.items())
    text = f"The file looks like a generator with {looks}; the config has semantic_nc={cfg.semantic_nc}, " \
           f"ngf={cfg.ngf}, use_vae={cfg.use_vae}."
    nc = found.get("semantic_nc")
    fits = [name for name in PRESETS if GeneratorConfig.preset(name).semantic_nc == nc]
    if fits:
        text += f" Presets with semantic_nc={nc}: {', '.join(fits)}."
    if found.get("use_vae") is not None and found["use_vae"] != cfg.use_vae:
        text += f" Pass use_vae={found['use_vae']} (the released NVlabs models have use_vae=False)."
    return text


def _resolve_config(config: GeneratorConfig | str | None, overrides: dict[str, Any], path) -> GeneratorConfig:
    if config is None:
        raise ValueError(f"{path} is not a gaugan-sdk checkpoint, so it is read as an NVlabs one, which does not "
                         f"store its architecture: pass a preset ({', '.join(PRESETS)}) or a "
                         f"GeneratorConfig")
    if isinstance(config, str):
        return GeneratorConfig.preset(config, **overrides)
    if not isinstance(config, GeneratorConfig):
        raise TypeError(f"config must be a preset name or a GeneratorConfig, got {type(config).__name__}")
    return config.replace(**overrides) if overrides else config


def _nvlabs_generator_file(path: Path, epoch: str) -> Path:
    if path.is_dir():
        candidate = path / f"{epoch}_net_G.pth"
        if not candidate.is_file():
            found = sorted(p.name for p in path.glob("*_net_G.pth"))
            raise FileNotFoundError(f"no {candidate.name} in {path}; generator files there: "
                                    f"{', '.join(found) or 'none'}")
        return candidate
    if not path.name.endswith("_net_G.pth"):
        raise ValueError(f"{path} is neither a gaugan-sdk checkpoint nor an NVlabs generator file "
                         f"(<epoch>_net_G.pth, or the folder holding it)")
    return path


_ZIP = b"PK\x03\x04"  # torch.save since PyTorch 1.6
_LEGACY = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # torch.save before 1.6 (the released NVlabs files)
_ACCEPTED = ("accepted: a gaugan-sdk checkpoint (gaugan_sdk.checkpoint.save_checkpoint), an NVlabs <epoch>_net_G.pth "
             "(a state dict torch.save wrote), or the folder holding it")


def _torch_load(path: Path) -> Any:
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY))
    if not (head.startswith(_ZIP) or head == _LEGACY):  # torch's own error would advise loading it unsafely
        raise ValueError(f"{path} is not a gaugan-sdk or NVlabs checkpoint: it is not a file torch.save wrote "
                         f"({_looks_like(head)}); {_ACCEPTED}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch.save of objects: its message advises weights_only=False
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f" ({found.group(1)}{': a whole pickled model' if 'torch.nn.' in found.group(1) else ''})" \
            if found else ""
        raise ValueError(f"{path} is not a gaugan-sdk or NVlabs checkpoint: it holds pickled Python objects{what} "
                         f"besides tensors and plain data, and gaugan-sdk loads checkpoints with weights_only=True, "
                         f"never running pickled code. Save the model's state_dict() or a gaugan-sdk checkpoint; "
                         f"{_ACCEPTED}") from None
    except Exception as e:  # truncated zip, ...
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupted?): {e}") from e


def _looks_like(head: bytes) -> str:
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a numpy .npy file"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]"):
        return "a Python pickle"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text"
    return f"its first bytes are {head[:8]!r}"


def _state_dict_file(path: Path) -> StateDict:
    return _as_state_dict(_torch_load(path), path)


def _as_state_dict(data: Any, path: Path) -> StateDict:
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path} does not hold a plain state dict (name -> tensor), as NVlabs *_net_G.pth files do")
    return dict(data)


def _strip_module_prefix(state: StateDict) -> StateDict:
    """State dicts saved from a (Distributed)DataParallel wrapper carry a "module." prefix on every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _from_payload(data: dict[str, Any], path: Path, config, overrides: dict[str, Any]) -> Checkpoint:
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{path} has checkpoint format version {version!r}; this gaugan-sdk {__version__} "
                         f"reads versions up to {VERSION}: upgrade gaugan-sdk")
    missing = [key for key in ("config", "generator") if key not in data]
    if missing:
        raise ValueError(f"{path} is a malformed gaugan-sdk checkpoint: no {' or '.join(missing)} entry")
    for key, optional in (("config", False), ("generator", False), ("encoder", True), ("training", True)):
        value = data.get(key)
        state = key in ("generator", "encoder")
        ok = (optional and value is None) or (isinstance(value, dict) and (not state or all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())))
        if not ok:
            accepted = ("a state dict (name -> tensor)" if state else "a dict") + (" or None" if optional else "")
            what = "a dict holding other things than tensors" if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"{path} is a malformed gaugan-sdk checkpoint: its {key!r} entry is {what}; "
                             f"accepted: {accepted}")
    try:
        cfg = GeneratorConfig.from_dict(data["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} is a malformed gaugan-sdk checkpoint: its config does not load ({e})") from None
    if overrides:
        raise ValueError(f"{path} is a gaugan-sdk checkpoint, whose config is stored in the file; overrides "
                         f"({', '.join(overrides)}) cannot apply to its weights")
    if config is not None:
        asked = _resolve_config(config, {}, path)
        if asked != cfg:
            diff = {k: (v, getattr(cfg, k)) for k, v in asked.to_dict().items() if getattr(cfg, k) != v}
            detail = ", ".join(f"{k}: asked {a!r}, stored {s!r}" for k, (a, s) in diff.items())
            raise ValueError(f"{path} stores a different config than the one asked for ({detail})")
    ckpt = Checkpoint(cfg, data["generator"], data.get("encoder"), data.get("training"),
                      source={"kind": "gaugan-sdk", "files": {"checkpoint": str(path)},
                              "sha256": {"checkpoint": sha256_file(path)}})
    check_state_dicts(ckpt)
    return ckpt


def _cpu_state(module_or_state: nn.Module | StateDict) -> StateDict:
    if isinstance(module_or_state, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        module_or_state = module_or_state.module
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {key: t.detach().cpu() for key, t in state.items()}


_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size)


def _check_plain_data(value: Any, where: str) -> None:
    """Only what torch.load(weights_only=True) reads back: containers of plain values and tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; checkpoints take str/int keys")
            _check_plain_data(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain_data(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} is a {type(value).__name__}; a checkpoint holds only dicts, lists, tuples, str, "
                        f"int, float, bool, None and tensors (it must load with weights_only=True): convert it, "
                        f"e.g. a numpy array with torch.from_numpy")
