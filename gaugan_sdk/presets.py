"""Dataset presets, one registered record each: the model it trains (GeneratorConfig fields, its label set among
them), where its files lie on disk (a `Layout`, which training/datasets.py reads), and the reference's training
defaults (its dataset's `modify_commandline_options`).

    python -m training.train --dataset cityscapes --dataroot data/cityscapes     # this registry's names
    GeneratorConfig.preset("ade20k")                                             # its model fields

A new dataset is one `register(DatasetPreset(...))` below, plus its label set (class names, palette) in
gaugan_sdk/labels.py when it has one of its own (without, the model gets a generic palette). The training command
line, GeneratorConfig.preset, gaugan-export --preset, the NVlabs checkpoint loader's suggestions and the paint
demo read this registry. Torch-free: plain data and pathlib.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Folder", "Layout", "DatasetPreset", "PRESETS", "register", "preset_named", "by_path",
           "by_first_fields"]


def by_path(file: Path, folder: Path) -> str:
    """A file's pairing key: its path below its folder without the suffix (`a/s0.png` -> "a/s0")."""
    return file.relative_to(folder).with_suffix("").as_posix()


def by_first_fields(count: int) -> Callable[[Path, Path], str]:
    """Pairing by the first `count` "_"-separated fields of the file name (Cityscapes: city_sequence_frame)."""
    def key(file: Path, folder: Path) -> str:
        return "_".join(file.name.split("_")[:count])
    key.__qualname__ = f"by_first_fields({count})"
    return key


@dataclass(frozen=True)
class Folder:
    """Where one kind of file lies: a folder template over the training options ({dataroot}, {label_dir},
    {image_dir}, {instance_dir}) and {phase}, searched recursively for `pattern`."""

    root: str
    pattern: str = "*"
    what: str = "files"

    @property
    def options(self) -> tuple[str, ...]:
        """The training options the template reads (phase aside)."""
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.root) if name and name != "phase")

    def path(self, values: Mapping[str, Any]) -> Path | None:
        """The folder for these option values; None where one of its options is not given."""
        if any(values.get(name) is None for name in self.options):
            return None
        return Path(self.root.format(**values))


@dataclass(frozen=True)
class Layout:
    """A dataset's files on disk: label maps, photos and (optionally) instance maps, paired by `key`."""

    labels: Folder
    images: Folder
    instances: Folder | None = None  # None: no instance maps; a template whose option is not given: none either
    key: Callable[[Path, Path], str] = by_path
    phases: Mapping[str, str] = field(default_factory=dict)  # --phase value -> the name in the folder ({phase})

    @property
    def required(self) -> tuple[str, ...]:
        """The training options that must be given: those the label and image folders read."""
        return tuple(dict.fromkeys((*self.labels.options, *self.images.options)))


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    model: Mapping[str, Any]  # GeneratorConfig fields; without use_instance: instances when the layout has them
    training: Mapping[str, Any]  # TrainOptions defaults: preprocess, load_size, batch_size
    layout: Layout | None = None  # None: generated, not read (the procedural scenes)
    description: str = ""


PRESETS: dict[str, DatasetPreset] = {}


def register(preset: DatasetPreset) -> DatasetPreset:
    if preset.name in PRESETS:
        raise ValueError(f"dataset preset {preset.name!r} is registered already")
    PRESETS[preset.name] = preset
    return preset


def preset_named(name: str) -> DatasetPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; accepted: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


# ------------------------------------------------------------------------------------------------ the presets
# Model values are the NVlabs dataset defaults; training defaults the reference's per-dataset options.
register(DatasetPreset(
    "procedural",
    model=dict(label_nc=8, contain_dontcare_label=False, use_instance=True, crop_size=256, aspect_ratio=2.0,
               num_upsampling_layers="normal", label_set="procedural"),
    training=dict(preprocess="none", load_size=256, batch_size=4),
    description="the built-in procedural scenes (gaugan_sdk.procedural): 8 classes with instances, 128x256"))
register(DatasetPreset(
    "cityscapes",
    model=dict(label_nc=35, contain_dontcare_label=False, use_instance=True, crop_size=512, aspect_ratio=2.0,
               num_upsampling_layers="more", label_set="cityscapes"),
    training=dict(preprocess="fixed", load_size=512, batch_size=16),
    layout=Layout(labels=Folder("{dataroot}/gtFine/{phase}", "*_labelIds.png", "Cityscapes labels"),
                  images=Folder("{dataroot}/leftImg8bit/{phase}", "*.png", "Cityscapes images"),
                  instances=Folder("{dataroot}/gtFine/{phase}", "*_instanceIds.png", "Cityscapes instance maps"),
                  key=by_first_fields(3)),
    description="Cityscapes gtFine labelIds (+ instanceIds) and leftImg8bit, paired on city_sequence_frame"))
register(DatasetPreset(
    "ade20k",
    model=dict(label_nc=150, contain_dontcare_label=True, use_instance=False, crop_size=256, aspect_ratio=1.0,
               num_upsampling_layers="normal", label_set="ade20k"),
    training=dict(preprocess="resize_and_crop", load_size=286, batch_size=1),
    layout=Layout(labels=Folder("{dataroot}/annotations/{phase}", "*.png", "ADE20K annotations"),
                  images=Folder("{dataroot}/images/{phase}", "*.jpg", "ADE20K images"),
                  phases={"train": "training", "val": "validation"}),
    description="ADEChallengeData2016: raw ids 0..150 (0 = other), as the released model was trained"))
register(DatasetPreset(
    "coco",
    model=dict(label_nc=182, contain_dontcare_label=True, use_instance=True, crop_size=256, aspect_ratio=1.0,
               num_upsampling_layers="normal", label_set="coco"),
    training=dict(preprocess="resize_and_crop", load_size=286, batch_size=1),
    layout=Layout(labels=Folder("{dataroot}/{phase}_label", "*.png", "COCO-Stuff labels"),
                  images=Folder("{dataroot}/{phase}_img", "*", "COCO-Stuff images"),
                  instances=Folder("{dataroot}/{phase}_inst", "*.png", "COCO-Stuff instance maps")),
    description="COCO-Stuff as SPADE prepares it: <phase>_img, <phase>_label, <phase>_inst"))
register(DatasetPreset(
    "custom",
    model=dict(label_nc=13, crop_size=256, aspect_ratio=1.0),
    training=dict(preprocess="resize_and_crop", load_size=286, batch_size=1),
    layout=Layout(labels=Folder("{label_dir}", "*", "labels"), images=Folder("{image_dir}", "*", "images"),
                  instances=Folder("{instance_dir}", "*", "instance maps")),
    description="your folders: label-id PNGs, photos and optional instance maps, paired by path without suffix"))
