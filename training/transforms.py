"""The reference data transforms (NVlabs `data/base_dataset.py`): one geometric transform per sample, applied
to the label map (nearest), the instance map (nearest) and the image (bicubic), then a random horizontal flip.

    params = sample_params(opts_preprocess, load_size, crop_size, aspect_ratio, (w, h), rng, flip=True)
    label = apply(label_img, params, Image.NEAREST); image = apply(photo, params, Image.BICUBIC)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Params:
    resize: tuple[int, int] | None  # (w, h) to resize to first, None: keep
    crop: tuple[int, int, int, int] | None  # (left, top, w, h) after resizing, None: no crop
    flip: bool
    round_to: int = 0  # "none": round the size to a multiple of this (32 in the reference)


def sample_params(preprocess: str, load_size: int, crop_size: int, aspect_ratio: float, size: tuple[int, int],
                  rng: np.random.Generator, flip: bool) -> Params:
    """The random choices for one sample of original size `size` = (w, h)."""
    w, h = size
    new_w, new_h = w, h
    resize = None
    if preprocess == "resize_and_crop":
        new_w = new_h = load_size
    elif preprocess.startswith("scale_width"):
        new_w, new_h = load_size, load_size * h // w
    elif preprocess.startswith("scale_shortside"):
        short, long = sorted((w, h))
        ratio = load_size / short
        new_w, new_h = (load_size, round(long * ratio)) if w == short else (round(long * ratio), load_size)
    elif preprocess == "fixed":  # the reference: width crop_size, height crop_size / aspect_ratio
        new_w, new_h = crop_size, round(crop_size / aspect_ratio)
    if (new_w, new_h) != (w, h):
        resize = (new_w, new_h)
    crop = None
    if "crop" in preprocess:
        if new_w < crop_size or new_h < crop_size:
            raise ValueError(f"preprocess={preprocess!r}: the image is {new_w}x{new_h} after resizing, smaller than "
                             f"crop_size={crop_size}; raise --load-size or lower crop_size")
        left = int(rng.integers(0, new_w - crop_size + 1))
        top = int(rng.integers(0, new_h - crop_size + 1))
        crop = (left, top, crop_size, crop_size)
    return Params(resize, crop, flip and bool(rng.random() > 0.5), 32 if preprocess == "none" else 0)


def apply(image: Image.Image, params: Params, resample: int) -> Image.Image:
    if params.resize is not None:
        image = image.resize(params.resize, resample)
    if params.crop is not None:
        left, top, w, h = params.crop
        image = image.crop((left, top, left + w, top + h))
    if params.round_to:
        w, h = image.size
        rw, rh = (max(params.round_to, round(v / params.round_to) * params.round_to) for v in (w, h))
        if (rw, rh) != (w, h):
            image = image.resize((rw, rh), resample)
    if params.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
