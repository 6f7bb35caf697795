"""Datasets in the layouts users have on disk, and the built-in procedural scenes.

Every dataset yields dicts of tensors:
    label    int64 (1, H, W)   class ids as stored (255 = dontcare where the model has that channel)
    instance int32 (1, H, W)   instance ids (zeros when the model does not use them)
    image    float32 (3, H, W) in [-1, 1]
    index    int

Layouts (the reference's, spade_facts.md section 6):
    cityscapes  <root>/gtFine/<phase>/<city>/*_gtFine_labelIds.png (+ *_gtFine_instanceIds.png),
                <root>/leftImg8bit/<phase>/<city>/*_leftImg8bit.png; paired on city_sequence_frame
    ade20k      <root>/images/{training,validation}/*.jpg + <root>/annotations/{training,validation}/*.png
                (ADEChallengeData2016); raw ids 0..150, 0 = "other", as the released model was trained
    coco        <root>/<phase>_img, <root>/<phase>_label, <root>/<phase>_inst (COCO-Stuff as SPADE prepares it)
    custom      --label-dir, --image-dir [, --instance-dir], paired by file stem
Unpaired files, unreadable images and ids out of range raise an error naming the file, or with skip_bad are
skipped with a warning and counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import get_label_set, label_set_for, validate_label_ids
from gaugan_sdk.procedural import scene_sample

from . import transforms
from .options import TrainOptions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """A file of the dataset cannot be used: names the file and what is wrong."""


@dataclass(frozen=True)
class FilePair:
    label: Path
    image: Path
    instance: Path | None = None


# ---------------------------------------------------------------------------------------------- layouts
def cityscapes_pairs(root: Path, phase: str) -> tuple[list[FilePair], list[str]]:
    labels = _files(root / "gtFine" / phase, "*_labelIds.png", "Cityscapes labels")
    images = _files(root / "leftImg8bit" / phase, "*.png", "Cityscapes images")
    key = lambda p: "_".join(p.name.split("_")[:3])  # noqa: E731  city_sequence_frame
    instances = {key(p): p for p in (root / "gtFine" / phase).rglob("*_instanceIds.png")}
    return _pair({key(p): p for p in labels}, {key(p): p for p in images}, instances, "gtFine", "leftImg8bit")


def ade20k_pairs(root: Path, phase: str) -> tuple[list[FilePair], list[str]]:
    split = {"train": "training", "val": "validation"}.get(phase, phase)
    labels = _files(root / "annotations" / split, "*.png", "ADE20K annotations")
    images = _files(root / "images" / split, "*.jpg", "ADE20K images")
    return _pair(_by_stem(labels), _by_stem(images), None, "annotations", "images")


def coco_pairs(root: Path, phase: str) -> tuple[list[FilePair], list[str]]:
    labels = _files(root / f"{phase}_label", "*.png", "COCO-Stuff labels")
    images = _files(root / f"{phase}_img", "*", "COCO-Stuff images")
    instances = _by_stem(_files(root / f"{phase}_inst", "*.png", "COCO-Stuff instance maps"))
    return _pair(_by_stem(labels), _by_stem(images), instances, f"{phase}_label", f"{phase}_img")


def custom_pairs(label_dir: Path, image_dir: Path, instance_dir: Path | None) -> tuple[list[FilePair], list[str]]:
    labels = _by_stem(_files(label_dir, "*", "labels"))
    images = _by_stem(_files(image_dir, "*", "images"))
    instances = None if instance_dir is None else _by_stem(_files(instance_dir, "*", "instance maps"))
    return _pair(labels, images, instances, str(label_dir), str(image_dir))


def _files(folder: Path, pattern: str, what: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder {folder} does not exist")
    found = sorted(p for p in folder.rglob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"{what}: no {pattern} image files under {folder}")
    return found


def _by_stem(paths: list[Path]) -> dict[str, Path]:
    return {p.stem: p for p in paths}


def _pair(labels: dict[str, Path], images: dict[str, Path], instances: dict[str, Path] | None, label_where: str,
          image_where: str) -> tuple[list[FilePair], list[str]]:
    """Pairs in sorted key order, and a description of every file that has no partner."""
    problems = [f"label {labels[k]} has no image in {image_where}" for k in sorted(labels.keys() - images.keys())]
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
        label_img = _open(pair.label, "label map")
        if label_img.mode not in ("L", "P", "I", "I;16"):
            raise DataError(f"label map {pair.label} is {label_img.mode}; label maps must be single-channel class "
                            "ids (8- or 16-bit gray PNG), not colour masks")
        image = _open(pair.image, "image").convert("RGB")
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
            instance = np.asarray(transforms.apply(_open(pair.instance, "instance map"), params, Image.NEAREST))
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


def _open(path: Path, what: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise DataError(f"cannot read {what} {path}: {err}") from None


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
LAYOUTS: dict[str, Callable[[Path, str], tuple[list[FilePair], list[str]]]] = {
    "cityscapes": cityscapes_pairs, "ade20k": ade20k_pairs, "coco": coco_pairs,
}


def build_dataset(opts: TrainOptions, cfg: GeneratorConfig, *, phase: str | None = None,
                  train: bool = True) -> torch.utils.data.Dataset:
    """The dataset `opts` names (resolved options), for training (random flips) or evaluation."""
    phase = phase or opts.phase
    flip = train and not opts.no_flip
    if opts.dataset == "procedural":
        # evaluation scenes come from a seed range training never reaches
        seed = opts.seed * 1_000_003 + (0 if train else 500_000_000)
        count = opts.procedural_scenes if train else opts.eval_samples
        return ProceduralDataset(cfg, min(count, opts.max_samples or count), seed=seed, flip=flip)
    if opts.dataset == "custom":
        pairs, problems = custom_pairs(Path(opts.label_dir), Path(opts.image_dir),
                                       Path(opts.instance_dir) if opts.instance_dir else None)
    else:
        pairs, problems = LAYOUTS[opts.dataset](Path(opts.dataroot), phase)
    if problems:
        summary = f"{len(problems)} file(s) without a partner, e.g.: " + "; ".join(problems[:3])
        if not opts.skip_bad:
            raise DataError(f"{summary}. Fix the layout, or pass --skip-bad to train on the {len(pairs)} complete "
                            "pairs")
        warnings.warn(f"skipping {summary}", stacklevel=2)
    if opts.max_samples:
        pairs = pairs[:opts.max_samples]
    return PairedDataset(pairs, cfg, preprocess=opts.preprocess, load_size=opts.load_size, flip=flip,
                         seed=opts.seed, skip_bad=opts.skip_bad)
