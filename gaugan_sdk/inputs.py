"""Host-side input handling for `Synthesizer`, bounded in memory: the size limit, seeds, instance ids, and the
nearest / bilinear resizes between the mask's size and the artifact's.

A label map far larger than the artifact must not cost many times the image it asks for: the limit is checked
from the shape alone, masks are resized by indexing in their own dtype (no full-size int32 copy), and the
bilinear upsizing of the result is done in row blocks straight into the uint8 output.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["check_pixels", "check_count", "seed_count", "seeds_for", "style_array", "instance_int32",
           "resize_nearest", "resize_bilinear_uint8"]

_BLOCK_PIXELS = 1 << 18  # output pixels per block of the bilinear resize (3 MiB per float32 temporary)


def check_pixels(shape: tuple[int, ...], limit: int | None, what: str = "label map(s)") -> None:
    """Refuse maps (or images: `what`) of `shape` ((H, W) or (N, H, W), colour channel dropped) holding more than
    `limit` pixels in all (None: no limit), from the shape alone, before any copy."""
    pixels = int(np.prod(shape, dtype=np.int64))
    if limit is not None and pixels > limit:
        dims = "x".join(str(d) for d in shape)
        raise ValueError(f"{what} of {dims} hold {pixels:,} pixels, over this Synthesizer's limit of "
                         f"{limit:,} per call (the RGB result alone would be {pixels * 3 / 2**20:,.0f} MiB); split "
                         f"the request, or set the limit: Synthesizer(..., max_pixels=N) (None: no limit)")


def check_count(value, name: str, minimum: int = 0) -> int:
    """An int option (warmup, threads, max_pixels, ...) >= minimum; bools and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}={value!r}; accepted: an int >= {minimum}")
    return int(value)


def seed_count(seed, count: int | str = "N") -> int | None:
    """How many seeds `seed` gives: None for none, 1 for an int, else the list's length. Seeds are ints >= 0
    (numpy's rule); anything else is a ValueError naming it (`count`: how many the caller expects, for the
    message)."""
    if seed is None:
        return None
    if _is_seed(seed):
        return 1
    listed = not isinstance(seed, (str, bytes)) and isinstance(seed, (Sequence, np.ndarray))
    if not listed or not all(_is_seed(s) for s in seed):
        raise ValueError(f"seed={seed!r}; accepted: an int >= 0, or a list of {count} such ints (one per image)")
    return len(seed)


def seeds_for(seed, count: int) -> list[int] | None:
    """`seed` (None, an int, or one int per image) -> one seed per image."""
    given = seed_count(seed, count)
    if given is None:
        return None
    if _is_seed(seed):
        return [int(seed) + i for i in range(count)]
    if given != count:
        raise ValueError(f"seed={seed!r}; accepted: an int >= 0, or a list of {count} such ints (one per image)")
    return [int(s) for s in seed]


def style_array(style) -> np.ndarray:
    """Style images as one array: an (H, W, 3) image, an (N, H, W, 3) batch, or a list of images of one shape.
    A list of several shapes is a ValueError naming them (numpy's own says "inhomogeneous shape")."""
    if isinstance(style, (list, tuple)):
        shapes = list(dict.fromkeys(np.shape(s) for s in style))
        if len(shapes) > 1:
            raise ValueError(f"style is a list of {len(style)} images of different shapes "
                             f"{', '.join(str(s) for s in shapes[:4])}{' ...' if len(shapes) > 4 else ''}; accepted: "
                             f"one (H, W, 3) uint8 image, or N of one size (an (N, H, W, 3) array or a list): resize "
                             f"them to one size first, or run them one call each")
    return np.asarray(style)


def _is_seed(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 0


def instance_int32(inst: np.ndarray) -> np.ndarray:
    """Instance ids as the graph's int32. Only equality between neighbours matters (edges), so ids outside the
    int32 range are renumbered by rank, which keeps every equality, instead of wrapping around."""
    info = np.iinfo(np.int32)
    if inst.dtype.itemsize < 4 or (inst.dtype == np.int32):
        return inst.astype(np.int32, copy=False)
    if int(inst.min()) >= info.min and int(inst.max()) <= info.max:
        return inst.astype(np.int32)
    _, ranks = np.unique(inst, return_inverse=True)
    return ranks.reshape(inst.shape).astype(np.int32)


def resize_nearest(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) -> (N, h, w) nearest, with PyTorch's index rule floor(i * in / out), in the maps' dtype."""
    n, h, w = maps.shape
    rows = (np.arange(size[0], dtype=np.int64) * h // size[0]).clip(max=h - 1)
    cols = (np.arange(size[1], dtype=np.int64) * w // size[1]).clip(max=w - 1)
    return maps[:, rows][:, :, cols]


def resize_bilinear_uint8(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, h, w, 3), bilinear with half-pixel centres (align_corners=False), in blocks of
    output rows, so the float work stays a few MiB whatever the output size."""
    def axis(n_out: int, n_in: int):
        x = ((np.arange(n_out) + 0.5) * n_in / n_out - 0.5).clip(0, n_in - 1)
        lo = np.floor(x).astype(np.int64)
        return lo, np.minimum(lo + 1, n_in - 1), (x - lo).astype(np.float32)

    (r0, r1, fr), (c0, c1, fc) = axis(size[0], images.shape[1]), axis(size[1], images.shape[2])
    x = images.astype(np.float32)
    out = np.empty((len(images), *size, images.shape[3]), dtype=np.uint8)
    block = max(1, _BLOCK_PIXELS // (size[1] * len(images)))
    wc, fcb = (1 - fc)[None, None, :, None], fc[None, None, :, None]
    for start in range(0, size[0], block):
        rows = slice(start, start + block)
        a, b = fr[rows][None, :, None, None], x[:, r1[rows]]
        mixed = x[:, r0[rows]] * (1 - a) + b * a
        cols = mixed[:, :, c0] * wc + mixed[:, :, c1] * fcb
        np.clip(np.round(cols), 0, 255, out=cols)
        out[:, rows] = cols
    return out
