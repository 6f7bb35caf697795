"""Datasets in the layouts users have on disk, and the built-in procedural scenes.

Every dataset yields dicts of tensors:
    label    int64 (1, H, W)   class ids as stored (255 = dontcare where the model has that channel)
    instance int32 (1, H, W)   instance ids (zeros when the model does not use them)
    image    float32 (3, H, W) in [-1, 1]
    index    int

Where each dataset's files lie is its preset's `Layout` (gaugan_sdk.presets: Cityscapes gtFine / leftImg8bit
paired on city_sequence_frame, ADE20K annotations / images, COCO-Stuff <phase>_label / _img / _inst, custom
folders paired by path below the folder without suffix: labels/a/s0.png <-> images/a/s0.jpg); `layout_pairs`
reads any layout.
Before training, unpaired files, files that claim the same pairing key, and files whose headers are unreadable,
bombs, colour label maps or of another size than their partner are found by a scan (training/scan.py; with
--check-data also ids out of range). Each raises an error naming the file, or with skip_bad is skipped with a
warning and counted; ids out of range found while loading are treated the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import get_label_set, label_set_for, validate_label_ids
from gaugan_sdk.presets import Folder, Layout, preset_named
from gaugan_sdk.procedural import scene_sample

from . import transforms
from .options import TrainOptions
from .scan import LABEL_MODES, DataError, FilePair, keyed, open_image, scan

__all__ = ["DataError", "FilePair", "PairedDataset", "ProceduralDataset", "build_dataset", "layout_pairs",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------------------------- layouts
def layout_pairs(layout: Layout, values: dict, phase: str, instances: bool = True) -> tuple[list[FilePair], list[str]]:
    """The label / image (/ instance, where the model uses them) pairs of a dataset `layout` for the option
    `values` (dataroot, label_dir, ...) and `phase`; and a description of every file without a partner or
    sharing its key."""
    values = {**values, "phase": layout.phases.get(phase, phase)}

    def files(folder: Folder) -> tuple[dict[str, Path], list[str]]:
        root = folder.path(values)
        return keyed(_files(root, folder.pattern, folder.what), lambda f: layout.key(f, root), f"{folder.what} in "
                     f"{root}")

    found = None
    if instances and layout.instances is not None and layout.instances.path(values) is not None:
        found = files(layout.instances)
    return _pair(files(layout.labels), files(layout.images), found, str(layout.labels.path(values)),
                 str(layout.images.path(values)))


def _files(folder: Path, pattern: str, what: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder {folder} does not exist")
    found = sorted(p for p in folder.rglob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"{what}: no {pattern} image files under {folder}")
    return found


def _pair(labels: tuple[dict[str, Path], list[str]], images: tuple[dict[str, Path], list[str]],
          instances: tuple[dict[str, Path], list[str]] | None, label_where: str,
          image_where: str) -> tuple[list[FilePair], list[str]]:
    """Pairs in sorted key order, and a description of every file that has no partner or shares its key."""
    (labels, problems), (images, more) = labels, images
    problems = problems + more
    if instances is not None:
        instances, more = instances
        problems += more
    problems += [f"label {labels[k]} has no image in {image_where}" for k in sorted(labels.keys() - images.keys())]
    problems += [f"image {images[k]} has no label in {label_where}" for k in sorted(images.keys() - labels.keys())]
    pairs = []
    for k in sorted(labels.keys() & images.keys()):
        inst = None
        if instances is not None:
            inst = instances.get(k)
            if inst is None:
                problems.append(f"label {labels[k]} has no instance map")
                continue
        pairs.append(FilePair(labels[k], images[k], inst))
    return pairs, problems


# ---------------------------------------------------------------------------------------------- datasets
class PairedDataset(torch.utils.data.Dataset):
    """Label / image (/ instance) files on disk with the reference transforms."""

    def __init__(self, pairs: list[FilePair], cfg: GeneratorConfig, *, preprocess: str, load_size: int,
                 flip: bool, seed: int = 0, skip_bad: bool = False):
        if not pairs:
            raise DataError("the dataset has no label/image pairs")
        if cfg.use_instance and any(p.instance is None for p in pairs):
            raise DataError("this model uses instance edges (use_instance=True) but the dataset has no instance "
                            "maps; give them (--instance-dir) or train with --set use_instance=false")
        self.pairs, self.cfg = pairs, cfg
        self.preprocess, self.load_size, self.flip = preprocess, load_size, flip
        self.seed, self.epoch, self.skip_bad = seed, 0, skip_bad
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Random crops and flips are drawn from (seed, epoch, index): reproducible, and the same after --resume."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        for attempt in range(len(self.pairs)):
            i = (index + attempt) % len(self.pairs)
            try:
                return self._load(i)
            except DataError as err:
                if not self.skip_bad:
                    raise
                if i not in self.skipped:
                    self.skipped.add(i)
                    warnings.warn(f"skipping a bad sample ({len(self.skipped)} so far): {err}", stacklevel=2)
        raise DataError(f"every one of the {len(self.pairs)} samples is bad")

    def _load(self, i: int) -> dict[str, torch.Tensor | int]:
        pair = self.pairs[i]
        label_img = open_image(pair.label, "label map")
        if label_img.mode not in LABEL_MODES:
            raise DataError(f"label map {pair.label} is {label_img.mode}; label maps must be single-channel class "
                            "ids (8- or 16-bit gray PNG), not colour masks")
        image = open_image(pair.image, "image").convert("RGB")
        if image.size != label_img.size:
            raise DataError(f"image {pair.image} is {image.size[0]}x{image.size[1]} but its label map {pair.label} "
                            f"is {label_img.size[0]}x{label_img.size[1]}")
        rng = np.random.default_rng([self.seed, self.epoch, i])
        params = transforms.sample_params(self.preprocess, self.load_size, self.cfg.crop_size,
                                          self.cfg.aspect_ratio, image.size, rng, self.flip)
        label = np.asarray(transforms.apply(label_img, params, Image.NEAREST))
        try:
            validate_label_ids(label, self.cfg)
        except ValueError as err:
            raise DataError(f"label map {pair.label}: {err}") from None
        instance = np.zeros_like(label, dtype=np.int32)
        if self.cfg.use_instance:
            instance = np.asarray(transforms.apply(open_image(pair.instance, "instance map"), params,
                                                   Image.NEAREST))
        photo = np.asarray(transforms.apply(image, params, Image.BICUBIC))
        return _sample(label, instance, photo, i, self.cfg, f"{pair.label} after preprocess={self.preprocess!r}")


class ProceduralDataset(torch.utils.data.Dataset):
    """`count` procedural scenes at the model's image size; scene i comes from seed `seed + i`, so a held-out set
    is the same class with another seed range. Mapped into the model's label set by class name."""

    def __init__(self, cfg: GeneratorConfig, count: int, *, seed: int = 0, flip: bool = True):
        self.cfg, self.count, self.seed, self.flip, self.epoch = cfg, count, seed, flip, 0
        self.labels = label_set_for(cfg) if cfg.label_set else get_label_set("procedural")
        if cfg.label_set is None and cfg.num_label_channels < len(self.labels):
            raise DataError(f"the procedural scenes have {len(self.labels)} classes; the model has "
                            f"{cfg.num_label_channels} label channels")

    def __len__(self) -> int:
        return self.count

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        height, width = self.cfg.image_size
        label, instance, image = scene_sample(self.seed + index, height, width, self.labels)
        if self.flip and np.random.default_rng([self.seed, self.epoch, index]).random() > 0.5:
            label, instance, image = label[:, ::-1], instance[:, ::-1], image[:, ::-1]
        return _sample(label, instance, image, index, self.cfg, "procedural scene")


def _sample(label: np.ndarray, instance: np.ndarray, image: np.ndarray, index: int, cfg: GeneratorConfig,
            what: str) -> dict[str, torch.Tensor | int]:
    if label.shape != cfg.image_size:
        raise DataError(f"{what} is {label.shape[1]}x{label.shape[0]} (WxH) but the model makes "
                        f"{cfg.image_size[1]}x{cfg.image_size[0]} images (crop_size={cfg.crop_size}, aspect_ratio="
                        f"{cfg.aspect_ratio}); pick a preprocess mode / crop_size that produce that size")
    return {
        "label": torch.from_numpy(np.array(label, dtype=np.int64))[None],  # copies: PIL arrays are read-only
        "instance": torch.from_numpy(np.array(instance, dtype=np.int32))[None],
        "image": torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1,
        "index": index,
    }


# ---------------------------------------------------------------------------------------------- factory
def build_dataset(opts: TrainOptions, cfg: GeneratorConfig, *, phase: str | None = None,
                  train: bool = True, report: bool = False) -> torch.utils.data.Dataset:
    """The dataset `opts` names (resolved options), for training (random flips) or evaluation; its files
    scanned first (training/scan.py). `report`: print the scan's progress and summary (the main process)."""
    phase = phase or opts.phase
    flip = train and not opts.no_flip
    layout = preset_named(opts.dataset).layout
    if layout is None:  # generated: the procedural scenes
        # evaluation scenes come from a seed range training never reaches
        seed = opts.seed * 1_000_003 + (0 if train else 500_000_000)
        count = opts.procedural_scenes if train else opts.eval_samples
        return ProceduralDataset(cfg, min(count, opts.max_samples or count), seed=seed, flip=flip)
    pairs, problems = layout_pairs(layout, opts.to_dict(), phase, instances=cfg.use_instance)
    if problems:
        summary = f"{len(problems)} file(s) without a partner, e.g.: " + "; ".join(problems[:3])
        if not opts.skip_bad:
            raise DataError(f"{summary}. Fix the layout, or pass --skip-bad to train on the {len(pairs)} complete "
                            "pairs")
        warnings.warn(f"skipping {summary}", stacklevel=2)
    if opts.max_samples:
        pairs = pairs[:opts.max_samples]
    pairs, problems = scan(pairs, cfg, decode=opts.check_data, report=report)
    if problems:
        summary = f"{len(problems)} bad sample(s), e.g.: " + "; ".join(problems[:3])
        if not opts.skip_bad:
            raise DataError(f"{summary}. Fix or remove them, or pass --skip-bad to train on the {len(pairs)} good "
                            f"pairs")
        warnings.warn(f"skipping {summary}", stacklevel=2)
    return PairedDataset(pairs, cfg, preprocess=opts.preprocess, load_size=opts.load_size, flip=flip,
                         seed=opts.seed, skip_bad=opts.skip_bad)
