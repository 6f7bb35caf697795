"""Label maps for INT8 calibration and for verification: a folder of label PNGs, or procedural scenes.

A folder holds label-id PNGs (8-bit, one class id per pixel, 255 = dontcare); Cityscapes-style
`*_labelIds.png` files take their `*_instanceIds.png` partner as instance map, others use the label map itself
(class boundaries become the edges). Maps are resized (nearest) to the model's image size.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import label_set_for, validate_label_ids
from gaugan_sdk.procedural import scene_batch

IMAGE_SUFFIXES = (".png",)
VERIFY_MASKS = 8  # fp32 / fp16 exports verify on this many masks by default
INT8_MASKS = 32  # int8 calibrates (and verifies) on this many by default
INT8_MIN_MASKS = 16  # below this a GAN's activation ranges are thin: a warning


def default_mask_count(engine: str) -> int:
    return INT8_MASKS if engine == "int8" else VERIFY_MASKS


def warn_if_thin(count: int) -> None:
    """The int8 calibration-size warning."""
    if count < INT8_MIN_MASKS:
        warnings.warn(f"int8 calibration on {count} masks: fewer than {INT8_MIN_MASKS} leave a GAN's activation "
                      f"ranges thin (the default is {INT8_MASKS})", stacklevel=2)


def calibration_masks(cfg: GeneratorConfig, size: tuple[int, int], count: int, calib_dir: str | Path | None = None,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(labels (N, H, W) uint8, instances (N, H, W) int32 or None, description of the source)."""
    if count < 1:
        raise ValueError(f"--calib-count {count}: at least 1 mask is needed")
    if calib_dir is None:
        warnings.warn("no --calib-dir given: calibrating and verifying on procedural scenes; pass a folder of your "
                      "label maps for numbers that speak for your data", stacklevel=2)
        labels, instances = scene_batch(seed, count, *size, label_set_for(cfg))
        return labels, instances if cfg.use_instance else None, f"{count} procedural scenes (seed {seed})"
    return *_folder_masks(cfg, size, count, Path(calib_dir)), f"{count} label maps from {calib_dir}"


def _folder_masks(cfg: GeneratorConfig, size: tuple[int, int], count: int, folder: Path):
    from PIL import Image

    if not folder.is_dir():
        raise FileNotFoundError(f"--calib-dir {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.endswith("_instanceIds.png"))
    if not files:
        raise ValueError(f"--calib-dir {folder} holds no label PNGs (*.png); it needs label-id maps, one class id "
                         f"per pixel")
    labels, instances = [], []
    for path in files[:count]:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"{path} is a {image.mode} image; label maps are single-channel id images "
                                 f"(mode L), not colour masks")
            try:  # checked at the file's own size, so the pixel counts are the file's
                validate_label_ids(np.asarray(image), cfg)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: {e}") from None
            label = np.asarray(image.resize(size[::-1], Image.NEAREST)).astype(np.int64)
        labels.append(label.astype(np.uint8))
        partner = path.with_name(path.name.replace("_labelIds.png", "_instanceIds.png"))
        if cfg.use_instance and partner != path and partner.is_file():
            with Image.open(partner) as image:
                instances.append(np.asarray(image.resize(size[::-1], Image.NEAREST)).astype(np.int32))
        else:
            instances.append(label.astype(np.int32))
    if len(files) < count:
        warnings.warn(f"--calib-dir {folder} has {len(files)} label maps, fewer than --calib-count {count}",
                      stacklevel=3)
    return np.stack(labels), np.stack(instances) if cfg.use_instance else None


def class_coverage(labels: np.ndarray, cfg: GeneratorConfig) -> str:
    """Which of the model's classes the masks show, in words ("the masks cover 19 of 35 classes; missing: ...")."""
    names = label_set_for(cfg).names
    present = set(np.unique(labels).tolist())
    missing = [name for i, name in enumerate(names) if i not in present]
    text = f"the masks cover {len(names) - len(missing)} of {len(names)} classes"
    if missing:
        text += f"; missing: {', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''}"
    return text
