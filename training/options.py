"""Training options: one dataclass and the command line.

Every option has the NVlabs reference default (docs/design.md, "Training") unless the dataset's preset changes it
(`gaugan_sdk.presets`: its training defaults, its model, its files' layout); every preset value can be
overridden on the command line. Model architecture options (ngf, use_vae, crop_size, ...) live in
`GeneratorConfig` and are set with `--set name=value`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gaugan_sdk.config import GeneratorConfig, parse_overrides
from gaugan_sdk.presets import PRESETS, preset_named

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "scale_shortside",
                    "scale_shortside_and_crop", "fixed", "none")

@dataclass
class TrainOptions:
    # data
    dataset: str = "procedural"
    dataroot: str | None = None
    label_dir: str | None = None  # custom layout
    image_dir: str | None = None
    instance_dir: str | None = None
    phase: str = "train"
    preprocess: str | None = None  # None: the dataset's default
    load_size: int | None = None
    no_flip: bool = False
    max_samples: int | None = None
    skip_bad: bool = False
    check_data: bool = False  # decode every file at start and check the label ids (the header scan always runs)
    procedural_scenes: int = 2000  # size of the procedural dataset (scenes are generated from their index)
    num_workers: int = 0
    # model (GeneratorConfig fields, applied to the dataset's preset)
    model: dict[str, Any] = field(default_factory=dict)
    ndf: int = 64
    n_layers_D: int = 4
    num_D: int = 2
    # losses
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_kld: float = 0.05
    no_ganFeat_loss: bool = False
    vgg_weights: str | None = None  # torchvision-format VGG19 state dict; without it the VGG loss is off
    # optimization
    batch_size: int | None = None
    lr: float = 2e-4
    beta1: float | None = None  # None: 0.0 with TTUR, 0.5 without (the reference switch)
    beta2: float | None = None  # None: 0.9 with TTUR, 0.999 without
    no_TTUR: bool = False
    niter: int = 50  # epochs at constant learning rate
    niter_decay: int = 0  # epochs of linear decay to 0 after that
    max_iters: int | None = None
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # runs
    outdir: str = "runs"
    name: str | None = None
    resume: str | None = None  # a run directory or a checkpoint file
    checkpoint_every: int = 1000
    log_every: int = 10
    image_every: int = 500
    eval_every: int = 0  # iterations between metric evaluations (0: at the end only)
    eval_samples: int = 32
    inception_weights: str | None = None  # FID Inception weights (pytorch-fid's pt_inception-2015-12-05 state dict)
    seg_model: str | None = None  # TorchScript segmentation model for mIoU (real datasets)

    # ------------------------------------------------------------------ resolution
    def resolved(self) -> TrainOptions:
        """A copy with the dataset preset's defaults filled in and every value checked."""
        if self.dataset not in PRESETS:
            raise ValueError(f"dataset={self.dataset!r}; accepted: {', '.join(PRESETS)}")
        preset = preset_named(self.dataset)
        out = dataclasses.replace(self, model=dict(self.model))
        for key, value in preset.training.items():
            if getattr(out, key) is None:
                setattr(out, key, value)
        if out.beta1 is None:
            out.beta1 = 0.5 if out.no_TTUR else 0.0
        if out.beta2 is None:
            out.beta2 = 0.999 if out.no_TTUR else 0.9
        if "use_instance" not in {**preset.model, **out.model} and preset.layout is not None:
            # instance edges where the dataset has instance maps (the reference crashes without them instead)
            instances = preset.layout.instances
            out.model["use_instance"] = instances is not None and instances.path(out.to_dict()) is not None
        out._check()
        out.generator_config()  # raises on a bad --set
        return out

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig.preset(self.dataset, **self.model)

    @property
    def lr_G(self) -> float:
        return self.lr if self.no_TTUR else self.lr / 2

    @property
    def lr_D(self) -> float:
        return self.lr if self.no_TTUR else self.lr * 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)} (written by a newer gaugan-sdk?)")
        return cls(**data)

    def _check(self) -> None:
        if self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess={self.preprocess!r}; accepted: {', '.join(PREPROCESS_MODES)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}; accepted: fp32, bf16")
        layout = preset_named(self.dataset).layout
        missing = [name for name in (layout.required if layout else ()) if not getattr(self, name)]
        if missing:
            flags = " and ".join(f"--{name.replace('_', '-')}" for name in missing)
            raise ValueError(f"dataset={self.dataset} needs {flags} ({preset_named(self.dataset).description})")
        for name in ("batch_size", "load_size", "ndf", "n_layers_D", "num_D", "procedural_scenes",
                     "checkpoint_every", "log_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("niter_decay", "image_every", "eval_every", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if self.niter + self.niter_decay < 1:
            raise ValueError(f"niter + niter_decay = {self.niter + self.niter_decay}; at least one epoch")
        for name in ("max_iters", "max_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be > 0")


# ---------------------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a SPADE/GauGAN generator (the NVlabs recipe). Single GPU: python -m training.train "
                    "...; several GPUs: torchrun --nproc-per-node N -m training.train ...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = TrainOptions()
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=d.dataset, choices=list(PRESETS),
                      help="; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))
    data.add_argument("--dataroot", help="cityscapes / ade20k / coco: the folder of the standard layout")
    data.add_argument("--label-dir", help="custom: label-id PNGs")
    data.add_argument("--image-dir", help="custom: images, paired with labels by file stem")
    data.add_argument("--instance-dir", help="custom: instance-id PNGs (turns instance edges on)")
    data.add_argument("--phase", default=d.phase, help="split: train or val")
    data.add_argument("--preprocess", choices=PREPROCESS_MODES, help="default: the dataset's")
    data.add_argument("--load-size", type=int, help="default: the dataset's")
    data.add_argument("--no-flip", action="store_true")
    data.add_argument("--max-samples", type=int, help="use only the first N samples (quick runs)")
    data.add_argument("--skip-bad", action="store_true", help="warn about and skip unreadable / bad files")
    data.add_argument("--check-data", action="store_true",
                      help="at start, decode every label map, image and instance map and check the label ids "
                           "(headers, pairing, sizes and truncated files are always checked)")
    data.add_argument("--procedural-scenes", type=int, default=d.procedural_scenes)
    data.add_argument("--num-workers", type=int, default=d.num_workers)
    model = p.add_argument_group("model")
    model.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="a GeneratorConfig field, e.g. --set ngf=32 --set crop_size=128")
    model.add_argument("--use-vae", action="store_true", help="train the style encoder (KL term)")
    model.add_argument("--ndf", type=int, default=d.ndf)
    model.add_argument("--n-layers-D", type=int, default=d.n_layers_D)
    model.add_argument("--num-D", type=int, default=d.num_D)
    loss = p.add_argument_group("losses")
    loss.add_argument("--lambda-feat", type=float, default=d.lambda_feat)
    loss.add_argument("--lambda-vgg", type=float, default=d.lambda_vgg)
    loss.add_argument("--lambda-kld", type=float, default=d.lambda_kld)
    loss.add_argument("--no-ganFeat-loss", action="store_true")
    loss.add_argument("--vgg-weights", help="VGG19 state dict in torchvision's format (vgg19-dcbb9e9d.pth)")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--batch-size", type=int, help="per process; default: the dataset's")
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--beta1", type=float)
    opt.add_argument("--beta2", type=float)
    opt.add_argument("--no-TTUR", action="store_true")
    opt.add_argument("--niter", type=int, default=d.niter)
    opt.add_argument("--niter-decay", type=int, default=d.niter_decay)
    opt.add_argument("--max-iters", type=int, help="stop after this many iterations")
    opt.add_argument("--precision", default=d.precision, choices=("fp32", "bf16"))
    opt.add_argument("--channels-last", action="store_true")
    opt.add_argument("--seed", type=int, default=d.seed)
    opt.add_argument("--device", default=d.device)
    run = p.add_argument_group("run")
    run.add_argument("--outdir", default=d.outdir)
    run.add_argument("--name", help="run name (default: the dataset)")
    run.add_argument("--resume", help="a run directory or checkpoint to continue from")
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    run.add_argument("--log-every", type=int, default=d.log_every)
    run.add_argument("--image-every", type=int, default=d.image_every)
    run.add_argument("--eval-every", type=int, default=d.eval_every)
    run.add_argument("--eval-samples", type=int, default=d.eval_samples)
    run.add_argument("--inception-weights",
                     help="FID: pytorch-fid's pt_inception-2015-12-05-6726825d.pth (a state dict; nothing is "
                          "downloaded). FID is comparable with papers from 2048 --eval-samples")
    run.add_argument("--seg-model", help="TorchScript segmentation model (images -> class logits) for mIoU")
    run.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    return p


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions) if hasattr(args, f.name)}
    values["model"] = parse_overrides(args.set)
    if args.use_vae:
        values["model"]["use_vae"] = True
    return TrainOptions(**values).resolved()
